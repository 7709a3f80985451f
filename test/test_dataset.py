"""Bag -> training samples: pairing to the frame, filters, exclusions, streaming, bad inputs."""
import os
import shutil
import tracemalloc

import numpy as np
import pytest

from donkey_ros.recording.dataset import DatasetError, iter_samples, open_dataset
from donkey_ros.recording.synthetic import frame_index, frame_pixels, write_synthetic_bag
from donkey_ros.recording.writer import BagWriter, qos_profile


def expected_pairs(bag, tolerance_ns):
    """Brute force, independent of the dataset code: frame stamp -> (steering, throttle) or None."""
    expected = {}
    for frame in bag.frames:
        earlier = [c for c in bag.commands if c[0] <= frame]
        best = max(earlier, key=lambda c: c[0]) if earlier else None
        expected[frame] = (best[1], best[2]) if best and frame - best[0] <= tolerance_ns else None
    return expected


@pytest.mark.parametrize('cmd_rate,cmd_phase', [(7.0, 0.004), (20.0, 0.0), (33.0, 0.013)])
def test_each_frame_gets_the_command_in_force(tmp_path, cmd_rate, cmd_phase):
    # 7 Hz commands: many frames have only a stale command; 20 Hz phase 0: command and frame
    # share timestamps (same time counts as "before"); 33 Hz: several commands per frame.
    bag = write_synthetic_bag(tmp_path / 'bag', frames=120, fps=20.0, cmd_rate=cmd_rate,
                              cmd_phase=cmd_phase, cmd_from=0.5)
    expected = expected_pairs(bag, int(0.1e9))
    data = open_dataset(tmp_path / 'bag', tolerance=0.1)
    samples = list(data)

    want = {f: e for f, e in expected.items() if e is not None}
    assert [s.stamp_ns for s in samples] == sorted(want)
    for sample in samples:
        steering, throttle = want[sample.stamp_ns]
        assert sample.steering == pytest.approx(steering, abs=1e-12)
        assert sample.throttle == pytest.approx(throttle, abs=1e-12)
        assert bag.frames[frame_index(sample.image)] == sample.stamp_ns   # right image
        assert sample.image.shape == (120, 160, 3) and sample.image.dtype == np.uint8
        assert sample.mode == 'user' and sample.truth is None
        assert sample.bag == str(tmp_path / 'bag')
    assert data.counts.frames == 120
    assert data.counts.used == len(want)
    assert data.counts.no_command == 120 - len(want) > 0
    # A second pass gives the same and resets the counters.
    assert len(list(data)) == len(samples) and data.counts.frames == 120


def test_images_are_owned_and_pixel_exact(tmp_path):
    write_synthetic_bag(tmp_path / 'bag', frames=10, width=64, height=48)
    samples = list(iter_samples(tmp_path / 'bag'))
    for sample in samples:
        assert sample.image.flags.owndata and sample.image.flags.c_contiguous
        np.testing.assert_array_equal(sample.image, frame_pixels(frame_index(sample.image), 64, 48))


def test_filters_mode_throttle_exclusions_and_truth(tmp_path):
    bag = write_synthetic_bag(tmp_path / 'bag', frames=200, fps=20.0, with_truth=True,
                              modes=(('user', 0.0), ('pilot', 3.0), ('user', 5.0)),
                              stop=((7.0, 8.0),))
    everything = list(open_dataset(tmp_path / 'bag', modes=None))
    assert {s.mode for s in everything} == {'user', 'pilot'}
    pilot = [s for s in everything if s.mode == 'pilot']
    assert len(pilot) == 40                          # 3.0 s .. 5.0 s at 20 Hz

    data = open_dataset(tmp_path / 'bag', modes=('user',), min_throttle=0.1,
                        exclude=[(bag.frames[170], bag.frames[179])])
    samples = list(data)
    assert all(s.mode == 'user' and s.throttle >= 0.1 for s in samples)
    assert data.counts.mode == 40
    assert data.counts.throttle == 20                # 7.0 .. 8.0 s throttle 0
    assert data.counts.excluded == 10
    assert data.counts.used == len(samples) == 200 - 40 - 20 - 10 - data.counts.no_command
    truth = samples[-1].truth
    assert truth['on_track'] is True and truth['track'] == 'synthetic'
    assert truth['x'] == pytest.approx(truth['progress']) and truth['v'] == 2.0


