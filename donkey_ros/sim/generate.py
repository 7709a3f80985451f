"""Generated tracks: random closed roads in random looks, written as ordinary track files.

    donkey-ros tracks --generate 20 --seed 1000 --out tracks/generated

Each track is drawn from its own seed (``generate_track(seed)``: the same seed gives the same
file): a star-shaped closed centre line (a circle with a few random harmonics, stretched), scaled
to a random length, smoothed, and kept only if it passes ``check_track``: no self-crossing, the
road does not overlap itself, the tightest radius is at least ``MIN_RADIUS`` (well above the
car's turning radius, ~0.56 m for the default car) and the length is within ``LENGTH_RANGE``.
Its look is random too (``random_style``): road, floor and sky colours, floor and road texture,
edge tape in one of several colours or none, a solid, dashed or no centre line.

The files use the format of donkey_ros/sim/track.py (``load_track`` reads them), so every tool
takes them: ``donkey-ros drive --track FILE``, the sim node's ``track`` parameter, the benchmark.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import yaml

from donkey_ros.sim.track import Track, TrackError, track_from_dict

MIN_RADIUS = 1.5
"""Tightest centre-line radius of a generated track, m: the default car turns in 0.56 m (rear
axle, full lock), and the inner road edge (radius minus half the width) stays > 0.8 m."""
LENGTH_RANGE = (20.0, 80.0)
"""Centre-line length of a generated track, m."""
WIDTH_RANGE = (0.8, 1.4)
"""Road width of a generated track, m."""
CLEARANCE = 0.6
"""Least gap between two stretches of road that are not neighbours along the track, m."""
ATTEMPTS = 200

# Floor, road and tape colours found on DonkeyCar tracks (r, g, b).
ROADS = ((105, 105, 105), (60, 60, 64), (150, 148, 140), (120, 96, 70), (180, 170, 150),
         (40, 44, 60), (90, 110, 90), (200, 200, 195))
GROUNDS = ((88, 110, 62), (120, 72, 48), (160, 140, 110), (70, 70, 75), (40, 80, 40),
           (190, 180, 160), (110, 90, 60), (30, 30, 35), (140, 150, 160))
TAPES = ((245, 245, 245), (235, 200, 40), (40, 90, 220), (220, 50, 40), (40, 170, 70),
         (240, 130, 30), (20, 20, 20))
SKIES = ((150, 190, 230), (200, 200, 205), (240, 235, 220), (24, 28, 56), (110, 110, 120),
         (230, 170, 120), (60, 70, 80))


def generate_track(seed: int, name: str | None = None, spacing: float = 0.05) -> tuple[dict, Track]:
    """A random valid track for ``seed``: its YAML data (``track_from_dict`` input) and the Track.

    Raises:
        TrackError: no valid shape within ``ATTEMPTS`` draws (does not happen in practice).
    """
    rng = np.random.default_rng([int(seed), 0x7EAC])
    name = name or f'gen_{int(seed)}'
    for attempt in range(ATTEMPTS):
        data = {'name': name,
                'description': f'Generated track (seed {int(seed)}, donkey_ros/sim/generate.py).',
                'centerline': _random_centerline(rng), 'smooth': 2,
                'road_width': round(float(rng.uniform(*WIDTH_RANGE)), 2)}
        try:
            track = track_from_dict(data, spacing=spacing)
        except TrackError:
            continue
        if check_track(track) is None:
            data.update(random_style(rng))
            return data, track_from_dict(data, spacing=spacing)
    raise TrackError(f'no valid track for seed {seed} in {ATTEMPTS} attempts')


def check_track(track: Track) -> str | None:
    """Why ``track`` is not a valid generated track (one line), or None when it is: length within
    ``LENGTH_RANGE``, tightest radius >= ``MIN_RADIUS``, and stretches of road that are not
    neighbours along the track at least ``CLEARANCE`` apart (edge to edge). Self-crossing centre
    lines are already refused by ``Track``."""
    low, high = LENGTH_RANGE
    if not low <= track.length <= high:
        return f'length {track.length:.1f} m is outside {low:g}-{high:g} m'
    if track.min_radius < MIN_RADIUS:
        return f'tightest radius {track.min_radius:.2f} m is below {MIN_RADIUS:g} m'
    gap = min_gap(track)
    if gap < CLEARANCE:
        return f'the road comes within {gap:.2f} m of itself (at least {CLEARANCE:g} m)'
    return None


def min_gap(track: Track) -> float:
    """Smallest edge-to-edge distance between points of the road further apart along the track
    than pi/2 (width + ``CLEARANCE``) (inf when there are none), m."""
    step = max(1, int(round(0.2 / track.ds)))
    pts = track.points[::step]
    n, h = len(pts), step * track.ds
    idx = np.arange(n)
    sep = np.abs(idx[:, None] - idx[None, :])
    along = np.minimum(sep, n - sep) * h
    d = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(axis=2))
    # On a curve of radius >= MIN_RADIUS the chord of an arc a (a <= pi R) is >= 2a/pi: points
    # closer along the track than pi/2 (width + clearance) cannot be too close unless the road
    # folds back, so only the ones further apart are compared.
    far = along > math.pi / 2 * (track.road_width + CLEARANCE)
    return float(d[far].min() - track.road_width)


def _random_centerline(rng: np.random.Generator) -> list[list[float]]:
    """A closed, star-shaped polyline: r(t) = 1 + sum of 2-4 harmonics, stretched and rotated,
    scaled to a random length in ``LENGTH_RANGE``."""
    n = 64
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, 2 + int(rng.integers(1, 4))):
        r += rng.uniform(0.05, 0.5) / k ** 0.7 * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    r = np.maximum(r, 0.3)
    xy = np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
    xy[:, 0] *= rng.uniform(1.0, 2.2)  # stadiums and long loops as well as blobs
    angle = rng.uniform(0, 2 * np.pi)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    xy = xy @ rot.T
    if rng.uniform() < 0.5:
        xy = xy[::-1]  # clockwise as often as counter-clockwise
    perimeter = float(np.hypot(*np.diff(np.vstack([xy, xy[:1]]), axis=0).T).sum())
    xy *= rng.uniform(LENGTH_RANGE[0] + 2, LENGTH_RANGE[1] - 2) / perimeter
    xy -= xy.mean(axis=0)
    return [[round(float(x), 3), round(float(y), 3)] for x, y in xy]


def random_style(rng: np.random.Generator) -> dict:
    """Random track-file look keys: colours, markings (edges, centre line) and texture."""
    def pick(options):
        return [int(c) for c in options[int(rng.integers(len(options)))]]

    def jitter(color, amount=18):
        return [int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in color]

    road = jitter(pick(ROADS))
    ground = jitter(pick(GROUNDS))
    while _luma(ground) - _luma(road) == 0 or abs(_luma(ground) - _luma(road)) < 12:
        ground = jitter(pick(GROUNDS))  # a road that does not show is not a track
    style = {'road': road, 'ground': ground, 'sky': jitter(pick(SKIES))}
    edges = rng.uniform()
    if edges < 0.2:  # no edge tape: the road is told from the floor by its colour only
        style['edge_width'] = 0.0
    else:
        style['edge'] = pick(TAPES)
        style['edge_width'] = round(float(rng.uniform(0.03, 0.08)), 3)
    centre = rng.uniform()
    if centre < 0.3:
        style['center_line_width'] = 0.0
    else:
        style['center_line'] = pick(TAPES)
        style['center_line_width'] = round(float(rng.uniform(0.03, 0.06)), 3)
        style['center_dash'] = 0.0 if centre < 0.55 else round(float(rng.uniform(0.15, 0.5)), 2)
    style['texture'] = {'ground_noise': int(rng.integers(0, 50)),
                        'road_noise': int(rng.integers(0, 20)),
                        'noise_scale': round(float(rng.uniform(0.08, 0.6)), 2)}
    return style


def _luma(color) -> float:
    r, g, b = color
    return 0.299 * r + 0.587 * g + 0.114 * b


def track_yaml(data: dict) -> str:
    """The track file text of ``data`` (centre-line points one per line)."""
    head = {k: v for k, v in data.items() if k != 'centerline'}
    lines = ['# Generated by `donkey-ros tracks --generate` (donkey_ros/sim/generate.py).',
             '# Format: see donkey_ros/sim/track.py.']
    lines += yaml.safe_dump({k: head[k] for k in ('name', 'description')}, sort_keys=False,
                            width=200).splitlines()
    lines.append('centerline:')
    lines += [f'  - [{x}, {y}]' for x, y in data['centerline']]
    rest = {k: v for k, v in head.items() if k not in ('name', 'description')}
    lines += yaml.safe_dump(rest, sort_keys=False, default_flow_style=None).splitlines()
    return '\n'.join(lines) + '\n'


def write_tracks(out_dir: str | Path, count: int, seed: int = 0) -> list[Path]:
    """Writes ``gen_<seed + i>.yaml`` for i in 0..count-1 into ``out_dir`` (created).

    Returns:
        the files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(count):
        data, _ = generate_track(seed + i)
        path = out / f'{data["name"]}.yaml'
        path.write_text(track_yaml(data), encoding='utf-8')
        written.append(path)
    return written
