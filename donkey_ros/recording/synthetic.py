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

from donkey_ros.common import topics
from donkey_ros.common.image import encode_jpeg
from donkey_ros.recording import messages
from donkey_ros.recording.writer import BagWriter
from donkey_ros.recording.types import typestore

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


def bad_image(stamp_ns: int, defect: str, width: int, height: int):
    """A sensor_msgs/Image a camera could send but training cannot use (see ``BAD_FRAMES``)."""
    kind = typestore().types['sensor_msgs/msg/Image']
    header = messages.header(stamp_ns, 'camera')
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
                        cmd_from: float = 0.0, image_topic: str = topics.IMAGE,
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
    ns = '/' + namespace.strip('/') if namespace.strip('/') else ''
    result = SyntheticBag(Path(path))
    events: list[tuple[int, int, str, object]] = []   # (stamp, order, topic, message)
    duration = frames / fps

    def stamp(t: float) -> int:
        return start_ns + int(round(t * 1e9))

    def inside(t: float, ranges) -> bool:
        return any(a <= t < b for a, b in ranges)

    compressed = image_topic.endswith('/compressed')

    def image_message(i: int, t: float):
        """Built when written, so a large bag never sits in memory."""
        pixels = frame_pixels(i, width, height)
        if compressed:
            return messages.compressed_image(stamp(t), encode_jpeg(pixels, 95))
        defect = (bad_frames or {}).get(i)
        if defect is not None:
            return bad_image(stamp(t), defect, width, height)
        return messages.image(stamp(t), pixels)

    for i in range(frames):
        t = i / fps
        events.append((stamp(t), 1, image_topic, lambda i=i, t=t: image_message(i, t)))
        result.frames.append(stamp(t))

    n_cmd = int(duration * cmd_rate) + 1
    for k in range(n_cmd):
        t = cmd_phase + k / cmd_rate
        if t < cmd_from or t > duration:
            continue
        steering, throttle = command_at(t)
        if inside(t, stop):
            throttle = 0.0
        msg = messages.twist_stamped(stamp(t), steering, throttle)
        events.append((stamp(t), 0, topics.USER_CMD, msg))
        result.commands.append((stamp(t), steering, throttle))

    for mode, t in modes:
        events.append((stamp(t), 0, topics.DRIVE_MODE, messages.string(mode)))
        result.modes.append((stamp(t), mode))

    if with_truth:
        for k in range(int(duration * 10) + 1):
            t = k / 10 + 0.001
            on_track = not inside(t, off_track)
            speed = 0.0 if inside(t, stop) else 2.0
            status = messages.sim_status(
                stamp(t), on_track=on_track,
                cross_track_error=0.0 if on_track else 0.9, progress=t * 2.0, speed=speed,
                lap_time=t, distance=t * 2.0, track='synthetic')
            events.append((stamp(t), 0, topics.SIM_STATUS, status))
            result.statuses.append((stamp(t), on_track, speed))
            odom = messages.odometry(stamp(t), t * 2.0, 0.0, 0.0, speed)
            events.append((stamp(t), 0, topics.SIM_ODOM, odom))

    events.sort(key=lambda e: (e[0], e[1]))
    with BagWriter(path, storage=storage, compression=compression,
                   max_file_bytes=max_file_bytes,
                   custom_data={'donkey_ros.namespace': ns or '/',
                                'donkey_ros.source': 'synthetic'}) as writer:
        for stamp_ns, _, topic, msg in events:
            name = topics.in_namespace(topic, ns)
            if callable(msg):
                msg = msg()
            if name not in writer.topics:
                messages.add_topic(writer, topic, ns, msg.__msgtype__)
            messages.write(writer, name, stamp_ns, msg)
            result.topics[name] = result.topics.get(name, 0) + 1
    return result
