"""Camera images of a track, by inverse perspective mapping of a top-down raster.

The track is painted once into an RGB raster of the ground (road, edge lines, dashed centre line,
start line, textured ground), with a few half-resolution copies (mipmaps) against aliasing in the
distance. For every camera pixel below the horizon the ground point it sees, in the car's frame,
is computed once; a frame is then a rotation + translation of those points and one gather from
the raster. Nearest-neighbour sampling, no rclpy, thousands of frames per second at 160x120.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from donkey_ros.common.errors import ConfigError
from donkey_ros.sim.track import Track, TrackStyle

GROUND, ROAD, EDGE, CENTER, START = range(5)
MIP_LEVELS = 5
RASTER_PIXELS = 16_000_000
"""Most pixels of a track's ground raster. A larger track is painted at fewer pixels per metre
(at most ``pixels_per_metre``, 100 by default) so the raster stays within this: about 4 bytes a
pixel (RGB + label) plus a third for the mipmaps, ~90 MB at the limit. The shipped tracks are
2-4 Mpx at 100 px/m; a 200 m square runs at ~19 px/m."""
CHUNK_PIXELS = 1 << 20
"""Pixels coloured at a time (bounds the float temporaries of texturing)."""


@dataclass(frozen=True)
class CameraParams:
    """The car's forward camera, DonkeyCar-like: small image, wide angle, low and tilted down.

    Args:
        width: image width, pixels.
        height: image height, pixels.
        fov_deg: horizontal field of view, degrees.
        pitch_deg: downward tilt of the optical axis, degrees.
        mount_height: lens height above the ground, m.
        mount_forward: lens position ahead of the rear axle, m.
        roll_deg: rotation of the camera about its optical axis, degrees (+ = clockwise as seen
            from behind the car: the horizon in the image rises to the right).
        projection: 'pinhole' (straight lines stay straight, fov < 180) or 'fisheye'
            (equidistant, like the 160-degree DonkeyCar lens).
    """

    width: int = 160
    height: int = 120
    fov_deg: float = 120.0
    pitch_deg: float = 20.0
    mount_height: float = 0.2
    mount_forward: float = 0.25
    projection: str = 'pinhole'
    roll_deg: float = 0.0

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ConfigError(f'camera size must be positive, got {self.width}x{self.height}')
        if self.projection not in ('pinhole', 'fisheye'):
            raise ConfigError(f"camera projection must be 'pinhole' or 'fisheye', "
                              f'got {self.projection!r}')
        limit = 179.0 if self.projection == 'pinhole' else 270.0
        if not 1.0 <= self.fov_deg <= limit:
            raise ConfigError(f'camera fov_deg must be 1-{limit:g} for {self.projection}, '
                              f'got {self.fov_deg}')
        if not self.mount_height > 0:
            raise ConfigError(f'camera mount_height must be > 0, got {self.mount_height}')


def camera_rays(camera: CameraParams, du: float = 0.5, dv: float = 0.5) -> np.ndarray:
    """Unit ray of every pixel in the car frame (x forward, y left, z up), shape (H, W, 3).

    Args:
        du, dv: where in the pixel the ray goes through (0.5, 0.5 = its centre).
    """
    w, h = camera.width, camera.height
    half = math.radians(camera.fov_deg) / 2
    u = (np.arange(w) + du - w / 2)[None, :]
    v = (np.arange(h) + dv - h / 2)[:, None]
    if camera.projection == 'pinhole':
        f = (w / 2) / math.tan(half)
        right, down, fwd = np.broadcast_arrays(u / f, v / f, np.ones((h, w)))
    else:  # equidistant fisheye: angle from the axis grows linearly with the pixel radius
        f = (w / 2) / half
        r = np.hypot(u, v)
        theta = r / f
        scale = np.where(r > 0, np.sin(theta) / np.maximum(r, 1e-12), 1 / f)
        right, down, fwd = u * scale, v * scale, np.cos(theta)
    if camera.roll_deg:
        r = math.radians(camera.roll_deg)
        right, down = (right * math.cos(r) - down * math.sin(r),
                       right * math.sin(r) + down * math.cos(r))
    p = math.radians(camera.pitch_deg)
    # Tilted down by p: the optical axis is (cos p, 0, -sin p), image-down (-sin p, 0, -cos p).
    x = fwd * math.cos(p) - down * math.sin(p)
    z = -fwd * math.sin(p) - down * math.cos(p)
    rays = np.stack([x, -right, z], axis=-1)
    return rays / np.linalg.norm(rays, axis=-1, keepdims=True)


def ground_points(camera: CameraParams, du: float = 0.5, dv: float = 0.5,
                  max_range: float = 200.0) -> tuple[np.ndarray, np.ndarray]:
    """Ground point (forward, left) seen by each pixel, relative to the rear axle.

    Args:
        max_range: rays reaching the ground further than this (m) stop at this distance.

    Returns:
        (points (H, W, 2) float64, mask (H, W) bool: the pixel looks below the horizon).
    """
    rays = camera_rays(camera, du, dv)
    down = -rays[..., 2]
    hits = down > 1e-6
    t = np.where(hits, camera.mount_height / np.maximum(down, 1e-6), 0.0)
    t = np.minimum(t, max_range / np.maximum(np.hypot(rays[..., 0], rays[..., 1]), 1e-6))
    pts = rays[..., :2] * t[..., None]
    pts[..., 0] += camera.mount_forward
    return pts, hits


@dataclass
class Raster:
    """A top-down picture of the ground: ``image[row, col]`` covers x = x0 + col / ppm,
    y = y_top - row / ppm (one pixel, 1/ppm metres wide), and the label of each pixel."""

    image: np.ndarray
    labels: np.ndarray
    x0: float
    y_top: float
    ppm: float

    def to_pixel(self, x, y):
        """Fractional (col, row) image coordinates of world points (pixel centres at +0.5)."""
        return (np.asarray(x) - self.x0) * self.ppm, (self.y_top - np.asarray(y)) * self.ppm


def raster_ppm(extent, ppm: float, max_pixels: int = RASTER_PIXELS) -> tuple[float, int, int]:
    """The resolution (pixels per metre, at most ``ppm``) and size (width, height) of a raster
    covering ``extent`` (width, height in m) with at most ``max_pixels`` pixels."""
    ex, ey = (max(float(v), 1e-6) for v in extent)
    ppm = min(float(ppm), math.sqrt(max_pixels / (ex * ey)))
    while True:
        width, height = max(1, math.ceil(ex * ppm)), max(1, math.ceil(ey * ppm))
        if width * height <= max_pixels:
            return ppm, width, height
        ppm *= 0.995


def rasterize(track: Track, ppm: float = 100.0, margin: float = 3.0, seed: int = 0,
              max_pixels: int = RASTER_PIXELS, style: TrackStyle | None = None,
              shadows: float = 0.0, distractors: int = 0) -> Raster:
    """Paints the track top-down: textured ground, road, edge lines, centre dashes, start line.

    Args:
        track: the track.
        ppm: raster resolution, pixels per metre (lowered for a track too large for
            ``max_pixels``; the raster's ``ppm`` says what was used).
        margin: ground painted around the road, m.
        seed: texture noise seed.
        max_pixels: most pixels of the raster (see ``RASTER_PIXELS``).
        style: colours and texture (default: the track's).
        shadows: darkness of soft shadows cast over ground and road, 0-1 (0 = none).
        distractors: number of coloured objects (boxes, discs, paper) lying on the floor off the
            road, at least 0.3 m from its edge.
    """
    st = style or track.style
    pad = track.road_width / 2 + margin
    lo, hi = track.points.min(axis=0) - pad, track.points.max(axis=0) + pad
    ppm, width, height = raster_ppm(hi - lo, ppm, max_pixels)
    raster = Raster(np.empty(0), np.empty(0), float(lo[0]), float(hi[1]), float(ppm))
    labels = Image.new('L', (width, height), GROUND)
    draw = ImageDraw.Draw(labels)
    half = track.road_width / 2
    extra_colors = _draw_distractors(draw, raster, track, distractors, seed) if distractors else []
    strips = [(ROAD, -half, half), (EDGE, half - st.edge_width, half),
              (EDGE, -half, -half + st.edge_width)]
    for label, a, b in strips:
        if b > a:
            _draw_strips(draw, raster, track, a, b, label)
    if st.center_line_width > 0:
        on = None
        if st.center_dash > 0:
            on = ((track.s + 0.5 * track.ds) % (2 * st.center_dash)) < st.center_dash
        c = st.center_line_width / 2
        _draw_strips(draw, raster, track, -c, c, CENTER, on)
    start = np.zeros(len(track.points), bool)
    start[0] = True
    _draw_strips(draw, raster, track, -half + st.edge_width, half - st.edge_width, START, start)
    lab = np.asarray(labels)
    colors = np.array([st.ground, st.road, st.edge, st.center_line, st.edge] + extra_colors,
                      np.float32)
    amplitude = np.array([st.ground_noise, st.road_noise, st.road_noise / 2, st.road_noise / 2,
                          st.road_noise / 2] + [4.0] * len(extra_colors), np.float32)
    texture = _texture(height, width, ppm, st.noise_scale, np.random.default_rng(seed))
    shade = (_shadow_field(height, width, ppm, shadows, np.random.default_rng([seed, 2]))
             if shadows > 0 else None)
    image = np.empty((height, width, 3), np.uint8)
    rows = max(1, CHUNK_PIXELS // width)
    for top in range(0, height, rows):  # in bands: the float temporaries stay small
        band = lab[top:top + rows]
        rgb = colors[band] + (amplitude[band] * texture[top:top + rows])[..., None]
        if shade is not None:
            rgb *= shade[top:top + rows, :, None]
        image[top:top + rows] = np.clip(rgb + 0.5, 0, 255)
    raster.image = image
    raster.labels = lab
    return raster


def _draw_distractors(draw: ImageDraw.ImageDraw, raster: Raster, track: Track, count: int,
                      seed: int) -> list:
    """Paints ``count`` objects off the road into the label image (labels 5, 6, ...); returns
    their colours. Each lies where its whole footprint is >= 0.3 m from the road's edge."""
    rng = np.random.default_rng([seed, 1])
    lo = track.points.min(axis=0) - track.road_width / 2 - 2.5
    hi = track.points.max(axis=0) + track.road_width / 2 + 2.5
    colors = []
    for _ in range(50 * count):
        if len(colors) == count:
            break
        size = rng.uniform(0.1, 0.6)
        x, y = rng.uniform(lo, hi)
        d2 = ((track.points - (x, y)) ** 2).sum(axis=1).min()
        if d2 < (track.road_width / 2 + 0.3 + size) ** 2:
            continue
        label = START + 1 + len(colors)
        c, r = raster.to_pixel(x, y)
        rad = size * raster.ppm / 2
        if rng.uniform() < 0.5:
            draw.ellipse([c - rad, r - rad, c + rad, r + rad], fill=label)
        else:
            a = rng.uniform(0, math.pi)
            corners = [(c + rad * math.cos(a + k * math.pi / 2) * (1.0 if k % 2 else 0.6),
                        r + rad * math.sin(a + k * math.pi / 2) * (1.0 if k % 2 else 0.6))
                       for k in range(4)]
            draw.polygon(corners, fill=label)
        colors.append([float(v) for v in rng.integers(0, 256, 3)])
    return colors


def _shadow_field(height: int, width: int, ppm: float, darkness: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Brightness factor per raster pixel: soft-edged shadows (as of trees, furniture, people)
    over about a third of the floor, darkest ``1 - darkness``."""
    cells = max(1.0, 1.5 * ppm)  # shadows of about 1.5 m
    shape = (int(height / cells) + 2, int(width / cells) + 2)
    coarse = Image.fromarray(rng.uniform(0, 1, shape).astype(np.float32))
    field = np.asarray(coarse.resize((width, height), Image.BILINEAR))
    # 0.35 -> 0.65 of the noise: a soft edge from lit to shadowed.
    return (1.0 - darkness * np.clip((field - 0.35) / 0.3, 0.0, 1.0)).astype(np.float32)


def _draw_strips(draw: ImageDraw.ImageDraw, raster: Raster, track: Track, a: float, b: float,
                 label: int, on: np.ndarray | None = None) -> None:
    """Fills the band between lateral offsets a < b along the track (segments where ``on``)."""
    normal = np.stack([-np.sin(track.headings), np.cos(track.headings)], axis=1)
    cols, rows = [], []
    for offset in (a, b):
        c, r = raster.to_pixel(*(track.points + offset * normal).T)
        cols.append(c - 0.5)
        rows.append(r - 0.5)
    n = len(track.points)
    for i in range(n) if on is None else np.flatnonzero(on):
        j = (i + 1) % n
        draw.polygon([(cols[0][i], rows[0][i]), (cols[0][j], rows[0][j]),
                      (cols[1][j], rows[1][j]), (cols[1][i], rows[1][i])], fill=label)


def _texture(height: int, width: int, ppm: float, scale: float,
             rng: np.random.Generator) -> np.ndarray:
    """Smooth-ish noise in about [-1, 1]: blotches of ``scale`` metres, finer grain, pixel grain."""
    out = np.empty((height, width), np.float32)
    rows = max(1, CHUNK_PIXELS // width)
    for top in range(0, height, rows):  # in bands (the same numbers as in one draw)
        out[top:top + rows] = 0.2 * rng.uniform(-1, 1, (min(rows, height - top), width))
    for weight, size in ((0.5, scale), (0.3, scale / 4)):
        cells = max(1.0, size * ppm)
        shape = (int(width / cells) + 2, int(height / cells) + 2)
        coarse = Image.fromarray(rng.uniform(-1, 1, shape[::-1]).astype(np.float32))  # mode F
        out += weight * np.asarray(coarse.resize((width, height), Image.BILINEAR))
    return out


class Renderer:
    """Renders the camera view of a car on a track.

    Args:
        track: the track.
        camera: camera parameters.
        pixels_per_metre: top-down raster resolution (lowered for a track whose raster would
            exceed ``max_raster_pixels``; ``raster.ppm`` is the one used).
        seed: seeds the pixel noise (and the ground texture).
        noise: standard deviation of gaussian pixel noise, 0-255 scale (0 = none).
        brightness: default brightness multiplier.
        max_raster_pixels: most pixels of the ground raster (``RASTER_PIXELS``).
        effects: how this episode looks beyond the track file (``Effects``: the simulator's
            domain randomization); None = the track as its file says.
    """

    def __init__(self, track: Track, camera: CameraParams | None = None,
                 pixels_per_metre: float = 100.0, seed: int = 0, noise: float = 0.0,
                 brightness: float = 1.0, max_raster_pixels: int = RASTER_PIXELS,
                 effects: Effects | None = None) -> None:
        self.track = track
        self.camera = camera or CameraParams()
        self.noise = float(noise)
        self.brightness = float(brightness)
        fx = self.effects = effects or Effects()
        self.style = fx.style or track.style
        self.raster = rasterize(track, pixels_per_metre, seed=seed, max_pixels=max_raster_pixels,
                                style=self.style, shadows=fx.shadows, distractors=fx.distractors)
        self._rng = np.random.default_rng(seed)
        self._build_palette()
        self._build_lookup()
        self._noise_bank = None
        self._glare = _glare_image(self.camera, fx.glare) if fx.glare else None

    def _build_palette(self) -> None:
        """All mip levels, a plain-ground pixel and the sky rows, as one (N, 3) table."""
        st = self.style
        level = Image.fromarray(self.raster.image)
        levels = []
        for _ in range(MIP_LEVELS):
            img = np.array(level)
            img[[0, -1], :] = st.ground  # a plain border: out-of-raster lookups are clipped here
            img[:, [0, -1]] = st.ground
            levels.append(img)
            if min(level.size) < 4:
                break
            level = level.reduce(2)
        self._levels = [(img.shape[1], img.shape[0]) for img in levels]
        self._offsets = np.cumsum([0] + [w * h for w, h in self._levels])
        h = self.camera.height
        top = np.array(st.sky, np.float32)
        sky = top + (255 - top) * 0.35 * (np.arange(h) / max(1, h - 1))[:, None]  # haze
        self._sky_base = int(self._offsets[-1])
        self._palette = np.concatenate([img.reshape(-1, 3) for img in levels]
                                       + [np.clip(sky, 0, 255).astype(np.uint8)])
        gain = self.effects.gain
        if gain != (1.0, 1.0, 1.0):  # exposure and colour temperature: once, in the palette
            lut = np.clip(np.arange(256)[:, None] * np.array(gain)[None, :] + 0.5, 0, 255)
            lut = lut.astype(np.uint8)
            for channel in range(3):
                self._palette[:, channel] = lut[:, channel].take(self._palette[:, channel])

    def _build_lookup(self) -> None:
        """Per pixel: its ground point scaled to its mip level, or its fixed sky entry."""
        cam, ppm = self.camera, self.raster.ppm
        pts, hits = ground_points(cam)
        right, _ = ground_points(cam, du=1.5)
        below, _ = ground_points(cam, dv=1.5)
        with np.errstate(invalid='ignore'):
            fu = np.hypot(*(right - pts).transpose(2, 0, 1))
            fv = np.hypot(*(below - pts).transpose(2, 0, 1))
            footprint = np.sqrt(fu * fv) * ppm  # raster pixels per camera pixel
        level = np.floor(np.log2(np.maximum(footprint, 1.0)) + 0.5)
        level = np.nan_to_num(level, nan=len(self._levels) - 1)
        level = np.clip(level, 0, len(self._levels) - 1).astype(np.int64)[hits]
        sizes = np.array(self._levels, np.float32)
        scale = (ppm / 2.0 ** level).astype(np.float32)
        sel = np.flatnonzero(hits.ravel())
        contiguous = len(sel) > 0 and sel[-1] - sel[0] + 1 == len(sel)  # pinhole: rows below
        rows = np.repeat(np.arange(cam.height), cam.width)                # the horizon
        fx = (pts[..., 0][hits] * scale).astype(np.float32)
        fy = (pts[..., 1][hits] * scale).astype(np.float32)
        max_col, max_row = sizes[level, 0] - 1.0, sizes[level, 1] - 1.0
        stride = sizes[level, 0].astype(np.int32)
        base = self._offsets[level].astype(np.int32)
        if not contiguous:
            # A rolled or fisheye camera: the horizon is not a row. Every pixel goes through the
            # gather; a sky pixel has scale 0 and a one-entry range, so it lands on its sky entry.
            n = cam.width * cam.height
            scale, fx, fy, max_col, max_row, stride, base = (
                _scatter(n, sel, v, fill) for v, fill in (
                    (scale, 0.0), (fx, 0.0), (fy, 0.0), (max_col, 0.0), (max_row, 0.0),
                    (stride, 1), (base, 0)))
            sky = ~hits.ravel()
            base[sky] = self._sky_base + rows[sky]
            sel = np.arange(n)
        self._ground = slice(int(sel[0]), int(sel[-1]) + 1)
        self._scale = scale
        self._fx, self._fy = fx, fy
        self._max_col, self._max_row = max_col, max_row
        self._stride, self._base = stride, base
        self._sky = self._palette.take(self._sky_base + rows, axis=0)  # ground pixels overwritten

    def render(self, x: float, y: float, yaw: float, brightness: float | None = None,
               noise: float | None = None) -> np.ndarray:
        """The camera image for the rear axle at (x, y) heading ``yaw``.

        Args:
            brightness: multiplier for this frame (default: the renderer's).
            noise: pixel noise std for this frame (default: the renderer's).

        Returns:
            (height, width, 3) uint8 RGB, C-contiguous.
        """
        c, s = math.cos(yaw), math.sin(yaw)
        r = self.raster
        col = (x - r.x0) * self._scale
        col += c * self._fx
        col -= s * self._fy
        row = (r.y_top - y) * self._scale
        row -= s * self._fx
        row -= c * self._fy
        # Out of the raster: clipped onto its plain-ground border.
        np.maximum(np.minimum(col, self._max_col, out=col), 0.0, out=col)
        np.maximum(np.minimum(row, self._max_row, out=row), 0.0, out=row)
        index = row.astype(np.int32)
        index *= self._stride
        index += col.astype(np.int32)
        index += self._base
        image = self._sky.copy()
        image[self._ground] = self._palette.take(index, axis=0)
        image = image.reshape(self.camera.height, self.camera.width, 3)
        return self._post(image, self.brightness if brightness is None else brightness,
                          self.noise if noise is None else noise)

    def _post(self, image: np.ndarray, brightness: float, noise: float) -> np.ndarray:
        if brightness != 1.0:
            lut = np.clip(np.arange(256) * brightness + 0.5, 0, 255).astype(np.uint8)
            image = lut.take(image)
        if self._glare is not None:  # saturating add of the lens glare
            image = np.minimum(image, 255 - self._glare) + self._glare
        if self.effects.blur:
            image = _blur(image)
        noise += self.effects.noise
        if noise > 0:
            bank = self._noise(noise)
            start = int(self._rng.integers(0, len(bank) - image.size))
            noisy = image.astype(np.int16)
            noisy += bank[start:start + image.size].reshape(image.shape)
            image = np.clip(noisy, 0, 255, out=noisy).astype(np.uint8)
        return image

    def _noise(self, std: float) -> np.ndarray:
        """Eight frames of gaussian noise, drawn once per std; frames read it at random offsets."""
        if self._noise_bank is None or self._noise_bank[0] != std:
            size = 8 * self.camera.width * self.camera.height * 3
            values = np.rint(self._rng.standard_normal(size) * std)
            self._noise_bank = (std, np.clip(values, -255, 255).astype(np.int16))
        return self._noise_bank[1]


@dataclass(frozen=True)
class Effects:
    """How one episode looks beyond its track file (drawn by ``sim/randomize.py``); the defaults
    change nothing.

    Args:
        style: colours and texture replacing the track's (None = the track's).
        gain: per-channel multiplier (r, g, b): exposure times colour temperature.
        shadows: darkness of soft shadows on the floor, 0-1.
        glare: lens glare (u, v, radius, strength): centre in image fractions (0-1), radius as a
            fraction of the image width, strength 0-255 added at the centre.
        blur: 1 = a 3x3 blur of every frame (a soft or slightly out-of-focus lens).
        noise: extra gaussian pixel noise std (0-255 scale).
        distractors: objects lying off the road.
    """

    style: TrackStyle | None = None
    gain: tuple = (1.0, 1.0, 1.0)
    shadows: float = 0.0
    glare: tuple | None = None
    blur: int = 0
    noise: float = 0.0
    distractors: int = 0


def _scatter(n: int, sel: np.ndarray, values: np.ndarray, fill) -> np.ndarray:
    out = np.full(n, fill, dtype=values.dtype)
    out[sel] = values
    return out


def _glare_image(camera: CameraParams, glare: tuple) -> np.ndarray:
    """A (H, W, 3) uint8 glow: strength at (u, v), falling off over ``radius``, warm white."""
    u, v, radius, strength = glare
    w, h = camera.width, camera.height
    cols = (np.arange(w) + 0.5) / w - u
    rows = ((np.arange(h) + 0.5) / w - v * h / w)
    d2 = rows[:, None] ** 2 + cols[None, :] ** 2
    glow = strength * np.exp(-d2 / (2 * max(radius, 1e-3) ** 2))
    tint = np.array([1.0, 0.97, 0.88])
    return np.clip(glow[..., None] * tint + 0.5, 0, 255).astype(np.uint8)


def _blur(image: np.ndarray) -> np.ndarray:
    """A cheap blur: each pixel the mean of a 2x2 block (rounded up; last row and column kept),
    in uint8 without temporaries ((a | b) - ((a ^ b) >> 1) is the mean of a and b)."""
    out = image.copy()
    a, b = image[:-1], image[1:]
    out[:-1] = (a | b) - ((a ^ b) >> 1)
    a, b = out[:, :-1], out[:, 1:]
    out[:, :-1] = (a | b) - ((a ^ b) >> 1)
    return out


def render_top_down(track: Track, path_xy: np.ndarray | None = None, size: int = 800,
                    pose: tuple[float, float, float] | None = None,
                    car_size: tuple[float, float] = (0.36, 0.2), seed: int = 0) -> np.ndarray:
    """A picture of the whole track from above, optionally with a driven path and the car.

    Args:
        track: the track.
        path_xy: (N, 2) points to draw as a red line.
        size: pixels along the longer side.
        pose: (x, y, yaw) of the car's rear axle, drawn as a blue box with a white nose.
        car_size: (length, width) of the drawn car, m.
        seed: texture seed.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    margin = 0.5
    extent = track.points.max(axis=0) - track.points.min(axis=0) + track.road_width + 2 * margin
    raster = rasterize(track, ppm=size / float(extent.max()), margin=margin, seed=seed)
    img = Image.fromarray(raster.image)
    draw = ImageDraw.Draw(img)
    if path_xy is not None and len(path_xy) > 1:
        c, r = raster.to_pixel(*np.asarray(path_xy, float).T)
        draw.line(list(zip(c.tolist(), r.tolist())), fill=(220, 30, 30),
                  width=max(1, int(raster.ppm * 0.03)))
    if pose is not None:
        x, y, yaw = pose
        length, width = car_size
        cx, sy = math.cos(yaw), math.sin(yaw)
        back = -0.05
        corners = [(back, -width / 2), (back + length, -width / 2),
                   (back + length, width / 2), (back, width / 2)]
        world = [(x + f * cx - l * sy, y + f * sy + l * cx) for f, l in corners]
        c, r = raster.to_pixel(*np.array(world).T)
        draw.polygon(list(zip(c.tolist(), r.tolist())), fill=(30, 80, 220))
        nose = (x + (back + length) * cx, y + (back + length) * sy)
        nc, nr = raster.to_pixel(*nose)
        rad = max(2, int(raster.ppm * 0.04))
        draw.ellipse([nc - rad, nr - rad, nc + rad, nr + rad], fill=(255, 255, 255))
    return np.asarray(img).copy()
