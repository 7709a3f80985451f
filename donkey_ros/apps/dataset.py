"""`donkey-ros dataset`: expert recordings at scale - many generated tracks, many looks - as bags.

    donkey-ros dataset --out data/gen --tracks 30 --seed 0 --laps 1 --every 2

For each of ``--tracks`` generated tracks (seeds ``--seed`` on, all below the benchmark's held-out
range, ``benchmark.HELD_OUT_SEED``), each ``--track`` and each shipped track with ``--shipped``,
the simulator's expert drives ``--laps`` laps ``--per-track`` times (2), each time in another look
drawn by domain randomization (``--randomize``: the sim's ``randomize_*`` groups; ``none`` keeps
the track file's look), clean and recovery recordings in turn:

- a clean recording: the expert on its line;
- a recovery recording: the expert weaves (``--weave``), its steering is disturbed (``--perturb``,
  DART: the executed command is disturbed, the recorded one is the expert's answer) and kicked
  off its line every ``--kicks`` seconds on average; with ``--dagger MODEL`` the model drives
  half of the time while the expert's answer is recorded (DAgger-style corrections).

The simulator core runs in ``--workers`` processes, much faster than real time; bags are ordinary
rosbag2 bags (the recorder's topics), so ``donkey-ros train OUT`` takes them as they are.
"""
from __future__ import annotations

import argparse
import multiprocessing
import time
from dataclasses import dataclass
from pathlib import Path

MAX_SEED = 8999
"""Largest track seed a dataset may use: the benchmark's generated tracks start at 9000."""
LOOK_SEED = 20_000
"""The simulator seeds (looks) of the recordings start here (the benchmark's looks: 77000 on)."""


@dataclass(frozen=True)
class Job:
    path: str
    track: str
    laps: int
    speed: float
    recovery: bool
    perturb: float
    weave: float
    kicks: float
    look_seed: int
    groups: tuple
    every: int
    dagger: str | None


def _record(job: Job):
    from donkey_ros.apps.record import record_expert
    from donkey_ros.sim.settings import sim_settings

    overrides = {f'randomize_{g}': True for g in job.groups}
    settings = sim_settings(track=job.track, seed=job.look_seed, **overrides)
    driver = None
    if job.recovery and job.dagger:
        from donkey_ros.learning.inference import ModelRunner
        runner = ModelRunner(job.dagger)
        driver = runner.predict
    recording = record_expert(
        job.path, job.track, laps=job.laps, speed=job.speed,
        perturb=job.perturb if job.recovery else 0.0, weave=job.weave if job.recovery else 0.0,
        weave_seed=job.look_seed, settings=settings, kicks=job.kicks if job.recovery else 0.0,
        driver=driver, every=job.every, source='donkey-ros dataset (expert)')
    return job, recording


def plan(out: Path, tracks: list, laps: int, speed: float, perturb: float, weave: float,
         kicks: float, groups: tuple, every: int, dagger: str | None, per_track: int = 2) -> list:
    """``per_track`` recordings per track, clean and recovery in turn, each its own look."""
    jobs = []
    for i, track in enumerate(tracks):
        stem = Path(track).stem
        for k in range(per_track):
            recovery = k % 2 == 1
            look = LOOK_SEED + per_track * i + k
            name = f'{stem}_{k:02d}_{"recover" if recovery else "clean"}'
            jobs.append(Job(str(out / 'bags' / name), track, laps, speed, recovery, perturb,
                            weave, kicks, look, groups, every, dagger))
    return jobs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='donkey-ros dataset', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', required=True, help='folder: OUT/tracks, OUT/bags (created)')
    parser.add_argument('--tracks', type=int, default=20, help='generated tracks')
    parser.add_argument('--seed', type=int, default=0, help='first track seed')
    parser.add_argument('--shipped', action='store_true', help='also every shipped track')
    parser.add_argument('--track', action='append', default=[],
                        help='also this track (name or YAML path; repeatable)')
    parser.add_argument('--laps', type=int, default=1, help='laps per recording')
    parser.add_argument('--per-track', type=int, default=2,
                        help='recordings per track (clean and recovery in turn; each its own '
                             'look)')
    parser.add_argument('--speed', type=float, default=1.5, help="the expert's speed, m/s")
    parser.add_argument('--perturb', type=float, default=0.3,
                        help='steering disturbance std of the recovery recordings')
    parser.add_argument('--weave', type=float, default=0.15,
                        help='weave amplitude of the recovery recordings, m')
    parser.add_argument('--kicks', type=float, default=6.0,
                        help='mean seconds between kicks off the line in the recovery recordings '
                             '(0 = none)')
    parser.add_argument('--randomize', default='colors,lighting,camera,distractors',
                        help="domain randomization groups per recording, or 'none'")
    parser.add_argument('--every', type=int, default=1, help='record every n-th frame')
    parser.add_argument('--dagger', default=None, metavar='MODEL',
                        help='a .tflite model that drives half of each recovery recording')
    parser.add_argument('--workers', type=int, default=2, help='processes')
    return parser


