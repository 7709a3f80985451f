"""The simulator's parameters, and a Simulator built from them (shared by the node and tools)."""
from __future__ import annotations

from donkey_ros.common.errors import ConfigError
from donkey_ros.common.params import Param
from donkey_ros.sim.randomize import Randomization
from donkey_ros.sim.renderer import CameraParams
from donkey_ros.sim.simulator import Simulator
from donkey_ros.sim.track import DEFAULT_TRACK, TrackError, load_track
from donkey_ros.sim.vehicle import VehicleParams

SIM_PARAMS = (
    Param('track', DEFAULT_TRACK, 'Shipped track name (oval, waveshare, warehouse...) or a '
          'track YAML path.'),
    Param('width', 160, 'Camera image width in pixels.', min=16, max=1920),
    Param('height', 120, 'Camera image height in pixels.', min=16, max=1080),
    Param('fov_deg', 120.0, 'Horizontal field of view of the camera in degrees.',
          min=20.0, max=170.0),
    Param('camera_pitch_deg', 20.0, 'Camera tilt below the horizon in degrees.',
          min=0.0, max=80.0),
    Param('camera_height', 0.2, 'Camera height above the ground in m.', min=0.02, max=2.0),
    Param('noise', 0.0, 'Std-dev of Gaussian pixel noise (0-255 scale).', min=0.0, max=100.0),
    Param('brightness', 1.0, 'Brightness multiplier of the camera image.', min=0.1, max=3.0),
    Param('lighting_variation', 0.0,
          'Amplitude of slow brightness changes over time (0 = constant lighting).',
          min=0.0, max=0.9),
    Param('lateral_start_offset', 0.0,
          'Start this many m left (+) or right (-) of the centre line.', min=-2.0, max=2.0),
    Param('reset_on_off_track', True,
          'Put the car back on the centre line after it leaves the road (the event is counted).'),
    Param('seed', 0, 'Random seed: the same seed gives the same images and noise.', min=0),
    Param('max_speed', 3.0, 'Top speed at full throttle in m/s.', min=0.1, max=20.0),
    Param('accel', 2.5, 'Acceleration at full throttle in m/s^2.', min=0.1, max=50.0),
    Param('max_steer_deg', 25.0, 'Wheel angle at full steering in degrees.', min=1.0, max=60.0),
    Param('steer_rate_deg_s', 300.0, 'Steering servo speed limit in degrees/s.',
          min=1.0, max=5000.0),
    Param('wheelbase', 0.26, 'Wheelbase in m.', min=0.05, max=2.0),
    Param('randomize_colors', False, 'Domain randomization: new road, floor, sky and marking '
          'colours and textures every episode (each reset), drawn from `seed`.'),
    Param('randomize_lighting', False, 'Domain randomization: brightness, colour temperature, '
          'shadows and lens glare per episode.'),
    Param('randomize_camera', False, 'Domain randomization: pixel noise, blur, exposure and '
          'the camera pose (height +-3 cm, pitch +-5 deg, roll +-4 deg, fov +-10 deg) per '
          'episode.'),
    Param('randomize_distractors', False,
          'Domain randomization: up to 25 objects lying on the floor off the road per episode.'),
    Param('randomize_strength', 1.0, 'How widely domain randomization draws (0-1: 1 = full '
          'ranges, 0.5 = half the spread around the track\'s own look).', min=0.0, max=1.0),
)


def simulator_from_params(p) -> Simulator:
    """Builds a Simulator from values of ``SIM_PARAMS`` (attributes of ``p``).

    Raises:
        ConfigError: the track cannot be loaded or the values do not fit together.
    """
    try:
        track = load_track(p.track)
    except TrackError as error:
        raise ConfigError(f"parameter 'track': {error}") from None
    vehicle = VehicleParams(
        wheelbase=p.wheelbase, max_steer_deg=p.max_steer_deg, max_speed=p.max_speed,
        accel=p.accel, steer_rate_deg_s=p.steer_rate_deg_s)
    camera = CameraParams(width=p.width, height=p.height, fov_deg=p.fov_deg,
                          pitch_deg=p.camera_pitch_deg, mount_height=p.camera_height)
    randomization = Randomization(
        colors=p.randomize_colors, lighting=p.randomize_lighting, camera=p.randomize_camera,
        distractors=p.randomize_distractors, strength=p.randomize_strength)
    return Simulator(
        track, vehicle, camera, seed=p.seed, noise=p.noise, brightness=p.brightness,
        lighting_variation=p.lighting_variation, lateral_start_offset=p.lateral_start_offset,
        reset_on_off_track=p.reset_on_off_track, randomization=randomization)
