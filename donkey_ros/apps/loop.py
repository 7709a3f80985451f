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
import sys
import time
from pathlib import Path

from donkey_ros.apps.drive_model import drive_model, drive_with_nodes
from donkey_ros.apps.loop_pictures import plot_drive
from donkey_ros.apps.record import record_laps
from donkey_ros.common.errors import ConfigError
from donkey_ros.sim.settings import configured_simulator


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
        configured_simulator(track=track)  # fail fast on a bad track name, before minutes of work
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
            picture = plot_drive(result, configured_simulator(track=track).track,
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
