"""The plain-Python simulator core: tracks, car, camera, lap officials, expert driver (no rclpy)."""
import math

import numpy as np
import pytest

from donkey_ros.common.errors import DonkeyRosError
from donkey_ros.sim.expert import PurePursuit
from donkey_ros.sim.pictures import main as pictures_main
from donkey_ros.sim.renderer import CameraParams, Renderer, render_top_down
from donkey_ros.sim.simulator import Simulator
from donkey_ros.sim.track import Track, TrackError, load_track, shipped_tracks
from donkey_ros.sim.vehicle import Vehicle, VehicleParams

DT = 0.05
FAST = 40.0  # raster pixels per metre where the pictures don't matter (faster set-up)


def circle(radius=3.0, n=72, clockwise=False):
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    if clockwise:
        angles = -angles
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def drive_expert(sim, expert, laps=1, limit=300.0):
    """Runs the expert until ``laps`` laps are done; returns the largest |cross-track error|."""
    worst = 0.0
    while sim.status.laps < laps and sim.status.time < limit:
        car = sim.vehicle
        sim.step(DT, *expert.command(car.x, car.y, car.yaw, car.speed))
        worst = max(worst, abs(sim.status.cross_track_error))
    return worst


# --- tracks -----------------------------------------------------------------------------------

def test_shipped_tracks_load_and_are_drivable():
    names = shipped_tracks()
    assert {'oval', 'waveshare', 'warehouse'} <= set(names)
    for name in names:
        track = load_track(name)
        assert track.name == name
        assert 0.8 <= track.road_width <= 1.2
        assert track.length > 15.0
        assert track.min_radius >= 1.0, name
        steps = np.hypot(*np.diff(track.points, axis=0).T)
        assert steps.max() < 0.06 and steps.min() > 0.03
        assert track.s[0] == 0.0 and track.s[-1] == pytest.approx(track.length - track.ds)
        assert len(track.headings) == len(track.curvature) == len(track.points)
        assert track.project(*track.point_at(0.0))[:2] == pytest.approx((0.0, 0.0), abs=1e-6)


def test_default_track_is_the_oval_starting_mid_straight():
    track = load_track()
    assert track.name == 'oval'
    assert track.point_at(0.0) == pytest.approx((0.0, -2.5), abs=1e-6)  # start: {index: 1}
    assert track.heading_at(0.0) == pytest.approx(0.0, abs=1e-6)


def test_track_path_is_accepted(tmp_path):
    path = tmp_path / 'tri.yaml'
    path.write_text('centerline: [[0, 0], [6, 0], [3, 5]]\nsmooth: 3\nroad_width: 0.9\n'
                    'road: [10, 20, 30]\ntexture: {ground_noise: 0}\n')
    track = load_track(str(path))
    assert track.name == 'tri' and track.road_width == 0.9
    assert track.style.road == (10, 20, 30) and track.style.ground_noise == 0.0


def test_missing_track_lists_shipped_names():
    with pytest.raises(TrackError) as error:
        load_track('no_such_track')
    message = str(error.value)
    assert 'no_such_track' in message and 'not found' in message
    assert 'oval' in message and 'warehouse' in message
    assert isinstance(error.value, DonkeyRosError) and '\n' not in message


