"""Bag writer (splits, clock jumps, metadata), repair, clean, info and replay."""
import os
import shutil
import time

import numpy as np
import pytest
import yaml

from test_bag_independent import check_metadata, read_metadata
from donkey_ros.recording.clean import clean_bag, parse_range
from donkey_ros.recording.dataset import open_dataset
from donkey_ros.recording.errors import BagError
from donkey_ros.recording.repair import RepairError, repair_bag
from donkey_ros.recording.synthetic import frame_index, write_synthetic_bag
from donkey_ros.recording.types import typestore
from donkey_ros.recording.writer import BagWriter

DAY_NS = 86_400 * 10**9


def image_bytes(i: int, stamp: int, size=(60, 80)) -> bytes:
    store = typestore()
    types = store.types
    header = types['std_msgs/msg/Header'](
        stamp=types['builtin_interfaces/msg/Time'](sec=stamp // 10**9, nanosec=stamp % 10**9),
        frame_id=str(i))
    image = types['sensor_msgs/msg/Image'](
        header=header, height=size[0], width=size[1], encoding='rgb8', is_bigendian=0,
        step=size[1] * 3, data=np.full(size[0] * size[1] * 3, i % 256, np.uint8))
    return bytes(store.serialize_cdr(image, 'sensor_msgs/msg/Image'))


def test_writer_splits_by_size_and_survives_clock_jumps(tmp_path):
    # The wall clock jumps back 90 days in the middle (Raspberry Pi NTP sync): files are still
    # split by size, numbered in order, and metadata.yaml agrees with what an independent reader
    # finds.
    written = []
    with BagWriter(tmp_path / 'bag', max_file_bytes=100_000) as writer:
        writer.add_topic('/camera/image_raw', 'sensor_msgs/msg/Image')
        for i in range(60):
            stamp = 1_800_000_000 * 10**9 + i * 50_000_000 - (90 * DAY_NS if i >= 30 else 0)
            data = image_bytes(i, stamp)
            writer.write('/camera/image_raw', stamp, data)
            written.append(data)
            if i % 10 == 0:
                writer.flush()
    meta = read_metadata(tmp_path / 'bag')
    names = meta['relative_file_paths']
    assert len(names) >= 4
    assert names == [f'bag_{n}.mcap' for n in range(len(names))]
    messages = check_metadata(tmp_path / 'bag')
    assert [m[3] for m in messages] == written            # every byte, in order
    assert meta['duration']['nanoseconds'] > 89 * DAY_NS  # honest about the jump


def test_writer_splits_by_monotonic_duration(tmp_path):
    with BagWriter(tmp_path / 'bag', max_file_seconds=0.15) as writer:
        writer.add_topic('/user/cmd', 'geometry_msgs/msg/TwistStamped')
        for i in range(8):
            writer.write('/user/cmd', 5 * 10**18, b'\x00\x01\x00\x00' + bytes(60))  # same stamp
            time.sleep(0.06)
    assert len(read_metadata(tmp_path / 'bag')['relative_file_paths']) >= 3
    assert len(check_metadata(tmp_path / 'bag')) == 8


def test_sqlite3_storage_and_zstd_chunks(tmp_path):
    for storage, compression in (('sqlite3', 'none'), ('mcap', 'zstd')):
        bag = tmp_path / storage
        write_synthetic_bag(bag, frames=30, storage=storage, compression=compression)
        messages = check_metadata(bag)
        assert sum(1 for m in messages if m[0] == '/camera/image_raw') == 30
    assert sum(f.stat().st_size for f in (tmp_path / 'mcap').glob('*.mcap')) < \
        0.5 * sum(f.stat().st_size for f in (tmp_path / 'sqlite3').glob('*.db3'))
    # A truncated zstd file is recovered into a zstd file.
    file = next((tmp_path / 'mcap').glob('*.mcap'))
    (tmp_path / 'mcap' / 'metadata.yaml').unlink()
    os.truncate(file, file.stat().st_size - 100)
    assert repair_bag(tmp_path / 'mcap').files[0].status == 'repaired'
    assert len(check_metadata(tmp_path / 'mcap')) >= 30
    from mcap.reader import make_reader
    with open(file, 'rb') as stream:
        assert {c.compression for c in make_reader(stream).get_summary().chunk_indexes} == {'zstd'}
    with pytest.raises(BagError, match='exists already'):
        BagWriter(tmp_path / 'mcap').open()
    with pytest.raises(BagError, match='storage'):
        BagWriter(tmp_path / 'x', storage='rosbag1')


def test_repair_recovers_everything_flushed_before_a_crash(tmp_path):
    # Write, flush (what the recorder does every 0.5 s), write more, then cut the file at
    # several points past the flush, as a crash or power cut would.
    bag = tmp_path / 'bag'
    writer = BagWriter(bag).open()
    writer.add_topic('/camera/image_raw', 'sensor_msgs/msg/Image')
    written = []
    for i in range(120):
        data = image_bytes(i, 10**18 + i)
        writer.write('/camera/image_raw', 10**18 + i, data)
        written.append(data)
        if i == 79:
            writer.flush()
            durable = (bag / 'bag_0.mcap').stat().st_size
    writer.flush()
    writer.abort()                                     # no summary, no metadata.yaml
    full = (bag / 'bag_0.mcap').read_bytes()
    assert not (bag / 'metadata.yaml').exists()
    for cut in (durable, durable + 1, durable + 5000, (durable + len(full)) // 2, len(full)):
        case = tmp_path / f'cut{cut}'
        case.mkdir()
        (case / 'bag_0.mcap').write_bytes(full[:cut])
        report = repair_bag(case)
        assert report.files[0].status == 'repaired' and report.metadata_rewritten
        recovered = [m[3] for m in check_metadata(case)]
        assert 80 <= len(recovered) <= 120
        assert recovered == written[:len(recovered)]   # a clean prefix, nothing garbled
        assert (case / 'bag_0.mcap.damaged').stat().st_size == cut   # original kept
        assert len([s for s in open_dataset(case, modes=None, tolerance=1.0)]) == 0  # no cmds
        again = repair_bag(case)                        # idempotent
        assert again.files[0].status == 'ok' and not again.metadata_rewritten
    assert len(check_metadata(tmp_path / f'cut{len(full)}')) == 120


def test_repair_of_a_split_bag_with_stale_metadata(tmp_path):
    write_synthetic_bag(tmp_path / 'bag', frames=80, max_file_bytes=600_000, with_truth=True)
    files = sorted((tmp_path / 'bag').glob('*.mcap'))
    assert len(files) >= 3
    meta = read_metadata(tmp_path / 'bag')
    # Crash while writing the last file: metadata lists only the earlier ones, last truncated.
    stale = dict(meta, relative_file_paths=meta['relative_file_paths'][:-1],
                 files=meta['files'][:-1])
    (tmp_path / 'bag' / 'metadata.yaml').write_text(
        yaml.safe_dump({'rosbag2_bagfile_information': stale}))
    os.truncate(files[-1], files[-1].stat().st_size - 10)
    report = repair_bag(tmp_path / 'bag')
    assert [f.status for f in report.files] == ['ok'] * (len(files) - 1) + ['repaired']
    check_metadata(tmp_path / 'bag')
    repaired = read_metadata(tmp_path / 'bag')
    assert repaired['custom_data']['donkey_ros.source'] == 'synthetic'     # kept
    hashes = {t['topic_metadata']['name']: t['topic_metadata']['type_description_hash']
              for t in repaired['topics_with_message_count']}
    assert hashes == {t['topic_metadata']['name']: t['topic_metadata']['type_description_hash']
                      for t in meta['topics_with_message_count']}
    samples = list(open_dataset(tmp_path / 'bag'))
    assert [frame_index(s.image) for s in samples] == list(range(1, len(samples) + 1))


def test_repair_bad_inputs(tmp_path):
    with pytest.raises(RepairError, match='does not exist'):
        repair_bag(tmp_path / 'nope')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(RepairError, match='no .mcap or .db3'):
        repair_bag(tmp_path / 'empty')
    (tmp_path / 'junk').mkdir()
    (tmp_path / 'junk' / 'junk_0.mcap').write_bytes(b'this is not an mcap file at all')
    report = repair_bag(tmp_path / 'junk')
    assert report.files[0].status == 'unreadable' and 'not an MCAP file' in report.files[0].detail
    assert (tmp_path / 'junk' / 'junk_0.mcap.damaged').exists()


def test_clean_marks_off_track_stops_and_manual_ranges(tmp_path):
    bag = write_synthetic_bag(tmp_path / 'bag', frames=300, fps=20.0, with_truth=True,
                              off_track=((4.0, 5.0),), stop=((9.0, 10.5),))
    result = clean_bag(tmp_path / 'bag', manual=[parse_range('13:14')])
    ranges = [((e.start_ns - bag.frames[0]) / 1e9, (e.end_ns - bag.frames[0]) / 1e9, e.reason)
              for e in result.exclusions]
    assert [r[2] for r in ranges] == ['off_track', 'stopped+throttle_cut', 'manual']
    assert ranges[0][:2] == pytest.approx((3.0, 5.5), abs=0.11)     # margins 1.0 before, 0.5 after
    assert ranges[1][:2] == pytest.approx((8.0, 11.0), abs=0.11)
    assert ranges[2][:2] == pytest.approx((13.0, 14.0), abs=0.01)
    saved = yaml.safe_load((tmp_path / 'bag' / 'exclusions.yaml').read_text())
    assert [r['reason'] for r in saved['exclude']] == [r[2] for r in ranges]
    from PIL import Image
    sheet = Image.open(tmp_path / 'bag' / 'contact_sheet.png')
    assert sheet.size[0] > 1000 and sheet.size[1] > 500
    # Dropped tiles are drawn red, kept ones green: both colours appear.
    pixels = np.asarray(sheet.convert('RGB')).reshape(-1, 3)
    assert ((pixels == (230, 40, 40)).all(axis=1)).sum() > 1000
    assert ((pixels == (40, 200, 60)).all(axis=1)).sum() > 1000
    data = open_dataset(tmp_path / 'bag')
    kept = list(data)
    assert data.counts.excluded == result.dropped_frames > 60
    assert not any(e.start_ns <= s.stamp_ns <= e.end_ns for e in result.exclusions for s in kept)
    assert len(kept) + result.dropped_frames == 299   # + the first frame, before any command
    # Re-running keeps manual ranges unless reset; the bag itself is never changed.
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / 'bag').glob('*.mcap')}
    assert 'manual' in [e.reason for e in clean_bag(tmp_path / 'bag').exclusions]
    assert 'manual' not in [e.reason for e in clean_bag(tmp_path / 'bag', reset=True).exclusions]
    assert before == {p.name: p.stat().st_mtime_ns for p in (tmp_path / 'bag').glob('*.mcap')}
    with pytest.raises(BagError, match='START:END'):
        parse_range('12-14')


