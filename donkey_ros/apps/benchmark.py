"""`donkey-ros benchmark MODEL`: a fixed, held-out suite of tracks and looks, driven by a model.

    donkey-ros benchmark donkey_ros/models/default_pilot.tflite --out runs/bench
    donkey-ros benchmark MODEL --quick          # 3 tracks, 1 lap: a smoke run

The suite: the shipped tracks (4) plus ``--generated`` (20) generated tracks from seeds 9000 on
(``HELD_OUT_SEED``: no training run of this project uses seeds >= 9000), each in two looks -
``normal`` (the track file's look, with the sim node's configured noise and lighting) and
``other`` (colours, lighting and distractors drawn by domain randomization from a seed no
training uses) - at the model's own speed (``1x``: it learned the expert's) and at ``1.7x``
(its throttle x 1.7). Each run drives ``--laps`` laps on the simulator core (no ROS, in
``--workers`` processes), the car put back on the road after each off-track event, as the sim
node does. Per run: laps, off-track events per km, mean |cross-track error|, and the mean lap
time against the expert's on the same track at the same speed factor.

Writes ``OUT/benchmark.md`` (the table), ``OUT/benchmark.json`` (every figure) and
``OUT/benchmark.png`` (every track from above with the driven path, coloured by result).
A bench, not a test: the full suite takes a few minutes on two cores.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HELD_OUT_SEED = 9000
"""First seed of the benchmark's generated tracks. Training data must use seeds below it."""
LOOK_SEED = 77_000
"""Seeds of the benchmark's ``other`` looks (track i: LOOK_SEED + i); training uses seeds below."""
LOOKS = ('normal', 'other', 'dark')
SPEEDS = (1.0, 1.7)
EXPERT_SPEED = 1.5  # m/s, the expert's speed in config/sim.yaml and the loop's recordings


@dataclass(frozen=True)
class Case:
    """One run of the suite."""

    track: str          # shipped name or YAML path
    name: str           # the track's name
    look: str           # 'normal', 'other' or 'dark'
    speed: float        # throttle factor
    look_seed: int
    laps: int
    max_seconds: float
    expert_lap: float   # the expert's mean lap time at this speed factor, s


@dataclass
class Outcome:
    """How one case went."""

    case: Case
    laps: int
    off_track: int
    km: float
    mean_abs_cte: float
    lap_times: list
    stopped_early: str
    path: list = field(default_factory=list, repr=False)
    off_track_at: list = field(default_factory=list, repr=False)

    @property
    def off_per_km(self) -> float:
        return self.off_track / self.km if self.km > 0 else math.inf

    @property
    def lap_ratio(self) -> float:
        """Mean lap time / the expert's (nan without a lap)."""
        if not self.lap_times or not self.case.expert_lap:
            return math.nan
        return sum(self.lap_times) / len(self.lap_times) / self.case.expert_lap


def suite_tracks(generated: int = 20, quick: bool = False, tmp_dir: Path | None = None) -> list:
    """The suite's tracks: (track argument, name). Generated ones are written to ``tmp_dir``."""
    from donkey_ros.sim.generate import generate_track, track_yaml
    from donkey_ros.sim.track import shipped_tracks

    shipped = ['oval'] if quick else shipped_tracks()
    count = 2 if quick else generated
    out = []
    for name in shipped:
        out.append((name, name))
    for i in range(count):
        data, _ = generate_track(HELD_OUT_SEED + i)
        path = Path(tmp_dir) / f'{data["name"]}.yaml'
        path.write_text(track_yaml(data), encoding='utf-8')
        out.append((str(path), data['name']))
    return out


def look_settings(track: str, look: str, look_seed: int):
    """The simulator settings of a look (``sim_settings`` overrides on the sim node's)."""
    from donkey_ros.sim.settings import sim_settings

    if look == 'normal':
        return sim_settings(track=track, seed=look_seed)
    if look == 'other':
        return sim_settings(track=track, seed=look_seed, randomize_colors=True,
                            randomize_lighting=True, randomize_distractors=True)
    if look == 'dark':
        return sim_settings(track=track, seed=look_seed, brightness=0.45)
    raise ValueError(look)


