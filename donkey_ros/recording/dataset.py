"""Bags -> training samples (no rclpy needed): each camera frame with the command in force.

    from donkey_ros.recording.dataset import open_dataset
    data = open_dataset(['data/bags'], modes=('user',), min_throttle=0.05)
    for sample in data:                   # or data.iter_samples()
        sample.image, sample.steering, sample.throttle
    print(data.counts)                    # frames seen / used / skipped, by reason

Pairing: a frame gets the newest ``user/cmd`` received at or before it, if that command is at
most ``tolerance`` seconds older; otherwise it is skipped (``counts.no_command``). Times are the
bag's receive timestamps. Messages are streamed in time order from one MCAP chunk at a time, so
memory stays flat however large the bags are. Exclusions written by ``donkey-ros clean``
(``BAG/exclusions.yaml``) are honoured unless ``use_exclusions=False``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from donkey_ros.common import topics
from donkey_ros.common.command import clamp
from donkey_ros.recording.errors import BagError

IMAGE_TOPIC = topics.IMAGE
COMPRESSED_SUFFIX = topics.COMPRESSED_SUFFIX
COMMAND_TOPIC = topics.USER_CMD
"""The command frames are paired with: what the human did."""
MODE_TOPIC = topics.DRIVE_MODE
STATUS_TOPIC = topics.SIM_STATUS
ODOM_TOPIC = topics.SIM_ODOM
EXCLUSIONS_FILE = 'exclusions.yaml'
TRUTH_MAX_AGE_NS = 1_000_000_000
TRUTH_WINDOW_NS = 50_000_000
"""Ground truth received up to this long after a frame is the frame's (same simulator step)."""
IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')


class DatasetError(BagError):
    """A bag cannot serve as training data (missing, damaged, no camera topic...)."""


@dataclass(frozen=True)
class Sample:
    """One training example.

    Attributes:
        image: HxWx3 uint8 RGB, owned by the sample (not a view on bag buffers).
        steering, throttle: the command in force, in [-1, 1] (+ = left / forward).
        stamp_ns: the frame's receive time in the bag (ns since epoch).
        mode: drive mode at that time ('user', 'pilot_steer', 'pilot'), None if not recorded.
        truth: simulator ground truth at that time, None if not recorded: the SimStatus fields
            (on_track, cross_track_error, progress, speed, laps, lap_time, distance, track ...)
            and, from sim/odom, x, y, yaw, v. It is the sim/status received up to 50 ms after
            the frame (the simulator publishes it right after the frame of the same step), else
            the newest one before the frame (at most 1 s old).
        bag: the bag directory (or file) the sample comes from.
    """

    image: np.ndarray
    steering: float
    throttle: float
    stamp_ns: int
    mode: str | None
    truth: dict | None
    bag: str


@dataclass
class Counts:
    """Frames seen and why some were not used (reset at each pass over the data)."""

    frames: int = 0
    used: int = 0
    no_command: int = 0
    """No user/cmd at or before the frame within ``tolerance``."""
    mode: int = 0
    """Drive mode not in ``modes``."""
    throttle: int = 0
    """Throttle below ``min_throttle``."""
    excluded: int = 0
    """Inside an excluded time range (``exclude`` or the bag's exclusions.yaml)."""
    bad_image: int = 0
    """Undecodable image (bad encoding, size mismatch, corrupt JPEG)."""
    bad_command: int = 0
    """Commands ignored because they were NaN/inf or undecodable (not frames)."""

    @property
    def skipped(self) -> int:
        return self.no_command + self.mode + self.throttle + self.excluded + self.bad_image

    def as_dict(self) -> dict:
        return {**asdict(self), 'skipped': self.skipped}

    def add(self, other: 'Counts') -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


@dataclass
class _State:
    command: tuple[int, float, float] | None = None
    mode: str | None = None
    status: tuple[int, dict] | None = None
    odom: tuple[int, dict] | None = None
    pending: list = field(default_factory=list)
    waiting: list = field(default_factory=list)


@dataclass
class _Selected:
    """A frame that passed the filters, waiting (at most TRUTH_WINDOW_NS) for its truth."""

    stamp: int
    msgtype: str
    raw: bytes
    steering: float
    throttle: float
    mode: str | None
    truth: dict | None


