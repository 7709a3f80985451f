"""`donkey-ros loop`: the whole record -> train -> drive loop in the simulator, measured.

    donkey-ros loop --track oval --record-laps 10 --drive-laps 10 --other-track waveshare

1. record: the simulator's expert (pure pursuit; on every other recording the car is pushed off its
   line by a random steering disturbance while the expert's correction is recorded, so the data
   shows recoveries) drives ``--record-laps`` laps; frames, ``user/cmd``, ``drive_mode`` and
   ``sim/status`` are written as rosbag2 bags (the recorder's format) under ``WORKDIR/bags``.
2. train: ``donkey-ros train`` on those bags (same code, same options) -> ``WORKDIR/pilot.tflite``.
3. drive: the model drives ``--drive-laps`` laps of the same track (and of ``--other-track``, which
   it never saw); prints laps completed, off-track events, mean |cross-track error| and lap
   times, and draws the driven path (``WORKDIR/drive_<track>.png``).

Recording and the fast drive use the plain simulator core in this process: it renders ~3000
frames/s, so ten laps take seconds, and the simulator's physics, camera and timing are the ones the
sim node runs (a command computed from frame t acts during the next frame period, as through
ROS). ``--via ros`` drives instead with the real nodes - sim, pilot, mux - over rclpy, in real
time (or ``--time-scale`` faster).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from donkey_ros.common.errors import ConfigError, DonkeyRosError
from donkey_ros.sim.run_stats import RunStats

FRAME_RATE = 20.0        # camera frames per second, as the sim node's default `rate`
PHYSICS_SUBSTEPS = 4     # as the sim node's default `physics_substeps`
START_NS = 1_700_000_000_000_000_000


# --- simulator settings shared with the sim node -------------------------------------------------
def sim_settings(**overrides) -> SimpleNamespace:
    """The sim node's parameter values: SIM_PARAMS defaults, then ``config/sim.yaml``, then
    ``overrides`` - so the loop's simulator is the one ``donkey-ros drive`` runs."""
    from donkey_ros.common.param_file import node_params, read_param_file
    from donkey_ros.resources import config_file
    from donkey_ros.sim.factory import SIM_PARAMS

    values = {p.name: p.default for p in SIM_PARAMS}
    # The sim node's section as rcl gives it to the node (ParamFileError: the file is unreadable).
    configured = node_params(read_param_file(config_file('sim.yaml')), 'sim') or {}
    values.update({k: v for k, v in configured.items() if k in values})
    unknown = set(overrides) - set(values)
    if unknown:
        raise ConfigError(f"unknown simulator setting(s): {', '.join(sorted(unknown))}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return SimpleNamespace(**values)


def make_simulator(settings: SimpleNamespace):
    from donkey_ros.sim.factory import simulator_from_params
    return simulator_from_params(settings)


# --- recording -----------------------------------------------------------------------------------
@dataclass
class Recording:
    """What ``record_expert`` wrote."""

    path: Path
    frames: int
    laps: int
    off_track: int
    seconds: float
    track: str


def record_expert(path: str | Path, track: str = 'oval', laps: int = 5, speed: float = 1.5,
                  perturb: float = 0.0, weave: float = 0.0, weave_seed: int = 0, seed: int = 0,
                  settings: SimpleNamespace | None = None, progress=None) -> Recording:
    """Lets the expert drive ``laps`` laps and writes what a recorder would have: camera frames,
    ``user/cmd`` (the expert's command for each frame, stamped with it), ``drive_mode`` ('user')
    and ``sim/status`` when its message type is available.

    Args:
        path: bag directory to create.
        track: shipped track name or YAML path.
        laps: laps to record.
        speed: the expert's target speed, m/s.
        perturb: std of a random steering disturbance added to what the car *does* (a slow
            Ornstein-Uhlenbeck process, 0.6 s correlation time), while the *recorded* command
            stays the expert's answer for the state the car is in: recovery data whose labels
            are always right (DART). The weave below instead records the weave itself, which the
            model then learns to imitate.
        weave: lateral weave amplitude of the expert's path, m.
        weave_seed: varies the weave and the disturbance between recordings.
        seed: the simulator's seed (texture, pixel noise).
        settings: simulator settings (``sim_settings()`` by default, with ``track``/``seed``).
        progress: called with the laps done so far after each lap.
    """
    from donkey_ros.common import topics
    from donkey_ros.recording import messages
    from donkey_ros.recording.types import typestore
    from donkey_ros.recording.writer import BagWriter
    from donkey_ros.sim.expert import PurePursuit

    settings = settings or sim_settings(track=track, seed=seed)
    sim = make_simulator(settings)
    expert = PurePursuit(sim.track, target_speed=speed, max_steer_deg=settings.max_steer_deg,
                         wheelbase=settings.wheelbase, max_speed=settings.max_speed,
                         weave_amplitude=weave, seed=weave_seed)
    with_status = topics.TYPES[topics.SIM_STATUS] in typestore().fielddefs
    dt = 1.0 / FRAME_RATE
    max_frames = int(laps * (sim.track.length / max(0.2, speed)) * 3 * FRAME_RATE) + 100
    frame = 0
    with BagWriter(path, custom_data={'donkey_ros.source': 'donkey-ros loop (expert)',
                                      'donkey_ros.track': sim.track.name}) as writer:
        image_topic = messages.add_topic(writer, topics.IMAGE)
        cmd_topic = messages.add_topic(writer, topics.USER_CMD)
        mode_topic = messages.add_topic(writer, topics.DRIVE_MODE)
        if with_status:
            status_topic = messages.add_topic(writer, topics.SIM_STATUS)
        messages.write(writer, mode_topic, START_NS, messages.string('user'))
        throttle = steering = disturbance = 0.0
        rng = np.random.default_rng(weave_seed)
        correlation_time = 0.6
        while sim.status.laps < laps and frame < max_frames:
            executed = min(1.0, max(-1.0, steering + disturbance))
            for _ in range(PHYSICS_SUBSTEPS):
                sim.step(dt / PHYSICS_SUBSTEPS, throttle, executed)
            status = sim.status
            v = sim.vehicle
            throttle, steering = expert.command(v.x, v.y, v.yaw, v.speed)
            if perturb:
                disturbance += (-disturbance * dt / correlation_time
                                + perturb * math.sqrt(2 * dt / correlation_time)
                                * rng.standard_normal())
            pixels = sim.render()
            stamp = START_NS + int(round(status.time * 1e9))
            # Frame ids as the nodes send them: cmd base_link, image camera, status odom.
            messages.write(writer, cmd_topic, stamp,
                           messages.twist_stamped(stamp, steering, throttle))
            messages.write(writer, image_topic, stamp, messages.image(stamp, pixels))
            if with_status:
                messages.write(writer, status_topic, stamp,
                               messages.sim_status(stamp, **status.message_fields()))
            frame += 1
            if progress is not None and status.laps and frame % 20 == 0:
                progress(status.laps)
    status = sim.status
    return Recording(Path(path), frame, status.laps, status.off_track_count, status.time,
                     sim.track.name)


# --- driving -------------------------------------------------------------------------------------
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
    sim = make_simulator(settings)
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


def plot_drive(result: DriveResult, track, path: str | Path, title: str = '') -> Path:
    """The track and the driven path coloured by |cross-track error|, off-track events marked."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    s = np.linspace(0.0, track.length, max(200, int(track.length / 0.05)), endpoint=False)
    centre = np.array([track.point_at(v) for v in s])
    heading = np.array([track.heading_at(v) for v in s])
    normal = np.stack([-np.sin(heading), np.cos(heading)], axis=1)
    half = track.road_width / 2
    figure, axis = plt.subplots(figsize=(8, 6))
    for side in (-1, 1):
        edge = centre + side * half * normal
        axis.plot(*np.vstack([edge, edge[:1]]).T, color='black', linewidth=1)
    axis.plot(*np.vstack([centre, centre[:1]]).T, color='goldenrod', linestyle='--',
              linewidth=0.8, label='centre line')
    if result.path:
        xy = np.array(result.path)
        points = axis.scatter(xy[:, 0], xy[:, 1], c=xy[:, 2], s=3, cmap='viridis',
                              vmin=0.0, vmax=half)
        figure.colorbar(points, ax=axis, label='|cross-track error| (m)')
    if result.off_track_at:
        off = np.array(result.off_track_at)
        axis.scatter(off[:, 0], off[:, 1], marker='x', color='red', s=60,
                     label=f'off track ({len(off)})')
    axis.set_aspect('equal')
    axis.set_xlabel('x (m)')
    axis.set_ylabel('y (m)')
    axis.legend(loc='upper right', fontsize=8)
    axis.set_title(title or f'{result.track}: {result.laps} laps, {result.off_track} off-track, '
                            f'mean |cte| {result.mean_abs_cte:.3f} m', fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return Path(path)


# --- driving through the real nodes --------------------------------------------------------------
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
    length = make_simulator(settings).track.length
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


# --- command line ----------------------------------------------------------------------------------
def record_laps(workdir: Path, tracks: list[str], laps: int, perturb: float, speed: float,
                weave: float = 0.0, laps_per_bag: int = 2, log=print) -> list[Recording]:
    """``laps`` expert laps per track, ``laps_per_bag`` per bag; every other bag is disturbed
    (``perturb``, recovery data) and weaves (``weave``)."""
    recordings = []
    for track in tracks:
        done, index = 0, 0
        while done < laps:
            count = min(laps_per_bag, laps - done)
            disturbed = index % 2 == 1
            name = f'{Path(track).stem}_{index:02d}'
            path = workdir / 'bags' / name
            recording = record_expert(path, track, laps=count, speed=speed,
                                      perturb=perturb if disturbed else 0.0,
                                      weave=weave if disturbed else 0.0,
                                      weave_seed=index, seed=100 + index)
            extra = (f', disturbed (steering noise {perturb:g}'
                     + (f', weave {weave:g} m' if weave else '') + ')') if disturbed else ''
            log(f'  {name}: {recording.laps} laps, {recording.frames} frames, '
                f'{recording.seconds:.0f} s{extra}, {recording.off_track} off-track')
            recordings.append(recording)
            done += count
            index += 1
    return recordings


def build_parser() -> argparse.ArgumentParser:
    from donkey_ros.apps.train import add_training_options

    parser = argparse.ArgumentParser(
        prog='donkey-ros loop', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--track', default='oval',
                        help='track(s) to record and drive, comma list (shipped name or YAML)')
    parser.add_argument('--record-laps', type=int, default=10, help='expert laps per track')
    parser.add_argument('--perturb', type=float, default=0.25,
                        help='every other recording: std of a random steering disturbance of '
                             'the car while the expert\'s correct command is recorded '
                             '(recovery data)')
    parser.add_argument('--weave', type=float, default=0.0,
                        help='every other recording: weave amplitude (m) of the expert\'s path '
                             '(recorded as driven; the model learns to weave too)')
    parser.add_argument('--speed', type=float, default=1.5, help="expert's target speed, m/s")
    parser.add_argument('--drive-laps', type=int, default=10, help='laps the model drives')
    parser.add_argument('--other-track', default='',
                        help='track(s) the model never saw, also driven (comma list)')
    parser.add_argument('--workdir', default='runs/loop', help='bags, model and figures go here')
    parser.add_argument('--output', default=None,
                        help='model path (default WORKDIR/pilot.tflite)')
    parser.add_argument('--via', choices=('core', 'ros'), default='core',
                        help='drive with the simulator core in-process (fast) or the real '
                             'sim/pilot/mux nodes over rclpy (real time x --time-scale)')
    parser.add_argument('--time-scale', type=float, default=1.0,
                        help='--via ros: simulated seconds per wall second')
    parser.add_argument('--skip-record', action='store_true',
                        help='reuse the bags already in WORKDIR/bags')
    parser.add_argument('--skip-train', action='store_true',
                        help='reuse the model already at --output')
    parser.add_argument('--drive-seed', type=int, default=1,
                        help="simulator seed when driving (the recordings' seeds differ)")
    add_training_options(parser)
    parser.set_defaults(epochs=30)
    return parser


def main(argv: list[str]) -> int:
    from donkey_ros.apps.train import command_line, config_from_args, load_bags, print_result
    from donkey_ros.learning.train import train

    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    workdir = Path(args.workdir)
    model = Path(args.output) if args.output else workdir / 'pilot.tflite'
    tracks = [t for t in args.track.split(',') if t]
    others = [t for t in args.other_track.split(',') if t]
    for track in tracks + others:
        sim_settings(track=track)  # fail fast on a bad track name, before minutes of work
        make_simulator(sim_settings(track=track))
    summary = {'command': command_line(argv, 'donkey-ros loop'), 'tracks': tracks,
               'other_tracks': others}
    started = time.monotonic()

    if not args.skip_record:
        if (workdir / 'bags').exists() and any((workdir / 'bags').iterdir()):
            raise ConfigError(f'{workdir / "bags"} already holds bags: use --skip-record to '
                              'reuse them, or another --workdir')
        print(f'[1/3] recording {args.record_laps} expert laps on {", ".join(tracks)}',
              flush=True)
        step = time.monotonic()
        recordings = record_laps(workdir, tracks, args.record_laps, args.perturb, args.speed,
                                 weave=args.weave)
        summary['record'] = {'seconds': round(time.monotonic() - step, 1),
                             'frames': sum(r.frames for r in recordings),
                             'laps': sum(r.laps for r in recordings)}
    if not args.skip_train:
        print(f'[2/3] training on {workdir / "bags"}', flush=True)
        step = time.monotonic()
        frames, metadata, counts = load_bags([workdir / 'bags'], config)
        result = train(frames, config, model, metadata,
                       command=summary['command'], counts=counts)
        print_result(result)
        summary['train'] = {'seconds': round(time.monotonic() - step, 1),
                            'frames': len(frames), 'epochs': result.epochs,
                            'val_steering_mae': round(result.val_steering_mae, 4),
                            'int8_val_steering_mae': None if result.int8_steering_mae is None
                            else round(result.int8_steering_mae, 4)}
    models = [model]
    if config.quantize == 'int8':
        from donkey_ros.learning.export import int8_path
        models.append(int8_path(model))
    print(f'[3/3] driving {args.drive_laps} laps ({args.via})', flush=True)
    drives = []
    for path in models:
        for track in tracks + others:
            label = f'{path.name} on {Path(track).stem}' + (
                ' (never seen)' if track in others else '')

            def lap_done(count, status, label=label):
                print(f'  {label}: lap {count} {status.last_lap_time:.2f} s, '
                      f'{status.off_track_count} off-track', flush=True)

            if args.via == 'ros':
                result = drive_with_nodes(path, track, args.drive_laps, seed=args.drive_seed,
                                          time_scale=args.time_scale, progress=lap_done)
            else:
                result = drive_model(path, track, args.drive_laps, seed=args.drive_seed,
                                     progress=lap_done)
            picture = plot_drive(result, make_simulator(sim_settings(track=track)).track,
                                 workdir / f'drive_{path.stem}_{Path(track).stem}.png',
                                 title=f'{label}: {result.laps} laps, {result.off_track} '
                                       f'off-track, mean |cte| {result.mean_abs_cte:.3f} m')
            drives.append({'model': path.name, 'track': result.track,
                           'seen_in_training': track in tracks, 'picture': str(picture),
                           **result.as_dict()})
            print(f'  {label}: {result.summary().split(": ", 1)[1]}', flush=True)
    summary['drive'] = drives
    summary['wall_seconds'] = round(time.monotonic() - started, 1)
    report = workdir / 'loop.json'
    report.write_text(json.dumps(summary, indent=2, default=float) + '\n')
    print('\nsummary')
    for drive in drives:
        seen = 'trained on' if drive['seen_in_training'] else 'never seen'
        times = ', '.join(f'{t:.2f}' for t in drive['lap_times']) or '-'
        print(f"  {drive['model']:>22} {drive['track']:>10} ({seen}): {drive['laps']} laps, "
              f"{drive['off_track']} off-track, mean |cte| {drive['mean_abs_cte']:.3f} m, "
              f'lap times {times} s')
    if 'train' in summary:
        print(f"  training: {summary['train']['frames']} frames, {summary['train']['epochs']} "
              f"epochs, {summary['train']['seconds']:.0f} s wall")
    print(f'  wrote {report} and the drive_*.png pictures in {workdir}')
    return 0


if __name__ == '__main__':  # the same as `donkey-ros loop`
    from donkey_ros.cli import main as cli_main
    sys.exit(cli_main(['loop', *sys.argv[1:]]))
