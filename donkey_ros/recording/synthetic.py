"""Synthetic bags with known content and timing, for tests and benchmarks (no rclpy needed).

Frame ``i`` is an image whose pixels encode ``i`` (red = i % 256, green = i // 256 % 256, blue =
a horizontal ramp), received at ``start_ns + i * frame_period``. Commands come at their own rate
and phase, so pairing frames with "the command in force" is not trivially 1:1. Everything
written is returned in a ``SyntheticBag`` so a test can compute the expected answer itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from donkey_ros.common.image import encode_jpeg
from donkey_ros.recording.types import typestore
from donkey_ros.recording.writer import BagWriter, qos_profile

START_NS = 1_700_000_000_000_000_000


@dataclass
class SyntheticBag:
    """What ``write_synthetic_bag`` wrote (stamps in ns, receive time = bag time)."""

    path: Path
    frames: list[int] = field(default_factory=list)
    commands: list[tuple[int, float, float]] = field(default_factory=list)
    """(stamp_ns, steering, throttle) of every user/cmd."""
    modes: list[tuple[int, str]] = field(default_factory=list)
    statuses: list[tuple[int, bool, float]] = field(default_factory=list)
    """(stamp_ns, on_track, speed) of every sim/status."""
    topics: dict[str, int] = field(default_factory=dict)
    """Message count per topic."""


def frame_pixels(index: int, width: int, height: int) -> np.ndarray:
    """The HxWx3 RGB image of frame ``index``."""
    image = np.empty((height, width, 3), np.uint8)
    image[:, :, 0] = index % 256
    image[:, :, 1] = (index // 256) % 256
    image[:, :, 2] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    return image


BAD_FRAMES = ('16UC1', 'step', 'empty')


def bad_image(msgs, header, defect: str, width: int, height: int):
    """A sensor_msgs/Image a camera could send but training cannot use (see ``BAD_FRAMES``)."""
    kind = msgs['sensor_msgs/msg/Image']
    if defect == '16UC1':
        return kind(header=header, height=height, width=width, encoding='16UC1', is_bigendian=0,
                    step=width * 2, data=np.zeros(width * height * 2, np.uint8))
    if defect == 'step':
        return kind(header=header, height=height, width=width, encoding='rgb8', is_bigendian=0,
                    step=width, data=np.zeros(width * height, np.uint8))
    if defect == 'empty':
        return kind(header=header, height=0, width=0, encoding='rgb8', is_bigendian=0, step=0,
                    data=np.zeros(0, np.uint8))
    raise ValueError(f'bad frame kind {defect!r} unknown (known: {", ".join(BAD_FRAMES)})')


def frame_index(image: np.ndarray) -> int:
    """Inverse of ``frame_pixels``: the index a synthetic frame encodes."""
    return int(image[0, 0, 0]) + 256 * int(image[0, 0, 1])


def command_at(t: float) -> tuple[float, float]:
    """The synthetic (steering, throttle) at ``t`` seconds: a slow weave, throttle 0.2..0.6."""
    return math.sin(t * 1.3) * 0.8, 0.4 + 0.2 * math.sin(t * 0.7)


def write_synthetic_bag(path: str | Path, frames: int = 100, fps: float = 20.0,
                        cmd_rate: float = 30.0, cmd_phase: float = 0.004, width: int = 160,
                        height: int = 120, namespace: str = '', modes=(('user', 0.0),),
                        off_track: tuple = (), stop: tuple = (), with_truth: bool = False,
                        storage: str = 'mcap', compression: str = 'none',
                        cmd_from: float = 0.0, image_topic: str = 'camera/image_raw',
                        start_ns: int = START_NS, max_file_bytes: int = 0,
                        bad_frames: dict[int, str] | None = None) -> SyntheticBag:
    """Writes a bag with frames, user/cmd, drive_mode and (optionally) sim/status + sim/odom.

    Args:
        path: bag directory to create.
        frames: number of camera frames; fps: their rate.
        cmd_rate: user/cmd rate (Hz); cmd_phase: delay (s) of the first command after frame 0.
        cmd_from: no commands before this time (s): earlier frames have none in force.
        modes: ``(mode, from_seconds)`` drive_mode changes.
        off_track: ``(start_s, end_s)`` ranges where sim/status says on_track false.
        stop: ``(start_s, end_s)`` ranges where throttle is 0 and speed 0 (a crash/stop).
        with_truth: also write sim/status (10 Hz) and sim/odom (10 Hz).
        image_topic: 'camera/image_raw' (rgb8 Image) or 'camera/image_raw/compressed' (JPEG).
        bad_frames: frame index -> a defect of that (raw Image) frame, one of ``BAD_FRAMES``:
            '16UC1' (a depth image), 'step' (step and data shorter than a row), 'empty' (0x0).
    """
    store = typestore()
    msgs = store.types
    ns = '/' + namespace.strip('/') if namespace.strip('/') else ''
    result = SyntheticBag(Path(path))
    events: list[tuple[int, int, str, object]] = []   # (stamp, order, topic, message)
    duration = frames / fps

    def stamp(t: float) -> int:
        return start_ns + int(round(t * 1e9))

    def header(t: float):
        ns_ = stamp(t)
        return msgs['std_msgs/msg/Header'](
            stamp=msgs['builtin_interfaces/msg/Time'](sec=ns_ // 10**9, nanosec=ns_ % 10**9),
            frame_id='camera')

    def inside(t: float, ranges) -> bool:
        return any(a <= t < b for a, b in ranges)

    compressed = image_topic.endswith('/compressed')

    def image_message(i: int, t: float):
        """Built when written, so a large bag never sits in memory."""
        pixels = frame_pixels(i, width, height)
        if compressed:
            return msgs['sensor_msgs/msg/CompressedImage'](
                header=header(t), format='rgb8; jpeg compressed bgr8',
                data=np.frombuffer(encode_jpeg(pixels, 95), np.uint8))
        defect = (bad_frames or {}).get(i)
        if defect is not None:
            return bad_image(msgs, header(t), defect, width, height)
        return msgs['sensor_msgs/msg/Image'](
            header=header(t), height=height, width=width, encoding='rgb8', is_bigendian=0,
            step=width * 3, data=pixels.ravel())

    kind = 'sensor_msgs/msg/CompressedImage' if compressed else 'sensor_msgs/msg/Image'
    for i in range(frames):
        t = i / fps
        events.append((stamp(t), 1, image_topic,
                       (kind, lambda i=i, t=t: image_message(i, t))))
        result.frames.append(stamp(t))

    twist = msgs['geometry_msgs/msg/Twist']
    vector = msgs['geometry_msgs/msg/Vector3']
    n_cmd = int(duration * cmd_rate) + 1
    for k in range(n_cmd):
        t = cmd_phase + k / cmd_rate
        if t < cmd_from or t > duration:
            continue
        steering, throttle = command_at(t)
        if inside(t, stop):
            throttle = 0.0
        msg = msgs['geometry_msgs/msg/TwistStamped'](
            header=header(t), twist=twist(linear=vector(x=throttle, y=0.0, z=0.0),
                                          angular=vector(x=0.0, y=0.0, z=steering)))
        events.append((stamp(t), 0, 'user/cmd', ('geometry_msgs/msg/TwistStamped', msg)))
        result.commands.append((stamp(t), steering, throttle))

    for mode, t in modes:
        events.append((stamp(t), 0, 'drive_mode', ('std_msgs/msg/String',
                                                   msgs['std_msgs/msg/String'](data=mode))))
        result.modes.append((stamp(t), mode))

    if with_truth:
        for k in range(int(duration * 10) + 1):
            t = k / 10 + 0.001
            on_track = not inside(t, off_track)
            speed = 0.0 if inside(t, stop) else 2.0
            status = msgs['donkey_ros_interfaces/msg/SimStatus'](
                header=header(t), on_track=on_track, cross_track_error=0.0 if on_track else 0.9,
                progress=t * 2.0, speed=speed, laps=0, lap_time=t, last_lap_time=0.0,
                best_lap_time=0.0, off_track_count=0, distance=t * 2.0, track='synthetic')
            events.append((stamp(t), 0, 'sim/status',
                           ('donkey_ros_interfaces/msg/SimStatus', status)))
            result.statuses.append((stamp(t), on_track, speed))
            pose = msgs['geometry_msgs/msg/Pose'](
                position=msgs['geometry_msgs/msg/Point'](x=t * 2.0, y=0.0, z=0.0),
                orientation=msgs['geometry_msgs/msg/Quaternion'](x=0.0, y=0.0, z=0.0, w=1.0))
            odom = msgs['nav_msgs/msg/Odometry'](
                header=header(t), child_frame_id='base_link',
                pose=msgs['geometry_msgs/msg/PoseWithCovariance'](
                    pose=pose, covariance=np.zeros(36)),
                twist=msgs['geometry_msgs/msg/TwistWithCovariance'](
                    twist=twist(linear=vector(x=speed, y=0.0, z=0.0),
                                angular=vector(x=0.0, y=0.0, z=0.0)),
                    covariance=np.zeros(36)))
            events.append((stamp(t), 0, 'sim/odom', ('nav_msgs/msg/Odometry', odom)))

    events.sort(key=lambda e: (e[0], e[1]))
    with BagWriter(path, storage=storage, compression=compression,
                   max_file_bytes=max_file_bytes,
                   custom_data={'donkey_ros.namespace': ns or '/',
                                'donkey_ros.source': 'synthetic'}) as writer:
        for stamp_ns, _, topic, (kind, msg) in events:
            name = f'{ns}/{topic}'
            if name not in writer.topics:
                latched = topic == 'drive_mode'
                writer.add_topic(name, kind, [qos_profile(
                    durability='transient_local' if latched else 'volatile',
                    depth=1 if latched else 10)])
            if callable(msg):
                msg = msg()
            writer.write(name, stamp_ns, bytes(store.serialize_cdr(msg, kind)))
            result.topics[name] = result.topics.get(name, 0) + 1
    return result