@dataclass(frozen=True)
class BagTopics:
    """The topics of one bag that the dataset uses (absolute names; None if absent)."""

    image: str
    image_type: str
    command: str | None
    mode: str | None
    status: str | None
    odom: str | None


def find_bags(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Expands paths to bags: a bag directory, a folder of bag directories, or an .mcap/.db3 file.

    Raises:
        DatasetError: a path does not exist or holds no bag.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    bags: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise DatasetError(f"bag '{path}' does not exist")
        if path.is_file():
            if path.suffix not in ('.mcap', '.db3'):
                raise DatasetError(
                    f"'{path}' is not a bag (expected a bag directory, .mcap or .db3)")
            bags.append(path)
        elif (path / 'metadata.yaml').is_file():
            bags.append(path)
        else:
            inner = sorted(p.parent for p in path.glob('*/metadata.yaml'))
            if inner:
                bags.extend(inner)
            elif any(path.glob('*.mcap')) or any(path.glob('*.db3')):
                raise DatasetError(
                    f"bag '{path}' has no metadata.yaml (recording interrupted?): "
                    f'run `donkey-ros bag repair {path}`')
            else:
                raise DatasetError(f"'{path}' is neither a bag nor a folder of bags")
    return bags


def match_topic(topics: Iterable[str], name: str, namespace: str | None = None) -> list[str]:
    """The absolute topics of a bag that are ``name`` (relative) in some namespace."""
    if namespace is not None:
        want = '/'.join(p for p in (namespace.strip('/'), name) if p)
        return [t for t in topics if t.strip('/') == want]
    return [t for t in topics if t.strip('/') == name or t.endswith('/' + name)]


def resolve_topics(path: Path, connections, image_topic: str = IMAGE_TOPIC,
                   command_topic: str = COMMAND_TOPIC,
                   namespace: str | None = None) -> BagTopics:
    """Picks the dataset's topics among a bag's connections.

    Raises:
        DatasetError: no camera topic, several cars without ``namespace``, or a wrong type.
    """
    types = {c.topic: c.msgtype for c in connections}
    images = match_topic(types, image_topic, namespace)
    if not images:
        images = match_topic(types, image_topic + COMPRESSED_SUFFIX, namespace)
    if not images:
        listing = ', '.join(sorted(types)) or 'none'
        raise DatasetError(f"bag '{path}' has no {image_topic} topic (topics: {listing})")
    if len(images) > 1:
        raise DatasetError(f"bag '{path}' has several {image_topic} topics ({', '.join(images)}): "
                           'pass namespace= to choose one car')
    image = images[0]
    if types[image] not in IMAGE_TYPES:
        raise DatasetError(f"bag '{path}': {image} is {types[image]}, not an image")
    suffix = image_topic + (COMPRESSED_SUFFIX if image.endswith(COMPRESSED_SUFFIX)
                            and not image_topic.endswith(COMPRESSED_SUFFIX) else '')
    prefix = image[: len(image) - len(suffix)].rstrip('/')

    def same_car(name: str, wanted: str) -> str | None:
        topic = f'{prefix}/{name}'
        return topic if types.get(topic) == wanted else None

    return BagTopics(image, types[image],
                     same_car(command_topic, 'geometry_msgs/msg/TwistStamped'),
                     same_car(MODE_TOPIC, 'std_msgs/msg/String'),
                     same_car(STATUS_TOPIC, 'donkey_ros_interfaces/msg/SimStatus'),
                     same_car(ODOM_TOPIC, 'nav_msgs/msg/Odometry'))


EXCLUSION_KEYS = ('created', 'tool', 'settings', 'frames', 'dropped_frames', 'exclude')
RANGE_KEYS = ('start_ns', 'end_ns', 'start_s', 'end_s', 'reason')


def read_exclusions(bag: Path) -> list[dict]:
    """The ranges of ``bag/exclusions.yaml`` (none if absent), each a dict with ``start_ns``,
    ``end_ns`` (ints, start <= end) and ``reason`` (str).

    Raises:
        DatasetError: the file exists but is not a valid exclusion list: not YAML, an unknown
            (e.g. misspelled) key, a missing or non-integer time, or a range ending before it
            starts. The message names the file and the key.
    """
    import yaml
    path = (bag if bag.is_dir() else bag.parent) / EXCLUSIONS_FILE
    if not path.is_file():
        return []

    def invalid(why: str) -> DatasetError:
        return DatasetError(f"exclusion list '{path}' is invalid: {why}; fix it, or rewrite it "
                            'with `donkey-ros clean --reset`')

    try:
        data = yaml.safe_load(path.read_text(encoding='utf-8')) or {}
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as error:
        raise invalid(' '.join(str(error).split())) from None
    if not isinstance(data, dict):
        raise invalid("not a mapping with an 'exclude' list")
    unknown = sorted(str(k) for k in set(data) - set(EXCLUSION_KEYS))
    if unknown:
        raise invalid(f"unknown key '{unknown[0]}' (known: {', '.join(EXCLUSION_KEYS)})")
    ranges = data.get('exclude') or []
    if not isinstance(ranges, list):
        raise invalid("'exclude' must be a list of ranges")
    entries = []
    for number, entry in enumerate(ranges, 1):
        if not isinstance(entry, dict):
            raise invalid(f'range {number} is not a mapping (start_ns, end_ns, reason)')
        unknown = sorted(str(k) for k in set(entry) - set(RANGE_KEYS))
        if unknown:
            raise invalid(f"range {number}: unknown key '{unknown[0]}' "
                          f"(known: {', '.join(RANGE_KEYS)})")
        for key in ('start_ns', 'end_ns'):
            if key not in entry:
                raise invalid(f"range {number}: '{key}' missing")
            if not isinstance(entry[key], int) or isinstance(entry[key], bool):
                raise invalid(f"range {number}: '{key}' must be an integer (ns), "
                              f'got {entry[key]!r}')
        if entry['end_ns'] < entry['start_ns']:
            raise invalid(f'range {number}: end_ns is before start_ns')
        entries.append({'start_ns': entry['start_ns'], 'end_ns': entry['end_ns'],
                        'reason': str(entry.get('reason', ''))})
    return entries


def load_exclusions(bag: Path) -> list[tuple[int, int]]:
    """Excluded ``(start_ns, end_ns)`` ranges from ``bag/exclusions.yaml`` (none if absent).

    Raises:
        DatasetError: the file exists but is not a valid exclusion list (see read_exclusions).
    """
    return [(r['start_ns'], r['end_ns']) for r in read_exclusions(bag)]


def open_reader(bag: Path):
    """An opened rosbags Reader for ``bag``, with errors turned into one readable line."""
    from rosbags.rosbag2 import Reader, ReaderError
    try:
        reader = Reader(bag)
        reader.open()
    except FileNotFoundError:
        raise DatasetError(f"bag '{bag}' is incomplete (metadata.yaml or a file is missing): "
                           f'run `donkey-ros bag repair {bag}`') from None
    except (ReaderError, OSError, KeyError, ValueError, EOFError) as error:
        raise DatasetError(
            f"bag '{bag}' cannot be read ({error}); if it was being recorded when the recorder "
            f'stopped, run `donkey-ros bag repair {bag}`') from None
    return reader


class Dataset:
    """Training samples from one or many bags (see the module docstring). Iterable, repeatable.

    Args:
        paths: bag directories, folders of bags, or .mcap/.db3 files.
        image_topic: camera topic, relative ('camera/image_raw'); the '/compressed' JPEG variant
            is used when the raw one is absent.
        command_topic: the command paired with frames ('user/cmd': what the human did).
        tolerance: maximum age (s) of the command in force at a frame.
        modes: keep frames whose drive mode is one of these (None = any). Frames of bags without
            a drive_mode topic have mode None and are kept.
        min_throttle: keep frames whose throttle is >= this (None = any).
        exclude: extra excluded ``(start_ns, end_ns)`` ranges (bag time), for every bag.
        use_exclusions: honour each bag's exclusions.yaml.
        namespace: choose one car when a bag holds several (e.g. 'car1').
        decode_images: False yields samples with an empty image (counting, fast); frames are
            still checked with ``decode_image``, so the counts are those of a training pass.

    Raises:
        DatasetError: a path is not a bag (checked here, before any iteration).
    """

    def __init__(self, paths, image_topic: str = IMAGE_TOPIC, command_topic: str = COMMAND_TOPIC,
                 tolerance: float = 0.1, modes: Sequence[str] | None = ('user',),
                 min_throttle: float | None = None, exclude: Sequence[tuple[int, int]] = (),
                 use_exclusions: bool = True, namespace: str | None = None,
                 decode_images: bool = True) -> None:
        if not (tolerance > 0 and math.isfinite(tolerance)):
            raise DatasetError(f'tolerance must be a positive number of seconds, got {tolerance!r}')
        self.bags = find_bags(paths)
        self.image_topic = image_topic
        self.command_topic = command_topic
        self.tolerance_ns = int(tolerance * 1e9)
        self.modes = tuple(modes) if modes is not None else None
        self.min_throttle = min_throttle
        self.exclude = [(int(a), int(b)) for a, b in exclude]
        self.use_exclusions = use_exclusions
        self.namespace = namespace
        self.decode_images = decode_images
        self.counts = Counts()
        self.bag_counts: dict[str, Counts] = {}

    def __iter__(self) -> Iterator[Sample]:
        return self.iter_samples()

    def iter_samples(self) -> Iterator[Sample]:
        """Streams the samples of all bags, bag by bag, in time order; updates ``counts``."""
        self.counts = Counts()
        self.bag_counts = {}
        for bag in self.bags:
            counts = Counts()
            self.bag_counts[str(bag)] = counts
            try:
                yield from self._bag_samples(bag, counts)
            finally:
                self.counts.add(counts)

    def _bag_samples(self, bag: Path, counts: Counts) -> Iterator[Sample]:
        from rosbags.rosbag2 import ReaderError
        from donkey_ros.recording.types import register_from_bag, typestore

        excluded = self.exclude + (load_exclusions(bag) if self.use_exclusions else [])
        reader = open_reader(bag)
        try:
            topics = resolve_topics(bag, reader.connections, self.image_topic,
                                    self.command_topic, self.namespace)
            wanted = {t for t in (topics.image, topics.command, topics.mode, topics.status,
                                  topics.odom) if t}
            connections = [c for c in reader.connections if c.topic in wanted]
            undecodable = set(register_from_bag(connections))
            connections = [c for c in connections if c.msgtype not in undecodable
                           or c.topic == topics.image]
            if topics.image_type in undecodable:
                raise DatasetError(f"bag '{bag}': cannot decode {topics.image_type}")
            store = typestore()
            state = _State()
            has_truth = topics.status is not None or topics.odom is not None
            try:
                for connection, stamp, raw in reader.messages(connections):
                    if state.pending and stamp > state.pending[0][0]:
                        self._select(state, excluded, counts, has_truth)
                    if state.waiting and stamp > state.waiting[0].stamp + TRUTH_WINDOW_NS:
                        yield from self._finish(bag, state, counts, stamp)
                    topic = connection.topic
                    if topic == topics.image:
                        counts.frames += 1
                        state.pending.append((stamp, connection.msgtype, raw))
                        continue
                    try:
                        msg = store.deserialize_cdr(raw, connection.msgtype)
                    except Exception:  # a corrupt message must not end the pass
                        if topic == topics.command:
                            counts.bad_command += 1
                        continue
                    if topic == topics.command:
                        steering, throttle = msg.twist.angular.z, msg.twist.linear.x
                        if math.isfinite(steering) and math.isfinite(throttle):
                            state.command = (stamp, clamp(steering), clamp(throttle))
                        else:
                            counts.bad_command += 1
                    elif topic == topics.mode:
                        state.mode = msg.data
                    elif topic == topics.status:
                        state.status = (stamp, _status_dict(msg))
                        if state.waiting:   # the truth of the frames just before it
                            yield from self._finish(bag, state, counts, stamp, truth_after=True)
                    elif topic == topics.odom:
                        state.odom = (stamp, _odom_dict(msg))
            except (ReaderError, OSError, ValueError, EOFError) as error:
                raise DatasetError(f"bag '{bag}' is damaged ({error}): "
                                   f'run `donkey-ros bag repair {bag}`') from None
            self._select(state, excluded, counts, has_truth)
            yield from self._finish(bag, state, counts, None)
        finally:
            reader.close()

    def _select(self, state: _State, excluded, counts: Counts, has_truth: bool) -> None:
        """Pairs the pending frames with the command and mode in force; filters them.

        Called once every message up to the frames' time has been seen (so a command with the
        frame's very timestamp counts); the kept frames wait briefly for their ground truth.
        """
        pending, state.pending = state.pending, []
        for stamp, msgtype, raw in pending:
            command = state.command
            if command is None or not 0 <= stamp - command[0] <= self.tolerance_ns:
                counts.no_command += 1
                continue
            if self.modes is not None and state.mode is not None and state.mode not in self.modes:
                counts.mode += 1
                continue
            if self.min_throttle is not None and command[2] < self.min_throttle:
                counts.throttle += 1
                continue
            if any(start <= stamp <= end for start, end in excluded):
                counts.excluded += 1
                continue
            truth = _truth(stamp, state) if has_truth else None
            state.waiting.append(_Selected(stamp, msgtype, raw, command[1], command[2],
                                           state.mode, truth))

    def _finish(self, bag: Path, state: _State, counts: Counts, now: int | None,
                truth_after: bool = False) -> Iterator[Sample]:
        """Yields the waiting frames that are due; with ``truth_after`` they get the status just
        received (the simulator publishes it right after the frame of the same step)."""
        keep = []
        for frame in state.waiting:
            due = now is None or now > frame.stamp + TRUTH_WINDOW_NS
            if truth_after and now is not None and frame.stamp <= now <= \
                    frame.stamp + TRUTH_WINDOW_NS:
                frame.truth = _truth(now, state)
                due = True
            if not due:
                keep.append(frame)
                continue
            try:  # the same check whether or not the pixels are kept (bag info counts with it)
                image = decode_image(frame.raw, frame.msgtype, copy=self.decode_images)
            except Exception:  # any undecodable frame is counted, never fatal
                counts.bad_image += 1
                continue
            if not self.decode_images:
                image = np.zeros((0, 0, 3), np.uint8)
            counts.used += 1
            yield Sample(image, frame.steering, frame.throttle, frame.stamp, frame.mode,
                         frame.truth, str(bag))
        state.waiting = keep


def decode_image(raw: bytes, msgtype: str, copy: bool = True) -> np.ndarray:
    """A serialized Image/CompressedImage -> HxWx3 uint8 RGB (a new array).

    This is the one rule for "usable frame": training, ``bag info`` and the import checks all
    count a frame as usable when this returns.

    Args:
        copy: False may return a view on the message buffer (enough to validate a frame).

    Raises:
        ImageError: unsupported encoding, size mismatch or corrupt JPEG/PNG.
    """
    from donkey_ros.common.image import ImageError, decode_jpeg, image_to_array
    from donkey_ros.recording.types import typestore

    msg = typestore().deserialize_cdr(raw, msgtype)
    if msgtype.endswith('CompressedImage'):
        try:
            return decode_jpeg(np.asarray(msg.data, np.uint8))
        except ImageError:
            raise ImageError(f"cannot decode compressed image (format '{msg.format}')") from None
    pixels = image_to_array(msg)
    return np.array(pixels, copy=True) if copy else pixels



def _status_dict(msg) -> dict:
    return {name: getattr(msg, name) for name in (
        'on_track', 'cross_track_error', 'progress', 'speed', 'laps', 'lap_time', 'last_lap_time',
        'best_lap_time', 'off_track_count', 'distance', 'track') if hasattr(msg, name)}


def _odom_dict(msg) -> dict:
    q = msg.pose.pose.orientation
    yaw = math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))
    return {'x': msg.pose.pose.position.x, 'y': msg.pose.pose.position.y, 'yaw': yaw,
            'v': msg.twist.twist.linear.x}


def _truth(stamp: int, state: _State) -> dict | None:
    truth = {}
    for entry in (state.status, state.odom):
        if entry is not None and 0 <= stamp - entry[0] <= TRUTH_MAX_AGE_NS:
            truth.update(entry[1])
    return truth or None


def open_dataset(paths, **filters) -> Dataset:
    """Opens bags as a ``Dataset``; ``filters`` are ``Dataset``'s keyword arguments."""
    return Dataset(paths, **filters)


def iter_samples(paths, **filters) -> Iterator[Sample]:
    """Shortcut: ``open_dataset(paths, **filters).iter_samples()``."""
    return open_dataset(paths, **filters).iter_samples()
