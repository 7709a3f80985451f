"""Domain randomization (donkey_ros/sim/randomize.py): per-episode looks, deterministic per seed,
off by default (the images are the ones the simulator made before it existed)."""
import hashlib
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from donkey_ros.common.errors import ConfigError
from donkey_ros.sim.expert import PurePursuit
from donkey_ros.sim.factory import SIM_PARAMS, simulator_from_params
from donkey_ros.sim.randomize import Randomization, draw_look
from donkey_ros.sim.renderer import START, CameraParams, Renderer, rasterize
from donkey_ros.sim.simulator import Simulator
from donkey_ros.sim.track import load_track

# sha256 of frames of the oval (noise 4, lighting variation 0.1) and of waveshare, seed 3, as the
# simulator rendered them before domain randomization was added (commit a0b9e5b).
BEFORE = 'be19ab444ff36aacbf5edf8dc9905dc46f13e6443a5d012fc7f57b68e57aea0b'
FAST = 30.0


def digest(**kwargs) -> str:
    h = hashlib.sha256()
    for track, noise in (('oval', 4.0), ('waveshare', 0.0)):
        sim = Simulator(track, seed=3, noise=noise, lighting_variation=0.1, **kwargs)
        expert = PurePursuit(sim.track)
        for i in range(40):
            car = sim.vehicle
            sim.step(0.05, *expert.command(car.x, car.y, car.yaw, car.speed))
            if i % 10 == 0:
                h.update(sim.render().tobytes())
    return h.hexdigest()


def test_off_by_default_the_images_are_the_ones_from_before():
    assert digest() == BEFORE
    assert digest(randomization=Randomization()) == BEFORE
    assert digest(randomization=Randomization.all(strength=0.0)) == BEFORE


def frames(seed, episodes=3, randomization=None, track='oval'):
    sim = Simulator(track, seed=seed, pixels_per_metre=FAST,
                    randomization=randomization or Randomization.all())
    out = []
    for _ in range(episodes):
        out.append(sim.render())
        sim.reset()
    return out


def test_looks_are_deterministic_per_seed_and_change_per_episode():
    a, b, c = frames(5), frames(5), frames(6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not any(np.array_equal(x, y) for x, y in zip(a, c))
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[1], a[2])


@pytest.mark.parametrize('group', ['colors', 'lighting', 'camera', 'distractors'])
def test_each_group_changes_the_look_and_only_its_part(group):
    base = load_track('oval').style
    camera = CameraParams()
    changed = 0
    for episode in range(6):
        look = draw_look(Randomization(**{group: True}), base, camera, seed=1, episode=episode)
        fx = look.effects
        assert (fx.style is not None) == (group == 'colors')
        assert (look.camera != camera) == (group == 'camera')
        if group != 'camera':
            assert fx.noise == 0 and fx.blur == 0
        if group != 'lighting':
            assert fx.shadows == 0 and fx.glare is None
        if group == 'distractors':
            changed += fx.distractors > 0
        else:
            changed += fx != type(fx)()
    assert changed >= 4


def test_camera_pose_stays_within_a_cars_tolerances():
    camera = CameraParams()
    for episode in range(30):
        cam = draw_look(Randomization(camera=True), load_track('oval').style, camera, 2,
                        episode).camera
        assert abs(cam.mount_height - camera.mount_height) <= 0.03
        assert abs(cam.pitch_deg - camera.pitch_deg) <= 5
        assert abs(cam.roll_deg) <= 4
        assert abs(cam.fov_deg - camera.fov_deg) <= 10


def test_a_rolled_camera_tilts_the_horizon():
    track = load_track('oval')
    level = Renderer(track, CameraParams(), FAST).render(0.0, -2.5, 0.0)
    rolled = Renderer(track, CameraParams(roll_deg=8.0), FAST).render(0.0, -2.5, 0.0)
    sky = np.array(track.style.sky)

    def horizon(img, col):  # first row from the top that is not sky-coloured
        diff = np.abs(img[:, col].astype(int) - sky).sum(axis=1) > 60
        return int(np.argmax(diff))
    assert horizon(level, 5) == horizon(level, 154)
    assert horizon(rolled, 5) - horizon(rolled, 154) >= 10  # rolled clockwise: rises right


def test_distractors_lie_off_the_road():
    track = load_track('waveshare')
    raster = rasterize(track, ppm=FAST, seed=4, distractors=25)
    rows, cols = np.nonzero(raster.labels > START)
    assert len(rows) > 100
    x = raster.x0 + (cols + 0.5) / raster.ppm
    y = raster.y_top - (rows + 0.5) / raster.ppm
    pick = np.random.default_rng(0).choice(len(x), 300)
    distance = [abs(track.project(x[i], y[i])[1]) for i in pick]
    assert min(distance) > track.road_width / 2 + 0.25


def test_shadows_darken_parts_of_the_floor():
    track = load_track('oval')
    plain = rasterize(track, ppm=FAST, seed=1)
    shaded = rasterize(track, ppm=FAST, seed=1, shadows=0.5)
    ratio = shaded.image.mean(axis=2) / np.maximum(plain.image.mean(axis=2), 1)
    assert (ratio < 0.6).mean() > 0.05 and (ratio > 0.97).mean() > 0.2


def test_the_expert_still_drives_every_look():
    sim = Simulator('oval', seed=9, pixels_per_metre=FAST, randomization=Randomization.all())
    expert = PurePursuit(sim.track)
    for _ in range(2):
        while sim.status.laps < 1 and sim.status.time < 60:
            car = sim.vehicle
            sim.step(0.05, *expert.command(car.x, car.y, car.yaw, car.speed))
        assert sim.status.laps == 1 and sim.status.off_track_count == 0
        sim.reset()


def test_recover_keeps_the_look_and_reset_draws_the_next():
    sim = Simulator('oval', seed=2, pixels_per_metre=FAST,
                    randomization=Randomization(colors=True))
    assert sim.episode == 0
    first = sim.render()
    sim.recover()
    assert sim.episode == 0 and np.array_equal(sim.render(), first)
    sim.reset()
    assert sim.episode == 1
    sim.new_look(0)
    assert np.array_equal(sim.render(), first)


def test_sim_parameters_switch_groups_on():
    values = {p.name: p.default for p in SIM_PARAMS}
    assert not simulator_from_params(SimpleNamespace(**values)).randomization.enabled
    values.update(randomize_lighting=True, randomize_strength=0.5)
    sim = simulator_from_params(SimpleNamespace(**values))
    assert sim.randomization == Randomization(lighting=True, strength=0.5)
    with pytest.raises(ConfigError):
        replace(sim.randomization, strength=2.0)
