"""Does style augmentation make a pilot robust to a new-looking track? Plain vs style-augmented.

    python -m donkey_ros.apps.style_experiment --workdir runs/style_experiment

1. record: the simulator's expert drives the default ``oval`` (some laps on the centre line, some
   weaving for recovery data) into bags, as ``donkey-ros loop`` does;
2. train, per seed: ``donkey-ros train BAGS`` (plain) and the same command with
   ``--style-augment STYLES --style-fraction F`` (the exact command lines are printed);
3. drive: each model drives ``oval`` (the track it saw) and ``oval_night`` (same shape, every colour
   and texture changed) for ``--drive-laps`` laps; laps completed and off-track events are printed,
   written to ``results.md`` / ``results.json`` and drawn (``experiment.png``, driven paths).

Steps whose output exists are skipped (delete the workdir to start over).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

TRACKS = ('oval', 'oval_night')
# A broad spread of the 26 styles (palettes from pale to dark, warm to cold), chosen from the
# contact sheet of the *training* track for keeping the road's edges visible - not for looking
# like oval_night.
STYLES = ('style0', 'style3', 'style5', 'style10', 'style13', 'style16', 'style19', 'style22',
          'style24')


def record(workdir: Path, laps: int) -> list[Path]:
    from donkey_ros.apps.record import record_expert

    bags = []
    for name, weave, share in (('oval_centre', 0.0, 0.5), ('oval_weave', 0.3, 0.5)):
        path = workdir / 'bags' / name
        bags.append(path)
        if path.exists():
            continue
        started = time.monotonic()
        result = record_expert(path, 'oval', laps=max(1, round(laps * share)), weave=weave,
                               weave_seed=1, seed=0)
        print(f'recorded {path}: {result.frames} frames, {result.laps} laps, weave {weave} m, '
              f'{result.off_track} off-track ({time.monotonic() - started:.0f} s)', flush=True)
    return bags


def augment_examples(bags: list[Path], styles: tuple, path: Path, scale: int = 2) -> Path:
    """A recorded training frame and its stylized copies, as the training run sees them
    (160x120, shown ``scale`` x larger)."""
    import cv2

    from donkey_ros.recording.dataset import iter_samples
    from donkey_ros.style.augment import stylize_cache
    from donkey_ros.style.pictures import contact_sheet
    from donkey_ros.style.stylizer import Stylizer, write_image

    samples = iter_samples([bags[-1]])
    sample = next(s for i, s in enumerate(samples) if i == 400)
    stylizer = Stylizer(warmup=())
    tiles = [('recorded', sample.image)]
    for style in styles:
        copy = list(stylize_cache([sample], [style], 1.0, path.parent / 'style_cache',
                                  stylizer=stylizer))[1]
        tiles.append((style, copy.image))
    tiles = [(label, cv2.resize(image, None, fx=scale, fy=scale,
                                interpolation=cv2.INTER_NEAREST)) for label, image in tiles]
    return write_image(path, contact_sheet(tiles, columns=5))


def train_command(bags: list[Path], output: Path, seed: int, epochs: int,
                  styles: tuple = (), fraction: float = 0.5, cache: Path | None = None) -> list:
    argv = [str(b) for b in bags] + ['-o', str(output), '--seed', str(seed),
                                     '--epochs', str(epochs)]
    if styles:
        argv += ['--style-augment', *styles, '--style-fraction', f'{fraction:g}',
                 '--style-cache', str(cache)]
    return argv


def train_model(argv: list) -> None:
    from donkey_ros.apps import train

    output = Path(argv[argv.index('-o') + 1])
    print(f'\n$ donkey-ros train {" ".join(shlex.quote(a) for a in argv)}', flush=True)
    if output.exists():
        print(f'{output} exists: skipped')
        return
    train.main(argv)


def drive(models: dict, laps: int, workdir: Path) -> dict:
    from donkey_ros.apps.drive_model import drive_model
    from donkey_ros.apps.loop_pictures import plot_drive
    from donkey_ros.sim.track import load_track

    results = {}
    for name, path in models.items():
        for track in TRACKS:
            result = drive_model(path, track, laps=laps, seed=1)
            results[(name, track)] = result
            print(f'{name:>14} on {result.summary()}', flush=True)
            plot_drive(result, load_track(track), drive_picture(workdir, name, track),
                       title=f'{name} on {track}: {result.laps} laps, {result.off_track} '
                             'off-track events')
    return results


def drive_picture(workdir: Path, name: str, track: str) -> Path:
    return workdir / f'drive_{name.replace(" ", "_")}_{track}.png'


def side_by_side(paths: list[Path], out: Path) -> Path:
    """The pictures next to each other (same height), as one PNG."""
    import cv2

    from donkey_ros.style.stylizer import read_image, write_image
    images = [read_image(p) for p in paths]
    height = min(i.shape[0] for i in images)
    images = [cv2.resize(i, (round(i.shape[1] * height / i.shape[0]), height)) for i in images]
    return write_image(out, np.hstack(images))


def write_results(results: dict, workdir: Path, commands: list, laps: int) -> None:
    rows = ['| model | track | laps completed | off-track events | mean abs cte (m) | '
            'stopped |', '|---|---|---|---|---|---|']
    data = []
    for (name, track), r in results.items():
        rows.append(f'| {name} | {track} | {r.laps} / {laps} | {r.off_track} | '
                    f'{r.mean_abs_cte:.3f} | {r.stopped_early or "-"} |')
        data.append({'model': name, 'track': track, **r.as_dict()})
    text = '\n'.join(['# Style augmentation experiment', '', 'Commands:', '']
                     + [f'    donkey-ros train {" ".join(map(shlex.quote, c))}' for c in commands]
                     + [''] + rows + [''])
    (workdir / 'results.md').write_text(text)
    (workdir / 'results.json').write_text(json.dumps(data, indent=1, default=str))
    print('\n' + '\n'.join(rows))
    plot_results(results, workdir / 'experiment.png', laps)


def plot_results(results: dict, path: Path, laps: int) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(name for name, _ in results))
    figure, axis = plt.subplots(figsize=(8, 3.8))
    x = np.arange(len(names))
    for k, track in enumerate(TRACKS):
        bars = axis.bar(x + (k - 0.5) * 0.38, [results[(n, track)].off_track for n in names],
                        0.38, label=track)
        axis.bar_label(bars)
    axis.set_ylabel(f'off-track events in {laps} laps')
    axis.set_xticks(x, names, fontsize=8)
    axis.legend(fontsize=8)
    complete = all(r.laps == laps for r in results.values())
    axis.set_title('every drive completed its laps (the simulator puts the car back on the '
                   'road after each event)' if complete else 'some drives stopped early: '
                   'see results.md', fontsize=8)
    figure.suptitle('plain vs style-augmented pilots, trained on oval')
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--workdir', default='runs/style_experiment')
    parser.add_argument('--record-laps', type=int, default=8)
    parser.add_argument('--drive-laps', type=int, default=3)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--epochs', type=int, default=30)
    parser.add_argument('--styles', nargs='+', default=list(STYLES))
    parser.add_argument('--fraction', type=float, default=0.5)
    args = parser.parse_args(argv)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    bags = record(workdir, args.record_laps)
    print(f'wrote {augment_examples(bags, tuple(args.styles), workdir / "augment_examples.png")}')
    commands, models = [], {}
    for seed in args.seeds:
        for kind, styles in (('plain', ()), ('styled', tuple(args.styles))):
            output = workdir / f'{kind}_s{seed}.tflite'
            command = train_command(bags, output, seed, args.epochs, styles, args.fraction,
                                    workdir / 'style_cache')
            train_model(command)
            commands.append(command)
            models[f'{kind} seed {seed}'] = output
    print()
    results = drive(models, args.drive_laps, workdir)
    write_results(results, workdir, commands, args.drive_laps)
    first = args.seeds[0]
    print('wrote', side_by_side([drive_picture(workdir, f'{kind} seed {first}', 'oval_night')
                                 for kind in ('plain', 'styled')], workdir / 'drive_night.png'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