def test_bad_yaml_names_the_file(tmp_path):
    path = tmp_path / 'broken.yaml'
    path.write_text('centerline: [[0, 0], [1, 0]\nroad_width: 1\n')
    with pytest.raises(TrackError, match='bad YAML') as error:
        load_track(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize('text, problem', [
    ('centerline: [[0, 0], [1, 0]]', 'at least 3 points'),
    ('road_width: 1.0', 'missing "centerline"'),
    ('centerline: [[0, 0], [4, 0], [0, 4]]\nroad_width: 0', '"road_width" must be > 0'),
    ('centerline: [[0, 0], [4, 0], [0, 4]]\nroad: [300, 0, 0]', '"road" must be a colour'),
    ('centerline: [[0, 0], [4, 0], [0, 4]]\nroad_widht: 1', "unknown key 'road_widht'"),
    ('centerline: [[0, 0], [4, 4], [4, 0], [0, 4]]', 'crosses itself'),
    ('centerline: [[0, 0], [4, 0], [0, 4]]\nstart: {index: 7}', '"start.index"'),
])
def test_invalid_track_files_say_what_is_wrong(tmp_path, text, problem):
    path = tmp_path / 'bad.yaml'
    path.write_text(text + '\n')
    with pytest.raises(TrackError) as error:
        load_track(path)
    assert problem in str(error.value) and str(path) in str(error.value)


def test_projection_on_a_counter_clockwise_circle():
    track = Track(circle(3.0, n=360), road_width=1.0)
    assert track.length == pytest.approx(2 * np.pi * 3.0, rel=1e-3)
    for angle in (0.3, 1.7, 4.0):
        c, s = math.cos(angle), math.sin(angle)
        along, lateral, heading = track.project(3.4 * c, 3.4 * s)  # outside = right of travel
        assert along == pytest.approx(3.0 * angle, abs=0.01)
        assert lateral == pytest.approx(-0.4, abs=0.01)
        assert math.cos(heading - (angle + np.pi / 2)) == pytest.approx(1.0, abs=1e-3)
        assert track.project(2.7 * c, 2.7 * s)[1] == pytest.approx(0.3, abs=0.01)  # inside
        assert track.point_at(3.0 * angle) == pytest.approx((3.0 * c, 3.0 * s), abs=0.01)
        assert math.cos(track.heading_at(3.0 * angle) - angle - np.pi / 2) > 0.9999
    assert track.curvature_at(5.0) == pytest.approx(1 / 3.0, rel=0.02)


def test_projection_on_a_clockwise_circle_flips_the_side():
    track = Track(circle(3.0, n=360, clockwise=True), road_width=1.0)
    _, lateral, _ = track.project(3.4 * math.cos(-0.5), 3.4 * math.sin(-0.5))
    assert lateral == pytest.approx(0.4, abs=0.01)  # outside is on the left going clockwise
    assert track.curvature_at(1.0) == pytest.approx(-1 / 3.0, rel=0.02)


def test_start_moves_the_origin_of_s():
    square = [[0, 0], [4, 0], [4, 4], [0, 4]]
    shifted = Track(np.array(square, float), start_s=4.0)
    assert shifted.point_at(0.0) == pytest.approx((4.0, 0.0), abs=1e-6)
    assert shifted.project(4.0, 2.0)[0] == pytest.approx(2.0, abs=1e-6)


# --- vehicle ----------------------------------------------------------------------------------

def test_positive_steering_turns_left():
    car = Vehicle(VehicleParams(), 0.0, 0.0, 0.0)
    for _ in range(20):
        car.step(DT, 0.5, 1.0)
    assert car.speed > 0.5
    assert car.yaw > 0.5 and car.y > 0.1
    right = Vehicle(VehicleParams())
    for _ in range(20):
        right.step(DT, 0.5, -1.0)
    assert right.yaw == pytest.approx(-car.yaw) and right.y == pytest.approx(-car.y)


def test_steering_rate_is_limited():
    params = VehicleParams(steer_rate_deg_s=300.0, max_steer_deg=25.0)
    car = Vehicle(params)
    car.step(0.02, 0.0, 1.0)
    assert math.degrees(car.steering_angle) == pytest.approx(6.0)
    car.step(0.1, 0.0, 1.0)
    assert math.degrees(car.steering_angle) == pytest.approx(25.0)
    car.step(0.05, 0.0, -1.0)
    assert math.degrees(car.steering_angle) == pytest.approx(10.0)


def test_throttle_sets_speed_and_braking_stops_before_reversing():
    car = Vehicle(VehicleParams(drag=0.0))
    for _ in range(200):
        car.step(DT, 0.5, 0.0)
    assert car.speed == pytest.approx(1.5, abs=0.01)
    car.step(0.1, -1.0, 0.0)
    assert 0.9 < car.speed < 1.5  # braking, not reversing yet
    for _ in range(10):
        car.step(DT, -1.0, 0.0)
    assert car.speed < 0  # stopped, then reversed
    no_reverse = Vehicle(VehicleParams(reverse=False))
    no_reverse.step(1.0, -1.0, 0.0)
    assert no_reverse.speed == 0.0 and no_reverse.x == 0.0


def test_vehicle_is_deterministic_whatever_the_step_split():
    a, b = Vehicle(), Vehicle()
    a.step(0.05, 0.8, 0.4)
    for _ in range(5):
        b.step(0.01, 0.8, 0.4)
    assert (a.x, a.y, a.yaw, a.speed) == pytest.approx((b.x, b.y, b.yaw, b.speed), abs=1e-12)


# --- renderer ---------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def oval():
    return load_track('oval')


@pytest.fixture(scope='module')
def oval_renderer(oval):
    return Renderer(oval, CameraParams())


def test_render_shape_dtype_and_road_below_the_horizon(oval, oval_renderer):
    x, y = oval.point_at(0.0)
    image = oval_renderer.render(x, y, oval.heading_at(0.0))
    assert image.shape == (120, 160, 3) and image.dtype == np.uint8
    assert image.flags['C_CONTIGUOUS']
    road = np.array(oval.style.road, float)
    # Bottom centre, left of the centre line: road, within the texture's amplitude.
    patch = image[-15:, 50:70].reshape(-1, 3).astype(float)
    assert np.abs(np.median(patch, axis=0) - road).max() < 15
    sky = image[0, 80].astype(float)
    assert np.abs(sky - np.array(oval.style.sky)).max() < 10
    # Turned to face away from the road, the camera sees ground, not road.
    away = oval_renderer.render(x, y - 2.0, oval.heading_at(0.0) - np.pi / 2)
    ground = np.median(away[-15:, 60:100].reshape(-1, 3).astype(float), axis=0)
    assert np.abs(ground - np.array(oval.style.ground)).max() < 15


@pytest.mark.parametrize('name', ['oval', 'waveshare'])
def test_the_road_is_ahead_all_around_the_track(name):
    track = load_track(name)
    renderer = Renderer(track, CameraParams(), pixels_per_metre=FAST)
    road = np.array(track.style.road, float)
    for s in np.linspace(0, track.length, 12, endpoint=False):  # every heading
        x, y = track.point_at(s)
        image = renderer.render(x, y, track.heading_at(s))
        for patch in (image[-15:, 45:65], image[-15:, 95:115]):
            median = np.median(patch.reshape(-1, 3).astype(float), axis=0)
            assert np.abs(median - road).max() < 20, (name, s)


def test_render_is_deterministic_for_a_seed_and_noise_changes_pixels(oval):
    camera = CameraParams()
    first = Renderer(oval, camera, pixels_per_metre=FAST, seed=3, noise=8.0)
    second = Renderer(oval, camera, pixels_per_metre=FAST, seed=3, noise=8.0)
    frames_a = [first.render(0.0, -2.5, 0.1 * k) for k in range(3)]
    frames_b = [second.render(0.0, -2.5, 0.1 * k) for k in range(3)]
    for a, b in zip(frames_a, frames_b):
        np.testing.assert_array_equal(a, b)
    clean = first.render(0.0, -2.5, 0.0, noise=0.0)
    noisy = first.render(0.0, -2.5, 0.0)
    difference = noisy.astype(int) - clean
    assert (difference != 0).mean() > 0.5
    assert 5.0 < difference.std() < 11.0
    other_seed = Renderer(oval, camera, pixels_per_metre=FAST, seed=4, noise=8.0)
    assert not np.array_equal(other_seed.render(0.0, -2.5, 0.0), noisy)


def test_brightness_scales_the_image(oval, oval_renderer):
    normal = oval_renderer.render(0.0, -2.5, 0.0).astype(float)
    dark = oval_renderer.render(0.0, -2.5, 0.0, brightness=0.5).astype(float)
    assert dark.mean() == pytest.approx(normal.mean() / 2, rel=0.02)


def test_fisheye_camera_renders(oval):
    image = Renderer(oval, CameraParams(projection='fisheye', fov_deg=160),
                     pixels_per_metre=FAST).render(0.0, -2.5, 0.0)
    assert image.shape == (120, 160, 3)
    assert np.abs(np.median(image[-10:, 50:70].reshape(-1, 3), axis=0)
                  - np.array(oval.style.road)).max() < 15


def test_top_down_picture(oval):
    image = render_top_down(oval, path_xy=oval.points[:100], size=300, pose=(0.0, -2.5, 0.0))
    assert image.dtype == np.uint8 and max(image.shape[:2]) in (299, 300, 301)
    assert (image == (220, 30, 30)).all(axis=2).any()  # the path is drawn


# --- simulator and expert ---------------------------------------------------------------------

@pytest.mark.parametrize('name', shipped_tracks())
def test_expert_laps_every_shipped_track_without_leaving_it(name):
    track = load_track(name)
    sim = Simulator(track, pixels_per_metre=FAST)
    worst = drive_expert(sim, PurePursuit(track), laps=1)
    status = sim.status
    assert status.laps == 1, f'{name}: {status}'
    assert status.off_track_count == 0
    assert worst < 0.25 * track.road_width
    assert track.length / 1.5 < status.last_lap_time < track.length / 1.0
    assert status.best_lap_time == status.last_lap_time
    assert status.distance == pytest.approx(track.length, rel=0.05)


def test_weaving_expert_swings_but_stays_on_the_road(oval):
    sim = Simulator(oval, pixels_per_metre=FAST)
    worst = drive_expert(sim, PurePursuit(oval, weave_amplitude=0.25, seed=1), laps=1)
    assert sim.status.laps == 1 and sim.status.off_track_count == 0
    assert 0.12 < worst < 0.45


def drive(sim, seconds, throttle, steering):
    for _ in range(int(round(seconds / DT))):
        sim.step(DT, throttle, steering)


def test_reversing_over_the_start_line_is_not_a_lap(oval):
    sim = Simulator(oval, pixels_per_metre=FAST)
    for _ in range(4):  # jitter back and forth over the line
        drive(sim, 1.0, -0.5, 0.0)
        assert sim.status.progress > oval.length - 2.0  # behind the line
        drive(sim, 1.0, 0.5, 0.0)
        drive(sim, 1.0, 0.0, 0.0)
    assert sim.status.laps == 0
    drive(sim, 1.5, -0.5, 0.0)
    drive_expert(sim, PurePursuit(oval), laps=1)
    assert sim.status.laps == 1
    # The lap counted only once the car had come back over the line and gone all the way round.
    assert sim.status.distance > oval.length + 2.0
    assert sim.status.off_track_count == 0


def test_driving_off_the_road_counts_once(oval):
    sim = Simulator(oval, pixels_per_metre=FAST)
    assert sim.status.on_track
    drive(sim, 0.5, 0.6, -1.0)  # turn right, out of the oval
    drive(sim, 3.0, 0.6, 0.0)
    status = sim.status
    assert not status.on_track and status.cross_track_error < -oval.road_width / 2
    assert status.off_track_count == 1


def test_reset_on_off_track_puts_the_car_back_on_the_centreline(oval):
    sim = Simulator(oval, pixels_per_metre=FAST, reset_on_off_track=True)
    drive(sim, 0.5, 0.6, -1.0)
    while sim.status.off_track_count == 0 and sim.status.time < 5.0:
        sim.step(DT, 0.6, 0.0)
    status = sim.status  # the step that left the road
    assert status.off_track_count == 1 and status.on_track
    assert abs(status.cross_track_error) < 0.02 and sim.vehicle.speed == 0.0
    assert math.cos(sim.vehicle.yaw - oval.heading_at(status.progress)) > 0.999
    drive(sim, 3.0, 0.6, 0.0)  # drives on from there, along the track
    assert sim.status.on_track and sim.status.off_track_count == 1
    drive(sim, 1.0, 0.6, -1.0)  # and off again
    assert sim.status.off_track_count == 2 and sim.status.on_track


def test_reset_starts_a_new_run_on_the_centreline(oval):
    sim = Simulator(oval, pixels_per_metre=FAST, lateral_start_offset=-0.2)
    assert sim.status.cross_track_error == pytest.approx(-0.2, abs=1e-6)
    drive(sim, 2.0, 0.5, 0.3)
    assert sim.status.distance > 1.0
    status = sim.reset()
    assert status.cross_track_error == pytest.approx(0.0, abs=1e-6)
    assert status.progress == pytest.approx(0.0, abs=1e-6) or status.progress > oval.length - 1e-6
    assert (status.laps, status.distance, status.time, status.speed) == (0, 0.0, 0.0, 0.0)
    assert sim.reset(lateral_offset=0.3).cross_track_error == pytest.approx(0.3, abs=1e-6)
    assert sim.reset(to_centerline=False).cross_track_error == pytest.approx(-0.2, abs=1e-6)


def test_lighting_varies_slowly_and_render_follows(oval):
    sim = Simulator(oval, pixels_per_metre=FAST, lighting_variation=0.5, lighting_period=4.0)
    first = sim.render().astype(float).mean()
    drive(sim, 1.0, 0.0, 0.0)  # a quarter period: brightness x1.5
    assert sim.current_brightness() == pytest.approx(1.5)
    assert sim.render().astype(float).mean() > 1.3 * first


def test_invalid_simulator_settings_are_refused(oval):
    with pytest.raises(DonkeyRosError, match='lateral_start_offset'):
        Simulator(oval, lateral_start_offset=2.0)
    with pytest.raises(DonkeyRosError, match='not found'):
        Simulator('nowhere')


def test_track_pictures_are_written(tmp_path, capsys):
    assert pictures_main(['--out', str(tmp_path), '--track', 'oval', '--size', '200']) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / 'oval_top.png'), str(tmp_path / 'oval_camera.png')]
    from PIL import Image
    assert Image.open(tmp_path / 'oval_camera.png').size == (640, 480)
    assert max(Image.open(tmp_path / 'oval_top.png').size) >= 199
