"""Memory and time of the simulator's ground raster for small and very large tracks.

    python bench/track_memory.py [--sizes 20,100,200,400]

Each case runs in a fresh process (so its peak RSS is its own): load a square track SIZE metres
a side, build the ``Simulator`` (ground raster + mipmaps + camera lookup), render 100 frames.
Prints the raster's pixels per metre and size, the peak RSS of the process (ru_maxrss, which
includes the ~100 MB of Python + NumPy + PIL) and the time. Then two tracks that must be
refused with one line: a 1 km square, and the shipped oval written in centimetres.
The raster is bounded by ``donkey_ros.sim.renderer.RASTER_PIXELS``; before that bound, a 200 m
square took 17.6 GB and 72 s (issue 13).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r'''
import json, resource, sys, time
started = time.perf_counter()
from donkey_ros.sim.simulator import Simulator
from donkey_ros.sim.track import load_track
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sim = Simulator(load_track(sys.argv[1]))
built = time.perf_counter() - started
for _ in range(100):
    sim.render()
raster = sim.renderer.raster
print(json.dumps({'ppm': raster.ppm, 'shape': raster.image.shape[:2],
                  'raster_mb': (raster.image.nbytes + raster.labels.nbytes) / 1e6,
                  'palette_mb': sim.renderer._palette.nbytes / 1e6,
                  'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  'import_mb': base / 1024, 'build_s': built}))
'''


def square(path: Path, side: float) -> Path:
    path.write_text(f'name: square{side:g}\ncenterline: [[0, 0], [{side}, 0], [{side}, {side}], '
                    f'[0, {side}]]\nsmooth: 3\nroad_width: 1.0\n')
    return path


def run(track: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, '-c', CHILD, str(track)], capture_output=True,
                          text=True, env=env, timeout=600)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='20,100,200,390',
                        help='square tracks to measure, metres a side (comma list)')
    args = parser.parse_args(argv)
    from donkey_ros.sim.renderer import RASTER_PIXELS
    print(f'raster bound: {RASTER_PIXELS / 1e6:.0f} Mpx; peak RSS includes the interpreter')
    print(f'{"track":>14}  {"px/m":>6}  {"raster":>11}  {"raster MB":>9}  {"peak RSS MB":>11}  '
          f'{"build s":>7}')
    with tempfile.TemporaryDirectory() as folder:
        cases = [ROOT / 'donkey_ros' / 'sim' / 'tracks' / 'oval.yaml']
        cases += [square(Path(folder) / f'square{s}.yaml', float(s))
                  for s in args.sizes.split(',')]
        for track in cases:
            done = run(track)
            if done.returncode:
                print(f'{track.stem:>14}  failed: {done.stderr.strip().splitlines()[-1]}')
                continue
            r = json.loads(done.stdout)
            print(f'{track.stem:>14}  {r["ppm"]:6.1f}  {r["shape"][1]:>5}x{r["shape"][0]:<5}  '
                  f'{r["raster_mb"]:9.1f}  {r["peak_mb"]:11.0f}  {r["build_s"]:7.1f}')
        import yaml
        oval = yaml.safe_load((ROOT / 'donkey_ros/sim/tracks/oval.yaml').read_text())
        oval['centerline'] = [[x * 100, y * 100] for x, y in oval['centerline']]
        oval['road_width'] = oval.get('road_width', 1.0) * 100
        centimetres = Path(folder) / 'oval_cm.yaml'
        centimetres.write_text(yaml.safe_dump(oval))
        for track in (square(Path(folder) / 'square1000.yaml', 1000.0), centimetres):
            done = run(track)
            lines = done.stderr.strip().splitlines()
            print(f'{track.stem:>14}  refused (exit {done.returncode}): '
                  f'{lines[-1] if lines else done.stdout.strip()}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
