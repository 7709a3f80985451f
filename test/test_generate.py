"""Generated tracks (donkey_ros/sim/generate.py): valid, varied, deterministic per seed, drivable."""
import numpy as np
import pytest

from donkey_ros.sim import generate
from donkey_ros.sim.expert import PurePursuit
from donkey_ros.sim.pictures import main as tracks_main
from donkey_ros.sim.simulator import Simulator
from donkey_ros.sim.track import Track, load_track
from donkey_ros.sim.vehicle import VehicleParams

SEEDS = range(100, 124)


@pytest.fixture(scope='module')
def tracks():
    return [generate.generate_track(seed) for seed in SEEDS]


def test_the_same_seed_gives_the_same_track_file():
    a, _ = generate.generate_track(7)
    b, _ = generate.generate_track(7)
    c, _ = generate.generate_track(8)
    assert generate.track_yaml(a) == generate.track_yaml(b)
    assert generate.track_yaml(a) != generate.track_yaml(c)


def test_generated_tracks_are_valid(tracks):
    turn = VehicleParams().min_turn_radius
    for data, track in tracks:
        assert generate.check_track(track) is None, data['name']
        assert 20.0 <= track.length <= 80.0
        assert track.min_radius >= generate.MIN_RADIUS > 2 * turn
        assert generate.min_gap(track) >= generate.CLEARANCE
        assert 0.8 <= track.road_width <= 1.4


def test_check_track_refuses_what_is_not_a_valid_track():
    angles = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    small = Track(np.stack([np.cos(angles), np.sin(angles)], axis=1))  # 6.3 m, radius 1 m
    assert 'length' in generate.check_track(small)
    tight = Track(np.stack([6 * np.cos(angles), 2 * np.sin(angles)], axis=1), smooth=2)
    assert 'radius' in generate.check_track(tight)
    # A dumbbell: gentle curves (radius >= 1.66 m), but its waist is 0.5 m wide (edge to edge).
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    waist = Track(np.stack([10 * np.cos(t), np.sin(t) * (0.75 + 5 * np.cos(t) ** 2)], axis=1))
    assert 'comes within 0.50 m' in generate.check_track(waist)


def test_looks_vary(tracks):
    styles = [t.style for _, t in tracks]
    assert len({s.road for s in styles}) > 10 and len({s.ground for s in styles}) > 10
    assert any(s.edge_width == 0 for s in styles) and any(s.edge_width > 0 for s in styles)
    centre = {'none' if s.center_line_width == 0 else 'solid' if s.center_dash == 0 else 'dashed'
              for s in styles}
    assert centre == {'none', 'solid', 'dashed'}
    assert len({round(t.road_width, 1) for _, t in tracks}) >= 4
    assert max(t.length for _, t in tracks) - min(t.length for _, t in tracks) > 25


def test_cli_writes_files_that_load(tmp_path, capsys):
    assert tracks_main(['--generate', '3', '--seed', '40', '--out', str(tmp_path)]) == 0
    written = capsys.readouterr().out.split()
    assert [p.rsplit('/', 1)[-1] for p in written] == ['gen_40.yaml', 'gen_41.yaml', 'gen_42.yaml']
    for path in written:
        track = load_track(path)
        expected = generate.generate_track(int(track.name.split('_')[1]))[1]
        assert track.length == pytest.approx(expected.length)
        assert track.style == expected.style


@pytest.mark.parametrize('seed', [3, 11])
def test_the_expert_laps_a_generated_track_without_leaving_it(seed):
    _, track = generate.generate_track(seed)
    sim = Simulator(track, pixels_per_metre=20.0)
    expert = PurePursuit(track)
    worst = 0.0
    while sim.status.laps < 1 and sim.status.time < 200:
        car = sim.vehicle
        sim.step(0.05, *expert.command(car.x, car.y, car.yaw, car.speed))
        worst = max(worst, abs(sim.status.cross_track_error))
    assert sim.status.laps == 1
    assert sim.status.off_track_count == 0
    assert worst < track.road_width / 4
