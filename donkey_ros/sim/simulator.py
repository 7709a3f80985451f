"""The simulator: a car on a track, its camera, and the race officials (on track? laps? times?).

Plain Python, no rclpy: ``sim_node`` wraps it. Time only advances through ``step(dt, ...)``, so
a simulation runs as fast as the CPU allows and gives the same result every time for a seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from donkey_ros.common.errors import ConfigError
from donkey_ros.sim.randomize import Randomization, draw_look
from donkey_ros.sim.renderer import CameraParams, Renderer
from donkey_ros.sim.track import Track, load_track
from donkey_ros.sim.vehicle import Vehicle, VehicleParams


@dataclass(frozen=True)
class SimStatus:
    """Where the car is relative to the track, and its lap timing (times in sim seconds).

    ``progress`` is the arc length from the start line (the ``s`` of the track); lap times are
    0.0 until a lap has been completed, as in ``donkey_ros_interfaces/SimStatus``.
    """

    on_track: bool = True
    cross_track_error: float = 0.0
    progress: float = 0.0
    speed: float = 0.0
    laps: int = 0
    lap_time: float = 0.0
    last_lap_time: float = 0.0
    best_lap_time: float = 0.0
    off_track_count: int = 0
    distance: float = 0.0
    time: float = 0.0
    x: float = 0.0
    y: float = 0.0
    yaw: float = 0.0
    steering_angle: float = 0.0
    track: str = ''

    @property
    def s(self) -> float:
        return self.progress

    def message_fields(self) -> dict:
        """The fields of a ``donkey_ros_interfaces/SimStatus`` message (header aside), typed as
        the message wants them: one mapping for the sim node and for bags written offline."""
        return {'on_track': bool(self.on_track),
                'cross_track_error': float(self.cross_track_error),
                'progress': float(self.progress), 'speed': float(self.speed),
                'laps': int(self.laps), 'lap_time': float(self.lap_time),
                'last_lap_time': float(self.last_lap_time),
                'best_lap_time': float(self.best_lap_time),
                'off_track_count': int(self.off_track_count), 'distance': float(self.distance),
                'track': self.track}


class Simulator:
    """A car on a track with a forward camera.

    Args:
        track: a Track, or a shipped track name / track file path.
        vehicle_params: the car (default: a DonkeyCar-sized car).
        camera_params: the camera (default: 160x120, 120 degrees).
        seed: seeds the texture and the pixel noise.
        noise: gaussian pixel noise std (0-255 scale).
        brightness: brightness multiplier of the images.
        lighting_variation: relative amplitude of a slow brightness change (0 = constant).
        lighting_period: period of that change, sim seconds.
        lateral_start_offset: where the car starts across the road, m (+ = left).
        reset_on_off_track: put the car back on the centreline whenever it leaves the road.
        pixels_per_metre: resolution of the ground raster.
        randomization: domain randomization (``sim/randomize.py``): when enabled, every
            ``reset()`` starts a new episode in a new look drawn from ``seed`` and the episode
            number (``episode``, 0 for the first); off (default) the track looks as its file says.

    Raises:
        TrackError: the track cannot be loaded.
        ConfigError: an invalid parameter.
    """

    def __init__(self, track: Track | str = 'oval', vehicle_params: VehicleParams | None = None,
                 camera_params: CameraParams | None = None, seed: int = 0, noise: float = 0.0,
                 brightness: float = 1.0, lighting_variation: float = 0.0,
                 lighting_period: float = 30.0, lateral_start_offset: float = 0.0,
                 reset_on_off_track: bool = False, pixels_per_metre: float = 100.0,
                 randomization: Randomization | None = None) -> None:
        self.track = track if isinstance(track, Track) else load_track(track)
        if noise < 0 or brightness < 0 or not 0 <= lighting_variation <= 1:
            raise ConfigError('noise and brightness must be >= 0 and lighting_variation 0-1, got '
                              f'{noise}, {brightness}, {lighting_variation}')
        if lighting_period <= 0:
            raise ConfigError(f'lighting_period must be > 0, got {lighting_period}')
        if abs(lateral_start_offset) > self.track.road_width / 2:
            raise ConfigError(f'lateral_start_offset {lateral_start_offset} m is off the road '
                              f'(half width {self.track.road_width / 2} m)')
        self.vehicle = Vehicle(vehicle_params)
        self.randomization = randomization or Randomization()
        self.seed = seed
        self.episode = -1
        self._render_args = (camera_params or CameraParams(), pixels_per_metre, seed, noise)
        if not self.randomization.enabled:
            self.episode = 0
            self.renderer = Renderer(self.track, camera_params, pixels_per_metre, seed=seed,
                                     noise=noise)
        self.brightness = brightness
        self.lighting_variation = lighting_variation
        self.lighting_period = lighting_period
        self.lateral_start_offset = lateral_start_offset
        self.reset_on_off_track = reset_on_off_track
        self.reset(to_centerline=False)

    @property
    def status(self) -> SimStatus:
        """The state after the last step."""
        return self._status

    def reset(self, to_centerline: bool = True, lateral_offset: float | None = None) -> SimStatus:
        """Starts a new run: the car at rest on the start line, heading along the track; laps,
        times and counters are cleared.

        Args:
            to_centerline: start on the centreline; False starts at ``lateral_start_offset``.
            lateral_offset: start this far left of the centreline (m), overriding both.
        """
        if self.randomization.enabled:
            self.new_look()
        if lateral_offset is None:
            lateral_offset = 0.0 if to_centerline else self.lateral_start_offset
        self._place(0.0, lateral_offset)
        self._time = 0.0
        self._distance = 0.0
        self._laps = 0
        self._lap_start = 0.0
        self._last_lap = 0.0
        self._best_lap = 0.0
        self._off_count = 0
        s, cte, _ = self.track.project(*self.vehicle.center)
        self._unwrapped = s if s < self.track.length / 2 else s - self.track.length
        self._update_status(s, cte)
        return self._status

    def new_look(self, episode: int | None = None) -> None:
        """Draws the look of the next episode (or of ``episode``) and rebuilds the renderer
        (0.1-0.5 s: the ground raster is repainted). Only with randomization enabled."""
        self.episode = self.episode + 1 if episode is None else int(episode)
        camera, ppm, seed, noise = self._render_args
        look = draw_look(self.randomization, self.track.style, camera, seed, self.episode)
        self.renderer = Renderer(self.track, look.camera, ppm, seed=seed + self.episode,
                                 noise=noise, effects=look.effects)

    def recover(self) -> SimStatus:
        """Puts the car at rest on the centreline point nearest to it, heading along the track.

        Laps, times and counters are kept (this is what ``reset_on_off_track`` does).
        """
        s, _, _ = self.track.project(*self.vehicle.center)
        self._place(s, 0.0)
        s, cte, _ = self.track.project(*self.vehicle.center)
        self._update_status(s, cte)
        return self._status

    def step(self, dt: float, throttle: float, steering: float) -> SimStatus:
        """Advances the simulation by ``dt`` seconds with the given commands.

        Args:
            dt: time step, s.
            throttle: -1 to 1 (clipped).
            steering: -1 (right) to 1 (left) (clipped).

        Returns:
            the new status.
        """
        if not dt > 0:
            return self._status
        self._distance += self.vehicle.step(dt, throttle, steering)
        self._time += dt
        track = self.track
        s, cte, _ = track.project(*self.vehicle.center)
        delta = (s - self._unwrapped) % track.length
        if delta > track.length / 2:
            delta -= track.length
        self._unwrapped += delta
        # Progress is unwrapped since the lap started at the line: only a full lap of net forward
        # driving completes the next one (reversing over the line and back counts nothing).
        if self._unwrapped >= track.length:
            self._complete_lap()
        was_on = self._status.on_track
        self._update_status(s, cte)
        if was_on and not self._status.on_track:
            self._off_count += 1
            self._status = replace(self._status, off_track_count=self._off_count)
            if self.reset_on_off_track:
                self.recover()
        return self._status

    def render(self) -> np.ndarray:
        """The camera image now: (height, width, 3) uint8 RGB."""
        v = self.vehicle
        return self.renderer.render(v.x, v.y, v.yaw, brightness=self.current_brightness())

    def current_brightness(self) -> float:
        """Brightness now, including the slow lighting variation."""
        wave = math.sin(2 * math.pi * self._time / self.lighting_period)
        return self.brightness * (1.0 + self.lighting_variation * wave)

    def _complete_lap(self) -> None:
        self._unwrapped -= self.track.length
        self._laps += 1
        lap = self._time - self._lap_start
        self._lap_start = self._time
        self._last_lap = lap
        self._best_lap = lap if self._best_lap == 0.0 else min(self._best_lap, lap)

    def _place(self, s: float, lateral: float) -> None:
        """Car centre at arc length ``s``, ``lateral`` m left of the centreline, at rest."""
        x, y = self.track.point_at(s)
        yaw = self.track.heading_at(s)
        half = 0.5 * self.vehicle.params.wheelbase
        cx, cy = x - lateral * math.sin(yaw), y + lateral * math.cos(yaw)
        self.vehicle.reset(cx - half * math.cos(yaw), cy - half * math.sin(yaw), yaw)

    def _update_status(self, s: float, cte: float) -> None:
        v = self.vehicle
        self._status = SimStatus(
            on_track=bool(abs(cte) <= self.track.road_width / 2), cross_track_error=cte, progress=s,
            speed=v.speed, laps=self._laps, lap_time=self._time - self._lap_start,
            last_lap_time=self._last_lap, best_lap_time=self._best_lap,
            off_track_count=self._off_count, distance=self._distance, time=self._time, x=v.x,
            y=v.y, yaw=v.yaw, steering_angle=v.steering_angle, track=self.track.name)