def test_exclusions_file_is_honoured(tmp_path):
    bag = write_synthetic_bag(tmp_path / 'bag', frames=40)
    (tmp_path / 'bag' / 'exclusions.yaml').write_text(
        f'exclude:\n- {{start_ns: {bag.frames[10]}, end_ns: {bag.frames[19]}, reason: manual}}\n')
    data = open_dataset(tmp_path / 'bag')
    stamps = {s.stamp_ns for s in data}
    assert data.counts.excluded == 10 and not stamps & set(bag.frames[10:20])
    assert len(list(open_dataset(tmp_path / 'bag', use_exclusions=False))) == 39
    (tmp_path / 'bag' / 'exclusions.yaml').write_text('exclude: [{start: 1}]\n')
    with pytest.raises(DatasetError, match='exclusion list'):
        list(open_dataset(tmp_path / 'bag'))


def test_compressed_images_and_sqlite3_and_split_files(tmp_path):
    jpeg = write_synthetic_bag(tmp_path / 'jpeg', frames=30,
                               image_topic='camera/image_raw/compressed')
    samples = list(iter_samples(tmp_path / 'jpeg'))
    assert len(samples) == 29
    for s in samples:   # JPEG is lossy: the red level (= frame index) survives within a few
        assert s.image.shape == (120, 160, 3)
        assert abs(s.image[:, :, 0].mean() - jpeg.frames.index(s.stamp_ns)) < 3

    write_synthetic_bag(tmp_path / 'db', frames=30, storage='sqlite3')
    assert len(list(iter_samples(tmp_path / 'db'))) == 29

    write_synthetic_bag(tmp_path / 'split', frames=60, max_file_bytes=400_000)
    assert len(list((tmp_path / 'split').glob('*.mcap'))) > 2
    assert [frame_index(s.image) for s in iter_samples(tmp_path / 'split')] == list(range(1, 60))


def test_folder_of_bags_and_namespaces(tmp_path):
    write_synthetic_bag(tmp_path / 'bags' / 'a', frames=20, namespace='car1')
    write_synthetic_bag(tmp_path / 'bags' / 'b', frames=30, namespace='car2')
    data = open_dataset(tmp_path / 'bags')
    assert len(list(data)) == 19 + 29
    assert set(data.bag_counts) == {str(tmp_path / 'bags' / 'a'), str(tmp_path / 'bags' / 'b')}
    assert len(list(open_dataset(tmp_path / 'bags' / 'b', namespace='car2'))) == 29
    with pytest.raises(DatasetError, match='no camera/image_raw'):
        list(open_dataset(tmp_path / 'bags' / 'a', namespace='car2'))


def test_two_cars_in_one_bag_need_a_namespace(tmp_path):
    from rosbags.rosbag2 import Reader
    write_synthetic_bag(tmp_path / 'one', frames=5, namespace='car1')
    with BagWriter(tmp_path / 'two') as writer, Reader(tmp_path / 'one') as reader:
        for connection, stamp, raw in reader.messages():
            for car in ('car1', 'car2'):
                name = connection.topic.replace('car1', car)
                writer.add_topic(name, connection.msgtype, [qos_profile()])
                writer.write(name, stamp, raw)
    with pytest.raises(DatasetError, match='several .*namespace'):
        list(open_dataset(tmp_path / 'two'))
    assert len(list(open_dataset(tmp_path / 'two', namespace='car2'))) == 4


def test_memory_stays_flat_over_a_large_bag(tmp_path):
    # ~200 MB of 640x480 frames streamed with a 32 MB budget (tracemalloc sees NumPy buffers).
    write_synthetic_bag(tmp_path / 'big', frames=220, fps=30.0, width=640, height=480)
    size = sum(f.stat().st_size for f in (tmp_path / 'big').iterdir())
    assert size > 190e6
    tracemalloc.start()
    try:
        count = 0
        for sample in iter_samples(tmp_path / 'big'):
            count += int(sample.image.shape == (480, 640, 3))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 219
    assert peak < 32e6, f'peak {peak / 1e6:.0f} MB while streaming a {size / 1e6:.0f} MB bag'


# -- bad inputs: one clear error, never a traceback from deep inside ------------------------

def test_missing_path_and_non_bags(tmp_path):
    with pytest.raises(DatasetError, match="bag '.*nope' does not exist"):
        open_dataset(tmp_path / 'nope')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DatasetError, match='neither a bag nor a folder of bags'):
        open_dataset(tmp_path / 'empty')
    (tmp_path / 'notes.txt').write_text('hi')
    with pytest.raises(DatasetError, match='not a bag'):
        open_dataset(tmp_path / 'notes.txt')
    with pytest.raises(DatasetError, match='tolerance'):
        open_dataset(tmp_path / 'empty', tolerance=float('nan'))


def test_bag_without_image_topic(tmp_path):
    with BagWriter(tmp_path / 'bag') as writer:
        writer.add_topic('/drive_mode', 'std_msgs/msg/String')
        writer.write('/drive_mode', 1, b'\x00\x01\x00\x00\x05\x00\x00\x00user\x00')
    with pytest.raises(DatasetError,
                       match=r'has no camera/image_raw topic \(topics: /drive_mode\)'):
        list(open_dataset(tmp_path / 'bag'))


