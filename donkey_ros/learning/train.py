"""`donkey-ros train`: recorded bags -> a ``.tflite`` pilot model, with a loss curve and a report.

    donkey-ros train data/bags --output models/mypilot.tflite [--type categorical] [--quantize int8]

Frames are paired with the user's commands by the bag dataset reader (drive mode, exclusions and
throttle filters apply), cropped/resized exactly as the pilot will, and kept in memory. Validation
is every 5th 10-second block of each recording. Training stops early when validation loss stops
improving; the best weights are kept (``NAME.keras``) and exported. Next to the model are written:
``NAME.json`` (metadata: how the pilot feeds the model, the training summary, this command),
``NAME.loss.png`` (loss curves) and ``NAME.report.md`` (data counts, epochs, validation loss,
steering error of the exported model).
"""
from __future__ import annotations

import argparse
import datetime
import math
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from donkey_ros.common.errors import ConfigError
from donkey_ros.learning.metadata import ModelMetadata
from donkey_ros.learning.pipeline import (AUGMENTATIONS, DEFAULT_AUGMENTATIONS, DataError,
                                          FrameSet, PipelineConfig, collect_frames,
                                          split_by_time)

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


# --- data --------------------------------------------------------------------------------------
def load_bags(paths, config: TrainConfig, filters: dict | None = None, progress: bool = True,
              drop_off_track: bool = True) -> tuple[FrameSet, ModelMetadata, dict]:
    """Reads bags through the dataset reader into memory; returns (frames, metadata, counts).

    ``filters`` are ``donkey_ros.recording.dataset.open_dataset`` keyword arguments. Frames whose
    simulator ground truth says the car was off the road are dropped too (``drop_off_track``).

    Raises:
        DataError: no usable frame.
        DatasetError: a path is not a readable bag.
    """
    from donkey_ros.recording.dataset import open_dataset

    dataset = open_dataset(paths, **(filters or {}))
    samples = iter(dataset)
    first = next(samples, None)
    if first is None:
        raise DataError(f'no usable frames in {", ".join(map(str, paths))} '
                        f'({_counts_text(dataset.counts.as_dict())})')
    height, width = first.image.shape[:2]
    metadata = config.model_metadata(width, height)
    off_track = [0]

    def on_road(stream):
        for sample in stream:
            if drop_off_track and sample.truth and sample.truth.get('on_track') is False:
                off_track[0] += 1
                continue
            yield sample

    bar = _progress_bar('reading bags', 'frames') if progress else None
    try:
        stream = on_road(_chain(first, samples))
        if config.style_augment:  # stylized copies of some frames, cached (donkey_ros/style)
            from donkey_ros.style.augment import AugmentReport, stylize_cache
            styled = AugmentReport()
            stream = stylize_cache(stream, config.style_augment, config.style_fraction,
                                   config.style_cache, config.seed, report=styled)
        frames = collect_frames(stream, metadata, progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    counts = dataset.counts.as_dict()
    counts['off_track'] = off_track[0]
    if config.style_augment:
        counts['style_copies'] = styled.chosen
    if not len(frames):
        raise DataError(f'no usable frames in {", ".join(map(str, paths))} '
                        f'({_counts_text(counts)})')
    return frames, metadata, counts


def _chain(first, rest):
    yield first
    yield from rest


def _counts_text(counts: dict) -> str:
    return ', '.join(f'{k} {v}' for k, v in counts.items() if v)


def _progress_bar(description: str, unit: str, total: int | None = None):
    from tqdm import tqdm
    return tqdm(total=total, desc=description, unit=f' {unit}', file=sys.stdout,
                dynamic_ncols=True, mininterval=0.5, disable=None)


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


def train(frames: FrameSet, config: TrainConfig, output: str | Path, metadata: ModelMetadata,
          command: str = '', counts: dict | None = None, log=print) -> TrainResult:
    """Trains on ``frames`` (already preprocessed for ``metadata``) and exports the model.

    Args:
        frames: training + validation frames.
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
    import keras

    from donkey_ros.learning import export, models
    from donkey_ros.learning.inference import bin_values
    from donkey_ros.learning.pipeline import make_dataset

    train_idx, val_idx = split_by_time(frames, config.val_fraction, config.block_seconds)
    log(f'data: {len(frames)} frames ({frames.seconds:.0f} s from {len(frames.sources)} '
        f'recording(s)): {len(train_idx)} train, {len(val_idx)} validation '
        f'(every {max(2, round(1 / config.val_fraction))}th {config.block_seconds:g} s block)')
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
    images = tf.constant(frames.images)
    train_data = make_dataset(frames, train_idx, pipeline, training=True, images_tensor=images)
    val_data = make_dataset(frames, val_idx, pipeline, training=False, images_tensor=images)

    model = models.training_model(spec)
    loss, weights = models.losses(spec, config.throttle_weight)
    if config.model_type == 'categorical':
        metrics = {'steering': [_steering_mae_metric(
            bin_values(config.steering_bins, (-1.0, 1.0)))]}
    else:
        metrics = {'steering': [keras.metrics.MeanAbsoluteError(name='mae')]}
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=loss,
                  loss_weights=weights, metrics=metrics)
    log(f'model: {config.model_type} {config.architecture} ({model.count_params():,} '
        f'parameters), input {metadata.input_width}x{metadata.input_height} from '
        f'{metadata.image_width}x{metadata.image_height} frames cropped '
        f'{metadata.crop_top} top / {metadata.crop_bottom} bottom; augment: '
        f'{", ".join(config.augment) or "none"}')

    checkpoint = output.with_suffix('.keras')
    output.parent.mkdir(parents=True, exist_ok=True)
    callbacks = [
        keras.callbacks.EarlyStopping(monitor='val_loss', patience=config.patience,
                                      min_delta=config.min_delta, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(str(checkpoint), monitor='val_loss', save_best_only=True),
        keras.callbacks.ReduceLROnPlateau(monitor='val_loss', factor=0.5,
                                          patience=max(1, config.patience // 2), min_lr=1e-5),
    ]
    import warnings
    warnings.filterwarnings('ignore', message='.*`shuffle=True` was passed.*')
    fit = model.fit(train_data, validation_data=val_data, epochs=config.epochs,
                    callbacks=callbacks,
                    verbose=config.verbose if config.verbose is not None
                    else (1 if sys.stdout.isatty() else 2))
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    val_losses = history.get('val_loss', [math.nan])
    best = int(np.nanargmin(val_losses))
    mae_key = next((k for k in history if k.startswith('val_') and 'steering_mae' in k), None)
    log(f'best epoch {best + 1} of {len(val_losses)}: val loss {val_losses[best]:.4f}'
        + (f', val steering MAE {history[mae_key][best]:.4f}' if mae_key else ''))

    summary = {
        'frames': len(frames), 'train_frames': int(len(train_idx)),
        'val_frames': int(len(val_idx)), 'recordings': list(frames.sources),
        'seconds_of_driving': round(frames.seconds, 1), 'epochs': len(val_losses),
        'best_epoch': best + 1, 'val_loss': round(float(val_losses[best]), 6),
        'config': _jsonable(asdict(config)), 'counts': counts or {},
    }
    metadata = replace(
        metadata, training=summary, command=command,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'))
    pilot = models.inference_model(model, spec)
    log(f'exporting {output} (float32)')
    exported = {output: (export.export_bytes(pilot, metadata, 'float32'), 'float32')}
    export.write_model(output, exported[output][0], metadata)
    files = [output, output.with_suffix('.json'), checkpoint]
    result = TrainResult(output, metadata, history, len(val_losses), best + 1,
                         float(val_losses[best]), math.nan, math.nan, len(train_idx),
                         len(val_idx), 0.0, files=files)
    result.val_steering_mae, result.val_throttle_mae = tflite_errors(output, frames, val_idx)
    if config.quantize == 'int8':
        from donkey_ros.learning.pipeline import representative_frames
        path = export.int8_path(output)
        log(f'exporting {path} (int8, calibrated on {min(200, len(train_idx))} training frames)')
        exported[path] = (export.export_bytes(
            pilot, metadata, 'int8',
            representative_frames(frames.subset(train_idx), seed=config.seed)), 'int8')
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


def tflite_errors(path: Path, frames: FrameSet, indices: np.ndarray) -> tuple[float, float]:
    """Mean |steering error| and |throttle error| of the exported model on frames."""
    from donkey_ros.learning.inference import ModelRunner

    runner = ModelRunner(path, threads=1)
    steering = np.empty(len(indices))
    throttle = np.empty(len(indices))
    for k, i in enumerate(indices):
        steering[k], throttle[k] = runner.predict_pixels(frames.images[i])
    steering = np.clip(steering, -1, 1)
    throttle = np.clip(throttle, -1, 1)
    return (float(np.mean(np.abs(steering - frames.steering[indices]))),
            float(np.mean(np.abs(throttle - frames.throttle[indices]))))


def plot_history(history: dict, path: Path, title: str) -> Path:
    """Loss (and steering MAE) per epoch, train vs validation, as a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    mae = [k for k in history if 'steering_mae' in k and not k.startswith('val_')]
    figure, axes = plt.subplots(1, 2 if mae else 1, figsize=(10 if mae else 6, 4), squeeze=False)
    epochs = np.arange(1, len(history.get('loss', [])) + 1)
    panels = [('loss', 'loss')] + ([(mae[0], 'steering MAE')] if mae else [])
    for axis, (key, label) in zip(axes[0], panels):
        axis.plot(epochs, history[key], 'o-', label='train')
        if f'val_{key}' in history:
            values = history[f'val_{key}']
            axis.plot(epochs, values, 'o-', label='validation')
            best = int(np.nanargmin(history['val_loss']))
            axis.axvline(best + 1, color='grey', linestyle=':', label=f'best (epoch {best + 1})')
        axis.set_xlabel('epoch')
        axis.set_ylabel(label)
        axis.set_yscale('log')
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(f'{title}: training history')
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def write_report(result: TrainResult, path: Path, summary: dict) -> Path:
    meta = result.metadata
    lines = [
        f'# Training report: {result.model_path.name}', '',
        f'- command: `{meta.command}`' if meta.command else '- command: (library call)',
        f'- model: {meta.model_type} {meta.architecture}, input {meta.input_width}x'
        f'{meta.input_height} ({meta.image_width}x{meta.image_height} frames, crop '
        f'{meta.crop_top} top / {meta.crop_bottom} bottom), activation {meta.activation}',
        f'- data: {summary["frames"]} frames, {summary["seconds_of_driving"]} s of driving from '
        f'{len(summary["recordings"])} recording(s); {result.train_frames} train / '
        f'{result.val_frames} validation (contiguous time blocks)',
    ]
    if summary.get('counts'):
        lines.append(f'- reader counts: {_counts_text(summary["counts"])}')
    lines += [
        f'- epochs: {result.epochs} (best {result.best_epoch}), validation loss '
        f'{result.val_loss:.5f}',
        f'- validation steering MAE (exported float32 model): {result.val_steering_mae:.4f}; '
        f'throttle MAE {result.val_throttle_mae:.4f}',
    ]
    if result.int8_path:
        lines.append(f'- validation steering MAE (int8 model {result.int8_path.name}): '
                     f'{result.int8_steering_mae:.4f}; throttle MAE '
                     f'{result.int8_throttle_mae:.4f}')
    lines += [f'- wall time: {result.seconds:.1f} s', '',
              f'![loss curves]({result.model_path.with_suffix(".loss.png").name})', '']
    path.write_text('\n'.join(lines))
    return path


# --- command line ------------------------------------------------------------------------------
def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, got '{text}'") from None
    return width, height


def _pair(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f"range must be LOW,HIGH, got '{text}'") from None
    return low, high


def _augmentations(text: str) -> tuple:
    if text in ('none', ''):
        return ()
    names = tuple(n.strip() for n in text.split(',') if n.strip())
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown augmentation {', '.join(unknown)} (valid: {', '.join(AUGMENTATIONS)})")
    return names


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """The options shared by `train` and `loop`."""
    from donkey_ros.learning.metadata import ACTIVATIONS, ARCHITECTURES, MODEL_TYPES
    d = TrainConfig()
    group = parser.add_argument_group('model and training')
    group.add_argument('--type', dest='model_type', choices=MODEL_TYPES, default=d.model_type,
                       help='linear: two regression outputs; categorical: binned, softmax')
    group.add_argument('--arch', dest='architecture', choices=ARCHITECTURES,
                       default=d.architecture,
                       help="backbone: 'small' (fast, default) or DonkeyCar's 'donkey'")
    group.add_argument('--activation', choices=ACTIVATIONS, default=d.activation)
    group.add_argument('--dropout', type=float, default=d.dropout)
    group.add_argument('--crop-top', type=int, default=None,
                       help='rows cut off the top (default: a third of the height)')
    group.add_argument('--crop-bottom', type=int, default=d.crop_bottom)
    group.add_argument('--input-size', type=_size, default=None, metavar='WxH',
                       help='model input after crop (default: half the cropped frame)')
    group.add_argument('--normalize', choices=tuple(NORMALIZATIONS), default=d.normalize,
                       help='pixels to [0, 1] (unit) or [-1, 1] (centered)')
    group.add_argument('--epochs', type=int, default=d.epochs, help='at most this many')
    group.add_argument('--batch-size', type=int, default=d.batch_size)
    group.add_argument('--lr', dest='learning_rate', type=float, default=d.learning_rate)
    group.add_argument('--patience', type=int, default=d.patience,
                       help='stop after this many epochs without validation improvement')
    group.add_argument('--val-fraction', type=float, default=d.val_fraction)
    group.add_argument('--block-seconds', type=float, default=d.block_seconds,
                       help='length of the contiguous time blocks of the validation split')
    group.add_argument('--augment', type=_augmentations, default=d.augment,
                       help=f"comma list of {', '.join(AUGMENTATIONS)}, or 'none' "
                            f"(default: {','.join(d.augment)})")
    group.add_argument('--steering-bins', type=int, default=d.steering_bins)
    group.add_argument('--throttle-bins', type=int, default=d.throttle_bins)
    group.add_argument('--throttle-range', type=_pair, default=d.throttle_range,
                       metavar='LOW,HIGH', help='range of the categorical throttle bins')
    group.add_argument('--quantize', choices=('none', 'int8'), default=d.quantize,
                       help='int8: also write NAME_int8.tflite (post-training quantization)')
    group.add_argument('--seed', type=int, default=d.seed)
    group.add_argument('--style-augment', nargs='+', default=d.style_augment, metavar='STYLE',
                       help='add stylized copies of some frames, labels unchanged (style names: '
                            '`donkey-ros stylize --list --local`); computed once and cached')
    group.add_argument('--style-fraction', type=float, default=d.style_fraction,
                       help='share of frames that get a stylized copy (default 0.5)')
    group.add_argument('--style-cache', default=d.style_cache,
                       help=f'folder of cached stylized frames (default {d.style_cache})')
    group.add_argument('--threads', type=int, default=d.threads,
                       help='CPU threads for TensorFlow')


def config_from_args(args) -> TrainConfig:
    fields = TrainConfig.__dataclass_fields__
    values = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    return TrainConfig(**values).check()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='donkey-ros train', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('bags', nargs='+', help='bag directories, folders of bags, .mcap files')
    parser.add_argument('--output', '-o', default='models/pilot.tflite',
                        help='model file to write (.tflite); other files go next to it')
    data = parser.add_argument_group('data selection (the bag dataset reader)')
    data.add_argument('--modes', default='user',
                      help="drive modes whose frames are used (comma list, or 'any')")
    data.add_argument('--min-throttle', type=float, default=None,
                      help='drop frames whose throttle is below this (e.g. stops)')
    data.add_argument('--tolerance', type=float, default=0.1,
                      help='max age (s) of the command paired with a frame')
    data.add_argument('--namespace', default=None, help='choose one car in multi-car bags')
    data.add_argument('--keep-off-track', action='store_true',
                      help='keep frames the simulator marked off the road')
    add_training_options(parser)
    return parser


def command_line(argv: list[str], program: str = 'donkey-ros train') -> str:
    return ' '.join([program] + [shlex.quote(a) for a in argv])


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    filters = {'modes': None if args.modes == 'any' else tuple(args.modes.split(',')),
               'min_throttle': args.min_throttle, 'tolerance': args.tolerance,
               'namespace': args.namespace}
    started = time.monotonic()
    frames, metadata, counts = load_bags(args.bags, config, filters,
                                         drop_off_track=not args.keep_off_track)
    print(f'read {len(frames)} frames in {time.monotonic() - started:.1f} s '
          f'({_counts_text(counts)})')
    result = train(frames, config, args.output, metadata, command=command_line(argv),
                   counts=counts)
    print_result(result)
    return 0


def print_result(result: TrainResult) -> None:
    print(f'\nwrote {", ".join(str(p) for p in result.files)}')
    print(f'validation steering MAE {result.val_steering_mae:.4f} (float32)'
          + (f', {result.int8_steering_mae:.4f} (int8)' if result.int8_path else ''))
    print(f'training wall time {result.seconds:.1f} s')


if __name__ == '__main__':  # the same as `donkey-ros train`
    from donkey_ros.cli import main as cli_main
    sys.exit(cli_main(['train', *sys.argv[1:]]))
