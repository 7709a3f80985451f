"""Running a pilot model with LiteRT: image in, (steering, throttle) out. No TensorFlow, no rclpy.

``ModelRunner(path)`` loads a ``.tflite`` and its metadata, checks that the two agree, and plans the
per-frame work once. The crop is a view. Models exported by ``donkey-ros train`` take uint8 pixels
(float32 models normalize inside, int8 models through their input quantization), so the frame is
resized (if the model was trained on resized frames) or copied straight into the interpreter's
input tensor: one pass over the pixels, no float copy in Python. Float-input models (DonkeyCar
exports) get the one normalization written straight into the input tensor. Nothing is allocated
per frame.

The interpreter is ``ai_edge_litert`` (LiteRT; it has aarch64 wheels for the Pi's Python 3.11/3.12,
where tflite-runtime has none for 3.12). On the car scripts/pi_install.sh installs it.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from donkey_ros.common.litert import interpreter_class
from donkey_ros.learning.metadata import (ModelError, ModelMetadata, donkeycar_metadata,
                                          read_embedded, read_model_bytes, read_sidecar)


def make_interpreter(model_bytes: bytes, threads: int = 1, name: str = 'model'):
    """An allocated interpreter for the model bytes.

    Raises:
        ModelError: the runtime rejects the model (corrupt file, unsupported ops).
    """
    try:
        interpreter = interpreter_class()(model_content=model_bytes, num_threads=max(1, threads))
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f'cannot load {name}: {first}') from None
    return interpreter


def preprocess(image: np.ndarray, metadata: ModelMetadata, out: np.ndarray | None = None
               ) -> np.ndarray:
    """Crops (and resizes if the model needs it) a camera frame; uint8 HxWx3 in, uint8 out.

    Training uses the same function, so the model sees exactly what the pilot will give it.
    Returns a view of ``image`` when no resize is needed.
    """
    rows = image[metadata.crop_top:image.shape[0] - metadata.crop_bottom]
    if not metadata.needs_resize:
        return rows
    import cv2

    size = (metadata.input_width, metadata.input_height)
    if out is None:
        return cv2.resize(rows, size, interpolation=cv2.INTER_AREA)
    cv2.resize(rows, size, dst=out, interpolation=cv2.INTER_AREA)
    return out


def bin_values(bins: int, value_range: tuple) -> np.ndarray:
    """The value each of ``bins`` categories stands for, evenly over ``value_range``."""
    low, high = value_range
    return np.linspace(low, high, bins, dtype=np.float64)


def decode_bins(probabilities: np.ndarray, values: np.ndarray, method: str) -> float:
    """One value from a categorical output: the most likely bin, or the probability-weighted mean
    of that bin and its two neighbours ('local_mean', smoother than argmax, and never the average
    of two far-apart modes)."""
    best = int(np.argmax(probabilities))
    if method == 'argmax':
        return float(values[best])
    low, high = max(0, best - 1), min(len(values), best + 2)
    weights = probabilities[low:high]
    total = float(weights.sum())
    if not total > 0.0:
        return float(values[best])
    return float(np.dot(weights, values[low:high]) / total)


def keras_order(outputs: list, interpreter=None) -> list:
    """Output details in the order the model declared its outputs.

    LiteRT may list the outputs of a converted Keras model in another order (``...:1`` before
    ``...:0``). The ``serving_default`` signature keeps the declared order (it is what
    DonkeyCar's own TfLite part reads), so use it; else the ``:N`` suffix of the tensor names.
    """
    import re

    if len(outputs) < 2:
        return list(outputs)
    by_index = {o['index']: o for o in outputs}
    try:
        signature = interpreter._get_full_signature_list().get('serving_default', {})
        indices = list(signature.get('outputs', {}).values())
    except Exception:  # no signature support in this runtime
        indices = []
    if sorted(indices) == sorted(by_index):
        return [by_index[i] for i in indices]
    numbers = [re.search(r':(\d+)$', str(o.get('name', ''))) for o in outputs]
    if all(numbers):
        return [o for _, o in sorted(zip((int(m.group(1)) for m in numbers), outputs),
                                     key=lambda pair: pair[0])]
    return list(outputs)


def load_metadata(path: str | Path, model_bytes: bytes, fallback: ModelMetadata | None
                  ) -> tuple[ModelMetadata, str]:
    """(metadata, where it came from): sidecar, embedded, or ``fallback`` (DonkeyCar defaults)."""
    metadata = read_sidecar(path)
    if metadata is not None:
        return metadata, 'sidecar'
    metadata = read_embedded(model_bytes)
    if metadata is not None:
        return metadata, 'embedded'
    if fallback is not None:
        return fallback, 'parameters'
    return None, 'none'


class ModelRunner:
    """A loaded model ready to turn camera frames into (steering, throttle).

    Args:
        path: the ``.tflite`` file.
        threads: interpreter threads.
        fallback: metadata for a model that carries none (DonkeyCar export); if None, such a
            model is described from its tensors with ``donkeycar_metadata``.
        overrides: metadata fields to force (e.g. ``steering_sign``), applied last.
        donkeycar_throttle_range: for models described from their tensors (no metadata,
            categorical): DonkeyCar's throttle bins cover 0..this.

    Raises:
        ModelError: missing/corrupt file, or a model whose tensors do not match its metadata.
    """

    def __init__(self, path: str | Path, threads: int = 1,
                 fallback: ModelMetadata | None = None, overrides: dict | None = None,
                 donkeycar_throttle_range: float = 0.5) -> None:
        self.path = Path(path)
        self.name = self.path.name
        model_bytes = read_model_bytes(self.path)
        self.size_bytes = len(model_bytes)
        self.interpreter = make_interpreter(model_bytes, threads, self.name)
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        if len(inputs) != 1:
            raise ModelError(f'{self.name} has {len(inputs)} inputs; a pilot model has one image')
        outputs = keras_order(outputs, self.interpreter)
        self.input = inputs[0]
        metadata, self.metadata_source = load_metadata(self.path, model_bytes, fallback)
        if metadata is None:
            metadata = self._guess_metadata(outputs, donkeycar_throttle_range)
            self.metadata_source = 'guessed (DonkeyCar conventions)'
        if overrides:
            try:
                metadata = replace(metadata, **overrides)
            except (TypeError, ValueError) as error:
                raise ModelError(f'bad metadata override: {error}') from None
        self.metadata = metadata
        self._check_input()
        self._outputs = self._plan_outputs(outputs)
        first = self._outputs[0]
        self._packed_linear = None
        if (metadata.layout == 'packed' and metadata.model_type == 'linear'
                and first['dtype'] == np.float32 and len(first['shape']) == 2):
            self._packed_linear = (first['index'], float(metadata.steering_sign))
        self._plan_input()
        self._steering_values = self._throttle_values = None
        if metadata.model_type == 'categorical':
            self._steering_values = bin_values(metadata.steering_bins, metadata.steering_range)
            self._throttle_values = bin_values(metadata.throttle_bins, metadata.throttle_range)
        self.last_invoke_s = 0.0

    # --- loading ----------------------------------------------------------------------------
    def _guess_metadata(self, outputs, throttle_range: float) -> ModelMetadata:
        shape = [int(v) for v in self.input['shape']]
        if len(shape) != 4:
            raise ModelError(f'{self.name}: input shape {shape} is not an image batch')
        sizes = [int(np.prod(o['shape'][1:])) for o in outputs]
        layout = 'steering_throttle'
        if len(outputs) == 2 and sizes == [1, 1]:
            kind = 'linear'
            steering_bins, throttle_bins = 15, 20
        elif len(outputs) == 2 and min(sizes) >= 2:
            kind = 'categorical'   # DonkeyCar: 15 angle bins; the other output is throttle
            steering_bins, throttle_bins = sizes
            if sizes[1] == 15 and sizes[0] != 15:
                layout = 'throttle_steering'
                steering_bins, throttle_bins = sizes[1], sizes[0]
        else:
            raise ModelError(
                f'{self.name} has no metadata and outputs {sizes}: not a DonkeyCar linear or '
                'categorical model (give a JSON sidecar, see docs/learning.md)')
        return donkeycar_metadata(kind, input_height=shape[1], input_width=shape[2],
                                  steering_bins=steering_bins, throttle_bins=throttle_bins,
                                  throttle_range=throttle_range, layout=layout)

    def _check_input(self) -> None:
        meta = self.metadata
        shape = [int(v) for v in self.input['shape']]
        want = [1, meta.input_height, meta.input_width, 3]
        if len(shape) == 4 and shape[0] != 1 and shape[1:] == want[1:]:
            self.interpreter.resize_tensor_input(self.input['index'], want)
            self.interpreter.allocate_tensors()
            self.input = self.interpreter.get_input_details()[0]
            shape = want
        if shape != want:
            raise ModelError(
                f'{self.name} takes input {"x".join(map(str, shape))} but its metadata says '
                f'{"x".join(map(str, want))} (HxW {meta.input_height}x{meta.input_width}, 3 '
                'channels): wrong model or wrong metadata')
        if self.input['dtype'] not in (np.float32, np.uint8, np.int8):
            raise ModelError(f'{self.name}: unsupported input type {self.input["dtype"].__name__}')

    def _plan_outputs(self, outputs) -> list:
        meta = self.metadata
        steer_n, throttle_n = meta.output_sizes
        sizes = [int(np.prod(o['shape'][1:])) for o in outputs]
        if meta.layout == 'packed':
            if len(outputs) != 1 or sizes[0] != steer_n + throttle_n:
                raise ModelError(f'{self.name} outputs {sizes}, expected one tensor of '
                                 f'{steer_n + throttle_n} ({meta.model_type})')
            return outputs
        order = outputs if meta.layout == 'steering_throttle' else outputs[::-1]
        got = [int(np.prod(o['shape'][1:])) for o in order]
        if len(outputs) != 2 or got != [steer_n, throttle_n]:
            raise ModelError(f'{self.name} outputs {sizes}, expected steering {steer_n} and '
                             f'throttle {throttle_n} ({meta.layout}, {meta.model_type})')
        return list(order)

    def _plan_input(self) -> None:
        """Chooses how a uint8 frame becomes the input tensor, once."""
        meta = self.metadata
        self._input_index = self.input['index']
        self._input_tensor = self.interpreter.tensor(self._input_index)
        self._image_shape = (meta.image_height, meta.image_width, 3)
        self._first_row, self._end_row = meta.crop_top, meta.image_height - meta.crop_bottom
        self._resized = None
        if meta.needs_resize:
            import cv2
            self._cv2 = cv2
            self._resize_to = (meta.input_width, meta.input_height)
            self._resized = np.empty((meta.input_height, meta.input_width, 3), np.uint8)
        dtype = self.input['dtype']
        self._scale, self._offset = np.float32(meta.input_scale), np.float32(meta.input_offset)
        self.input_mode = 'normalize'
        if dtype == np.float32:
            self.input_mode = 'scale' if meta.input_offset == 0.0 else 'normalize'
            return
        q_scale, q_zero = self.input['quantization']
        if not q_scale:
            if dtype != np.uint8:
                raise ModelError(f'{self.name}: int8 input without quantization parameters')
            self.input_mode = 'copy'  # raw pixels: the model normalizes them itself
            return
        # Quantized value for pixel p: (p * input_scale + input_offset) / q_scale + q_zero.
        gain = meta.input_scale / q_scale
        bias = meta.input_offset / q_scale + q_zero
        if math.isclose(gain, 1.0, rel_tol=1e-3) and dtype == np.uint8 and abs(bias) < 0.5:
            self.input_mode = 'copy'
        elif math.isclose(gain, 1.0, rel_tol=1e-3) and dtype == np.int8 and abs(bias + 128) < 0.5:
            self.input_mode = 'flip_sign'
        else:
            self.input_mode = 'requantize'
            self._scale, self._offset = np.float32(gain), np.float32(bias)
            self._low, self._high = np.iinfo(dtype).min, np.iinfo(dtype).max

    # --- running -----------------------------------------------------------------------------
    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(height, width, 3) of the camera frames this model takes."""
        return self.metadata.image_height, self.metadata.image_width, 3

    def check_image(self, image: np.ndarray) -> None:
        """Raises ModelError if ``image`` is not the frame size the model was trained on."""
        if image.shape != self.image_shape or image.dtype != np.uint8:
            height, width = self.metadata.image_height, self.metadata.image_width
            got = 'x'.join(map(str, image.shape[1::-1])) if image.ndim >= 2 else str(image.shape)
            raise ModelError(f'{self.name} expects {width}x{height} RGB frames, got {got} '
                             f'{image.dtype}')

    def load_input(self, image: np.ndarray) -> None:
        """Crops, resizes and normalizes ``image`` straight into the input tensor (the same
        operations as ``preprocess``, with everything looked up once in ``_plan_input``)."""
        if image.shape != self._image_shape or image.dtype != np.uint8:
            self.check_image(image)
        pixels = image[self._first_row:self._end_row]
        if self.input_mode == 'copy':  # pixels go straight into the input tensor
            target = self._input_tensor()[0]
            if self._resized is not None:
                self._cv2.resize(pixels, self._resize_to, dst=target,
                                 interpolation=self._cv2.INTER_AREA)
            else:
                np.copyto(target, pixels)
            del target  # the interpreter refuses to run while a view of its buffers is alive
            return
        if self._resized is not None:
            self._cv2.resize(pixels, self._resize_to, dst=self._resized,
                             interpolation=self._cv2.INTER_AREA)
            pixels = self._resized
        self.load_pixels(pixels)

    def load_pixels(self, pixels: np.ndarray) -> None:
        """Normalizes already preprocessed pixels (input height x width x 3 uint8) into the
        input tensor."""
        target = self._input_tensor()[0]
        mode = self.input_mode
        if mode == 'scale':
            np.multiply(pixels, self._scale, out=target)
        elif mode == 'copy':
            np.copyto(target, pixels)
        elif mode == 'normalize':
            np.multiply(pixels, self._scale, out=target)
            target += self._offset
        elif mode == 'flip_sign':
            np.bitwise_xor(pixels, np.uint8(128), out=target.view(np.uint8))
        else:
            values = pixels * self._scale + self._offset
            np.clip(np.rint(values), self._low, self._high, out=values)
            target[...] = values
        del target  # the interpreter refuses to run while a view of its buffers is alive

    def run(self) -> tuple[float, float]:
        """Invokes the model on the loaded input; returns (steering + = left, throttle)."""
        start = time.perf_counter()
        self.interpreter.invoke()
        self.last_invoke_s = time.perf_counter() - start
        return self.decode()

    def predict(self, image: np.ndarray) -> tuple[float, float]:
        """(steering, throttle) for one HxWx3 uint8 RGB camera frame (not clamped)."""
        self.load_input(image)
        return self.run()

    def predict_pixels(self, pixels: np.ndarray) -> tuple[float, float]:
        """(steering, throttle) for a frame already cropped/resized by ``preprocess``."""
        self.load_pixels(pixels)
        return self.run()

    def raw_outputs(self) -> list[np.ndarray]:
        return [self._dequantize(o) for o in self._outputs]

    def _dequantize(self, detail) -> np.ndarray:
        values = self.interpreter.get_tensor(detail['index'])[0].reshape(-1)
        if detail['dtype'] != np.float32:
            scale, zero = detail['quantization']
            values = (values.astype(np.float32) - zero) * scale
        return values

    def decode(self) -> tuple[float, float]:
        if self._packed_linear is not None:  # the common case, without intermediate arrays
            index, sign = self._packed_linear
            values = self.interpreter.get_tensor(index)
            return float(values[0, 0]) * sign, float(values[0, 1])
        meta = self.metadata
        outputs = self.raw_outputs()
        if meta.layout == 'packed':
            steer_n = meta.output_sizes[0]
            steering, throttle = outputs[0][:steer_n], outputs[0][steer_n:]
        else:
            steering, throttle = outputs
        if meta.model_type == 'categorical':
            steer = decode_bins(steering, self._steering_values, meta.decode)
            gas = decode_bins(throttle, self._throttle_values, meta.decode)
        else:
            steer, gas = float(steering[0]), float(throttle[0])
        return steer * meta.steering_sign, gas

    def describe(self) -> str:
        meta = self.metadata
        return (f'{self.name}: {meta.model_type} {meta.architecture}, '
                f'{meta.image_width}x{meta.image_height} frames -> '
                f'{meta.input_width}x{meta.input_height} input ({self.input_mode}, '
                f'{meta.quantization}), metadata from {self.metadata_source}')