def test_truncated_bag_points_to_repair(tmp_path):
    write_synthetic_bag(tmp_path / 'bag', frames=50)
    file = next((tmp_path / 'bag').glob('*.mcap'))
    os.truncate(file, file.stat().st_size // 2)
    with pytest.raises(DatasetError, match='donkey-ros bag repair'):
        list(open_dataset(tmp_path / 'bag'))
    (tmp_path / 'bag' / 'metadata.yaml').unlink()
    with pytest.raises(DatasetError, match='no metadata.yaml.*bag repair'):
        open_dataset(tmp_path / 'bag')


def test_bag_from_another_robot_with_unknown_types(tmp_path):
    # Topics of types nobody here has installed, defined only inside the bag: they are ignored
    # when unused, decoded from the bag's own definitions when used (sim/status of another sim).
    write_synthetic_bag(tmp_path / 'src', frames=20, with_truth=True)
    from rosbags.rosbag2 import Reader
    other_def = 'bool on_track\nfloat64 speed\nstring track\n'
    with Reader(tmp_path / 'src') as reader, BagWriter(tmp_path / 'bag') as writer:
        writer.add_topic('/lidar/scan_xyz', 'other_robot_msgs/msg/Weird', [qos_profile()],
                         msgdef='uint8[] blob\nfloat32 quality\n', type_hash='RIHS01_' + '0' * 64)
        writer.add_topic('/sim/status', 'other_sim_msgs/msg/Status', [qos_profile()],
                         msgdef=other_def, type_hash='RIHS01_' + '1' * 64)
        for connection, stamp, raw in reader.messages():
            if connection.topic == '/sim/status':
                continue
            writer.add_topic(connection.topic, connection.msgtype, [qos_profile()])
            writer.write(connection.topic, stamp, raw)
            writer.write('/lidar/scan_xyz', stamp, b'\x00\x01\x00\x00garbage')
    samples = list(open_dataset(tmp_path / 'bag'))
    assert len(samples) == 19 and all(s.truth and 'x' in s.truth for s in samples)


def test_corrupt_frames_and_commands_are_counted_not_fatal(tmp_path):
    from donkey_ros.recording.types import typestore
    store = typestore()
    types = store.types
    with BagWriter(tmp_path / 'bag') as writer:
        writer.add_topic('/camera/image_raw', 'sensor_msgs/msg/Image')
        writer.add_topic('/user/cmd', 'geometry_msgs/msg/TwistStamped')
        header = types['std_msgs/msg/Header'](
            stamp=types['builtin_interfaces/msg/Time'](sec=0, nanosec=0), frame_id='')
        vec = types['geometry_msgs/msg/Vector3']
        for i, steering in enumerate([0.5, float('nan'), 0.25]):
            cmd = types['geometry_msgs/msg/TwistStamped'](header=header, twist=types[
                'geometry_msgs/msg/Twist'](linear=vec(x=0.3, y=0.0, z=0.0),
                                           angular=vec(x=0.0, y=0.0, z=steering)))
            writer.write('/user/cmd', 1000 + i * 100,
                         bytes(store.serialize_cdr(cmd, 'geometry_msgs/msg/TwistStamped')))
            encoding = 'rgb8' if i != 2 else 'yuv422'
            image = types['sensor_msgs/msg/Image'](
                header=header, height=2, width=2, encoding=encoding, is_bigendian=0, step=6,
                data=np.zeros(12 if i else 5, np.uint8))
            writer.write('/camera/image_raw', 1001 + i * 100,
                         bytes(store.serialize_cdr(image, 'sensor_msgs/msg/Image')))
    data = open_dataset(tmp_path / 'bag')
    samples = list(data)
    # frame 0: data too short; frame 1: its command is NaN, so the previous one (0.5) is still
    # in force; frame 2: unsupported encoding.
    assert [s.steering for s in samples] == [0.5]
    assert (data.counts.frames, data.counts.used, data.counts.bad_image,
            data.counts.bad_command) == (3, 1, 2, 1)


@pytest.fixture(autouse=True)
def _cleanup(tmp_path):
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_the_dataset_needs_no_rclpy(tmp_path):
    import subprocess
    import sys
    write_synthetic_bag(tmp_path / 'bag', frames=5)
    code = ('import sys\nfrom donkey_ros.recording.dataset import open_dataset\n'
            f'n = len(list(open_dataset({str(tmp_path / "bag")!r})))\n'
            "assert n == 4, n\nassert 'rclpy' not in sys.modules, 'rclpy imported'\n")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
