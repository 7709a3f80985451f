"""Keras 3 pilot models: DonkeyCar's ``linear`` and ``categorical``, on two backbones.

Backbones:
- ``donkey``: DonkeyCar's five convolutions (24/32/64 5x5 stride 2, 64/64 3x3) and dense 100 -> 50,
  as in ``donkeycar/parts/keras.py``.
- ``small`` (default): four narrower convolutions, all stride 2, and dense 64. A fraction of the
  compute (it trains in minutes on two CPU cores and runs in well under a millisecond) and, on the
  simulator's tracks, it drives as well (docs/learning.md has the figures).

Heads:
- ``linear``: two regression outputs, steering and throttle, mean-squared error.
- ``categorical``: steering and throttle as bins; the training model outputs logits and the loss is
  softmax cross-entropy computed from them (``from_logits=True``: log-sum-exp, no log(0)). Targets
  are "two-hot": a value between two bin centres splits its weight between them, so the expected
  value of the target is exactly the recorded value.

``training_model`` returns the model to fit (dict outputs ``steering``/``throttle``);
``inference_model`` wraps it for export: uint8 pixels in (normalized inside the model), one packed
output tensor out, softmax applied for categorical.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from donkey_ros.common.errors import ConfigError
from donkey_ros.learning.metadata import ACTIVATIONS, ARCHITECTURES, MODEL_TYPES



@dataclass(frozen=True)
class ModelSpec:
    """Everything that defines a model's layers."""

    model_type: str = 'linear'
    architecture: str = 'small'
    input_height: int = 80
    input_width: int = 160
    activation: str = 'relu'
    dropout: float = 0.1
    steering_bins: int = 15
    throttle_bins: int = 20

    def check(self) -> 'ModelSpec':
        if self.model_type not in MODEL_TYPES:
            raise ConfigError(f"model type '{self.model_type}' unknown "
                              f"(valid: {', '.join(MODEL_TYPES)})")
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(f"architecture '{self.architecture}' unknown "
                              f"(valid: {', '.join(ARCHITECTURES)})")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation '{self.activation}' unknown "
                              f"(valid: {', '.join(ACTIVATIONS)})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f'dropout {self.dropout} must be in [0, 1)')
        if min(self.input_height, self.input_width) < 24:
            raise ConfigError(f'input {self.input_width}x{self.input_height} is too small '
                              '(at least 24x24)')
        if self.model_type == 'categorical' and min(self.steering_bins, self.throttle_bins) < 2:
            raise ConfigError('categorical models need at least 2 steering and throttle bins')
        return self


def _activation(name: str):
    if name == 'leaky_relu':
        return layers.LeakyReLU(negative_slope=0.1)
    return layers.Activation(name)


def _conv(x, filters: int, kernel: int, stride: int, spec: ModelSpec, name: str):
    x = layers.Conv2D(filters, kernel, strides=stride, name=name)(x)
    x = _activation(spec.activation)(x)
    return layers.Dropout(spec.dropout)(x) if spec.dropout else x


def _dense(x, units: int, spec: ModelSpec, name: str):
    x = layers.Dense(units, name=name)(x)
    x = _activation(spec.activation)(x)
    return layers.Dropout(spec.dropout)(x) if spec.dropout else x


def _backbone(image, spec: ModelSpec):
    """Convolutions and dense layers shared by both heads."""
    x = image
    if spec.architecture == 'donkey':
        tall = spec.input_height > 64
        x = _conv(x, 24, 5, 2, spec, 'conv2d_1')
        x = _conv(x, 32, 5, 2, spec, 'conv2d_2')
        x = _conv(x, 64, 5 if tall else 3, 2 if tall else 1, spec, 'conv2d_3')
        x = _conv(x, 64, 3, 1, spec, 'conv2d_4')
        x = _conv(x, 64, 3, 1, spec, 'conv2d_5')
        x = layers.Flatten(name='flattened')(x)
        x = _dense(x, 100, spec, 'fc_1')
        return _dense(x, 50, spec, 'fc_2')
    x = _conv(x, 16, 5, 2, spec, 'conv2d_1')
    x = _conv(x, 24, 5, 2, spec, 'conv2d_2')
    x = _conv(x, 32, 3, 2, spec, 'conv2d_3')
    x = _conv(x, 48, 3, 2, spec, 'conv2d_4')
    x = layers.Flatten(name='flattened')(x)
    return _dense(x, 64, spec, 'fc_1')


def training_model(spec: ModelSpec) -> keras.Model:
    """The model to fit: outputs ``steering`` and ``throttle`` (values, or logits for categorical)."""
    spec.check()
    image = keras.Input((spec.input_height, spec.input_width, 3), name='image')
    features = _backbone(image, spec)
    if spec.model_type == 'categorical':
        steering = layers.Dense(spec.steering_bins, name='steering')(features)
        throttle = layers.Dense(spec.throttle_bins, name='throttle')(features)
    else:
        steering = layers.Dense(1, name='steering')(features)
        throttle = layers.Dense(1, name='throttle')(features)
    return keras.Model(image, {'steering': steering, 'throttle': throttle},
                       name=f'{spec.model_type}_{spec.architecture}')


def inference_model(model: keras.Model, spec: ModelSpec) -> keras.Model:
    """Wraps a trained model for export: a batch of one normalized image in, one packed output
    [steering..., throttle...] out (probabilities for categorical). One output tensor means no
    ambiguity about output order; a fixed batch keeps every op static for LiteRT."""
    image = keras.Input((spec.input_height, spec.input_width, 3), batch_size=1, name='image')
    outputs = model(image, training=False)
    steering, throttle = outputs['steering'], outputs['throttle']
    if spec.model_type == 'categorical':
        steering = layers.Softmax(name='steering_probabilities')(steering)
        throttle = layers.Softmax(name='throttle_probabilities')(throttle)
    packed = layers.Concatenate(name='steering_throttle')([steering, throttle])
    return keras.Model(image, packed, name=f'{model.name}_pilot')


def with_pixel_input(model: keras.Model, input_scale: float, input_offset: float
                     ) -> keras.Model:
    """``model`` behind a uint8 input normalized inside (``p * input_scale + input_offset``):
    the pilot then only copies pixels into the input tensor."""
    shape = tuple(model.inputs[0].shape[1:])
    pixels = keras.Input(shape, batch_size=1, dtype='uint8', name='image')
    normalized = keras.ops.cast(pixels, 'float32') * input_scale + input_offset
    return keras.Model(pixels, model(normalized), name=model.name)


def losses(spec: ModelSpec, throttle_weight: float = 0.5) -> tuple[dict, dict]:
    """(losses, loss weights) for ``model.compile``. Throttle weighs less: steering keeps the car
    on the track, throttle only sets its pace."""
    if spec.model_type == 'categorical':
        loss = keras.losses.CategoricalCrossentropy(from_logits=True)
        return ({'steering': loss, 'throttle': keras.losses.CategoricalCrossentropy(from_logits=True)},
                {'steering': 1.0, 'throttle': throttle_weight})
    return ({'steering': keras.losses.MeanSquaredError(),
             'throttle': keras.losses.MeanSquaredError()},
            {'steering': 1.0, 'throttle': throttle_weight})
