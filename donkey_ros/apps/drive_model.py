"""A model drives the simulator, measured: on the simulator core in this process (fast), or
through the real nodes - sim, pilot, mux - over rclpy. Step 3 of ``donkey-ros loop``; also the
style experiment's drives.

Both keep the sim node's timing: a command computed from frame t acts during the next frame
period, as through ROS.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace

from donkey_ros.common.errors import DonkeyRosError
from donkey_ros.sim.factory import simulator_from_params
from donkey_ros.sim.run_stats import RunStats
from donkey_ros.sim.settings import FRAME_RATE, PHYSICS_SUBSTEPS, sim_settings


@dataclass
class DriveResult:
    """How a model drove: the figures ``donkey-ros loop`` prints."""

    track: str
    laps: int
    lap_times: list
    off_track: int
    mean_abs_cte: float
    max_abs_cte: float
    frames: int
    sim_seconds: float
    wall_seconds: float
    mean_speed: float
    stopped_early: str = ''
    path: list = field(default_factory=list, repr=False)      # (x, y, |cte|) of the car's centre
    off_track_at: list = field(default_factory=list, repr=False)

    @classmethod
    def of(cls, status, stats: RunStats, frames: int, wall_seconds: float,
           stopped_early: str = '') -> 'DriveResult':
        """The result of a run that ended at ``status`` and was measured by ``stats``."""
        return cls(track=status.track, laps=status.laps, lap_times=list(stats.lap_times),
                   off_track=status.off_track_count, mean_abs_cte=stats.mean_abs_cte,
                   max_abs_cte=stats.cte_max, frames=frames, sim_seconds=status.time,
                   wall_seconds=wall_seconds,
                   mean_speed=status.distance / status.time if status.time else 0.0,
                   stopped_early=stopped_early, path=stats.path, off_track_at=stats.off_track_at)

    def summary(self) -> str:
        times = ', '.join(f'{t:.2f}' for t in self.lap_times) or '-'
        return (f'{self.track}: {self.laps} laps, {self.off_track} off-track events, mean |cte| '
                f'{self.mean_abs_cte:.3f} m (max {self.max_abs_cte:.2f}), mean speed '
                f'{self.mean_speed:.2f} m/s, lap times (s) {times}'
                + (f' [{self.stopped_early}]' if self.stopped_early else ''))

    def as_dict(self) -> dict:
        values = asdict(self)
        values.pop('path')
        values.pop('off_track_at')
        return values


def drive_model(model, track: str = 'oval', laps: int = 3, seed: int = 1,
                settings: SimpleNamespace | None = None, throttle: float | None = None,
                throttle_scale: float = 1.0, max_seconds: float | None = None,
                keep_path: bool = True, progress=None) -> DriveResult:
    """Lets a model drive the simulator (core, no ROS) for ``laps`` laps.

    Args:
        model: a ``ModelRunner`` or a ``.tflite`` path.
        track: shipped track name or YAML path.
        laps: laps to drive.
        seed: the simulator's seed (differs from the recording's: other noise).
        settings: simulator settings (``sim_settings()`` by default).
        throttle: constant throttle instead of the model's; ``throttle_scale`` multiplies it.
        max_seconds: simulated time limit (default: 4x the laps at 1 m/s average, min 60 s).
        progress: called with each completed lap's result so far.
    """
    from donkey_ros.learning.inference import ModelRunner

    runner = model if isinstance(model, ModelRunner) else ModelRunner(model)
    settings = settings or sim_settings(track=track, seed=seed)
    sim = simulator_from_params(settings)
    if max_seconds is None:
        max_seconds = max(60.0, 4.0 * laps * sim.track.length / 1.0)
    dt = 1.0 / FRAME_RATE
    steer = gas = 0.0
    stats = RunStats(keep_path=keep_path)
    started = time.perf_counter()
    stopped = ''
    stuck_since = 0.0
    while sim.status.laps < laps:
        for _ in range(PHYSICS_SUBSTEPS):
            sim.step(dt / PHYSICS_SUBSTEPS, gas, steer)
        status = sim.status
        if stats.update(status, sim.vehicle.center).lap and progress is not None:
            progress(stats.laps, status)
        steering, model_throttle = runner.predict(sim.render())
        steer = min(1.0, max(-1.0, steering))
        gas = throttle if throttle is not None else model_throttle
        gas = min(1.0, max(-1.0, gas * throttle_scale))
        stuck_since = stuck_since + dt if status.speed < 0.05 else 0.0
        if status.time >= max_seconds:
            stopped = f'time limit {max_seconds:.0f} s'
            break
        if stuck_since > 5.0:
            stopped = 'car stopped for 5 s'
            break
    return DriveResult.of(sim.status, stats, frames=stats.samples,
                          wall_seconds=time.perf_counter() - started, stopped_early=stopped)


def drive_with_nodes(model: str | Path, track: str = 'oval', laps: int = 2, seed: int = 1,
                     time_scale: float = 1.0, max_seconds: float | None = None,
                     namespace: str = '', progress=None) -> DriveResult:
    """Drives with the real nodes over rclpy: sim (camera + car), pilot (the model) and mux in
    'pilot' mode, in this process, in real time x ``time_scale``. Frames keep the recording's
    rate in simulated time (the sim publishes ``20 x time_scale`` frames per wall second).
    """
    from rclpy.parameter import Parameter

    from donkey_ros.common.runner import NodeFactory, run_nodes
    from donkey_ros.control.mux_node import MuxNode
    from donkey_ros.learning.pilot_node import PilotNode
    from donkey_ros.resources import config_file
    from donkey_ros.sim.sim_node import SimNode

    settings = sim_settings(track=track, seed=seed)
    sim_overrides = [Parameter(k, value=v) for k, v in vars(settings).items()] + [
        Parameter('rate', value=FRAME_RATE * time_scale),
        Parameter('time_scale', value=float(time_scale)),
        Parameter('physics_substeps', value=PHYSICS_SUBSTEPS)]
    nodes = {}
    length = simulator_from_params(settings).track.length
    if max_seconds is None:
        max_seconds = max(60.0, 4.0 * laps * length / 1.0)
    stats = RunStats(keep_path=True)
    stopped = []

    def tick() -> bool:
        sim = nodes['sim'].sim
        status = sim.status
        if stats.update(status, sim.vehicle.center).lap and progress is not None:
            progress(stats.laps, status)
        if status.laps >= laps:
            return True
        if status.time >= max_seconds:
            stopped.append(f'time limit {max_seconds:.0f} s')
            return True
        return False

    wall = time.monotonic()
    code = run_nodes(
        [NodeFactory(SimNode, sim_overrides, nodes, namespace),
         NodeFactory(PilotNode, [Parameter('model_path', value=str(model))], nodes, namespace),
         NodeFactory(MuxNode, [Parameter('mode', value='pilot')], nodes, namespace)],
        args=['donkey-ros-loop', '--ros-args', '--params-file', str(config_file('sim.yaml'))],
        tick=tick, tick_period=0.02)
    if code != 0:
        raise DonkeyRosError(f'the nodes could not start (exit code {code})')
    return DriveResult.of(nodes['sim'].sim.status, stats, frames=nodes['sim'].frames,
                          wall_seconds=time.monotonic() - wall,
                          stopped_early=stopped[0] if stopped else '')
