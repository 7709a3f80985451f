"""Synthetic driving frames with a known answer, for tests and benchmarks (no TensorFlow).

Frame i shows a grey road on green ground whose centre sits ``steering * width / 3`` pixels left
of the image centre in the lower part of the frame (road to the left -> steer left, + = left), with
white edges and a little pixel noise. A model that learns to drive must find the road: a model that
outputs a constant cannot get a small steering error.
"""
from __future__ import annotations

import numpy as np


def lane_frame(steering: float, width: int = 160, height: int = 120,
               rng: np.random.Generator | None = None) -> np.ndarray:
    """One HxWx3 uint8 RGB frame whose road position encodes ``steering`` in [-1, 1]."""
    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = (88, 110, 62)
    frame[: height // 3] = (150, 190, 230)  # sky, cropped away by default
    columns = np.arange(width)
    for row in range(height // 3, height):
        depth = (row - height // 3) / (height - height // 3)      # 0 at horizon, 1 at bottom
        centre = width / 2 - steering * (width / 3) * (0.3 + 0.7 * depth)
        half = 4 + depth * width * 0.3
        road = np.abs(columns - centre) <= half
        edge = road & (np.abs(np.abs(columns - centre) - half) <= 1.5)
        frame[row, road] = (105, 105, 105)
        frame[row, edge] = (245, 245, 245)
    if rng is not None:
        noise = rng.normal(0, 4, frame.shape)
        frame = np.clip(frame + noise, 0, 255).astype(np.uint8)
    return frame


def lane_samples(count: int, seed: int = 0, width: int = 160, height: int = 120,
                 fps: float = 20.0):
    """``count`` (image, steering, throttle, time) samples: steering follows a slow random walk
    (like driving), throttle = 0.3 + 0.2 * (1 - |steering|)."""
    rng = np.random.default_rng(seed)
    steering = 0.0
    for i in range(count):
        steering = float(np.clip(0.97 * steering + rng.normal(0, 0.08), -1.0, 1.0))
        throttle = 0.3 + 0.2 * (1.0 - abs(steering))
        yield lane_frame(steering, width, height, rng), steering, throttle, i / fps


def write_lane_bag(path, count: int, seed: int = 0, width: int = 160, height: int = 120,
                   fps: float = 20.0, start_ns: int = 1_700_000_000_000_000_000):
    """Writes ``lane_samples`` as a bag a recorder could have written (camera frames and the
    ``user/cmd`` in force, stamped together; drive mode 'user'); returns the bag path."""
    from pathlib import Path

    from donkey_ros.common import topics
    from donkey_ros.recording import messages
    from donkey_ros.recording.writer import BagWriter

    path = Path(path)
    with BagWriter(path) as writer:
        image_topic = messages.add_topic(writer, topics.IMAGE)
        cmd_topic = messages.add_topic(writer, topics.USER_CMD)
        mode_topic = messages.add_topic(writer, topics.DRIVE_MODE)
        messages.write(writer, mode_topic, start_ns, messages.string('user'))
        for image, steering, throttle, t in lane_samples(count, seed, width, height, fps):
            stamp = start_ns + int(round(t * 1e9))
            messages.write(writer, cmd_topic, stamp,
                           messages.twist_stamped(stamp, steering, throttle))
            messages.write(writer, image_topic, stamp, messages.image(stamp, image))
    return path
