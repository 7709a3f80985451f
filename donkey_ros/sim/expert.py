"""The expert driver: pure pursuit along the track's centreline, for recording training data.

It steers towards the centreline point ``lookahead`` metres ahead and holds a target speed,
slowing for tight curves. An optional weave moves that point left and right so the recordings
also show how to get back to the centre (DonkeyCar users do the same by hand).
"""
from __future__ import annotations

import math

import numpy as np

from donkey_ros.common.errors import ConfigError
from donkey_ros.sim.track import Track


class PurePursuit:
    """Pure-pursuit steering and proportional speed control.

    Args:
        track: the track to follow.
        lookahead: distance ahead of the car to aim at, m (grows by ``lookahead_gain`` * speed).
        target_speed: cruise speed, m/s.
        max_steer_deg: the car's wheel angle at steering = 1.
        wheelbase: the car's wheelbase, m.
        max_speed: the car's speed at throttle = 1 (feed-forward), m/s.
        speed_gain: throttle per m/s of speed error.
        max_lateral_accel: slows down in curves so v^2 * curvature stays below this, m/s^2.
        lookahead_gain: extra lookahead per m/s of speed, s.
        weave_amplitude: how far the aim point swings left/right of the centreline, m.
        weave_period: distance along the track of one swing, m (rounded to fit a lap).
        seed: randomises the weave's phase and its amplitude per swing.

    Raises:
        ConfigError: a non-positive lookahead, speed or wheelbase.
    """

    def __init__(self, track: Track, lookahead: float = 0.6, target_speed: float = 1.5,
                 max_steer_deg: float = 25.0, wheelbase: float = 0.26, max_speed: float = 3.0,
                 speed_gain: float = 0.5, max_lateral_accel: float = 2.0,
                 lookahead_gain: float = 0.15, weave_amplitude: float = 0.0,
                 weave_period: float = 6.0, seed: int = 0) -> None:
        for name, value in (('lookahead', lookahead), ('target_speed', target_speed),
                            ('max_steer_deg', max_steer_deg), ('wheelbase', wheelbase),
                            ('max_speed', max_speed), ('weave_period', weave_period),
                            ('max_lateral_accel', max_lateral_accel)):
            if not value > 0:
                raise ConfigError(f'expert {name} must be > 0, got {value}')
        if weave_amplitude < 0:
            raise ConfigError(f'expert weave_amplitude must be >= 0, got {weave_amplitude}')
        self.track = track
        self.lookahead = lookahead
        self.lookahead_gain = lookahead_gain
        self.target_speed = target_speed
        self.max_steer = math.radians(max_steer_deg)
        self.wheelbase = wheelbase
        self.max_speed = max_speed
        self.speed_gain = speed_gain
        self.max_lateral_accel = max_lateral_accel
        self.weave_amplitude = weave_amplitude
        cycles = max(1, round(track.length / weave_period))
        self.weave_period = track.length / cycles  # a whole number of swings per lap
        rng = np.random.default_rng(seed)
        self._phase = float(rng.uniform(0, 1))
        self._swing_scale = rng.uniform(0.5, 1.0, 2 * cycles)  # per half-swing, same every lap

    def command(self, x: float, y: float, yaw: float, speed: float) -> tuple[float, float]:
        """Throttle and steering, both in [-1, 1], for the rear axle at (x, y, yaw) and ``speed``.

        Returns:
            (throttle, steering): steering = wheel angle / max angle, positive = left.
        """
        track = self.track
        s, _, _ = track.project(x, y)
        reach = self.lookahead + self.lookahead_gain * max(0.0, speed)
        aim_s = s + reach
        ax, ay = track.point_at(aim_s)
        offset = self.weave_offset(aim_s)
        if offset:
            heading = track.heading_at(aim_s)
            ax, ay = ax - offset * math.sin(heading), ay + offset * math.cos(heading)
        dx, dy = ax - x, ay - y
        alpha = math.atan2(dy, dx) - yaw
        distance = max(1e-6, math.hypot(dx, dy))
        wheel = math.atan2(2.0 * self.wheelbase * math.sin(alpha), distance)
        steering = min(1.0, max(-1.0, wheel / self.max_steer))

        target = self.target_speed_at(s)
        throttle = target / self.max_speed + self.speed_gain * (target - speed)
        return min(1.0, max(-1.0, throttle)), steering

    def target_speed_at(self, s: float) -> float:
        """Cruise speed, limited by the sharpest curvature in the next ~1.5 m."""
        ahead = np.arange(0.0, 1.5, 0.25) + s
        kappa = max(abs(self.track.curvature_at(a)) for a in ahead)
        if kappa <= 0:
            return self.target_speed
        return min(self.target_speed, math.sqrt(self.max_lateral_accel / kappa))

    def weave_offset(self, s: float) -> float:
        """Lateral offset of the aim point at arc length ``s``, m (+ = left)."""
        if self.weave_amplitude == 0:
            return 0.0
        u = (s % self.track.length) / self.weave_period + self._phase  # in cycles
        half = int(2 * u) % len(self._swing_scale)  # scales change where the wave crosses zero
        return self.weave_amplitude * self._swing_scale[half] * math.sin(2 * math.pi * u)