def expert_lap_time(track: str, speed_factor: float, laps: int) -> float:
    """The expert's mean lap time (from rest, like the model's) at ``EXPERT_SPEED`` x factor."""
    from donkey_ros.sim.expert import PurePursuit
    from donkey_ros.sim.factory import simulator_from_params
    from donkey_ros.sim.settings import FRAME_RATE, PHYSICS_SUBSTEPS, sim_settings

    settings = sim_settings(track=track)
    sim = simulator_from_params(settings)
    expert = PurePursuit(sim.track, target_speed=EXPERT_SPEED * speed_factor,
                         max_steer_deg=settings.max_steer_deg, wheelbase=settings.wheelbase,
                         max_speed=settings.max_speed,
                         max_lateral_accel=2.0 * speed_factor ** 2)
    dt = 1.0 / FRAME_RATE
    throttle = steering = 0.0
    times = []
    while sim.status.laps < laps and sim.status.time < 600:
        for _ in range(PHYSICS_SUBSTEPS):
            sim.step(dt / PHYSICS_SUBSTEPS, throttle, steering)
        if sim.status.laps > len(times):
            times.append(sim.status.last_lap_time)
        car = sim.vehicle
        throttle, steering = expert.command(car.x, car.y, car.yaw, car.speed)
    return sum(times) / len(times) if times else 0.0


_RUNNER = None


def _init_worker(model: str) -> None:
    global _RUNNER
    from donkey_ros.learning.inference import ModelRunner
    _RUNNER = ModelRunner(model, threads=1)


def run_case(case: Case) -> Outcome:
    """Drives one case with the worker's model."""
    from donkey_ros.apps.drive_model import drive_model

    settings = look_settings(case.track, case.look, case.look_seed)
    result = drive_model(_RUNNER, track=case.track, laps=case.laps, settings=settings,
                         throttle_scale=case.speed, max_seconds=case.max_seconds,
                         keep_path=True)
    distance = result.mean_speed * result.sim_seconds
    path = result.path[::5]
    return Outcome(case, result.laps, result.off_track, distance / 1000.0, result.mean_abs_cte,
                   list(result.lap_times), result.stopped_early, path,
                   [tuple(p) for p in result.off_track_at])


def build_cases(tracks: list, looks, speeds, laps: int, max_seconds: float | None) -> list:
    cases = []
    for i, (track, name) in enumerate(tracks):
        for speed in speeds:
            expert = expert_lap_time(track, speed, laps)
            limit = max_seconds or max(30.0, 3.0 * expert * laps + 10.0)
            for look in looks:
                cases.append(Case(track, name, look, speed, LOOK_SEED + i, laps, limit, expert))
    return cases


def run_suite(model: str, cases: list, workers: int = 2, progress=None) -> list:
    """Runs every case in ``workers`` processes; outcomes in the order of ``cases``."""
    if workers <= 1:
        _init_worker(model)
        outcomes = []
        for case in cases:
            outcomes.append(run_case(case))
            if progress:
                progress(outcomes[-1])
        return outcomes
    context = multiprocessing.get_context('spawn')
    with context.Pool(workers, initializer=_init_worker, initargs=(model,)) as pool:
        outcomes = []
        for outcome in pool.imap(run_case, cases):
            outcomes.append(outcome)
            if progress:
                progress(outcome)
        return outcomes


def summary(outcomes: list) -> dict:
    """Totals per (look, speed) and overall."""
    groups = {}
    for o in outcomes:
        key = f'{o.case.look} {o.case.speed:g}x'
        g = groups.setdefault(key, {'runs': 0, 'off_track': 0, 'km': 0.0, 'clean': 0,
                                    'laps': 0, 'ratios': []})
        g['runs'] += 1
        g['off_track'] += o.off_track
        g['km'] += o.km
        g['clean'] += o.off_track == 0 and o.laps >= o.case.laps
        g['laps'] += o.laps
        if not math.isnan(o.lap_ratio):
            g['ratios'].append(o.lap_ratio)
    out = {}
    for key, g in groups.items():
        ratios = g.pop('ratios')
        g['off_per_km'] = g['off_track'] / g['km'] if g['km'] else math.inf
        g['mean_lap_ratio'] = sum(ratios) / len(ratios) if ratios else math.nan
        out[key] = g
    return out


