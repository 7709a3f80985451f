"""`donkey-ros train`: recorded bags -> a ``.tflite`` pilot model, with a loss curve and a report.

    donkey-ros train data/bags --output models/mypilot.tflite [--type categorical] [--quantize int8]

Frames are paired with the user's commands by the bag dataset reader (drive mode, exclusions and
throttle filters apply), cropped/resized exactly as the pilot will, and kept in memory, or, for
data larger than memory (``--data-path``), prepared into a frame cache on disk and streamed.
Several GPUs or machines train together through tf.distribute (``--workers``). Validation
is every 5th 10-second block of each recording. Training stops early when validation loss stops
improving; the best weights are kept (``NAME.keras``) and exported. Next to the model are written:
``NAME.json`` (metadata: how the pilot feeds the model, the training summary, this command),
``NAME.loss.png`` (loss curves) and ``NAME.report.md`` (data counts, epochs, validation loss,
steering error of the exported model).

This module is the command line (its options are shared with `donkey-ros loop`). The training
itself is donkey_ros/learning/train.py, the frames come from learning/training_data.py, and
``--style-augment`` plugs style augmentation (donkey_ros/style/augment.py) in as a frame
transform: the learning package knows nothing of styles.
"""
from __future__ import annotations

import argparse
import shlex
import time

from donkey_ros.common.image import parse_size
from donkey_ros.learning.distribute import DISTRIBUTIONS
from donkey_ros.learning.pipeline import AUGMENTATIONS, FrameSet
from donkey_ros.learning.streaming import AUTO_MEMORY_LIMIT_MB, DATA_PATHS, SHUFFLE_MB
from donkey_ros.learning.train import NORMALIZATIONS, TrainConfig, train
from donkey_ros.learning.training_data import counts_text
from donkey_ros.learning.training_data import load_bags as _load_bags
from donkey_ros.recording.bag_info import add_filter_arguments, filters_from


class StyleCopies:
    """The frame transform of ``--style-augment``: stylized copies of a share of the frames,
    labels unchanged, cached on disk (donkey_ros/style/augment.py)."""

    def __init__(self, config: TrainConfig) -> None:
        from donkey_ros.style.augment import AugmentReport

        self.config = config
        self.report = AugmentReport()

    def __call__(self, samples):
        from donkey_ros.style.augment import stylize_cache

        c = self.config
        return stylize_cache(samples, c.style_augment, c.style_fraction, c.style_cache, c.seed,
                             report=self.report)

    def counts(self) -> dict:
        return {'style_copies': self.report.chosen}


def frame_transform(config: TrainConfig) -> StyleCopies | None:
    """The frame transform ``config`` asks for (``style_augment``), or None."""
    return StyleCopies(config) if config.style_augment else None


def load_bags(paths, config: TrainConfig, filters: dict | None = None, **kwargs):
    """``learning.training_data.load_bags`` with the frame transform ``config`` asks for."""
    return _load_bags(paths, config, filters, transform=frame_transform(config), **kwargs)


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
    group.add_argument('--input-size', type=parse_size, default=None, metavar='WxH',
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
    group.add_argument('--jit-compile', action='store_true',
                       help='XLA-compile the train step (faster for large inputs on CPU)')


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
    add_filter_arguments(data)
    data.add_argument('--keep-off-track', action='store_true',
                      help='keep frames the simulator marked off the road')
    add_training_options(parser)
    scale = parser.add_argument_group('large data and several machines (docs/learning.md)')
    scale.add_argument('--data-path', choices=DATA_PATHS, default='auto',
                       help='memory: decode all frames into memory; stream: prepare them into '
                            'a frame cache on disk and stream it (flat memory); auto (default): '
                            f'stream above {AUTO_MEMORY_LIMIT_MB} MB of frames or with several '
                            'workers')
    scale.add_argument('--frame-cache', default=None, metavar='DIR',
                       help='stream: keep the prepared frames in DIR and reuse them in later '
                            'runs (default: a temporary folder, deleted after training)')
    scale.add_argument('--shuffle-mb', type=float, default=SHUFFLE_MB,
                       help=f'stream: shuffle buffer size in MB of frames (default {SHUFFLE_MB:g})')
    scale.add_argument('--distribute', dest='distribution', default=TrainConfig().distribution,
                       choices=DISTRIBUTIONS,
                       help='tf.distribute strategy; auto: multi-worker when TF_CONFIG names '
                            'several workers, mirrored over all GPUs when there are several')
    scale.add_argument('--workers', default=None, metavar='HOST:PORT,...',
                       help='all workers of a multi-machine run (writes TF_CONFIG); run the '
                            'same command on each machine with its --worker-index')
    scale.add_argument('--worker-index', type=int, default=0,
                       help="this machine's place in --workers (0 = chief, writes the model)")
    return parser


def command_line(argv: list[str], program: str = 'donkey-ros train') -> str:
    return ' '.join([program] + [shlex.quote(a) for a in argv])


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    filters = filters_from(args)
    started = time.monotonic()
    frames, metadata, counts = read_frames(args, config, filters)
    print(f'{"prepared" if result_path(frames) == "stream" else "read"} {len(frames)} frames in '
          f'{time.monotonic() - started:.1f} s ({counts_text(counts)})')
    try:
        result = train(frames, config, args.output, metadata, command=command_line(argv),
                       counts=counts)
    finally:
        if hasattr(frames, 'close'):
            frames.close()
    print_result(result)
    return 0


def result_path(frames) -> str:
    return 'memory' if isinstance(frames, FrameSet) else 'stream'


def read_frames(args, config: TrainConfig, filters: dict):
    """Frames in memory or prepared for streaming (``--data-path``), this worker's share."""
    from donkey_ros.learning.distribute import data_shard, write_tf_config
    from donkey_ros.learning.streaming import choose_path, first_frame_size, stream_bags
    from donkey_ros.recording.dataset import find_bags

    if args.workers:
        write_tf_config(args.workers, args.worker_index)
    index, workers = data_shard(config.distribution)
    transform = frame_transform(config)
    frame_bytes = 0
    if args.data_path == 'auto' and transform is None and workers == 1:
        probe = config.model_metadata(*first_frame_size(find_bags(args.bags), filters))
        frame_bytes = probe.input_width * probe.input_height * 3
    path = choose_path(args.data_path, args.bags, frame_bytes, workers, transform=transform)
    if path == 'memory':
        return load_bags(args.bags, config, filters, drop_off_track=not args.keep_off_track)
    return stream_bags(args.bags, config, filters, drop_off_track=not args.keep_off_track,
                       cache=args.frame_cache, shard=(index, workers),
                       shuffle_mb=args.shuffle_mb)


def print_result(result) -> None:
    """The lines `train` and `loop` print about a ``TrainResult``."""
    if not result.files:   # a worker other than the chief
        return
    print(f'\nwrote {", ".join(str(p) for p in result.files)}')
    print(f'validation steering MAE {result.val_steering_mae:.4f} (float32)'
          + (f', {result.int8_steering_mae:.4f} (int8)' if result.int8_path else ''))
    print(f'training wall time {result.seconds:.1f} s')

