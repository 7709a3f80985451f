"""Training throughput: input-pipeline frames/s vs train-step frames/s, measured in one run.

- reader: bags -> preprocessed frames in memory (the dataset reader + crop/resize), if --bags;
- pipeline: the tf.data input pipeline alone (gather, augment, labels, prefetch), with and without
  augmentation;
- train step: the optimizer step alone on batches already in memory, per architecture;
- fit: both together, as `donkey-ros train` runs them.

The pipeline must feed frames faster than the train step eats them (ratio > 1), or the CPU waits
on data. A bar chart goes to --out.

    python bench/train_pipeline.py [--bags DIR...] [--frames 2000] [--threads 2] [--out DIR]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import warnings  # noqa: E402

warnings.filterwarnings('ignore', message='.*`shuffle=True` was passed.*')


def frames_per_second(run, frames_per_call: int, seconds: float) -> float:
    """Calls ``run`` until ``seconds`` pass (after one warm-up call); frames per second."""
    run()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run()
        calls += 1
    return calls * frames_per_call / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--bags', nargs='*', default=None,
                        help='bags to read (default: synthetic lane frames)')
    parser.add_argument('--frames', type=int, default=2000, help='synthetic frames')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--seconds', type=float, default=4.0, help='per measurement')
    parser.add_argument('--out', default=str(ROOT / 'runs' / 'bench'))
    args = parser.parse_args(argv)

    from donkey_ros.learning.pipeline import (DEFAULT_AUGMENTATIONS, PipelineConfig,
                                              collect_frames, make_dataset, split_by_time)
    from donkey_ros.learning.synthetic import lane_samples
    from donkey_ros.learning.train import TrainConfig, configure_tensorflow
    from donkey_ros.learning.training_data import load_bags

    config = TrainConfig(threads=args.threads, batch_size=args.batch_size)
    results = {}
    start = time.perf_counter()
    if args.bags:
        frames, metadata, _ = load_bags(args.bags, config, progress=False)
        source = f'{len(frames)} frames from {", ".join(args.bags)}'
        results['reader (bags -> memory)'] = len(frames) / (time.perf_counter() - start)
    else:
        metadata = config.model_metadata(160, 120)
        samples = list(lane_samples(args.frames))
        start = time.perf_counter()
        frames = collect_frames(samples, metadata)
        source = f'{len(frames)} synthetic 160x120 frames'
        results['preprocess (crop/resize)'] = len(frames) / (time.perf_counter() - start)
    configure_tensorflow(args.threads, 0)
    import keras
    import tensorflow as tf

    from donkey_ros.learning import models

    print(f'{source} -> {metadata.input_width}x{metadata.input_height} input, batch '
          f'{args.batch_size}, {args.threads} TensorFlow threads, {os.cpu_count()} CPUs')
    train_idx, _ = split_by_time(frames, 0.2)
    images = tf.constant(frames.images)
    batch = args.batch_size

    for name, augment in (('pipeline, augmented', DEFAULT_AUGMENTATIONS), ('pipeline, plain', ())):
        pipeline = PipelineConfig(batch_size=batch, augment=augment)
        iterator = iter(make_dataset(frames, train_idx, pipeline, True, images).repeat())
        results[name] = frames_per_second(lambda: next(iterator), batch, args.seconds)

    pipeline = PipelineConfig(batch_size=batch, augment=())
    x, y = next(iter(make_dataset(frames, train_idx, pipeline, False, images)))
    for architecture in ('small', 'donkey'):
        spec = models.ModelSpec(architecture=architecture, input_height=metadata.input_height,
                                input_width=metadata.input_width)
        model = models.training_model(spec)
        loss, weights = models.losses(spec)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, loss_weights=weights)
        results[f'train step, {architecture}'] = frames_per_second(
            lambda: model.train_on_batch(x, y), batch, args.seconds)

    spec = models.ModelSpec(input_height=metadata.input_height, input_width=metadata.input_width)
    model = models.training_model(spec)
    loss, weights = models.losses(spec)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, loss_weights=weights)
    for name, augment in (('fit (augmented pipeline + small)', DEFAULT_AUGMENTATIONS),
                          ('fit (plain pipeline + small)', ())):
        data = make_dataset(frames, train_idx, PipelineConfig(batch_size=batch, augment=augment),
                            True, images)
        model.fit(data.take(2), verbose=0)
        start = time.perf_counter()
        model.fit(data, epochs=2, verbose=0)
        results[name] = 2 * len(train_idx) / (time.perf_counter() - start)

    width = max(map(len, results))
    print(f'\n{"":{width}}  frames/s')
    for name, value in results.items():
        print(f'{name:{width}}  {value:9.0f}')
    ratio = results['pipeline, augmented'] / results['train step, small']
    print(f'\naugmented pipeline / small train step = {ratio:.1f}x '
          f'({"the pipeline keeps up" if ratio > 1 else "the pipeline is the bottleneck"})')
    fit, plain = results['fit (augmented pipeline + small)'], results['fit (plain pipeline + small)']
    step = results['train step, small']
    print(f'fit / small train step = {fit / step:.2f}x augmented, {plain / step:.2f}x plain '
          '(1.0 = no time lost to the pipeline; both share the same CPU cores)')
    print(f"donkey / small train step = {results['train step, donkey'] / results['train step, small']:.2f}x")

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figure, axis = plt.subplots(figsize=(8, 3.5))
    names = list(results)
    axis.barh(names, [results[n] for n in names], color='tab:blue')
    axis.set_xlabel('frames per second')
    axis.set_title(f'training throughput ({args.threads} threads, {source})', fontsize=9)
    axis.invert_yaxis()
    figure.tight_layout()
    picture = out / 'train_pipeline.png'
    figure.savefig(picture, dpi=90)
    print(f'wrote {picture}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
