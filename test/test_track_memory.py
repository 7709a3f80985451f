"""The simulator's ground raster is bounded (issue 13): a 200 m track renders within the pixel
budget, and a track too large for the simulator (written in centimetres, a 1 km square) is
refused with one line naming its size, from every command that loads tracks."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from donkey_ros.sim.renderer import RASTER_PIXELS, Renderer, rasterize
from donkey_ros.sim.track import MAX_TRACK_SIZE, TrackError, load_track

ROOT = Path(__file__).resolve().parents[1]


def square(path: Path, side: float) -> Path:
    path.write_text(f'name: square\ncenterline: [[0, 0], [{side}, 0], [{side}, {side}], '
                    f'[0, {side}]]\nsmooth: 3\nroad_width: 1.0\n')
    return path


def test_a_200_m_track_renders_within_the_raster_budget(tmp_path):
    track = load_track(square(tmp_path / 'square.yaml', 200.0))
    renderer = Renderer(track)
    raster = renderer.raster
    assert raster.image.shape[0] * raster.image.shape[1] <= RASTER_PIXELS
    assert raster.image.nbytes + raster.labels.nbytes <= 4 * RASTER_PIXELS
    assert renderer._palette.nbytes <= 3 * RASTER_PIXELS * 4 / 3 + 3 * 1000
    assert 15 < raster.ppm < 100                  # coarser than the default 100 px/m, not silly
    # The car on the start line sees the road under it (grey), not the ground.
    x, y = track.point_at(0.0)
    image = renderer.render(x, y, track.heading_at(0.0))
    road = np.array(track.style.road, float)
    bottom = image[-5:, image.shape[1] // 2 - 3:image.shape[1] // 2 + 3].reshape(-1, 3)
    assert np.abs(bottom.mean(axis=0) - road).max() < 25


def test_small_tracks_keep_their_full_resolution():
    oval = load_track('oval')
    assert rasterize(oval, ppm=20.0).ppm == 20.0
    full = rasterize(oval)
    assert full.ppm == 100.0
    small = rasterize(oval, max_pixels=100_000)
    assert small.image.shape[0] * small.image.shape[1] <= 100_000 and small.ppm < 25


def test_too_large_tracks_are_refused_with_their_size(tmp_path):
    with pytest.raises(TrackError, match=r"1001 x 1001 m, larger than the simulator takes"):
        load_track(square(tmp_path / 'km.yaml', 1000.0))
    assert MAX_TRACK_SIZE >= 250


def run(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120)


def test_a_track_in_centimetres_is_one_line_from_every_command(tmp_path):
    oval = yaml.safe_load((ROOT / 'donkey_ros/sim/tracks/oval.yaml').read_text())
    oval['centerline'] = [[x * 100, y * 100] for x, y in oval['centerline']]
    oval['road_width'] = oval.get('road_width', 1.0) * 100
    track = tmp_path / 'oval_cm.yaml'
    track.write_text(yaml.safe_dump(oval))
    for done in (run('-m', 'donkey_ros.cli', 'tracks', '--track', track, '--out', tmp_path),
                 run('-m', 'donkey_ros.cli', 'drive', '--track', track, '--no-web'),
                 run('-c', 'from donkey_ros.sim.sim_node import main; main()', '--ros-args',
                     '-r', '__ns:=/cm_track', '-p', f'track:={track}')):
        assert done.returncode in (1, 2), done.stderr
        assert 'Traceback' not in done.stderr and 'MemoryError' not in done.stderr
        lines = [line for line in done.stderr.splitlines() if 'error' in line.lower()]
        assert len(lines) == 1, done.stderr
        assert str(track) in lines[0] and 'larger than the simulator takes' in lines[0]
        assert 'centimetres' in lines[0]
