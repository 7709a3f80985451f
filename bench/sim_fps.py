"""Simulator speed: frames per second of a driving loop, and of rendering alone.

A driving-loop frame is what the sim node does per camera frame: one expert command, one
physics step of 1/20 s and one render.

    python bench/sim_fps.py [--track oval] [--seconds 2] [--randomize]

``--randomize`` turns every domain randomization group on (sim/randomize.py; one episode's look,
with blur and glare forced on: the slowest look).

A ROS camera runs at 20 Hz; "x real time" is fps / 20 (how many simulated cars one core could
feed). One process, one core; numbers are for the machine it runs on.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

from donkey_ros.sim.expert import PurePursuit  # noqa: E402
from donkey_ros.sim.randomize import Randomization  # noqa: E402
from donkey_ros.sim.renderer import CameraParams, Renderer  # noqa: E402
from donkey_ros.sim.simulator import Simulator  # noqa: E402
from donkey_ros.sim.track import load_track  # noqa: E402

CAMERA_HZ = 20.0


def measure(sim: Simulator, expert: PurePursuit, seconds: float, physics: bool) -> float:
    """Frames per second: the best of three runs of ``seconds / 3`` (robust to a busy machine)."""
    return max(_run(sim, expert, seconds / 3, physics) for _ in range(3))


def _run(sim: Simulator, expert: PurePursuit, seconds: float, physics: bool) -> float:
    frames, start = 0, time.perf_counter()
    while True:
        for _ in range(50):
            if physics:
                car = sim.vehicle
                sim.step(1.0 / CAMERA_HZ, *expert.command(car.x, car.y, car.yaw, car.speed))
            else:
                sim.vehicle.yaw += 1e-3  # a new pose each frame
            sim.render()
        frames += 50
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return frames / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--track', default='oval')
    parser.add_argument('--seconds', type=float, default=3.0, help='per measurement')
    parser.add_argument('--noise', type=float, default=0.0, help='pixel noise std')
    parser.add_argument('--randomize', action='store_true',
                        help='domain randomization on (every group, blur and glare on)')
    args = parser.parse_args(argv)
    track = load_track(args.track)
    print(f'track {track.name} ({track.length:.1f} m), noise {args.noise:g}, '
          f'randomization {"on" if args.randomize else "off"}, one process')
    print(f'{"size":>9}  {"loop fps":>9}  {"x real time @20Hz":>18}  {"render fps":>11}')
    for width, height in ((160, 120), (320, 240)):
        sim = Simulator(track, camera_params=CameraParams(width=width, height=height),
                        noise=args.noise,
                        randomization=Randomization.all() if args.randomize else None)
        if args.randomize:
            fx = sim.renderer.effects
            sim.renderer = Renderer(track, sim.renderer.camera, noise=args.noise,
                                    effects=replace(fx, blur=1, glare=(0.5, 0.2, 0.2, 120.0)))
        expert = PurePursuit(track)
        fps = measure(sim, expert, args.seconds, physics=True)
        render_fps = measure(sim, expert, args.seconds, physics=False)
        print(f'{width:>4}x{height:<4}  {fps:>9.0f}  {fps / CAMERA_HZ:>17.0f}x  '
              f'{render_fps:>11.0f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
