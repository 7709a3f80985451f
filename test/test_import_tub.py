"""`donkey-ros import-tub`: DonkeyCar Tub v2 folders -> a bag the dataset reader and training take.

The tubs are written here exactly as DonkeyCar's ``tub_v2.py``/``datastore_v2.py`` write them
(manifest.json lines, catalog_N.catalog JSON lines with sorted keys, .catalog_manifest, PIL
JPEGs named ``{index}_cam_image_array_.jpg``, deletions only in ``deleted_indexes``); the bag is
read back with rosbags directly (independent of the importer) and through the dataset reader.
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from donkey_ros.donkeycar.tub import Tub, TubError, image_file_name
from donkey_ros.donkeycar.tub_import import import_tubs
from donkey_ros.recording.errors import BagError

START_MS = 1_714_700_000_000   # 2024-05-03
ROOT = Path(__file__).resolve().parents[1]


def tub_pixels(index: int) -> np.ndarray:
    """A 160x120 frame whose two flat halves encode ``index`` (robust to JPEG)."""
    image = np.empty((120, 160, 3), np.uint8)
    image[:60] = (index % 64) * 4
    image[60:] = (index // 64) * 4 + 8
    return image


def pixels_index(image: np.ndarray) -> int:
    return int(round(image[20, 80, 0] / 4)) + 64 * int(round((image[100, 80, 0] - 8) / 4))


def donkeycar_angle(index: int) -> float:
    return round(math.sin(index * 0.05) * 0.9, 6)


def donkeycar_throttle(index: int) -> float:
    return round(0.3 + 0.2 * math.cos(index * 0.031), 6)


def write_donkeycar_tub(path: Path, count: int, deleted=(), modes=None, max_len: int = 1000,
                        stamps=None, newline: str = '\n', inputs=None) -> Path:
    """Writes a Tub v2 the way DonkeyCar's Tub/Manifest/Catalog classes write one.

    Args:
        modes: index -> user/mode ('user' for all if None).
        stamps: index -> _timestamp_ms (20 Hz from START_MS if None).
    """
    path.mkdir(parents=True)
    (path / 'images').mkdir()
    inputs = inputs or ['cam/image_array', 'user/angle', 'user/throttle', 'user/mode']
    types = ['image_array', 'float', 'float', 'str'][:len(inputs)] + ['float'] * max(
        0, len(inputs) - 4)
    catalogs = []
    for start in range(0, count, max_len):
        name = f'catalog_{len(catalogs)}.catalog'
        lines = []
        for index in range(start, min(count, start + max_len)):
            Image.fromarray(tub_pixels(index)).save(path / 'images' / image_file_name(index))
            record = {'cam/image_array': image_file_name(index),
                      'user/angle': donkeycar_angle(index),
                      'user/throttle': donkeycar_throttle(index),
                      'user/mode': modes(index) if modes else 'user',
                      '_timestamp_ms': stamps(index) if stamps else START_MS + 50 * index,
                      '_index': index, '_session_id': '24-05-03_0'}
            if 'pilot/angle' in inputs:
                record['pilot/angle'] = -0.5
                record['pilot/throttle'] = 0.25
            lines.append(json.dumps(record, allow_nan=False, sort_keys=True) + newline)
        with open(path / name, 'w', newline='') as stream:
            stream.write(''.join(lines))
        manifest = {'path': f'catalog_{len(catalogs)}.catalog_manifest', 'created_at': 1714700000.0,
                    'start_index': start, 'line_lengths': [len(line) for line in lines]}
        with open(path / f'catalog_{len(catalogs)}.catalog_manifest', 'w', newline='') as stream:
            stream.write(json.dumps(manifest, allow_nan=False, sort_keys=True) + newline)
        catalogs.append(name)
    manifest_lines = [json.dumps(inputs), json.dumps(types), json.dumps({}),
                      json.dumps({'created_at': 1714700000.0,
                                  'sessions': {'all_full_ids': ['24-05-03_0'], 'last_id': 0,
                                               'last_full_id': '24-05-03_0'}}),
                      json.dumps({'paths': catalogs, 'current_index': count, 'max_len': max_len,
                                  'deleted_indexes': sorted(deleted)})]
    with open(path / 'manifest.json', 'w', newline='') as stream:
        stream.write(''.join(line + newline for line in manifest_lines))
    return path


def read_bag(bag: Path) -> dict:
    """Every message of the bag, deserialized, by topic: [(bag time, message)] (rosbags only)."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    topics = {}
    with Reader(bag) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        for connection, stamp, raw in reader.messages():
            topics.setdefault(connection.topic, []).append(
                (stamp, store.deserialize_cdr(raw, connection.msgtype)))
    topics['_types'] = types
    return topics