def main(argv: list[str]) -> int:
    from donkey_ros.common.errors import ConfigError
    from donkey_ros.sim.generate import generate_track, track_yaml
    from donkey_ros.sim.randomize import GROUPS
    from donkey_ros.sim.track import shipped_tracks

    args = build_parser().parse_args(argv)
    groups = () if args.randomize == 'none' else tuple(
        g.strip() for g in args.randomize.split(',') if g.strip())
    bad = [g for g in groups if g not in GROUPS]
    if bad:
        raise ConfigError(f"unknown randomization group '{bad[0]}' (known: {', '.join(GROUPS)}, "
                          'or none)')
    if args.tracks and not 0 <= args.seed <= MAX_SEED - args.tracks + 1:
        raise ConfigError(f'track seeds {args.seed}-{args.seed + args.tracks - 1} reach the '
                          f'benchmark\'s held-out seeds (a dataset uses 0-{MAX_SEED})')
    if args.every < 1:
        raise ConfigError(f'--every must be >= 1, got {args.every}')
    out = Path(args.out)
    if (out / 'bags').exists() and any((out / 'bags').iterdir()):
        raise ConfigError(f'{out / "bags"} already holds bags: choose another --out')
    (out / 'tracks').mkdir(parents=True, exist_ok=True)
    tracks = list(args.track) + (shipped_tracks() if args.shipped else [])
    for i in range(args.tracks):
        data, _ = generate_track(args.seed + i)
        path = out / 'tracks' / f'{data["name"]}.yaml'
        path.write_text(track_yaml(data), encoding='utf-8')
        tracks.append(str(path))
    jobs = plan(out, tracks, args.laps, args.speed, args.perturb, args.weave, args.kicks, groups,
                args.every, args.dagger, args.per_track)
    print(f'{len(jobs)} recordings on {len(tracks)} tracks, {args.workers} workers', flush=True)
    started = time.monotonic()
    frames = sim_seconds = 0.0
    def done(job: Job, rec) -> None:
        nonlocal frames, sim_seconds
        frames += rec.frames
        sim_seconds += rec.seconds
        print(f'  {Path(job.path).name}: {rec.laps} laps, {rec.frames} frames, '
              f'{rec.seconds:.0f} s, {rec.off_track} off-track', flush=True)

    if args.workers <= 1:
        for job in jobs:
            done(*_record(job))
    else:
        context = multiprocessing.get_context('spawn')
        with context.Pool(args.workers) as pool:
            for result in pool.imap_unordered(_record, jobs):
                done(*result)
    wall = time.monotonic() - started
    print(f'wrote {len(jobs)} bags under {out / "bags"}: {frames:.0f} frames, {sim_seconds:.0f} s '
          f'of driving in {wall:.0f} s ({sim_seconds / wall:.0f}x real time)')
    return 0
