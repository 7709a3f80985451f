"""Style augmentation for training: stylized copies of a fraction of the frames, computed once and
cached on disk, steering and throttle labels unchanged.

A pilot trained only on the grey road of one track learns "grey road, white edges". Training also
on the same frames painted in other styles (new colours, new textures, same road geometry) teaches
it what stays the same: where the road goes. ``stylize_cache`` wraps a stream of training samples:

    from donkey_ros.style.augment import stylize_cache
    samples = stylize_cache(samples, ['style3', 'style13', 'style22'], fraction=0.5,
                            cache_dir='~/.cache/donkey_ros/style', seed=0)
    frames = collect_frames(samples, metadata)   # the training code, unchanged

It yields every sample as it comes and, after each chosen one, a copy whose image is stylized (the
same ``stamp_ns``, ``bag`` and labels, so a time-block validation split keeps the copy with its
original). Which frames are chosen, and with which style, depends only on the frame (bag name +
stamp, or its pixels), the seed and the fraction - not on the order - so a second run reuses
every cached image and recomputes nothing. Cache files are PNG, keyed by model hash, strength and
scale, style, bag and frame stamp::

    CACHE_DIR/<model hash[:16]>-s<strength>-x<scale>/<style>/<bag>/<stamp_ns>.png
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np

from donkey_ros.style.errors import StyleError
from donkey_ros.style.networks import resize

DEFAULT_CACHE = '~/.cache/donkey_ros/style'


@dataclass
class AugmentReport:
    """What ``stylize_cache`` did; updated as the samples stream through."""

    frames: int = 0          # original samples seen
    chosen: int = 0          # samples that got a stylized copy
    computed: int = 0        # copies stylized now
    cached: int = 0          # copies read back from the cache
    repaired: int = 0        # unreadable cache files recomputed
    per_style: dict = field(default_factory=dict)
    seconds: float = 0.0     # time spent stylizing (not reading the cache)

    def text(self) -> str:
        styles = ', '.join(f'{k} {v}' for k, v in sorted(self.per_style.items()))
        return (f'style augmentation: {self.chosen} of {self.frames} frames got a stylized copy '
                f'({self.computed} computed in {self.seconds:.1f} s, {self.cached} from the '
                f'cache{f", {self.repaired} repaired" if self.repaired else ""})'
                + (f'; {styles}' if styles else ''))


def choose_style(key: str, styles: Sequence[str], fraction: float, seed: int) -> str | None:
    """The style a frame gets, or None: a deterministic draw from the frame's key and the seed."""
    digest = hashlib.blake2b(f'{seed}\0{key}'.encode(), digest_size=16).digest()
    draw = int.from_bytes(digest[:8], 'big') / 2.0 ** 64
    if draw >= fraction:
        return None
    return styles[int.from_bytes(digest[8:], 'big') % len(styles)]


def frame_key(sample) -> tuple[str, str]:
    """(bag folder name, frame name) identifying a sample in the cache.

    Samples with ``bag`` and ``stamp_ns`` (``donkey_ros.recording.dataset.Sample``) are named by
    them; anything else (an image, an ``(image, steering, throttle[, time])`` tuple) by a hash of
    its pixels.
    """
    bag, stamp = getattr(sample, 'bag', None), getattr(sample, 'stamp_ns', None)
    if bag is not None and stamp is not None:
        name = re.sub(r'[^A-Za-z0-9._-]+', '_', Path(str(bag).rstrip('/')).name) or 'bag'
        return name, str(int(stamp))
    image = np.ascontiguousarray(_image_of(sample))
    digest = hashlib.blake2b(image.data, digest_size=16, person=repr(image.shape).encode()[:16])
    return 'frames', digest.hexdigest()


def _image_of(sample) -> np.ndarray:
    if isinstance(sample, np.ndarray):
        return sample
    if isinstance(sample, tuple):
        return np.asarray(sample[0])
    return np.asarray(sample.image)


def _with_image(sample, image: np.ndarray):
    if isinstance(sample, np.ndarray):
        return image
    if isinstance(sample, tuple):
        return (image,) + tuple(sample[1:])
    if dataclasses.is_dataclass(sample):
        return dataclasses.replace(sample, image=image)
    copy = type(sample).__new__(type(sample))
    copy.__dict__.update(vars(sample), image=image)
    return copy


