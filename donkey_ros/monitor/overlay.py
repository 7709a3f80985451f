"""Drawing the drive commands onto a camera frame, in NumPy (no OpenCV, no rclpy).

What is drawn, per source (output `cmd` white and thick, `user` green, `pilot` magenta):

- the steering arc: the path the wheels point along, from the bottom centre upwards, bending
  left for + steering;
- a throttle bar at the right edge: up from the middle for forward, down for reverse;
- a steering bar along the bottom edge: from the centre to the left for + steering.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from donkey_ros.common.command import DriveCommand

COLORS = {'cmd': (255, 255, 255), 'user': (60, 220, 90), 'pilot': (235, 70, 235)}
ORDER = ('user', 'pilot', 'cmd')  # drawn last = on top


@dataclass(frozen=True)
class Arrow:
    """Pose and length of the commanded-steering arrow (metres, radians)."""

    x: float
    y: float
    yaw: float
    length: float


def _fill(image: np.ndarray, y0: int, y1: int, x0: int, x1: int, color) -> None:
    h, w = image.shape[:2]
    y0, y1 = max(0, min(y0, y1)), min(h, max(y0, y1))
    x0, x1 = max(0, min(x0, x1)), min(w, max(x0, x1))
    if y1 > y0 and x1 > x0:
        image[y0:y1, x0:x1] = color


def arc_points(steering: float, width: int, height: int, samples: int = 24):
    """Pixel points of the steering arc: a parabola from the bottom centre, + steering = left."""
    t = np.linspace(0.0, 1.0, samples)
    ys = (height - 1) - t * height * 0.6
    xs = width / 2 - steering * (t ** 2) * width * 0.45
    return xs.round().astype(int), ys.round().astype(int)


def draw_overlay(frame: np.ndarray, commands: dict[str, DriveCommand | None],
                 upscale: int = 1) -> np.ndarray:
    """Returns a copy of ``frame`` (HxWx3 uint8 RGB), enlarged ``upscale`` times, with the commands.

    Args:
        frame: the camera image.
        commands: source name ('cmd', 'user', 'pilot') -> its latest command, or None to skip.
        upscale: integer nearest-neighbour enlargement before drawing (legible lines in rviz).
    """
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f'expected an HxWx3 uint8 image, got {frame.shape} {frame.dtype}')
    image = frame.repeat(upscale, axis=0).repeat(upscale, axis=1) if upscale > 1 else frame.copy()
    h, w = image.shape[:2]
    unit = max(1, min(h, w) // 60)
    # Dark strips behind the bars so they read on any background.
    image[:, w - 4 * unit * len(ORDER) - unit:] //= 2
    image[h - 3 * unit * len(ORDER) - unit:, :] //= 2
    for index, source in enumerate(ORDER):
        command = commands.get(source)
        if command is None:
            continue
        color = COLORS[source]
        thick = 2 * unit if source == 'cmd' else unit
        xs, ys = arc_points(command.steering, w, h)
        for x, y in zip(xs, ys):
            _fill(image, y - thick, y + thick + 1, x - thick, x + thick + 1, color)
        # Throttle: vertical bar at the right edge.
        x0 = w - 4 * unit * (len(ORDER) - index)
        top = int(round(h / 2 - command.throttle * (h / 2 - 2 * unit)))
        _fill(image, h // 2, top, x0, x0 + 3 * unit, color)
        _fill(image, h // 2 - unit // 2, h // 2 + unit // 2 + 1, x0, x0 + 3 * unit, (128, 128, 128))
        # Steering: horizontal bar along the bottom edge.
        y0 = h - 3 * unit * (len(ORDER) - index)
        end = int(round(w / 2 - command.steering * (w / 2 - 2 * unit)))
        _fill(image, y0, y0 + 2 * unit, w // 2, end, color)
    _fill(image, h - 3 * unit * len(ORDER) - unit, h, w // 2, w // 2 + 1, (128, 128, 128))
    return image


def arrow(command: DriveCommand, x: float = 0.0, y: float = 0.0, yaw: float = 0.0,
          max_steer_deg: float = 25.0, base: float = 0.15, per_throttle: float = 0.5) -> Arrow:
    """The arrow for rviz: at the car, pointing where the wheels point, longer with throttle.

    In reverse the arrow points backwards (where the car goes).
    """
    heading = yaw + command.steering * math.radians(max_steer_deg)
    if command.throttle < 0:
        heading += math.pi
    heading = math.atan2(math.sin(heading), math.cos(heading))
    return Arrow(x, y, heading, base + per_throttle * abs(command.throttle))
