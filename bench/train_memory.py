"""Training memory and throughput, in-memory vs streaming data path, measured in one run.

Generates driving with the simulator (the expert of `donkey-ros loop`, recorded as ordinary bags
at 160x120, ~4400 frames a bag; the bags are cached in --cache, so reruns skip this), then for each
--frames count and each --paths data path runs `donkey-ros train BAGS --epochs 1 --data-path P`
as a child process and reports its peak RSS (the kernel's maxrss of that child), its wall time,
the training frames/s of the epoch (the progress line) and the end-to-end frames/s (frames read,
prepared and trained on / the child's wall time, TensorFlow's start-up and the export included).

    python bench/train_memory.py [--frames 10000 100000] [--paths memory stream] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LAPS_PER_BAG = 10


def simulated_bags(cache: Path, frames: int, log=print) -> list[tuple[Path, int]]:
    """Expert laps in the simulator, one bag per LAPS_PER_BAG laps, until ``frames`` frames;
    (bag, frames) pairs. Bags already in ``cache`` are reused."""
    from donkey_ros.apps.record import record_expert

    cache.mkdir(parents=True, exist_ok=True)
    manifest_path = cache / 'manifest.json'
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    bags, total, index = [], 0, 0
    while total < frames:
        name = f'expert_{index:03d}'
        if name not in manifest or not (cache / name / 'metadata.yaml').is_file():
            started = time.monotonic()
            recording = record_expert(cache / name, track='oval', laps=LAPS_PER_BAG,
                                      perturb=0.3, weave=0.1, weave_seed=index, seed=index)
            manifest[name] = recording.frames
            manifest_path.write_text(json.dumps(manifest, indent=1))
            log(f'simulated {name}: {recording.frames} frames in '
                f'{time.monotonic() - started:.0f} s')
        bags.append((cache / name, manifest[name]))
        total += manifest[name]
        index += 1
    return bags


def run_train(bags: list[Path], path: str, output: Path, threads: int, extra=()) -> dict:
    """One `donkey-ros train` child: peak RSS, CPU and wall time, frames/s."""
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, '-m', 'donkey_ros.cli', 'train', *map(str, bags), '--epochs', '1',
               '--data-path', path, '--output', str(output), '--threads', str(threads), *extra]
    env = {**os.environ, 'PYTHONPATH': str(ROOT), 'TF_CPP_MIN_LOG_LEVEL': '2'}
    started = time.monotonic()
    with open(output.with_suffix('.log'), 'w') as log:
        child = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - started
    text = output.with_suffix('.log').read_text()
    if status != 0:
        raise SystemExit(f'train failed ({path}):\n{text[-3000:]}')
    frames = int(re.search(r'^data: (\d+) frames', text, re.M).group(1))
    epoch = re.search(r'epoch 1/1: ([\d,]+) frames/s', text)
    return {'path': path, 'frames': frames, 'peak_rss_gb': usage.ru_maxrss / 2**20,
            'wall_s': wall, 'cpu_s': usage.ru_utime + usage.ru_stime,
            'fit_fps': float(epoch.group(1).replace(',', '')) if epoch else float('nan'),
            'end_to_end_fps': frames / wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, nargs='+', default=[10000, 100000])
    parser.add_argument('--paths', nargs='+', default=['memory', 'stream'],
                        choices=['memory', 'stream'])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--cache', default=str(ROOT / 'runs' / 'cache' / 'sim_bags'),
                        help='folder of the generated bags (kept for reruns)')
    parser.add_argument('--out', default=str(ROOT / 'runs' / 'bench' / 'train_memory'))
    parser.add_argument('--train-args', default='', help='more `donkey-ros train` options')
    args = parser.parse_args(argv)

    all_bags = simulated_bags(Path(args.cache), max(args.frames))
    results = []
    for count in args.frames:
        bags, total = [], 0
        for bag, frames in all_bags:
            if total >= count:
                break
            bags.append(bag)
            total += frames
        for path in args.paths:
            result = run_train(bags, path, Path(args.out) / f'{path}_{count}' / 'pilot.tflite',
                               args.threads, args.train_args.split())
            result['requested'] = count
            results.append(result)
            print(f"{path:6} {result['frames']:7d} frames: peak RSS "
                  f"{result['peak_rss_gb']:.2f} GB, wall {result['wall_s']:.0f} s, "
                  f"CPU {result['cpu_s']:.0f} s, "
                  f"epoch {result['fit_fps']:.0f} frames/s, end to end "
                  f"{result['end_to_end_fps']:.0f} frames/s", flush=True)

    print(f'\n{os.cpu_count()} CPUs, --threads {args.threads}, 160x120 simulator frames, '
          'default model (small, 80x40 input), 1 epoch')
    print('| path | frames | peak RSS (GB) | wall (s) | CPU (s) | epoch frames/s | '
          'end-to-end frames/s |')
    print('|---|---|---|---|---|---|---|')
    for r in results:
        print(f"| {r['path']} | {r['frames']} | {r['peak_rss_gb']:.2f} | {r['wall_s']:.0f} | "
              f"{r['cpu_s']:.0f} | {r['fit_fps']:.0f} | {r['end_to_end_fps']:.0f} |")
    by = {(r['path'], r['requested']): r for r in results}
    small, large = min(args.frames), max(args.frames)
    if ('stream', small) in by and ('stream', large) in by and small != large:
        a, b = by[('stream', small)], by[('stream', large)]
        print(f"\nstream peak RSS at {b['frames']} frames = "
              f"{b['peak_rss_gb'] / a['peak_rss_gb']:.2f}x its peak at {a['frames']} frames "
              f"({b['peak_rss_gb']:.2f} vs {a['peak_rss_gb']:.2f} GB)")
    for count in args.frames:
        if ('stream', count) in by and ('memory', count) in by:
            s, m = by[('stream', count)], by[('memory', count)]
            print(f"{s['frames']} frames: stream / memory throughput = "
                  f"{s['end_to_end_fps'] / m['end_to_end_fps']:.2f}x end to end, "
                  f"{s['fit_fps'] / m['fit_fps']:.2f}x per epoch; peak RSS "
                  f"{s['peak_rss_gb']:.2f} vs {m['peak_rss_gb']:.2f} GB")
    return 0


if __name__ == '__main__':
    sys.exit(main())
