"""Training a pilot: frames in memory -> a Keras model -> an exported ``.tflite`` with metadata.

``train(frames, config, output, metadata)`` fits the model (early stopping on validation loss,
best weights kept as ``NAME.keras``), exports it (``NAME.tflite`` + ``NAME.json``, optionally
int8), measures the exported model's validation error and writes the loss curves and report
(donkey_ros/learning/train_report.py). Frames come from donkey_ros/learning/training_data.py;
the command line is donkey_ros/apps/train.py (`donkey-ros train`).
"""
from __future__ import annotations

import datetime
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from donkey_ros.common.errors import ConfigError
from donkey_ros.learning.metadata import ModelMetadata
from donkey_ros.learning.pipeline import (DEFAULT_AUGMENTATIONS, FrameSet, PipelineConfig,
                                          split_by_time)
from donkey_ros.learning.train_report import plot_history, write_report

NORMALIZATIONS = {'unit': (1.0 / 255.0, 0.0), 'centered': (2.0 / 255.0, -1.0)}


@dataclass
class TrainConfig:
    """Every choice of a training run (the CLI's options)."""

    model_type: str = 'linear'
    architecture: str = 'small'
    activation: str = 'relu'
    dropout: float = 0.1
    crop_top: int | None = None       # None: a third of the image height (the sky, in the sim)
    crop_bottom: int = 0
    input_size: tuple | None = None    # (width, height) after crop; None: half the cropped size
    normalize: str = 'unit'
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 5
    min_delta: float = 0.0
    val_fraction: float = 0.2
    block_seconds: float = 10.0
    augment: tuple = DEFAULT_AUGMENTATIONS
    steering_bins: int = 15
    throttle_bins: int = 20
    throttle_range: tuple = (0.0, 1.0)
    throttle_weight: float = 0.5
    quantize: str = 'none'             # 'none' or 'int8' (int8 is written in addition to float)
    seed: int = 0
    threads: int = 2
    distribution: str = 'auto'         # tf.distribute: auto, none, mirrored, multi-worker
    jit_compile: bool = False          # XLA-compile the train step (faster on CPU for big inputs)
    verbose: int | None = None         # Keras progress: 0 silent, 1 bar, 2 a line per epoch;
    #                                    None: a bar on a terminal, a line per epoch in logs
    style_augment: tuple = ()          # styles for stylized copies of frames (docs/style.md)
    style_fraction: float = 0.5        # share of frames that get a stylized copy
    style_cache: str = '~/.cache/donkey_ros/style'  # stylized frames, computed once

    def check(self) -> 'TrainConfig':
        if self.normalize not in NORMALIZATIONS:
            raise ConfigError(f"normalize '{self.normalize}' unknown "
                              f"(valid: {', '.join(NORMALIZATIONS)})")
        if self.quantize not in ('none', 'int8'):
            raise ConfigError(f"quantize '{self.quantize}' unknown (valid: none, int8)")
        if self.epochs < 1 or self.batch_size < 1 or not self.learning_rate > 0:
            raise ConfigError('epochs, batch size and learning rate must be positive')
        low, high = self.throttle_range
        if not high > low:
            raise ConfigError(f'throttle range {self.throttle_range} is empty')
        if self.style_augment and not 0.0 < self.style_fraction <= 1.0:
            raise ConfigError(f'style fraction must be in (0, 1], got {self.style_fraction}')
        return self

    def model_metadata(self, image_width: int, image_height: int) -> ModelMetadata:
        """How the pilot must feed a model trained on frames of this size."""
        crop_top = image_height // 3 if self.crop_top is None else self.crop_top
        cropped = image_height - crop_top - self.crop_bottom
        if cropped < 8:
            raise ConfigError(f'crop {crop_top} top + {self.crop_bottom} bottom leaves '
                              f'{cropped} rows of a {image_height}-row image')
        width, height = self.input_size or (max(24, image_width // 2), max(24, cropped // 2))
        scale, offset = NORMALIZATIONS[self.normalize]
        categorical = self.model_type == 'categorical'
        return ModelMetadata(
            model_type=self.model_type, architecture=self.architecture,
            image_width=image_width, image_height=image_height, crop_top=crop_top,
            crop_bottom=self.crop_bottom, input_width=width, input_height=height,
            input_scale=scale, input_offset=offset, layout='packed',
            steering_bins=self.steering_bins if categorical else 0,
            throttle_bins=self.throttle_bins if categorical else 0,
            throttle_range=tuple(self.throttle_range), activation=self.activation)


@dataclass
class TrainResult:
    """What a training run produced and how well it did."""

    model_path: Path
    metadata: ModelMetadata
    history: dict
    epochs: int
    best_epoch: int
    val_loss: float
    val_steering_mae: float
    val_throttle_mae: float
    train_frames: int
    val_frames: int
    seconds: float
    int8_path: Path | None = None
    int8_steering_mae: float | None = None
    int8_throttle_mae: float | None = None
    files: list = field(default_factory=list)
    data_path: str = 'memory'
    workers: int = 1


# --- training ----------------------------------------------------------------------------------
def configure_tensorflow(threads: int, seed: int) -> None:
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    import keras
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    except RuntimeError:  # already initialized in this process: keep its settings
        pass
    keras.utils.set_random_seed(seed)


def _steering_mae_metric(values: np.ndarray):
    """Validation steering error in steering units for a categorical model (expected values)."""
    import tensorflow as tf

    centres = tf.constant(values, tf.float32)

    def mae(y_true, y_pred):
        truth = tf.reduce_sum(y_true * centres, axis=-1)
        guess = tf.reduce_sum(tf.nn.softmax(y_pred, axis=-1) * centres, axis=-1)
        return tf.reduce_mean(tf.abs(truth - guess))
    return mae


class Progress:
    """A line per epoch with frames/s and the time left (at most ``epochs``; early stopping
    may end sooner). Built as a Keras callback by ``progress_callback``."""

    def __init__(self, epochs: int, train_frames: int, log=print) -> None:
        self.epochs, self.train_frames, self.log = epochs, train_frames, log
        self.started = self.epoch_started = 0.0

    def begin(self) -> None:
        self.started = time.monotonic()

    def epoch_begin(self) -> None:
        self.epoch_started = time.monotonic()

    def epoch_end(self, epoch: int, logs: dict | None) -> str:
        now = time.monotonic()
        rate = self.train_frames / max(1e-9, now - self.epoch_started)
        done = epoch + 1
        left = (now - self.started) / done * (self.epochs - done)
        logs = logs or {}
        losses = ', '.join(f'{k} {logs[k]:.4f}' for k in ('loss', 'val_loss') if k in logs)
        line = (f'epoch {done}/{self.epochs}: {rate:,.0f} frames/s, '
                f'{format_seconds(left)} left at most' + (f' ({losses})' if losses else ''))
        self.log(line)
        return line


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f'{seconds} s'
    if seconds < 3600:
        return f'{seconds // 60} min {seconds % 60:02d} s'
    return f'{seconds // 3600} h {seconds % 3600 // 60:02d} min'


def progress_callback(progress: Progress):
    import keras

    class Callback(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            progress.begin()

        def on_epoch_begin(self, epoch, logs=None):
            progress.epoch_begin()

        def on_epoch_end(self, epoch, logs=None):
            progress.epoch_end(epoch, logs)
    return Callback()


def train(frames, config: TrainConfig, output: str | Path, metadata: ModelMetadata,
          command: str = '', counts: dict | None = None, log=print) -> TrainResult:
    """Trains on ``frames`` (already preprocessed for ``metadata``) and exports the model.

    Args:
        frames: training + validation frames: a ``FrameSet`` in memory, or the
            ``streaming.StreamedFrames`` of ``streaming.stream_bags`` (frames on disk).
        config: training choices.
        output: the ``.tflite`` path to write (other files go next to it).
        metadata: from ``config.model_metadata`` (what the frames were preprocessed for).
        command: the command line to record in the metadata.
        counts: data counts to put in the report.
        log: where progress lines go.
    """
    config.check()
    output = Path(output)
    if output.suffix != '.tflite':
        raise ConfigError(f'--output must end in .tflite, got {output.name}')
    started = time.monotonic()
    configure_tensorflow(config.threads, config.seed)
    from donkey_ros.learning.distribute import make_distribution, prepare_model
    distribution = make_distribution(config.distribution)
    import keras

    from donkey_ros.learning import export, models
    from donkey_ros.learning.inference import bin_values
    from donkey_ros.learning.pipeline import make_dataset

    streamed = not isinstance(frames, FrameSet)
    data_path = 'stream' if streamed else 'memory'
    if streamed:
        n_train, n_val = frames.split(config.val_fraction, config.block_seconds,
                                      distribution.sum_over_workers)
        train_idx = val_idx = None
    else:
        train_idx, val_idx = split_by_time(frames, config.val_fraction, config.block_seconds)
        n_train, n_val = len(train_idx), len(val_idx)
    log(f'data: {len(frames)} frames ({frames.seconds:.0f} s from {len(frames.sources)} '
        f'recording(s)): {n_train} train, {n_val} validation '
        f'(every {max(2, round(1 / config.val_fraction))}th {config.block_seconds:g} s block); '
        f'{"streamed from disk" if streamed else "in memory"}; {distribution.describe()}')
    spec = models.ModelSpec(
        model_type=config.model_type, architecture=config.architecture,
        input_height=metadata.input_height, input_width=metadata.input_width,
        activation=config.activation, dropout=config.dropout,
        steering_bins=config.steering_bins, throttle_bins=config.throttle_bins).check()
    pipeline = PipelineConfig(
        batch_size=config.batch_size, augment=tuple(config.augment),
        input_scale=metadata.input_scale, input_offset=metadata.input_offset,
        model_type=config.model_type, steering_bins=config.steering_bins,
        throttle_bins=config.throttle_bins, throttle_range=tuple(config.throttle_range),
        seed=config.seed).check()
    import tensorflow as tf
    several = distribution.workers > 1
    steps = {}
    if several:   # every worker must take the same number of steps: repeat and count them
        steps = {'steps_per_epoch': max(1, n_train // config.batch_size),
                 'validation_steps': max(1, math.ceil(n_val / config.batch_size))}
    if streamed:
        train_data = frames.dataset(pipeline, validation=False, training=True, repeat=several)
        val_data = frames.dataset(pipeline, validation=True, training=False, repeat=several)
    else:
        images = tf.constant(frames.images)
        worker, workers = distribution.shard
        train_data = make_dataset(frames, train_idx[worker::workers], pipeline, training=True,
                                  images_tensor=images)
        val_data = make_dataset(frames, val_idx[worker::workers] if several else val_idx,
                                pipeline, training=False, images_tensor=images)
        if several:
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = \
                tf.data.experimental.AutoShardPolicy.OFF
            train_data = train_data.repeat().with_options(options)
            val_data = val_data.repeat().with_options(options)

    with distribution.strategy.scope():
        model = models.training_model(spec)
        loss, weights = models.losses(spec, config.throttle_weight)
        if config.model_type == 'categorical':
            metrics = {'steering': [_steering_mae_metric(
                bin_values(config.steering_bins, (-1.0, 1.0)))]}
        else:
            metrics = {'steering': [keras.metrics.MeanAbsoluteError(name='mae')]}
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=loss,
                      loss_weights=weights, metrics=metrics, jit_compile=config.jit_compile)
    prepare_model(distribution, model, train_data.element_spec)
    log(f'model: {config.model_type} {config.architecture} ({model.count_params():,} '
        f'parameters), input {metadata.input_width}x{metadata.input_height} from '
        f'{metadata.image_width}x{metadata.image_height} frames cropped '
        f'{metadata.crop_top} top / {metadata.crop_bottom} bottom; augment: '
        f'{", ".join(config.augment) or "none"}')

    checkpoint = output.with_suffix('.keras')
    if not distribution.is_chief:   # only the chief writes the model; the others a scratch copy
        import tempfile
        checkpoint = Path(tempfile.mkdtemp(prefix='donkey_ros_worker_')) / checkpoint.name
    output.parent.mkdir(parents=True, exist_ok=True)
    verbose = config.verbose if config.verbose is not None else (1 if sys.stdout.isatty() else 2)
    callbacks = [progress_callback(Progress(config.epochs, n_train, log))] if verbose else []
    callbacks += [
        keras.callbacks.EarlyStopping(monitor='val_loss', patience=config.patience,
                                      min_delta=config.min_delta, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(str(checkpoint), monitor='val_loss', save_best_only=True),
        keras.callbacks.ReduceLROnPlateau(monitor='val_loss', factor=0.5,
                                          patience=max(1, config.patience // 2), min_lr=1e-5),
    ]
    import warnings
    warnings.filterwarnings('ignore', message='.*`shuffle=True` was passed.*')
    fit = model.fit(train_data, validation_data=val_data, epochs=config.epochs,
                    callbacks=callbacks, verbose=verbose, **steps)
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    val_losses = history.get('val_loss', [math.nan])
    best = int(np.nanargmin(val_losses))
    mae_key = next((k for k in history if k.startswith('val_') and 'steering_mae' in k), None)
    log(f'best epoch {best + 1} of {len(val_losses)}: val loss {val_losses[best]:.4f}'
        + (f', val steering MAE {history[mae_key][best]:.4f}' if mae_key else ''))

    summary = {
        'frames': len(frames), 'train_frames': int(n_train),
        'val_frames': int(n_val), 'recordings': list(frames.sources),
        'data_path': data_path, 'workers': distribution.workers,
        'replicas': distribution.replicas,
        'seconds_of_driving': round(frames.seconds, 1), 'epochs': len(val_losses),
        'best_epoch': best + 1, 'val_loss': round(float(val_losses[best]), 6),
        'config': _jsonable(asdict(config)), 'counts': counts or {},
    }
    metadata = replace(
        metadata, training=summary, command=command,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'))
    if not distribution.is_chief:
        log(f'worker {distribution.worker_index} done (the chief, worker 0, writes the model)')
        return TrainResult(output, metadata, history, len(val_losses), best + 1,
                           float(val_losses[best]), math.nan, math.nan, n_train, n_val,
                           time.monotonic() - started, data_path=data_path,
                           workers=distribution.workers)
    pilot = models.inference_model(model, spec)
    log(f'exporting {output} (float32)')
    exported = {output: (export.export_bytes(pilot, metadata, 'float32'), 'float32')}
    export.write_model(output, exported[output][0], metadata)
    files = [output, output.with_suffix('.json'), checkpoint]
    result = TrainResult(output, metadata, history, len(val_losses), best + 1,
                         float(val_losses[best]), math.nan, math.nan, n_train,
                         n_val, 0.0, files=files, data_path=data_path,
                         workers=distribution.workers)
    result.val_steering_mae, result.val_throttle_mae = tflite_errors(output, frames, val_idx)
    if config.quantize == 'int8':
        from donkey_ros.learning.pipeline import representative_frames
        path = export.int8_path(output)
        log(f'exporting {path} (int8, calibrated on {min(200, n_train)} training frames)')
        calibration = (frames.representative(seed=config.seed) if streamed else
                       representative_frames(frames.subset(train_idx), seed=config.seed))
        exported[path] = (export.export_bytes(pilot, metadata, 'int8', calibration), 'int8')
        export.write_model(path, exported[path][0], replace(metadata, quantization='int8'))
        result.int8_path = path
        result.int8_steering_mae, result.int8_throttle_mae = tflite_errors(path, frames, val_idx)
        files += [path, path.with_suffix('.json')]
    result.seconds = time.monotonic() - started
    # The final metadata also records the exported model's own validation error and wall time:
    # written again, into the sidecar and the model file alike.
    summary.update({'val_steering_mae': round(result.val_steering_mae, 5),
                    'val_throttle_mae': round(result.val_throttle_mae, 5),
                    'train_seconds': round(result.seconds, 1)})
    if result.int8_steering_mae is not None:
        summary['int8_val_steering_mae'] = round(result.int8_steering_mae, 5)
    for path, (data, quantization) in exported.items():
        export.write_model(path, data, replace(metadata, training=summary,
                                               quantization=quantization))
    files += [plot_history(history, output.with_suffix('.loss.png'), output.stem),
              write_report(result, output.with_suffix('.report.md'), summary)]
    result.metadata = replace(metadata, training=summary)
    return result


def _jsonable(values: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def tflite_errors(path: Path, frames, indices: np.ndarray | None) -> tuple[float, float]:
    """Mean |steering error| and |throttle error| of the exported model on frames: the
    ``indices`` of a ``FrameSet``, or the validation frames of ``StreamedFrames`` (None)."""
    from donkey_ros.learning.inference import ModelRunner

    runner = ModelRunner(path, threads=1)
    if isinstance(frames, FrameSet):
        chunks = [(frames.images[indices], frames.steering[indices], frames.throttle[indices])]
    else:
        chunks = frames.iter_frames(validation=True)
    steering_error = throttle_error = 0.0
    count = 0
    for images, steering, throttle in chunks:
        for image, steer, gas in zip(images, steering, throttle):
            guess_steering, guess_throttle = runner.predict_pixels(image)
            steering_error += abs(float(np.clip(guess_steering, -1, 1)) - float(steer))
            throttle_error += abs(float(np.clip(guess_throttle, -1, 1)) - float(gas))
            count += 1
    count = max(1, count)
    return steering_error / count, throttle_error / count


