"""Keras model -> ``.tflite`` (float32, or int8 post-training quantization), metadata included.

Each exported model is two files: ``NAME.tflite`` with its ``ModelMetadata`` embedded as a TFLite
metadata buffer, and the same metadata as ``NAME.json`` next to it. Both open in Netron
(https://netron.app) too.

float32: the model takes uint8 pixels and normalizes them itself (a Cast and a Mul at its input),
so the pilot only copies (or resizes) pixels into the input tensor.
int8: weights and activations are int8, calibrated on a representative set of training frames; the
input is uint8 with the quantization scale of the normalization (again a plain copy for the
pilot), the output stays float32.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from donkey_ros.common.errors import DonkeyRosError
from donkey_ros.learning.metadata import ModelMetadata, embed_metadata, write_sidecar

QUANTIZATIONS = ('float32', 'int8')


class ExportError(DonkeyRosError):
    """A model could not be converted or written."""


@contextlib.contextmanager
def _quiet_native_logs():
    """The converter prints pages of SavedModel/MLIR/absl logging on stdout and stderr (file
    descriptors 1 and 2); hide them (a failure still raises, with its message)."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, 'wb') as devnull, contextlib.redirect_stdout(open(os.devnull, 'w')):
            os.dup2(devnull.fileno(), 1)
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def convert(model, quantization: str = 'float32', representative: np.ndarray | None = None,
            input_scale: float = 1.0 / 255.0, input_offset: float = 0.0) -> bytes:
    """The ``.tflite`` bytes of a Keras model taking normalized float images.

    Args:
        model: Keras model (one image input, one output).
        quantization: 'float32' or 'int8'.
        representative: uint8 frames (N x H x W x 3) for int8 calibration.
        input_scale, input_offset: the normalization the model was trained with.
    """
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise ExportError(f"quantization '{quantization}' unknown "
                          f"(valid: {', '.join(QUANTIZATIONS)})")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantization == 'int8':
        if representative is None or not len(representative):
            raise ExportError('int8 quantization needs representative frames')

        def frames():
            for frame in representative:
                pixels = frame[None].astype(np.float32)
                # Pin the calibrated input range to the full 0..255: the input quantization then
                # equals the normalization (scale 1/255), and the pilot copies pixels in as they are.
                pixels[0, 0, 0, 0], pixels[0, 0, 0, 1] = 0.0, 255.0
                yield [pixels * input_scale + input_offset]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = frames
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.float32
    try:
        with _quiet_native_logs():
            return converter.convert()
    except Exception as error:  # the converter raises many types; one line for the user
        raise ExportError(f'TFLite conversion ({quantization}) failed: {error}') from None


def write_model(path: str | Path, model_bytes: bytes, metadata: ModelMetadata) -> Path:
    """Writes ``path`` (.tflite, metadata embedded) and its JSON sidecar; returns ``path``."""
    path = Path(path)
    if path.suffix != '.tflite':
        raise ExportError(f'model file name must end in .tflite, got {path.name}')
    path.parent.mkdir(parents=True, exist_ok=True)
    data = embed_metadata(model_bytes, metadata)
    temporary = path.with_name(path.name + '.partial')
    temporary.write_bytes(data)
    write_sidecar(path, metadata)
    os.replace(temporary, path)  # a pilot watching the path never sees half a model
    return path


def export_bytes(model, metadata: ModelMetadata, quantization: str = 'float32',
                 representative: np.ndarray | None = None) -> bytes:
    """The ``.tflite`` bytes (no metadata yet) of a model taking normalized float images.

    For float32 the exported model takes uint8 pixels and normalizes them itself (the pilot
    copies pixels in); int8 models take uint8 pixels through their input quantization (scale
    ``input_scale``), which comes to the same.
    """
    from donkey_ros.learning.models import with_pixel_input

    if quantization == 'float32':
        model = with_pixel_input(model, metadata.input_scale, metadata.input_offset)
    return convert(model, quantization, representative, metadata.input_scale,
                   metadata.input_offset)


def export(model, path: str | Path, metadata: ModelMetadata, quantization: str = 'float32',
           representative: np.ndarray | None = None) -> Path:
    """Converts and writes one model (``export_bytes`` then ``write_model``)."""
    data = export_bytes(model, metadata, quantization, representative)
    return write_model(path, data, replace(metadata, quantization=quantization))


def int8_path(path: str | Path) -> Path:
    """``pilot.tflite`` -> ``pilot_int8.tflite``."""
    path = Path(path)
    return path.with_name(f'{path.stem}_int8{path.suffix}')