def test_cli_info_repair_clean(tmp_path, capsys):
    from donkey_ros import cli
    write_synthetic_bag(tmp_path / 'bag', frames=40, with_truth=True)
    assert cli.main(['bag', 'info', str(tmp_path / 'bag')]) == 0
    out = capsys.readouterr().out
    assert '/camera/image_raw' in out and '20.0 Hz' in out
    assert 'training:  39 of 40 frames usable' in out
    assert cli.main(['clean', str(tmp_path / 'bag'), '--drop', '0:1']) == 0
    assert 'manual' in capsys.readouterr().out
    assert cli.main(['bag', 'info', str(tmp_path / 'bag')]) == 0
    assert 'training:  19 of 40 frames usable' in capsys.readouterr().out
    assert cli.main(['bag', 'repair', str(tmp_path / 'bag')]) == 0
    assert 'metadata.yaml was correct' in capsys.readouterr().out
    assert cli.main(['bag', 'info', str(tmp_path / 'missing')]) == 1
    assert "bag '" in capsys.readouterr().err


def test_replay_publishes_with_original_timing(graph, tmp_path):
    from sensor_msgs.msg import Image
    from std_msgs.msg import String
    from donkey_ros.common import qos
    from donkey_ros.recording.replay import BagPlayer

    write_synthetic_bag(tmp_path / 'bag', frames=40, fps=20.0, namespace='car1')
    received = []
    node = graph.node('listener')
    node.create_subscription(Image, f'{graph.namespace}/camera/image_raw',
                             lambda m: received.append((time.monotonic(), m)), qos.IMAGE_RELIABLE)
    player = BagPlayer(graph.node('replay'), tmp_path / 'bag', rate=2.0,
                       topics=['camera/image_raw', 'drive_mode'], namespace=graph.namespace)
    assert set(player.topic_map.values()) == {f'{graph.namespace}/camera/image_raw',
                                              f'{graph.namespace}/drive_mode'}
    assert graph.wait_for(lambda: player.publishers['/car1/camera/image_raw']
                          .get_subscription_count() == 1)
    stats = player.play()
    assert stats.published == 41
    assert graph.wait_for(lambda: len(received) == 40)
    assert [int(m.header.frame_id == 'camera') for _, m in received] == [1] * 40
    assert [m.data[0] for _, m in received] == [i for i in range(40)]
    span = received[-1][0] - received[0][0]
    assert 0.8 * 39 / 20 / 2 < span < 3.0        # 1.95 s of bag at 2x: ~0.98 s
    modes = graph.collect(String, f'{graph.namespace}/drive_mode', qos.LATCHED)
    assert graph.wait_for(lambda: [m.data for m in modes] == ['user'])   # still latched


