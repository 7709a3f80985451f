"""Style augmentation: stylized copies of a fraction of the training frames, computed once and
cached on disk, labels unchanged; and the training code reading them."""
import numpy as np
import pytest

from donkey_ros.recording.dataset import Sample
from donkey_ros.style.augment import AugmentReport, choose_style, frame_key, stylize_cache
from donkey_ros.sim.pictures import sim_frame
from donkey_ros.style.stylizer import StyleError, Stylizer

STYLES = ['style3', 'style13']
START = 1_700_000_000_000_000_000


@pytest.fixture(scope='module')
def stylizer():
    with Stylizer(warmup=()) as built:
        yield built


@pytest.fixture(scope='module')
def samples():
    """16 frames of two short recordings, the car moving along the oval."""
    frames = []
    for i in range(16):
        bag = f'/data/bags/run_{i // 8}'
        frames.append(Sample(image=sim_frame('oval', 160, 120, seconds=0.2 * i),
                             steering=0.05 * i - 0.4, throttle=0.3, stamp_ns=START + i * 50_000_000,
                             mode='user', truth=None, bag=bag))
    return frames


def run(samples, cache, stylizer, **kwargs):
    report = AugmentReport()
    out = list(stylize_cache(samples, STYLES, kwargs.pop('fraction', 0.5), cache,
                             kwargs.pop('seed', 7), stylizer=stylizer, scale=1.0,
                             report=report, **kwargs))
    return out, report


def test_a_fraction_of_frames_gets_a_stylized_copy_with_the_same_labels(samples, stylizer,
                                                                        tmp_path):
    out, report = run(samples, tmp_path, stylizer)
    copies = len(out) - len(samples)
    assert report.frames == 16 and report.chosen == copies == report.computed
    assert 3 <= copies <= 13
    assert sum(report.per_style.values()) == copies and set(report.per_style) <= set(STYLES)
    originals = iter(samples)
    last = None
    for item in out:
        if last is not None and item.stamp_ns == last.stamp_ns:
            # A copy follows its original: same labels, time and bag; other pixels.
            assert (item.steering, item.throttle, item.bag, item.mode) == \
                (last.steering, last.throttle, last.bag, last.mode)
            assert item.image.shape == last.image.shape and item.image.dtype == np.uint8
            assert np.abs(item.image.astype(int) - last.image).mean() > 15
        else:
            assert item is next(originals)
            last = item
    assert next(originals, None) is None
    files = sorted(tmp_path.rglob('*.png'))
    assert len(files) == copies
    assert {f.parent.name for f in files} <= {'run_0', 'run_1'}
    assert {f.parent.parent.name for f in files} <= set(STYLES)
    assert all(f.stem.isdigit() for f in files)
    assert 'style augmentation: ' in report.text()


def test_a_second_run_reads_the_cache_and_computes_nothing(samples, stylizer, tmp_path):
    first, _ = run(samples, tmp_path, stylizer)
    times = {p: p.stat().st_mtime_ns for p in tmp_path.rglob('*.png')}
    again, report = run(samples, tmp_path, stylizer)
    assert report.computed == 0 and report.cached == report.chosen == len(times)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob('*.png')} == times
    assert all(np.array_equal(a.image, b.image) for a, b in zip(first, again))
    # The choice depends on the frame, not on the order: reversed input, same copies.
    backwards, report = run(samples[::-1], tmp_path, stylizer)
    assert report.computed == 0 and report.cached == len(times)


def test_a_damaged_cache_file_is_recomputed(samples, stylizer, tmp_path):
    _, report = run(samples, tmp_path, stylizer)
    damaged = sorted(tmp_path.rglob('*.png'))[0]
    damaged.write_bytes(b'half a png')
    _, report = run(samples, tmp_path, stylizer)
    assert (report.computed, report.repaired) == (1, 1)
    assert report.cached == report.chosen - 1