def table(outcomes: list, model: str) -> str:
    """The markdown report: one row per track, columns per look and speed."""
    keys = []
    for o in outcomes:
        key = (o.case.look, o.case.speed)
        if key not in keys:
            keys.append(key)
    lines = [f'Benchmark of `{model}`: laps driven / off-track events per km / mean |cte| (m) / '
             'lap time vs the expert\'s, per look and speed.', '']
    head = '| track | length m | ' + ' | '.join(f'{look} {speed:g}x' for look, speed in keys) + ' |'
    lines += [head, '|---|---:|' + '---|' * len(keys)]
    rows = {}
    for o in outcomes:
        rows.setdefault(o.case.name, {})[(o.case.look, o.case.speed)] = o
    from donkey_ros.sim.track import load_track
    for name, cells in rows.items():
        first = next(iter(cells.values()))
        length = load_track(first.case.track).length
        parts = []
        for key in keys:
            o = cells.get(key)
            if o is None:
                parts.append('-')
                continue
            ratio = '-' if math.isnan(o.lap_ratio) else f'{o.lap_ratio:.2f}'
            mark = '' if o.off_track == 0 and o.laps >= o.case.laps else ' ✗'
            parts.append(f'{o.laps}/{o.case.laps} · {o.off_per_km:.1f} · {o.mean_abs_cte:.3f} · '
                         f'{ratio}{mark}')
        lines.append(f'| {name} | {length:.0f} | ' + ' | '.join(parts) + ' |')
    lines += ['', '| look, speed | runs | clean runs | off-track events | km | per km | '
              'lap time vs expert |', '|---|---:|---:|---:|---:|---:|---:|']
    for key, g in summary(outcomes).items():
        lines.append(f"| {key} | {g['runs']} | {g['clean']} | {g['off_track']} | "
                     f"{g['km']:.2f} | {g['off_per_km']:.2f} | {g['mean_lap_ratio']:.3f} |")
    return '\n'.join(lines) + '\n'


