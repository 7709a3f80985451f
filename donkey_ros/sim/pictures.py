"""`donkey-ros tracks`: pictures of every shipped track, from above and from the car's camera;
``--generate N --seed S`` writes N generated track files instead (donkey_ros/sim/generate.py); and
`sim_frame`, a noise-free camera frame of the simulator (a test picture for the style tools)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from donkey_ros.common.argtypes import whole_number
from donkey_ros.sim.renderer import render_top_down
from donkey_ros.sim.simulator import Simulator
from donkey_ros.sim.track import load_track, shipped_tracks

CAMERA_ZOOM = 4  # the 160x120 camera view is upscaled (nearest) so its pixels stay visible


def save_track_pictures(out_dir: str | Path, tracks: list[str] | None = None,
                        size: int = 800) -> list[Path]:
    """Writes ``<track>_top.png`` and ``<track>_camera.png`` for each track.

    Args:
        out_dir: folder to write to (created if needed).
        tracks: track names or paths (default: every shipped track).
        size: top-down picture size along its longer side, pixels.

    Returns:
        the paths written.

    Raises:
        TrackError: a track cannot be loaded.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in tracks or shipped_tracks():
        sim = Simulator(load_track(name))  # the car at rest on the start line
        car, track = sim.vehicle, sim.track
        top = out / f'{track.name}_top.png'
        Image.fromarray(render_top_down(track, size=size, pose=(car.x, car.y, car.yaw))).save(top)
        view = Image.fromarray(sim.render())
        cam = out / f'{track.name}_camera.png'
        view.resize((view.width * CAMERA_ZOOM, view.height * CAMERA_ZOOM), Image.NEAREST).save(cam)
        written += [top, cam]
    return written


def sim_frame(track: str = 'oval', width: int = 320, height: int = 240,
              seconds: float = 4.0) -> np.ndarray:
    """A noise-free camera frame of the simulator after its expert drove ``seconds`` from the
    start line of ``track`` (so the picture shows the style, not sensor noise)."""
    from donkey_ros.sim.expert import PurePursuit
    from donkey_ros.sim.renderer import CameraParams

    sim = Simulator(load_track(track), camera_params=CameraParams(width=width, height=height))
    expert = PurePursuit(sim.track)
    for _ in range(int(seconds * 20)):
        car = sim.vehicle
        sim.step(0.05, *expert.command(car.x, car.y, car.yaw, car.speed))
    return sim.render()


def main(argv: list[str] | None = None) -> int:
    """Command line: ``donkey-ros tracks [--out DIR] [--track NAME_OR_PATH ...]`` or
    ``donkey-ros tracks --generate N [--seed S] [--out DIR]``."""
    parser = argparse.ArgumentParser(prog='donkey-ros tracks', description=__doc__)
    parser.add_argument('--out', default=None,
                        help='output folder (default: track_pictures, or generated_tracks with '
                             '--generate)')
    parser.add_argument('--generate', type=whole_number(1, 10000), metavar='N',
                        help='write N generated track files (gen_<seed>.yaml) instead of pictures')
    parser.add_argument('--seed', type=int, default=0,
                        help='first seed of --generate (track i uses seed S + i)')
    parser.add_argument('--track', action='append', dest='tracks',
                        help='a track name or YAML path (repeatable; default: all shipped)')
    parser.add_argument('--size', type=whole_number(16, 4000, 'whole number of pixels'),
                        default=800,
                        help='top-down picture size along its longer side, pixels (16-4000)')
    args = parser.parse_args(argv)
    if args.generate:
        from donkey_ros.sim.generate import write_tracks
        for path in write_tracks(args.out or 'generated_tracks', args.generate, args.seed):
            print(path)
        return 0
    for path in save_track_pictures(args.out or 'track_pictures', args.tracks, args.size):
        print(path)
    return 0