def test_seed_and_fraction_change_the_choice(samples, stylizer, tmp_path):
    keys = ['/'.join(frame_key(s)) for s in samples]
    chosen = {seed: [choose_style(k, STYLES, 0.5, seed) for k in keys] for seed in (1, 2)}
    assert chosen[1] != chosen[2]
    assert all(choose_style(k, STYLES, 1.0, 1) in STYLES for k in keys)
    assert all(choose_style(k, STYLES, 0.0, 1) is None for k in keys)
    out, report = run(samples, tmp_path, stylizer, fraction=0.0)
    assert out == samples and report.frames == 16 and report.chosen == 0
    assert not list(tmp_path.rglob('*.png'))


def test_plain_images_and_tuples_are_keyed_by_their_pixels(samples, stylizer, tmp_path):
    images = [s.image for s in samples[:6]]
    out, report = run(images, tmp_path, stylizer, fraction=1.0)
    assert len(out) == 12 and report.computed == 6
    tuples = [(s.image, s.steering, s.throttle) for s in samples[:6]]
    out, report = run(tuples, tmp_path, stylizer, fraction=1.0)
    assert report.cached == 6 and out[1][1:] == tuples[0][1:]
    assert len({p.parent.name for p in tmp_path.rglob('*.png')}) == 1  # 'frames'


def test_bad_arguments_fail_at_the_call(samples, stylizer, tmp_path):
    with pytest.raises(StyleError, match="unknown style 'mosaic'"):
        stylize_cache(samples, ['mosaic'], 0.5, tmp_path, stylizer=stylizer)
    with pytest.raises(StyleError, match='fraction must be between 0 and 1'):
        stylize_cache(samples, STYLES, 1.5, tmp_path, stylizer=stylizer)
    with pytest.raises(StyleError, match="'arbitrary' needs a picture"):
        stylize_cache(samples, ['arbitrary'], 0.5, tmp_path, stylizer=stylizer)
    with pytest.raises(StyleError, match='at least one style'):
        stylize_cache(samples, [], 0.5, tmp_path, stylizer=stylizer)


def test_the_training_code_reads_the_augmented_stream(samples, stylizer, tmp_path):
    from donkey_ros.learning.pipeline import collect_frames, split_by_time
    from donkey_ros.learning.train import TrainConfig

    metadata = TrainConfig().model_metadata(160, 120)
    report = AugmentReport()
    frames = collect_frames(stylize_cache(samples, STYLES, 0.5, tmp_path, 7, stylizer=stylizer,
                                          scale=1.0, report=report), metadata)
    assert len(frames) == 16 + report.chosen
    assert frames.sources == ['/data/bags/run_0', '/data/bags/run_1']
    train, val = split_by_time(frames, 0.25, block_seconds=0.1)
    # A copy and its original share their time, so they land on the same side of the split.
    for side in (train, val):
        times = set(frames.times[side])
        other = set(frames.times[val if side is train else train])
        assert not times & other


def test_train_style_augment_option_adds_cached_copies(tmp_path):
    from donkey_ros.apps.train import build_parser, config_from_args, load_bags
    from donkey_ros.recording.synthetic import write_synthetic_bag

    bag = write_synthetic_bag(tmp_path / 'bag', frames=30, width=64, height=48).path
    args = build_parser().parse_args([str(bag), '--style-augment', 'style3', 'style13',
                                      '--style-fraction', '0.4', '--style-cache',
                                      str(tmp_path / 'cache')])
    config = config_from_args(args)
    assert list(config.style_augment) == ['style3', 'style13'] and config.style_fraction == 0.4
    plain, _, plain_counts = load_bags([bag], config_from_args(build_parser().parse_args(
        [str(bag)])), progress=False)
    assert 'style_copies' not in plain_counts
    frames, _, counts = load_bags([bag], config, progress=False)
    assert counts['style_copies'] > 0
    assert len(frames) == len(plain) + counts['style_copies']
    assert len(list((tmp_path / 'cache').rglob('bag/*.png'))) == counts['style_copies']
