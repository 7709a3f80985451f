"""The simulated car: a kinematic bicycle model with throttle and steering like an RC car.

The pose (x, y) is the centre of the rear axle, yaw is the heading (REP 103: x forward, y left,
yaw counter-clockwise). Throttle in [-1, 1] pulls the speed towards ``throttle * max_speed``;
steering in [-1, 1] sets the front wheel angle, positive = left, reached at a limited rate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from donkey_ros.common.errors import ConfigError

MAX_SUBSTEP = 0.01  # s; longer steps are split so the result barely depends on dt


@dataclass(frozen=True)
class VehicleParams:
    """Physical parameters of a DonkeyCar-sized car.

    Args:
        wheelbase: front to rear axle, m.
        max_steer_deg: wheel angle at steering = +-1, degrees.
        max_speed: speed at full throttle, m/s (the motor's no-load speed).
        accel: acceleration from rest at full throttle, m/s^2.
        drag: quadratic air/rolling drag coefficient, 1/m (a = -drag * v * |v|).
        brake_decel: deceleration when the throttle opposes the motion, m/s^2 at |throttle| = 1.
        steer_rate_deg_s: how fast the wheels turn, degrees/s.
        reverse: whether a negative throttle at rest drives backwards.
        length: body length, m (for drawing and the car's centre).
        width: body width, m.
    """

    wheelbase: float = 0.26
    max_steer_deg: float = 25.0
    max_speed: float = 3.0
    accel: float = 2.5
    drag: float = 0.02
    brake_decel: float = 4.0
    steer_rate_deg_s: float = 300.0
    reverse: bool = True
    length: float = 0.36
    width: float = 0.2

    def __post_init__(self) -> None:
        for name in ('wheelbase', 'max_steer_deg', 'max_speed', 'accel', 'brake_decel',
                     'steer_rate_deg_s', 'length', 'width'):
            if not getattr(self, name) > 0:
                raise ConfigError(f'vehicle {name} must be > 0, got {getattr(self, name)}')
        if self.drag < 0:
            raise ConfigError(f'vehicle drag must be >= 0, got {self.drag}')
        if self.max_steer_deg >= 90:
            raise ConfigError(f'vehicle max_steer_deg must be < 90, got {self.max_steer_deg}')

    @property
    def max_steer(self) -> float:
        """Maximum wheel angle in radians."""
        return math.radians(self.max_steer_deg)

    @property
    def min_turn_radius(self) -> float:
        """Rear-axle turning radius at full lock, m."""
        return self.wheelbase / math.tan(self.max_steer)


class Vehicle:
    """State and motion of the car. Deterministic: the same commands give the same path.

    Args:
        params: physical parameters.
        x, y, yaw: initial pose of the rear axle centre (m, m, rad).
    """

    def __init__(self, params: VehicleParams | None = None, x: float = 0.0, y: float = 0.0,
                 yaw: float = 0.0) -> None:
        self.params = params or VehicleParams()
        self.reset(x, y, yaw)

    def reset(self, x: float, y: float, yaw: float, speed: float = 0.0) -> None:
        """Places the car, wheels straight."""
        self.x, self.y, self.yaw = float(x), float(y), float(yaw)
        self.speed = float(speed)
        self.steering_angle = 0.0

    @property
    def center(self) -> tuple[float, float]:
        """The middle of the wheelbase (x, y): where 'on the track' is judged."""
        half = 0.5 * self.params.wheelbase
        return self.x + half * math.cos(self.yaw), self.y + half * math.sin(self.yaw)

    @property
    def yaw_rate(self) -> float:
        """Turn rate now, rad/s (+ = counter-clockwise)."""
        return self.speed * math.tan(self.steering_angle) / self.params.wheelbase

    def step(self, dt: float, throttle: float, steering: float) -> float:
        """Advances the car by ``dt`` seconds under constant commands.

        Args:
            dt: time step, s (>= 0).
            throttle: -1 (full reverse/brake) to 1 (full forward); clipped.
            steering: -1 (full right) to 1 (full left); clipped.

        Returns:
            the distance travelled (m, >= 0).
        """
        if not dt > 0:
            return 0.0
        throttle = min(1.0, max(-1.0, float(throttle)))
        steering = min(1.0, max(-1.0, float(steering)))
        n = max(1, math.ceil(dt / MAX_SUBSTEP - 1e-9))
        h = dt / n
        travelled = 0.0
        for _ in range(n):
            travelled += self._substep(h, throttle, steering)
        return travelled

    def _substep(self, h: float, throttle: float, steering: float) -> float:
        p = self.params
        target = steering * p.max_steer
        max_turn = math.radians(p.steer_rate_deg_s) * h
        self.steering_angle += min(max_turn, max(-max_turn, target - self.steering_angle))

        v = self.speed
        if v * throttle < 0:  # throttle against the motion: brake towards a stop
            dv = -math.copysign(p.brake_decel * abs(throttle) * h, v)
            new_v = 0.0 if abs(dv) >= abs(v) else v + dv
        else:
            if throttle < 0 and not p.reverse:
                throttle = 0.0
            # First-order motor: pulls towards throttle * max_speed (coasts down at throttle 0).
            new_v = v + (p.accel * (throttle - v / p.max_speed) - p.drag * v * abs(v)) * h
        new_v = min(p.max_speed, max(-p.max_speed if p.reverse else 0.0, new_v))

        mean_v = 0.5 * (v + new_v)
        yaw_rate = mean_v * math.tan(self.steering_angle) / p.wheelbase
        mid_yaw = self.yaw + 0.5 * yaw_rate * h
        self.x += mean_v * math.cos(mid_yaw) * h
        self.y += mean_v * math.sin(mid_yaw) * h
        self.yaw = math.remainder(self.yaw + yaw_rate * h, math.tau)
        self.speed = new_v
        return abs(mean_v) * h