def stylize_cache(samples: Iterable, styles: Sequence[str], fraction: float,
                  cache_dir: str | Path = DEFAULT_CACHE, seed: int = 0, *,
                  strength: float = 1.0, scale: float = 2.0, stylizer=None,
                  models_dir: str | Path | None = None, report: AugmentReport | None = None,
                  progress: Callable[[AugmentReport], None] | None = None) -> Iterator:
    """Yields each sample and, for a ``fraction`` of them, a stylized copy (labels unchanged).

    Args:
        samples: ``Sample`` objects (``image``, ``bag``, ``stamp_ns``...), ``(image, steering,
            throttle[, time])`` tuples or bare HxWx3 uint8 RGB images.
        styles: style names (``Stylizer.styles()``), each copy gets one of them.
        fraction: 0..1, the share of frames that get a copy.
        cache_dir: where stylized frames are kept (created if needed).
        seed: changes which frames are chosen and which style each gets.
        strength: style blend, 0..1 (see ``Stylizer.stylize``).
        scale: the network runs at ``scale`` x the frame size and the result is shrunk back:
            at 160x120 the strokes would cover the road lines; 2 keeps the road's geometry.
        stylizer: a ``Stylizer`` to use (one is created on first need otherwise).
        models_dir: user models for the created stylizer.
        report: filled in as the samples stream through (counts, time).
        progress: called with the report after each stylized copy.

    Raises:
        StyleError: an unknown style or fraction/strength/scale out of range (at the call);
            an image that cannot be stylized or an unwritable cache (while iterating).
    """
    if not 0.0 <= fraction <= 1.0 or not math.isfinite(fraction):
        raise StyleError(f'style fraction must be between 0 and 1, got {fraction}')
    if not 0.0 < strength <= 1.0:
        raise StyleError(f'style strength must be in (0, 1], got {strength}')
    if not 0.25 <= scale <= 8.0:
        raise StyleError(f'style scale must be 0.25-8, got {scale}')
    styles = list(dict.fromkeys(styles))
    if fraction > 0 and not styles:
        raise StyleError('style augmentation needs at least one style')
    report = report if report is not None else AugmentReport()
    if fraction == 0:
        return _passthrough(samples, report)
    if stylizer is None:
        from donkey_ros.style.stylizer import Stylizer
        stylizer = Stylizer(models_dir=models_dir, warmup=())
    names = {}
    for name in styles:
        style = stylizer.style(name)  # raises StyleError for an unknown style
        if style.network is stylizer.arbitrary and style.argument is None:
            raise StyleError("style 'arbitrary' needs a picture: put one in the models folder "
                             'and use its name')
        names[name] = style.name
    root = Path(cache_dir).expanduser()
    folders = {name: root / f'{stylizer.model_hash(name)[:16]}-s{strength:.3g}-x{scale:.3g}'
               / names[name] for name in styles}
    return _stream(samples, styles, names, folders, fraction, seed, strength, scale, stylizer,
                   report, progress)


def _passthrough(samples: Iterable, report: AugmentReport) -> Iterator:
    for sample in samples:
        report.frames += 1
        yield sample


def _stream(samples, styles, names, folders, fraction, seed, strength, scale, stylizer, report,
            progress) -> Iterator:
    for sample in samples:
        report.frames += 1
        yield sample
        bag, frame = frame_key(sample)
        style = choose_style(f'{bag}/{frame}', styles, fraction, seed)
        if style is None:
            continue
        report.chosen += 1
        report.per_style[names[style]] = report.per_style.get(names[style], 0) + 1
        image = _image_of(sample)
        path = folders[style] / bag / f'{frame}.png'
        styled = _read(path, image.shape)
        if styled is not None:
            report.cached += 1
        else:
            report.repaired += path.exists()
            started = time.perf_counter()
            styled = _stylize(stylizer, image, names[style], strength, scale)
            report.seconds += time.perf_counter() - started
            report.computed += 1
            _write(path, styled)
            if progress is not None:
                progress(report)
        yield _with_image(sample, styled)


def _stylize(stylizer, image: np.ndarray, style: str, strength: float,
             scale: float) -> np.ndarray:
    h, w = image.shape[:2]
    size = (max(16, round(w * scale)), max(16, round(h * scale)))
    return np.ascontiguousarray(resize(stylizer.stylize(image, style, strength, size), w, h))


def _read(path: Path, shape: tuple) -> np.ndarray | None:
    if not path.is_file():
        return None
    pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if pixels is None or pixels.shape != tuple(shape):
        return None
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def _write(path: Path, image: np.ndarray) -> None:
    """Writes atomically (temporary file, then rename), so a crash never leaves half a PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode('.png', cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise StyleError(f'cannot encode a stylized frame for {path}')
    temporary = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    try:
        temporary.write_bytes(data.tobytes())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise StyleError(f'cannot write the style cache {path}: {error.strerror}') from None
