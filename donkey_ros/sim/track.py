"""Tracks: a small YAML format anyone can edit, and the geometry the simulator needs.

A track file (``donkey_ros/sim/tracks/*.yaml`` ships a few) looks like::

    name: oval
    description: A stadium taped on a floor.
    centerline:            # closed polyline [x, y] in metres, driven in this order
      - [0.0, 0.0]         # (counter-clockwise or clockwise, the last point joins the first)
      - [6.0, 0.0]
      - ...
    smooth: 3              # Chaikin corner-cutting passes (0 = use the polyline as is)
    road_width: 1.0        # m; the car is on the track while |lateral offset| <= road_width / 2
    road: [90, 90, 90]     # colours are [r, g, b], 0-255
    edge: [240, 240, 240]  # edge lines, drawn inside the road's border
    edge_width: 0.05       # m
    center_line: [230, 200, 40]
    center_line_width: 0.04  # m (0 = no centre line)
    center_dash: 0.3       # dash length in m (0 = solid)
    ground: [70, 110, 60]
    sky: [150, 190, 230]
    texture:               # optional: how rough the surfaces look
      ground_noise: 25     # amplitude 0-255
      road_noise: 8
      noise_scale: 0.3     # m, size of the blotches
    start:                 # optional: where the start/finish line is
      index: 0             # a centerline point (projected onto the smoothed curve), or
      # s: 2.5             # a distance along the smoothed centerline from its first point

Only ``centerline`` is required. Once loaded, arc length ``s`` is measured from the start line in
the driving direction, and lateral offsets are positive to the left of the driving direction
(REP 103).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import yaml

from donkey_ros.common.errors import DonkeyRosError

TRACKS_DIR = Path(__file__).resolve().parent / 'tracks'
MAX_TRACK_SIZE = 400.0
"""Largest side of a track's bounding box, m. Bigger is refused: the simulator's raster (kept
within ``renderer.RASTER_PIXELS``) would be too coarse, and a track that large is almost always
a track written in centimetres or millimetres."""
DEFAULT_TRACK = 'oval'
Color = tuple[int, int, int]


class TrackError(DonkeyRosError):
    """A track file is missing or invalid."""


@dataclass(frozen=True)
class TrackStyle:
    """How a track looks: colours [r, g, b] 0-255, line widths in metres, texture noise."""

    road: Color = (90, 90, 90)
    edge: Color = (240, 240, 240)
    edge_width: float = 0.05
    center_line: Color = (230, 200, 40)
    center_line_width: float = 0.04
    center_dash: float = 0.3
    ground: Color = (70, 110, 60)
    sky: Color = (150, 190, 230)
    ground_noise: float = 25.0
    road_noise: float = 8.0
    noise_scale: float = 0.3


_COLOR_KEYS = ('road', 'edge', 'center_line', 'ground', 'sky')
_TEXTURE_KEYS = ('ground_noise', 'road_noise', 'noise_scale')
_TOP_KEYS = {'name', 'description', 'centerline', 'smooth', 'road_width', 'texture', 'start',
             *(f.name for f in fields(TrackStyle) if f.name not in _TEXTURE_KEYS)}


@dataclass(eq=False)
class Track:
    """A closed track resampled every ``spacing`` metres, with projection helpers.

    Args:
        centerline: (N, 2) closed polyline in metres, in driving order (N >= 3).
        road_width: road width in metres (> 0).
        name: track name.
        description: one line about the track.
        smooth: Chaikin corner-cutting passes applied to ``centerline`` first.
        start_s: start line, as a distance along the smoothed centerline from its first point.
        style: colours and texture.
        spacing: resampling step in metres.

    Raises:
        TrackError: fewer than 3 distinct points, a non-positive width, a self-crossing line, or
            a track larger than ``MAX_TRACK_SIZE`` (one line naming its size).
    """

    centerline: np.ndarray
    road_width: float = 1.0
    name: str = 'track'
    description: str = ''
    smooth: int = 0
    start_s: float = 0.0
    style: TrackStyle = field(default_factory=TrackStyle)
    spacing: float = 0.05

    def __post_init__(self) -> None:
        poly = np.asarray(self.centerline, dtype=np.float64)
        if poly.ndim != 2 or poly.shape[1] != 2:
            raise TrackError(f'track {self.name!r}: centerline must be a list of [x, y] points')
        poly = _drop_repeats(poly)
        if len(poly) < 3:
            raise TrackError(f'track {self.name!r}: centerline needs at least 3 distinct points, '
                             f'got {len(poly)}')
        if not self.road_width > 0:
            raise TrackError(f'track {self.name!r}: road_width must be > 0, got {self.road_width}')
        if not self.spacing > 0:
            raise TrackError(f'track {self.name!r}: spacing must be > 0, got {self.spacing}')
        size = poly.max(axis=0) - poly.min(axis=0) + self.road_width
        if size.max() > MAX_TRACK_SIZE:
            raise TrackError(f'track {self.name!r} is {size[0]:.4g} x {size[1]:.4g} m, larger '
                             f'than the simulator takes ({MAX_TRACK_SIZE:g} m a side): '
                             'coordinates and widths are metres (a track in centimetres?)')
        for _ in range(int(self.smooth)):
            poly = _chaikin(poly)
        self.points, self.length = _resample(poly, self.start_s, self.spacing)
        n = len(self.points)
        self.ds = self.length / n
        self.s = np.arange(n) * self.ds
        step = np.roll(self.points, -1, axis=0) - np.roll(self.points, 1, axis=0)
        self.headings = np.arctan2(step[:, 1], step[:, 0])
        self.tangents = np.stack([np.cos(self.headings), np.sin(self.headings)], axis=1)
        turn = _wrap(np.roll(self.headings, -1) - np.roll(self.headings, 1)) / (2 * self.ds)
        width = max(1, int(round(0.15 / self.ds)))  # smooth out polyline kinks over ~0.3 m
        kernel = np.ones(2 * width + 1) / (2 * width + 1)
        self.curvature = np.convolve(np.concatenate([turn[-width:], turn, turn[:width]]),
                                     kernel, mode='valid')
        self._check_crossing()

    @property
    def min_radius(self) -> float:
        """Tightest turn radius in metres (inf for a straight line)."""
        peak = float(np.max(np.abs(self.curvature)))
        return math.inf if peak == 0 else 1.0 / peak

    def project(self, x: float, y: float) -> tuple[float, float, float]:
        """Nearest centerline point to (x, y).

        Returns:
            (s, lateral offset, heading): s in [0, length) from the start line, lateral offset
            in metres (+ = left of the driving direction), track heading at s in radians.
        """
        pts = self.points
        d2 = (pts[:, 0] - x) ** 2 + (pts[:, 1] - y) ** 2
        i = int(np.argmin(d2))
        n = len(pts)
        best = None
        for a in (i - 1, i):
            a %= n
            ax, ay = pts[a]
            bx, by = pts[(a + 1) % n]
            ex, ey = bx - ax, by - ay
            seg2 = ex * ex + ey * ey
            t = min(1.0, max(0.0, ((x - ax) * ex + (y - ay) * ey) / seg2))
            dx, dy = x - (ax + t * ex), y - (ay + t * ey)
            dist2 = dx * dx + dy * dy
            if best is None or dist2 < best[0]:
                seg = math.sqrt(seg2)
                lateral = (ex * (y - ay) - ey * (x - ax)) / seg
                best = (dist2, (a + t) * self.ds, lateral, math.atan2(ey, ex))
        _, s, lateral, heading = best
        return float(s % self.length), float(lateral), heading

    def point_at(self, s: float) -> tuple[float, float]:
        """Centerline point (x, y) at arc length ``s`` (wraps around the lap)."""
        i, j, t = self._bracket(s)
        a, b = self.points[i], self.points[j]
        return float(a[0] + t * (b[0] - a[0])), float(a[1] + t * (b[1] - a[1]))

    def heading_at(self, s: float) -> float:
        """Track heading in radians (-pi, pi] at arc length ``s``."""
        i, j, t = self._bracket(s)
        h = self.headings
        return float(_wrap(h[i] + t * _wrap(h[j] - h[i])))

    def curvature_at(self, s: float) -> float:
        """Signed curvature 1/m at arc length ``s`` (+ = turning left)."""
        i, j, t = self._bracket(s)
        return float(self.curvature[i] + t * (self.curvature[j] - self.curvature[i]))

    def _bracket(self, s: float) -> tuple[int, int, float]:
        pos = (s % self.length) / self.ds
        i = int(pos) % len(self.points)
        return i, (i + 1) % len(self.points), pos - int(pos)

    def _check_crossing(self) -> None:
        """Raises TrackError if the centerline crosses or touches itself (checked every ~0.2 m)."""
        step = max(1, int(round(0.2 / self.ds)))
        pts = self.points[::step].astype(np.float32)
        n, h = len(pts), step * self.ds
        idx = np.arange(n)
        for start in range(0, n, 512):
            rows = pts[start:start + 512]
            d2 = ((rows[:, None, :] - pts[None, :, :]) ** 2).sum(axis=2)
            sep = np.abs(idx[start:start + 512, None] - idx[None, :])
            close = (d2 < h * h) & (np.minimum(sep, n - sep) * h > 1.0)
            if close.any():
                x, y = pts[int(np.argwhere(close)[0][0]) + start]
                raise TrackError(f'track {self.name!r}: the centerline crosses itself near '
                                 f'({x:.2f}, {y:.2f})')


def shipped_tracks() -> list[str]:
    """Names of the tracks that ship with donkey_ros, sorted."""
    return sorted(p.stem for p in TRACKS_DIR.glob('*.yaml'))


def track_path(name_or_path: str | Path) -> Path:
    """The file of a shipped track name, or ``name_or_path`` itself if it is a path.

    Raises:
        TrackError: no such shipped track and no such file.
    """
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if candidate.is_file():
        return candidate
    shipped = TRACKS_DIR / f'{text}.yaml'
    if '/' not in text and shipped.is_file():
        return shipped
    raise TrackError(f"track '{text}' not found: no such file, and not a shipped track "
                     f"(shipped: {', '.join(shipped_tracks())})")


def load_track(name_or_path: str | Path = DEFAULT_TRACK, spacing: float = 0.05) -> Track:
    """Loads a shipped track by name (``oval``) or a track YAML file by path.

    Raises:
        TrackError: missing file, bad YAML, or invalid content; the message names the file.
    """
    path = track_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding='utf-8'))
    except UnicodeDecodeError:
        raise TrackError(f'{path}: not a text file (not UTF-8); a track is a YAML file') from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        where = f' (line {mark.line + 1})' if mark is not None else ''
        raise TrackError(f'{path}: bad YAML{where}: {getattr(exc, "problem", exc)}') from None
    except OSError as exc:
        raise TrackError(f'{path}: cannot read: {exc.strerror}') from None
    try:
        return track_from_dict(data, default_name=path.stem, spacing=spacing)
    except TrackError as exc:
        raise TrackError(f'{path}: {exc}') from None


def track_from_dict(data: object, default_name: str = 'track', spacing: float = 0.05) -> Track:
    """Builds a Track from parsed YAML (see the module docstring for the keys).

    Raises:
        TrackError: a missing or invalid key.
    """
    if not isinstance(data, dict):
        raise TrackError('expected a mapping with at least a "centerline" key')
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise TrackError(f"unknown key '{unknown[0]}' (known: {', '.join(sorted(_TOP_KEYS))})")
    if 'centerline' not in data:
        raise TrackError('missing "centerline" (a list of [x, y] points)')
    points = data['centerline']
    try:
        poly = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        poly = None
    if poly is None or poly.ndim != 2 or (len(poly) and poly.shape[1] != 2):
        raise TrackError('"centerline" must be a list of [x, y] points')
    if len(poly) < 3:
        raise TrackError(f'"centerline" needs at least 3 points, got {len(poly)}')
    if not np.all(np.isfinite(poly)):
        raise TrackError('"centerline" has a non-finite coordinate')
    style = {}
    for key in _COLOR_KEYS:
        if key in data:
            style[key] = _color(key, data[key])
    for key in ('edge_width', 'center_line_width', 'center_dash'):
        if key in data:
            style[key] = _number(key, data[key], minimum=0.0)
    texture = data.get('texture') or {}
    if not isinstance(texture, dict):
        raise TrackError('"texture" must be a mapping')
    for key, value in texture.items():
        if key not in _TEXTURE_KEYS:
            raise TrackError(f"unknown texture key '{key}' (known: {', '.join(_TEXTURE_KEYS)})")
        style[key] = _number(f'texture.{key}', value, minimum=0.0)
    if style.get('noise_scale', 1.0) <= 0:
        raise TrackError('"texture.noise_scale" must be > 0')
    road_width = _number('road_width', data.get('road_width', 1.0))
    if road_width <= 0:
        raise TrackError(f'"road_width" must be > 0, got {road_width}')
    smooth = data.get('smooth', 0)
    if not isinstance(smooth, int) or isinstance(smooth, bool) or not 0 <= smooth <= 8:
        raise TrackError(f'"smooth" must be an integer 0-8, got {smooth!r}')
    name = str(data.get('name', default_name))
    track = Track(poly, road_width=road_width, name=name,
                  description=str(data.get('description', '')), smooth=smooth,
                  style=TrackStyle(**style), spacing=spacing)
    start = data.get('start')
    if start is None:
        return track
    start_s = _start_s(start, poly, track)
    if start_s == 0.0:
        return track
    return Track(poly, road_width=road_width, name=name, description=track.description,
                 smooth=smooth, start_s=start_s, style=track.style, spacing=spacing)


def _start_s(start: object, poly: np.ndarray, track: Track) -> float:
    if not isinstance(start, dict) or len(start) != 1 or not {'index', 's'} >= set(start):
        raise TrackError('"start" must be a mapping with one key, "index" or "s"')
    if 'index' in start:
        index = start['index']
        if not isinstance(index, int) or not -len(poly) <= index < len(poly):
            raise TrackError(f'"start.index" must be an integer 0-{len(poly) - 1}, got {index!r}')
        return track.project(*poly[index])[0]
    return _number('start.s', start['s']) % track.length


def _color(key: str, value: object) -> Color:
    ok = (isinstance(value, (list, tuple)) and len(value) == 3
          and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value))
    if not ok:
        raise TrackError(f'"{key}" must be a colour [r, g, b] with integers 0-255, got {value!r}')
    return tuple(value)


def _number(key: str, value: object, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TrackError(f'"{key}" must be a number, got {value!r}')
    if minimum is not None and value < minimum:
        raise TrackError(f'"{key}" must be >= {minimum}, got {value}')
    return float(value)


def _drop_repeats(poly: np.ndarray) -> np.ndarray:
    """Drops points equal to the next one (also a last point repeating the first)."""
    if len(poly) < 2:
        return poly
    keep = np.hypot(*(np.roll(poly, -1, axis=0) - poly).T) >= 1e-9
    return poly[keep]


def _chaikin(poly: np.ndarray) -> np.ndarray:
    """One pass of Chaikin corner cutting on a closed polyline."""
    nxt = np.roll(poly, -1, axis=0)
    out = np.empty((2 * len(poly), 2))
    out[0::2] = 0.75 * poly + 0.25 * nxt
    out[1::2] = 0.25 * poly + 0.75 * nxt
    return out


def _resample(poly: np.ndarray, start_s: float, spacing: float) -> tuple[np.ndarray, float]:
    """Points every ~``spacing`` m along the closed polyline, from ``start_s``; and its length."""
    closed = np.vstack([poly, poly[:1]])
    seg = np.hypot(*np.diff(closed, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    length = float(cum[-1])
    n = max(3, int(round(length / spacing)))
    targets = (start_s + np.arange(n) * (length / n)) % length
    pts = np.stack([np.interp(targets, cum, closed[:, 0]), np.interp(targets, cum, closed[:, 1])],
                   axis=1)
    return pts, length


def _wrap(angle):
    """Wraps angles to (-pi, pi]."""
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi
