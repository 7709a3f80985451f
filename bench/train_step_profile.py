"""Where the CPU seconds of one training step of DonkeyCar's backbone go, measured in one run.

Times (CPU seconds of this process: user + system, all threads, from the kernel) each convolution
of `--arch donkey` at --input-size (default DonkeyCar's 160x120) on a batch of --batch-size frames:
its forward pass, its filter gradient and its input gradient (none for the first layer: the
image needs no gradient), the ReLU + dropout after it; then whole Keras train steps of the real
training model (donkey_ros/learning/models.py), with and without dropout. Also two exactly
equivalent formulations of the first convolution (5x5 stride 2 on 3 channels, oneDNN's least
efficient shape): space-to-depth(2) + a 3x3 stride-1 convolution on 12 channels, and im2col
(extract_patches) + a matrix product; both are checked to compute the same output first.

    python bench/train_step_profile.py [--threads 1] [--batch-size 128] [--input-size 160x120]
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(function, *args, repeat: int = 6) -> float:
    """CPU milliseconds per call of ``function`` as a tf.function (traced and run once first)."""
    import tensorflow as tf

    compiled = tf.function(function)
    compiled(*args)
    started = cpu_seconds()
    for _ in range(repeat):
        compiled(*args)
    return (cpu_seconds() - started) / repeat * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--input-size', default='160x120')
    parser.add_argument('--steps', type=int, default=8, help='train steps timed per model')
    args = parser.parse_args(argv)
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    import numpy as np
    import tensorflow as tf

    from donkey_ros.common.image import parse_size
    from donkey_ros.learning import models
    from donkey_ros.learning.train import configure_tensorflow

    configure_tensorflow(args.threads, 0)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    width, height = parse_size(args.input_size)
    batch = args.batch_size
    rng = np.random.default_rng(0)

    def tensor(*shape):
        return tf.constant(rng.random(shape, np.float32) - 0.5)

    print(f'DonkeyCar backbone, input {width}x{height}, batch {batch}, {args.threads} thread(s), '
          f'{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; CPU ms per call\n')
    print('| layer | forward | filter gradient | input gradient | ReLU + dropout forward |')
    print('|---|---|---|---|---|')
    spec = models.ModelSpec(architecture='donkey', input_height=height, input_width=width)
    model = models.training_model(spec)
    total = 0.0
    for layer in model.layers:
        if not layer.name.startswith('conv2d_'):
            continue
        kh, kw, cin, cout = layer.kernel.shape
        stride = layer.strides[0]
        h, w = layer.input.shape[1:3]
        image, kernel = tensor(batch, h, w, cin), tensor(kh, kw, cin, cout)
        out = tf.nn.conv2d(image, kernel, stride, 'VALID')
        grad = tensor(*out.shape)
        strides = [1, stride, stride, 1]
        forward = timed(lambda a, k: tf.nn.conv2d(a, k, stride, 'VALID'), image, kernel)
        filters = timed(lambda a, g: tf.compat.v1.nn.conv2d_backprop_filter(
            a, [kh, kw, cin, cout], g, strides, 'VALID'), image, grad)
        inputs = 0.0 if layer.name == 'conv2d_1' else timed(
            lambda k, g: tf.compat.v1.nn.conv2d_backprop_input([batch, h, w, cin], k, g,
                                                               strides, 'VALID'), kernel, grad)
        after = timed(lambda a: tf.nn.experimental.stateless_dropout(
            tf.nn.relu(a), spec.dropout, seed=[1, 2]), grad)
        total += forward + filters + inputs + after
        print(f'| {layer.name} {cin}->{cout} {kh}x{kw}/{stride} on {w}x{h} | {forward:.0f} | '
              f'{filters:.0f} | {inputs:.0f} | {after:.0f} |' if inputs else
              f'| {layer.name} {cin}->{cout} {kh}x{kw}/{stride} on {w}x{h} | {forward:.0f} | '
              f'{filters:.0f} | - | {after:.0f} |', flush=True)
    print(f'\nsum of the above: {total:.0f} CPU ms (backward of ReLU/dropout, dense layers and '
          'Adam not included)\n')

    # The first convolution, three exactly equivalent ways (forward + filter gradient).
    image = tensor(batch, height, width, 3)
    kernel = tf.Variable(rng.random((5, 5, 3, 24), np.float32) - 0.5)

    def direct(a):
        return tf.nn.conv2d(a, kernel, 2, 'VALID')

    def space_to_depth(a):
        # pad to even size (the extra row/column only meets the zero taps of the 6x6 kernel)
        a = tf.pad(a, [[0, 0], [0, a.shape[1] % 2], [0, a.shape[2] % 2], [0, 0]])
        six = tf.pad(kernel, [[0, 1], [0, 1], [0, 0], [0, 0]])
        three = tf.reshape(tf.transpose(tf.reshape(six, [3, 2, 3, 2, 3, 24]),
                                        [0, 2, 1, 3, 4, 5]), [3, 3, 12, 24])
        return tf.nn.conv2d(tf.nn.space_to_depth(a, 2), three, 1, 'VALID')

    def im2col(a):
        patches = tf.image.extract_patches(a, [1, 5, 5, 1], [1, 2, 2, 1], [1, 1, 1, 1], 'VALID')
        return tf.tensordot(patches, tf.reshape(kernel, [75, 24]), 1)

    reference = direct(image)
    print('| first convolution as | max abs difference | CPU ms forward + filter gradient |')
    print('|---|---|---|')
    for name, function in (('Conv2D 5x5/2 on 3 channels', direct),
                           ('space-to-depth(2) + 3x3/1 on 12 channels', space_to_depth),
                           ('extract_patches + matmul (75 x 24)', im2col)):
        difference = float(tf.reduce_max(tf.abs(function(image) - reference)))

        def step(a, function=function):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.nn.relu(function(a)))
            return tape.gradient(loss, kernel)
        print(f'| {name} | {difference:.1e} | {timed(step, image):.0f} |', flush=True)

    # Whole train steps of the real model (Keras fit on one repeated batch: no input pipeline).
    import keras
    x = rng.random((batch, height, width, 3), np.float32)
    y = {'steering': rng.random((batch, 1), np.float32),
         'throttle': rng.random((batch, 1), np.float32)}
    print('\n| Keras train step of | CPU s per step |')
    print('|---|---|')
    for label, dropout in (('--arch donkey (dropout 0.1)', 0.1), ('the same without dropout', 0.0)):
        spec = models.ModelSpec(architecture='donkey', input_height=height, input_width=width,
                                dropout=dropout)
        model = models.training_model(spec)
        loss, weights = models.losses(spec)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, loss_weights=weights)
        model.fit(tf.data.Dataset.from_tensors((x, y)).repeat(2), verbose=0)
        started = cpu_seconds()
        model.fit(tf.data.Dataset.from_tensors((x, y)).repeat(args.steps), verbose=0)
        print(f'| {label} | {(cpu_seconds() - started) / args.steps:.2f} |', flush=True)
    print(f'\nload average at the end: {os.getloadavg()[0]:.1f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
