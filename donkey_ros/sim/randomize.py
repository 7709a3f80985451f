"""Domain randomization: every episode of the simulator in another look, drawn from its seed.

A pilot trained on one look learns the look. Drawn per episode (``draw_look(seed, episode)``:
the same seed and episode always give the same look), by group, each switched on separately:

- ``colors``: road, floor, sky, edge tape and centre line colours (markings kept where the track
  has them, sometimes dropped: no edge tape, no centre line), textures (floor and road roughness,
  blotch size);
- ``lighting``: brightness (0.45-1.5x), colour temperature (warm tungsten to cold daylight, per
  channel gains), soft shadows over the floor, lens glare;
- ``camera``: pixel noise, blur, exposure; and the camera's pose within what remounting a
  DonkeyCar camera changes: height +-3 cm, pitch +-5 degrees, roll +-4 degrees, field of view
  +-10 degrees;
- ``distractors``: 0-25 objects (boxes, discs, paper) lying on the floor off the road.

``strength`` (0-1) scales every range (0.5: half the spread around the track's own look). Off
(all groups False, the default) the simulator is exactly what it was: same images, same speed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from donkey_ros.common.errors import ConfigError
from donkey_ros.sim.renderer import CameraParams, Effects
from donkey_ros.sim.track import TrackStyle

GROUPS = ('colors', 'lighting', 'camera', 'distractors')


@dataclass(frozen=True)
class Randomization:
    """Which groups of the look are drawn per episode, and how widely (``strength`` 0-1)."""

    colors: bool = False
    lighting: bool = False
    camera: bool = False
    distractors: bool = False
    strength: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise ConfigError(f'randomization strength must be 0-1, got {self.strength}')

    @property
    def enabled(self) -> bool:
        return (self.colors or self.lighting or self.camera or self.distractors) \
            and self.strength > 0

    @classmethod
    def all(cls, strength: float = 1.0) -> 'Randomization':
        return cls(True, True, True, True, strength)


@dataclass(frozen=True)
class Look:
    """One episode's draw: the renderer's effects and the camera."""

    effects: Effects
    camera: CameraParams


def draw_look(randomization: Randomization, style: TrackStyle, camera: CameraParams,
              seed: int, episode: int) -> Look:
    """The look of ``episode`` for ``seed`` (deterministic), starting from the track's ``style``
    and the configured ``camera``."""
    if not randomization.enabled:
        return Look(Effects(), camera)
    rng = np.random.default_rng([int(seed), int(episode), 0xD0])
    k = randomization.strength
    # Each group draws from its own stream: switching one group on or off leaves the others.
    streams = {g: np.random.default_rng(rng.integers(0, 2**63)) for g in GROUPS}
    effects = {}
    if randomization.colors:
        effects['style'] = _colors(style, streams['colors'], k)
    if randomization.lighting:
        r = streams['lighting']
        brightness = math.exp(k * r.uniform(math.log(0.45), math.log(1.5)))
        warmth = k * r.uniform(-1, 1)  # -1 cold daylight .. +1 warm tungsten
        gain = (1 + 0.25 * warmth, 1 + 0.03 * warmth, 1 - 0.3 * warmth)
        effects['gain'] = tuple(brightness * g for g in gain)
        if r.uniform() < 0.6:
            effects['shadows'] = float(k * r.uniform(0.2, 0.6))
        if r.uniform() < 0.35:
            effects['glare'] = (float(r.uniform(0, 1)), float(r.uniform(0, 0.5)),
                                float(r.uniform(0.08, 0.3)), float(k * r.uniform(40, 160)))
    if randomization.camera:
        r = streams['camera']
        effects['noise'] = float(k * r.uniform(0, 8))
        effects['blur'] = int(r.uniform() < 0.4 * k)
        exposure = math.exp(k * r.uniform(math.log(0.8), math.log(1.25)))
        effects['gain'] = tuple(exposure * g for g in effects.get('gain', (1.0, 1.0, 1.0)))
        camera = replace(camera,
                         mount_height=max(0.03, camera.mount_height + k * r.uniform(-0.03, 0.03)),
                         pitch_deg=float(np.clip(camera.pitch_deg + k * r.uniform(-5, 5), 0, 80)),
                         roll_deg=camera.roll_deg + k * r.uniform(-4, 4),
                         fov_deg=float(np.clip(camera.fov_deg + k * r.uniform(-10, 10), 20, 170)))
    if randomization.distractors:
        effects['distractors'] = int(streams['distractors'].integers(0, 1 + round(25 * k)))
    return Look(Effects(**effects), camera)


def _colors(style: TrackStyle, rng: np.random.Generator, k: float) -> TrackStyle:
    """New colours and textures, ``k`` of the way from the track's towards random ones."""
    def mix(color):
        new = rng.integers(0, 256, 3)
        return tuple(int(round((1 - k) * c + k * n)) for c, n in zip(color, new))

    road, ground = mix(style.road), mix(style.ground)
    for _ in range(20):  # the road must still show against the floor
        if abs(_luma(road) - _luma(ground)) >= 20 * k or style.edge_width > 0:
            break
        ground = mix(style.ground)
    edge_width = style.edge_width
    if edge_width > 0 and rng.uniform() < 0.2 * k and abs(_luma(road) - _luma(ground)) >= 20:
        edge_width = 0.0
    centre = style.center_line_width
    if centre > 0 and rng.uniform() < 0.25 * k:
        centre = 0.0
    return replace(style, road=road, ground=ground, sky=mix(style.sky), edge=mix(style.edge),
                   center_line=mix(style.center_line), edge_width=edge_width,
                   center_line_width=centre,
                   ground_noise=float(np.clip(style.ground_noise + k * rng.uniform(-25, 25), 0, 60)),
                   road_noise=float(np.clip(style.road_noise + k * rng.uniform(-8, 12), 0, 30)),
                   noise_scale=float(style.noise_scale * math.exp(k * rng.uniform(-1, 1))))


def _luma(color) -> float:
    r, g, b = color
    return 0.299 * r + 0.587 * g + 0.114 * b