def mode_of(index: int) -> str:
    return 'user' if index < 900 else 'local_angle' if index < 1000 else 'local'


DELETED = set(range(300, 350)) | set(range(7, 1200, 97)) | {1199}


@pytest.fixture(scope='module')
def big_tub(tmp_path_factory):
    """1200 records in 3 catalogs (max_len 500), 64 soft-deleted, three drive modes."""
    return write_donkeycar_tub(tmp_path_factory.mktemp('car') / 'tub_1_24-05-03', 1200,
                               deleted=DELETED, modes=mode_of, max_len=500)


@pytest.fixture(scope='module')
def big_bag(big_tub, tmp_path_factory):
    bag = tmp_path_factory.mktemp('bags') / 'imported'
    summary = import_tubs([big_tub], bag)
    return bag, summary


def test_every_kept_record_arrives_in_order_with_converted_values(big_tub, big_bag):
    bag, summary = big_bag
    kept = [i for i in range(1200) if i not in DELETED]
    assert summary.records == summary.frames == summary.commands == len(kept) == 1200 - 64
    assert summary.deleted == len(DELETED) == 64
    messages = read_bag(bag)
    assert messages['_types'] == {'/camera/image_raw/compressed': 'sensor_msgs/msg/CompressedImage',
                                  '/user/cmd': 'geometry_msgs/msg/TwistStamped',
                                  '/drive_mode': 'std_msgs/msg/String'}
    images, commands = messages['/camera/image_raw/compressed'], messages['/user/cmd']
    assert len(images) == len(commands) == len(kept)
    for index, (stamp, image), (cmd_stamp, command) in zip(kept, images, commands):
        want_ns = (START_MS + 50 * index) * 1_000_000
        assert stamp == cmd_stamp == want_ns                     # timestamps preserved
        assert image.header.stamp.sec * 10**9 + image.header.stamp.nanosec == want_ns
        jpeg = (big_tub / 'images' / image_file_name(index)).read_bytes()
        assert bytes(image.data) == jpeg                         # the tub's JPEG, byte for byte
        assert command.twist.angular.z == -donkeycar_angle(index)  # + = left here, - = left there
        assert command.twist.linear.x == donkeycar_throttle(index)
    # drive_mode: one message per change, at the first kept record of each mode.
    modes = [(stamp, msg.data) for stamp, msg in messages['/drive_mode']]
    assert modes == [((START_MS + 50 * 0) * 10**6, 'user'),
                     ((START_MS + 50 * 900) * 10**6, 'pilot_steer'),
                     ((START_MS + 50 * 1000) * 10**6, 'pilot')]
    assert summary.modes == {'user': 900 - len([i for i in DELETED if i < 900]),
                             'pilot_steer': 100 - len([i for i in DELETED if 900 <= i < 1000]),
                             'pilot': 200 - len([i for i in DELETED if i >= 1000])}
    assert (bag / 'preview.png').stat().st_size > 10_000