def test_replay_bad_inputs(graph, tmp_path):
    from donkey_ros.recording.replay import BagPlayer
    write_synthetic_bag(tmp_path / 'bag', frames=5)
    node = graph.node('replay')
    with pytest.raises(BagError, match='none of the topics'):
        BagPlayer(node, tmp_path / 'bag', topics=['lidar/points'])
    with pytest.raises(BagError, match='rate'):
        BagPlayer(node, tmp_path / 'bag', rate=0.0)
    with pytest.raises(BagError, match='does not exist'):
        BagPlayer(node, tmp_path / 'nope')


@pytest.fixture(autouse=True)
def _cleanup(tmp_path):
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_repair_of_files_cut_at_the_very_start(tmp_path):
    write_synthetic_bag(tmp_path / 'bag', frames=30, max_file_bytes=300_000)
    files = sorted((tmp_path / 'bag').glob('*.mcap'), key=lambda p: int(p.stem.split('_')[-1]))
    (tmp_path / 'bag' / 'metadata.yaml').unlink()
    os.truncate(files[-1], 0)                         # created, nothing written yet
    os.truncate(files[-2], 30)                        # magic + part of the header
    report = repair_bag(tmp_path / 'bag')
    statuses = {f.path: f.status for f in report.files}
    assert len(files) >= 4 and list(statuses.values()).count('ok') == len(files) - 2
    assert statuses[files[-1].name] == 'unreadable'
    assert statuses[files[-2].name] in ('empty', 'unreadable')
    messages = check_metadata(tmp_path / 'bag')
    assert len(messages) == report.message_count > 0
    assert list(open_dataset(tmp_path / 'bag'))


def test_replay_start_offset_and_loop(graph, tmp_path):
    import threading
    from sensor_msgs.msg import Image
    from donkey_ros.common import qos
    from donkey_ros.recording.replay import BagPlayer

    write_synthetic_bag(tmp_path / 'bag', frames=20, fps=20.0)   # 1 s of frames
    received = graph.collect(Image, f'{graph.namespace}/camera/image_raw', qos.IMAGE_RELIABLE)
    player = BagPlayer(graph.node('replay'), tmp_path / 'bag', rate=4.0, start=0.5,
                       topics=['camera/image_raw'], namespace=graph.namespace)
    assert graph.wait_for(lambda: player.publishers['/camera/image_raw']
                          .get_subscription_count() == 1)
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    stats = player.play(stop, loop=True)                    # ~0.12 s per loop at 4x
    assert stats.loops >= 3
    assert graph.wait_for(lambda: len(received) >= 30)
    frames = [m.data[0] for m in received]
    assert min(frames) == 10                                # started 0.5 s in
    assert frames[:10] == list(range(10, 20)) and frames[10:20] == list(range(10, 20))