def picture(outcomes: list, path: Path, title: str) -> Path:
    """A grid: every track from above, the path driven in the normal look at 1x (blue) and
    where the car left the road in any run (red x); the panel's colour says how the track went over all its runs (green: no off-track event, orange: only
    at the faster speed or in the other look, red: at the expert's speed in the normal look)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np

    from donkey_ros.sim.track import load_track

    by_track = {}
    for o in outcomes:
        by_track.setdefault(o.case.name, []).append(o)
    n = len(by_track)
    cols = min(6, n)
    rows = math.ceil(n / cols)
    figure, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows + 0.4),
                                squeeze=False)
    for axis in axes.ravel():
        axis.axis('off')
    for axis, (name, runs) in zip(axes.ravel(), by_track.items()):
        track = load_track(runs[0].case.track)
        base = [o for o in runs if o.case.look == 'normal' and o.case.speed == 1.0]
        worst_base = max((o.off_track for o in base), default=0)
        total = sum(o.off_track for o in runs)
        incomplete = any(o.laps < o.case.laps for o in runs)
        color = ('#d62728' if worst_base or any(o.laps < o.case.laps for o in base)
                 else '#ff7f0e' if total or incomplete else '#2ca02c')
        pts = track.points
        normal = np.stack([-np.sin(track.headings), np.cos(track.headings)], axis=1)
        for side in (-1, 1):
            edge = pts + side * track.road_width / 2 * normal
            axis.plot(*np.vstack([edge, edge[:1]]).T, color='0.4', linewidth=0.6)
        if base and base[0].path:
            xy = np.array(base[0].path)
            axis.plot(xy[:, 0], xy[:, 1], color='#1f77b4', linewidth=0.8)
        off = [p for o in runs for p in o.off_track_at]
        if off:
            off = np.array(off)
            axis.scatter(off[:, 0], off[:, 1], marker='x', color='#d62728', s=12, linewidths=0.8)
        axis.set_aspect('equal')
        axis.axis('on')
        axis.set_xticks([])
        axis.set_yticks([])
        for spine in axis.spines.values():
            spine.set_edgecolor(color)
            spine.set_linewidth(4)
        axis.set_title(f'{name}: {total} off', fontsize=8, color=color)
    figure.suptitle(title, fontsize=8, wrap=True)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='donkey-ros benchmark', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', help='the .tflite pilot model')
    parser.add_argument('--out', default='benchmark', help='folder for the report (created)')
    parser.add_argument('--generated', type=int, default=20,
                        help=f'generated tracks (seeds {HELD_OUT_SEED} on)')
    parser.add_argument('--looks', default='normal,other',
                        help=f"comma list of {', '.join(LOOKS)}")
    parser.add_argument('--speeds', default='1,1.7', help='throttle factors, comma list')
    parser.add_argument('--laps', type=int, default=1, help='laps per run')
    parser.add_argument('--max-seconds', type=float, default=None,
                        help='simulated time limit per run (default 3x the expert\'s laps)')
    parser.add_argument('--workers', type=int, default=2, help='processes')
    parser.add_argument('--quick', action='store_true',
                        help='a smoke run: the oval and 2 generated tracks, 1 lap')
    return parser


def main(argv: list[str]) -> int:
    from donkey_ros.common.errors import ConfigError

    args = build_parser().parse_args(argv)
    looks = tuple(v.strip() for v in args.looks.split(',') if v.strip())
    bad = [v for v in looks if v not in LOOKS]
    if bad:
        raise ConfigError(f"unknown look '{bad[0]}' (known: {', '.join(LOOKS)})")
    try:
        speeds = tuple(float(v) for v in args.speeds.split(','))
    except ValueError:
        raise ConfigError(f"--speeds must be numbers, got '{args.speeds}'") from None
    if not Path(args.model).is_file():
        raise ConfigError(f'{args.model}: no such model file')
    laps = 1 if args.quick else args.laps
    out = Path(args.out)
    (out / 'tracks').mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    tracks = suite_tracks(args.generated, args.quick, out / 'tracks')
    cases = build_cases(tracks, looks, speeds, laps, args.max_seconds)
    print(f'{len(tracks)} tracks x {len(looks)} looks x {len(speeds)} speeds = {len(cases)} '
          f'runs of {laps} lap(s), {args.workers} workers', flush=True)

    def progress(o: Outcome) -> None:
        print(f'  {o.case.name:>12} {o.case.look:>6} {o.case.speed:g}x: {o.laps} laps, '
              f'{o.off_track} off-track, |cte| {o.mean_abs_cte:.3f}'
              + (f' [{o.stopped_early}]' if o.stopped_early else ''), flush=True)

    outcomes = run_suite(args.model, cases, args.workers, progress)
    seconds = time.monotonic() - started
    report = table(outcomes, args.model)
    report += f'\n{len(cases)} runs in {seconds:.0f} s ({args.workers} workers).\n'
    (out / 'benchmark.md').write_text(report, encoding='utf-8')
    data = {'model': args.model, 'seconds': seconds, 'summary': summary(outcomes),
            'runs': [{**asdict(o.case), 'laps_driven': o.laps, 'off_track': o.off_track,
                      'km': o.km, 'off_per_km': o.off_per_km, 'mean_abs_cte': o.mean_abs_cte,
                      'lap_times': o.lap_times, 'lap_ratio': o.lap_ratio,
                      'stopped_early': o.stopped_early} for o in outcomes]}
    (out / 'benchmark.json').write_text(json.dumps(data, indent=1, default=str),
                                        encoding='utf-8')
    picture(outcomes, out / 'benchmark.png',
            f'{Path(args.model).name}: blue path normal look 1x, red x off-track (any run)\n'
            'frame: green clean, orange off only faster or other look, red off at 1x normal')
    print('\n' + report)
    print(f'wrote {out / "benchmark.md"}, {out / "benchmark.json"}, {out / "benchmark.png"}')
    return 0