def test_dataset_yields_exactly_the_kept_records(big_bag):
    from donkey_ros.recording.dataset import open_dataset

    bag, summary = big_bag
    kept = [i for i in range(1200) if i not in DELETED]
    samples = list(open_dataset(bag, modes=None))
    assert [pixels_index(s.image) for s in samples] == kept
    for index, sample in zip(kept, samples):
        assert sample.steering == pytest.approx(-donkeycar_angle(index), abs=1e-12)
        assert sample.throttle == pytest.approx(donkeycar_throttle(index), abs=1e-12)
        assert sample.stamp_ns == (START_MS + 50 * index) * 10**6
        assert sample.mode == {'user': 'user', 'local_angle': 'pilot_steer',
                               'local': 'pilot'}[mode_of(index)]
        assert sample.image.shape == (120, 160, 3)
    # Training's default filter keeps what the human drove, as DonkeyCar's does.
    user = [i for i in kept if mode_of(i) == 'user']
    assert len(list(open_dataset(bag))) == len(user)
    assert summary.usable == {'frames': len(kept), 'paired': len(kept), 'user': len(user)}


def test_training_script_accepts_the_bag(big_bag):
    from donkey_ros.learning.train import TrainConfig
    from donkey_ros.learning.training_data import load_bags

    bag, _ = big_bag
    frames, metadata, counts = load_bags([bag], TrainConfig(), {'modes': ('user',)},
                                         progress=False)
    user = [i for i in range(900) if i not in DELETED]
    assert len(frames) == counts['used'] == len(user)
    assert (metadata.image_width, metadata.image_height) == (160, 120)
    np.testing.assert_allclose(frames.steering, [-donkeycar_angle(i) for i in user], atol=1e-6)
    np.testing.assert_allclose(frames.throttle, [donkeycar_throttle(i) for i in user], atol=1e-6)


def test_raw_images_pilot_commands_and_namespace(tmp_path):
    tub = write_donkeycar_tub(tmp_path / 'tub', 30, deleted={3},
                              inputs=['cam/image_array', 'user/angle', 'user/throttle',
                                      'user/mode', 'pilot/angle', 'pilot/throttle'])
    summary = import_tubs([tub], tmp_path / 'bag', images='raw', namespace='car1',
                          preview=False)
    messages = read_bag(tmp_path / 'bag')
    assert set(messages['_types']) == {'/car1/camera/image_raw', '/car1/user/cmd',
                                       '/car1/pilot/cmd', '/car1/drive_mode'}
    images = messages['/car1/camera/image_raw']
    assert len(images) == summary.frames == 29 and summary.pilot_commands == 29
    kept = [i for i in range(30) if i != 3]
    for index, (_, msg) in zip(kept, images):
        assert (msg.encoding, msg.width, msg.height, msg.step) == ('rgb8', 160, 120, 480)
        pixels = np.asarray(msg.data).reshape(120, 160, 3)
        decoded = np.asarray(Image.open(tub / 'images' / image_file_name(index)).convert('RGB'))
        assert np.abs(pixels.astype(int) - decoded).max() <= 2     # same JPEG, decoded by OpenCV
        assert pixels_index(pixels) == index
    assert all(m.twist.angular.z == 0.5 and m.twist.linear.x == 0.25
               for _, m in messages['/car1/pilot/cmd'])
    assert not (tmp_path / 'bag' / 'preview.png').exists()


def test_several_tubs_clock_jumps_and_old_line_endings(tmp_path):
    # Tub 1: the Pi's clock jumps back 1 hour at record 20 (NTP); records 30/31 share a
    # millisecond. Tub 2 (old '\r\n' catalogs) starts before tub 1 ends.
    def stamps(index):
        stamp = START_MS + 50 * index - (3_600_000 if index >= 20 else 0)
        return stamp - 50 if index == 31 else stamp
    first = write_donkeycar_tub(tmp_path / 'tub_1', 40, stamps=stamps)
    second = write_donkeycar_tub(tmp_path / 'tub_2', 10, newline='\r\n',
                                 stamps=lambda i: START_MS + 50 * i)
    summary = import_tubs([first, second], tmp_path / 'bag', preview=False)
    assert summary.frames == 50 and summary.reordered == 3
    stamps_ns = [stamp for stamp, _ in read_bag(tmp_path / 'bag')['/camera/image_raw/compressed']]
    assert stamps_ns == sorted(stamps_ns) and len(set(stamps_ns)) == 50   # strictly increasing
    # Records keep their order and their spacing where the clock did not jump.
    from donkey_ros.recording.dataset import open_dataset
    order = [pixels_index(s.image) for s in open_dataset(tmp_path / 'bag', modes=None)]
    assert order == list(range(40)) + list(range(10))
    assert stamps_ns[1] - stamps_ns[0] == 50_000_000
    assert stamps_ns[25] - stamps_ns[24] == 50_000_000
    assert stamps_ns[20] - stamps_ns[19] == 1_000_000            # moved just after record 19


