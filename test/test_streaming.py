"""The streaming data path (donkey_ros/learning/streaming.py) against the in-memory one: the same
frames, labels and validation split from the same bags; the frame cache is reused; the command
line picks the path and the report says which ran."""
import numpy as np
import pytest

from donkey_ros.learning.streaming import choose_path, stream_bags
from donkey_ros.learning.train import TrainConfig
from donkey_ros.learning.training_data import load_bags
from donkey_ros.recording.synthetic import write_synthetic_bag

tf = pytest.importorskip('tensorflow')


@pytest.fixture(scope='module')
def bags(tmp_path_factory):
    """Three bags unlike each other: raw frames with off-track stretches, JPEG frames with a late
    first command, a short one (shorter than the validation period: its last part validates)."""
    folder = tmp_path_factory.mktemp('bags')
    write_synthetic_bag(folder / 'a', frames=420, with_truth=True, off_track=((3.0, 4.5),))
    write_synthetic_bag(folder / 'b', frames=300, image_topic='camera/image_raw/compressed',
                        cmd_from=1.0, start_ns=1_700_000_100_000_000_000)
    write_synthetic_bag(folder / 'c', frames=90, start_ns=1_700_000_200_000_000_000)
    return folder


def _memory_rows(frames, val_idx):
    is_val = np.zeros(len(frames), bool)
    is_val[val_idx] = True
    return sorted((frames.images[i].tobytes(), float(frames.steering[i]),
                   float(frames.throttle[i]), bool(is_val[i])) for i in range(len(frames)))


def test_streaming_yields_the_same_frames_labels_and_split_as_memory(bags, tmp_path):
    from donkey_ros.learning.pipeline import split_by_time

    config = TrainConfig(block_seconds=4.0, val_fraction=0.25)
    memory, meta_memory, counts_memory = load_bags([bags], config, progress=False)
    _, val_idx = split_by_time(memory, config.val_fraction, config.block_seconds)
    streamed, meta_stream, counts_stream = stream_bags([bags], config, progress=False,
                                                       cache=tmp_path / 'cache')
    train_n, val_n = streamed.split(config.val_fraction, config.block_seconds)
    assert meta_stream == meta_memory
    assert counts_stream == counts_memory
    assert counts_memory['off_track'] > 0 and counts_memory['no_command'] > 0
    assert (train_n, val_n) == (len(memory) - len(val_idx), len(val_idx))
    assert streamed.sources == memory.sources and streamed.seconds == pytest.approx(memory.seconds)

    # Through the tf.data reader that training uses (interleaved, in parallel) ...
    rows = []
    for validation in (False, True):
        for image, steering, throttle in streamed.records(validation).as_numpy_iterator():
            rows.append((image.tobytes(), float(steering), float(throttle), validation))
    assert sorted(rows) == _memory_rows(memory, val_idx)
    # ... and through the numpy reader that measures the exported model.
    rows = [(image.tobytes(), float(s), float(t), validation)
            for validation in (False, True)
            for images, steering, throttle in streamed.iter_frames(validation)
            for image, s, t in zip(images, steering, throttle)]
    assert sorted(rows) == _memory_rows(memory, val_idx)
    # The frames of the short bag 'c' are in validation at its end, as in memory.
    assert val_n > 0 and train_n > 0


def test_the_frame_cache_is_reused_and_renewed_when_a_bag_changes(bags, tmp_path):
    config = TrainConfig()
    cache = tmp_path / 'cache'
    first, _, _ = stream_bags([bags / 'c'], config, progress=False, cache=cache)
    files = sorted(cache.iterdir())
    stamp = first.prepared[0].frames_path.stat().st_mtime_ns
    again, _, _ = stream_bags([bags / 'c'], config, progress=False, cache=cache)
    assert sorted(cache.iterdir()) == files          # nothing new written
    assert again.prepared[0].frames_path.stat().st_mtime_ns == stamp
    other, _, _ = stream_bags([bags / 'c'], TrainConfig(input_size=(40, 20)), progress=False,
                              cache=cache)
    assert other.prepared[0].frames_path != first.prepared[0].frames_path


def test_temporary_cache_is_deleted_by_close(bags):
    streamed, _, _ = stream_bags([bags / 'c'], TrainConfig(), progress=False)
    folder = streamed.temporary
    assert folder.is_dir() and any(folder.iterdir())
    streamed.close()
    assert not folder.exists()


def test_auto_path_streams_large_data_and_keeps_small_data_in_memory(bags):
    frame = 80 * 40 * 3
    assert choose_path('auto', [bags], frame) == 'memory'
    assert choose_path('auto', [bags], frame, limit_mb=1) == 'stream'
    assert choose_path('auto', [bags], frame, workers=2) == 'stream'
    assert choose_path('memory', [bags], frame, limit_mb=1) == 'memory'


def test_train_streams_and_reports_path_and_progress(bags, tmp_path, capsys):
    from donkey_ros.apps.train import main

    out = tmp_path / 'model' / 'pilot.tflite'
    assert main([str(bags / 'a'), str(bags / 'c'), '--output', str(out), '--epochs', '2',
                 '--batch-size', '32', '--data-path', 'stream', '--block-seconds', '4',
                 '--frame-cache', str(tmp_path / 'cache')]) == 0
    text = capsys.readouterr().out
    assert 'streamed from disk' in text
    assert 'epoch 2/2:' in text and 'frames/s' in text and 'left at most' in text
    report = out.with_suffix('.report.md').read_text()
    assert 'data path: streamed from disk (stream); 1 worker' in report
    assert out.is_file() and out.with_suffix('.json').is_file()
