"""DonkeyCar 5.3's `donkey train --type linear` vs `donkey-ros train --arch donkey`, one tub.

1. DonkeyCar 5.3.0 in its own venv (--venv; created with python3.11 and
   `pip install donkeycar==5.3.0 tensorflow==2.15.* albumentations<1.5 numpy<2` when missing;
   never a project dependency).
2. --frames simulator frames (160x120, the bags of bench/train_memory.py, cached) are written as a
   tub by DonkeyCar's own ``Tub`` class (timestamps at 20 Hz, as a car records them), and a held-out
   bag of other laps is kept for measuring both models.
3. `donkey train --tub TUB --type linear` in a car folder made by `donkey createcar` (MAX_EPOCHS
   --epochs, BATCH_SIZE --batch-size, no early stop, ROI_CROP_TOP 0: DonkeyCar's input 160x120).
4. `donkey-ros import-tub TUB BAG`, then `donkey-ros train BAG --arch donkey --crop-top 0
   --input-size 160x120 --epochs E --batch-size B` with each --variant's extra options.
5. CPU seconds (user + system of each training process, from the kernel), their ratio, wall time
   and the steering MAE of each exported ``.tflite`` on the held-out frames (`donkey-ros evaluate`'s
   code, DonkeyCar's model read with its own conventions).

    python bench/donkeycar_train.py [--frames 5000] [--epochs 3] [--batch-size 128]
        [--variant 'lean=--augment none --threads 1' ...]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'bench'))

WRITE_TUB = textwrap.dedent('''
    import sys, time
    import numpy as np
    from donkeycar.parts.tub_v2 import Tub
    data = np.load(sys.argv[1])
    clock = [data['times'][0]]
    time.time = lambda: clock[0]          # the records' _timestamp_ms: the frames' own times
    tub = Tub(sys.argv[2], inputs=['cam/image_array', 'user/angle', 'user/throttle', 'user/mode'],
              types=['image_array', 'float', 'float', 'str'])
    for image, angle, throttle, t in zip(data['images'], data['angle'], data['throttle'],
                                         data['times']):
        clock[0] = float(t)
        tub.write_record({'cam/image_array': image, 'user/angle': float(angle),
                          'user/throttle': float(throttle), 'user/mode': 'user'})
    tub.close()
    print(f'tub of {len(data["angle"])} records')
''')


def ensure_donkeycar(venv: Path) -> Path:
    donkey = venv / 'bin' / 'donkey'
    if not donkey.exists():
        subprocess.run(['python3.11', '-m', 'venv', str(venv)], check=True)
        # `donkey train` also imports albumentations (not among donkeycar's requirements); its
        # 1.4 line keeps numpy 1.x, which TensorFlow 2.15 needs.
        subprocess.run([str(venv / 'bin' / 'pip'), 'install', '-q', 'donkeycar==5.3.0',
                        'tensorflow==2.15.*', 'albumentations<1.5', 'numpy<2'], check=True)
    return donkey


def timed(command, cwd=None, env=None, log_path: Path | None = None) -> dict:
    """Runs a child; its CPU seconds (user + system, threads included) and wall time."""
    started = time.monotonic()
    with open(log_path, 'w') as log:
        child = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    result = {'cpu_s': usage.ru_utime + usage.ru_stime, 'wall_s': time.monotonic() - started,
              'peak_rss_gb': usage.ru_maxrss / 2**20}
    if status != 0:
        raise SystemExit(f'{" ".join(map(str, command[:3]))} failed:\n'
                         f'{log_path.read_text()[-3000:]}')
    return result


def frames_from(bags, count: int):
    """The first ``count`` usable frames of ``bags`` (images, steering + = left, throttle, s)."""
    import numpy as np

    from donkey_ros.recording.dataset import open_dataset

    images, steering, throttle, times = [], [], [], []
    for sample in open_dataset(bags):
        images.append(sample.image)
        steering.append(sample.steering)
        throttle.append(sample.throttle)
        times.append(sample.stamp_ns * 1e-9)
        if len(images) == count:
            break
    return np.stack(images), np.array(steering), np.array(throttle), np.array(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=5000)
    parser.add_argument('--epochs', type=int, default=3)
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--venv', default='/tmp/dk53', help="DonkeyCar 5.3's virtualenv")
    parser.add_argument('--cache', default=str(ROOT / 'runs' / 'cache' / 'sim_bags'))
    parser.add_argument('--out', default=str(ROOT / 'runs' / 'bench' / 'donkeycar'))
    parser.add_argument('--variant', action='append', default=None, metavar='NAME=OPTIONS',
                        help="a donkey-ros run with these extra train options (repeatable; "
                             "default: 'plain=' and 'lean=--augment none --threads 1')")
    args = parser.parse_args(argv)
    variants = [v.split('=', 1) for v in (args.variant or
                                         ['plain=', 'lean=--augment none --threads 1'])]
    import numpy as np

    from train_memory import simulated_bags

    from donkey_ros.learning.evaluate import evaluate

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    donkey = ensure_donkeycar(Path(args.venv))
    bags = simulated_bags(Path(args.cache), args.frames + 6000)
    images, steering, throttle, times = frames_from([b for b, _ in bags[:-1]], args.frames)
    held_out = bags[-1][0]
    tub, car, bag = out / 'tub', out / 'car', out / 'bag'
    for path in (tub, car, bag):
        subprocess.run(['rm', '-rf', str(path)], check=True)
    np.savez(out / 'frames.npz', images=images, angle=-steering, throttle=throttle, times=times)
    subprocess.run([str(Path(args.venv) / 'bin' / 'python'), '-c', WRITE_TUB,
                    str(out / 'frames.npz'), str(tub)], check=True)
    (out / 'frames.npz').unlink()
    subprocess.run([str(donkey), 'createcar', '--path', str(car)], check=True,
                   stdout=subprocess.DEVNULL)
    with open(car / 'myconfig.py', 'a') as config:
        config.write(f'\nMAX_EPOCHS = {args.epochs}\nBATCH_SIZE = {args.batch_size}\n'
                     'USE_EARLY_STOP = False\nROI_CROP_TOP = 0\nSHOW_PLOT = False\n'
                     'CREATE_TF_LITE = True\nPRINT_MODEL_SUMMARY = False\n')
    env = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'}
    env.pop('PYTHONPATH', None)
    print(f'{args.frames} frames 160x120, {args.epochs} epochs, batch {args.batch_size}, '
          f'{os.cpu_count()} CPUs; held-out: {held_out.name}', flush=True)
    results = {}
    results['DonkeyCar 5.3 linear'] = timed(
        [str(donkey), 'train', '--tub', str(tub), '--model', str(car / 'models' / 'dk.h5'),
         '--type', 'linear'], cwd=car, env=env, log_path=out / 'donkeycar.log')
    models = {'DonkeyCar 5.3 linear': car / 'models' / 'dk.tflite'}
    ours_env = {**os.environ, 'PYTHONPATH': str(ROOT), 'TF_CPP_MIN_LOG_LEVEL': '2'}
    python = [sys.executable, '-m', 'donkey_ros.cli']
    imported = timed(python + ['import-tub', str(tub), str(bag), '--no-preview'], env=ours_env,
                     log_path=out / 'import.log')
    print(f"import-tub: {imported['cpu_s']:.1f} CPU s", flush=True)
    for name, options in variants:
        output = out / f'ours_{name}' / 'pilot.tflite'
        output.parent.mkdir(parents=True, exist_ok=True)
        label = f'donkey-ros --arch donkey ({name}: {options or "defaults"})'
        results[label] = timed(
            python + ['train', str(bag), '--output', str(output), '--arch', 'donkey',
                      '--crop-top', '0', '--input-size', '160x120', '--epochs',
                      str(args.epochs), '--batch-size', str(args.batch_size), '--patience',
                      str(args.epochs + 1), *options.split()],
            env=ours_env, log_path=output.with_suffix('.log'))
        models[label] = output
    base = results['DonkeyCar 5.3 linear']['cpu_s']
    print('\n| run | CPU s | ratio | wall s | peak RSS GB | held-out steering MAE |')
    print('|---|---|---|---|---|---|')
    for label, result in results.items():
        error = evaluate(models[label], [held_out], progress=False).errors()['steering_mae']
        result['held_out_steering_mae'] = error
        print(f"| {label} | {result['cpu_s']:.1f} | {result['cpu_s'] / base:.2f}x | "
              f"{result['wall_s']:.0f} | {result['peak_rss_gb']:.2f} | {error:.4f} |", flush=True)
    (out / 'results.json').write_text(json.dumps(results, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