def test_damaged_tub_keeps_everything_readable(tmp_path):
    tub = write_donkeycar_tub(tmp_path / 'tub', 20)
    (tub / 'images' / image_file_name(5)).unlink()                 # image lost
    (tub / 'images' / image_file_name(6)).write_bytes(b'not a jpeg')
    with open(tub / 'catalog_0.catalog', 'a') as stream:           # crash mid-write
        stream.write('{"_index": 20, "user/ang')
    summary = import_tubs([tub], tmp_path / 'bag', preview=False)
    assert summary.frames == 18 and summary.commands == 20 and summary.bad_lines == 1
    assert {index for _, index, _ in summary.bad_images} == {5, 6}
    assert 'images missing or corrupt' in summary.text()
    messages = read_bag(tmp_path / 'bag')
    assert len(messages['/user/cmd']) == 20                        # commands kept


def test_refusals_are_clear_and_leave_nothing_behind(tmp_path):
    v1 = tmp_path / 'tub_v1'
    v1.mkdir()
    (v1 / 'meta.json').write_text('{"inputs": ["cam/image_array"], "types": ["image_array"]}')
    (v1 / 'record_0.json').write_text('{}')
    with pytest.raises(TubError, match='tub v1 .*convert_to_tub_v2'):
        import_tubs([v1], tmp_path / 'bag')
    assert not (tmp_path / 'bag').exists()
    (tmp_path / 'empty').mkdir()
    with pytest.raises(TubError, match='not a DonkeyCar tub'):
        import_tubs([tmp_path / 'empty'], tmp_path / 'bag')
    broken = tmp_path / 'broken'
    broken.mkdir()
    (broken / 'manifest.json').write_text('["cam/image_array"]\n')
    with pytest.raises(TubError, match='has 1 lines'):
        Tub(broken)
    good = write_donkeycar_tub(tmp_path / 'good', 3)
    (tmp_path / 'exists').mkdir()
    with pytest.raises(BagError, match='exists already'):
        import_tubs([good], tmp_path / 'exists')
    assert list((tmp_path / 'exists').iterdir()) == []
    # A folder of tubs (DonkeyCar's data/) imports every tub in it, in name order.
    write_donkeycar_tub(tmp_path / 'data' / 'tub_10', 2)
    write_donkeycar_tub(tmp_path / 'data' / 'tub_9', 3)
    summary = import_tubs([tmp_path / 'data'], tmp_path / 'all', preview=False, verify=False)
    assert [Path(p).name for p, _, _ in summary.tubs] == ['tub_9', 'tub_10']


def test_command_line(tmp_path):
    tub = write_donkeycar_tub(tmp_path / 'tub', 25, deleted={0, 1})
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, '-m', 'donkey_ros.cli', 'import-tub', str(tub),
                           str(tmp_path / 'bag')], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert 'wrote' in done.stdout and '23 frames' in done.stdout
    assert '2 deleted (dropped)' in done.stdout and 'will use 23' in done.stdout
    assert (tmp_path / 'bag' / 'preview.png').is_file()
    again = subprocess.run([sys.executable, '-m', 'donkey_ros.cli', 'import-tub', str(tub),
                            str(tmp_path / 'bag')], capture_output=True, text=True, env=env,
                           timeout=60)
    assert again.returncode == 1 and 'exists already' in again.stderr
    assert 'Traceback' not in again.stderr
