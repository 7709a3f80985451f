"""Training data: frames in memory, a validation split by time blocks, and the tf.data pipeline.

``FrameSet`` holds the decoded, cropped (and resized) frames as one uint8 array plus their labels,
times and which recording they came from. Frames are decoded once (from bags through
``donkey_ros.recording.dataset``, or from any iterable of samples) and kept in memory: a lap of
the simulator at 20 Hz is ~1 MB per second of driving at 160x80, so ten laps fit easily.

The tf.data pipeline shuffles *indices* (a full shuffle costs nothing), batches them, gathers the
batch from the in-memory frames, augments the whole batch at once (brightness/contrast, small
shifts, shadows, horizontal flip with steering negated), builds the labels and prefetches - so the
two CPU cores spend their time on the model, not on Python per-frame work.

Validation is split by contiguous time blocks, never by random frames: neighbouring frames are
near-duplicates, so a random split would measure memory, not driving.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from donkey_ros.common.errors import DonkeyRosError
from donkey_ros.learning.inference import preprocess
from donkey_ros.learning.metadata import ModelMetadata


class DataError(DonkeyRosError):
    """Training data is missing, empty or inconsistent."""


AUGMENTATIONS = ('brightness', 'contrast', 'shift', 'shadow', 'flip', 'color')
DEFAULT_AUGMENTATIONS = ('brightness', 'contrast', 'shift', 'shadow')


@dataclass
class FrameSet:
    """Preprocessed frames and labels; arrays share their first axis."""

    images: np.ndarray          # N x H x W x 3 uint8, already cropped/resized to the model input
    steering: np.ndarray        # N float32, + = left
    throttle: np.ndarray        # N float32
    times: np.ndarray           # N float64 seconds (any origin, increasing within a segment)
    segments: np.ndarray        # N int32: which recording (bag) each frame came from
    sources: list = field(default_factory=list)   # segment id -> name

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices: np.ndarray) -> 'FrameSet':
        return FrameSet(self.images[indices], self.steering[indices], self.throttle[indices],
                        self.times[indices], self.segments[indices], list(self.sources))

    @property
    def seconds(self) -> float:
        """Total recorded time over all segments."""
        total = 0.0
        for segment in np.unique(self.segments):
            times = self.times[self.segments == segment]
            total += float(times.max() - times.min()) if len(times) else 0.0
        return total


def collect_frames(samples: Iterable, metadata: ModelMetadata, source: str = 'samples',
                   progress=None) -> FrameSet:
    """Decodes samples into a FrameSet, preprocessing each frame as the pilot will.

    ``samples`` yields ``(image, steering, throttle)`` or ``(image, steering, throttle, time)``
    tuples, or objects with ``image``, ``steering``, ``throttle`` and ``stamp_ns`` (or ``time``)
    attributes, like ``donkey_ros.recording.dataset.Sample``; samples with a ``bag`` attribute
    are grouped into one segment per bag. Frames of another size than
    ``metadata.image_width x image_height`` are an error. ``progress(n)`` is called per frame.
    """
    images, steering, throttle, times, segments = [], [], [], [], []
    sources: dict[str, int] = {}
    want = (metadata.image_height, metadata.image_width, 3)
    for i, sample in enumerate(samples):
        image, steer, gas, stamp = _unpack(sample, i)
        name = str(getattr(sample, 'bag', source))
        if image.shape != want or image.dtype != np.uint8:
            raise DataError(
                f'{name}: frame {i} is {"x".join(map(str, image.shape[1::-1]))} '
                f'{image.dtype}, expected {want[1]}x{want[0]} RGB uint8 (all frames of one '
                'training run must have the same size)')
        if not (math.isfinite(steer) and math.isfinite(gas)):
            continue
        images.append(np.ascontiguousarray(preprocess(image, metadata)))
        steering.append(steer)
        throttle.append(gas)
        times.append(stamp)
        segments.append(sources.setdefault(name, len(sources)))
        if progress is not None:
            progress(1)
    if not images:
        return empty_frames(metadata)
    return FrameSet(np.stack(images), np.asarray(steering, np.float32),
                    np.asarray(throttle, np.float32), np.asarray(times, np.float64),
                    np.asarray(segments, np.int32), list(sources))


def _unpack(sample, index: int):
    if isinstance(sample, tuple):
        if len(sample) == 3:
            image, steer, gas = sample
            return np.asarray(image), float(steer), float(gas), float(index) * 0.05
        image, steer, gas, stamp = sample[:4]
        return np.asarray(image), float(steer), float(gas), float(stamp)
    stamp = getattr(sample, 'stamp_ns', None)
    if stamp is not None:
        return (np.asarray(sample.image), float(sample.steering), float(sample.throttle),
                stamp * 1e-9)
    stamp = getattr(sample, 'time', None)
    if stamp is None:
        stamp = getattr(sample, 'stamp', index * 0.05)
    if hasattr(stamp, 'sec'):
        stamp = stamp.sec + stamp.nanosec * 1e-9
    elif isinstance(stamp, int) and stamp > 10**12:  # nanoseconds
        stamp = stamp * 1e-9
    return (np.asarray(sample.image), float(sample.steering), float(sample.throttle),
            float(stamp))


def empty_frames(metadata: ModelMetadata) -> FrameSet:
    height = metadata.input_height
    return FrameSet(np.zeros((0, height, metadata.input_width, 3), np.uint8),
                    np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0),
                    np.zeros(0, np.int32), [])


def concat(framesets: list[FrameSet]) -> FrameSet:
    """Joins FrameSets, renumbering their segments so each recording stays its own segment."""
    framesets = [f for f in framesets if len(f)]
    if not framesets:
        raise DataError('no usable frames in the given recordings')
    segments, sources, offset = [], [], 0
    for frames in framesets:
        segments.append(frames.segments + offset)
        sources.extend(frames.sources)
        offset += max(1, len(frames.sources))
    return FrameSet(np.concatenate([f.images for f in framesets]),
                    np.concatenate([f.steering for f in framesets]),
                    np.concatenate([f.throttle for f in framesets]),
                    np.concatenate([f.times for f in framesets]),
                    np.concatenate(segments).astype(np.int32), sources)


def split_by_time(frames: FrameSet, val_fraction: float = 0.2, block_seconds: float = 10.0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices): every k-th contiguous time block of each recording
    goes to validation, k = round(1 / val_fraction); which block of each k is shifted by one per
    recording, so many short recordings still give whole blocks from all parts of a lap.
    Recordings too short for k blocks give their last ``val_fraction`` of time instead. Both parts
    are non-empty for >= 2 frames.
    """
    if len(frames) < 2:
        raise DataError(f'{len(frames)} frame(s) is too few to train on')
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f'validation fraction {val_fraction} must be between 0 and 1')
    is_val = np.zeros(len(frames), bool)
    for order, segment in enumerate(np.unique(frames.segments)):
        members = np.flatnonzero(frames.segments == segment)
        is_val[members] = segment_validation(frames.times[members], order, val_fraction,
                                             block_seconds)
    if not is_val.any():
        is_val[-1] = True
    if is_val.all():
        is_val[0] = False
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def segment_validation(times: np.ndarray, order: int, val_fraction: float = 0.2,
                       block_seconds: float = 10.0) -> np.ndarray:
    """Which frames of one recording (``times``, seconds) are validation frames, the recording
    being the ``order``-th of the run (see ``split_by_time``, the one rule for both the in-memory
    and the streaming path)."""
    every = max(2, round(1.0 / val_fraction))
    start, span = times.min(), times.max() - times.min()
    blocks = np.floor((times - start) / block_seconds).astype(int)
    if blocks.max() + 1 >= every:
        return (blocks + order) % every == every - 1
    return times >= start + span * (1.0 - val_fraction)


@dataclass(frozen=True)
class PipelineConfig:
    """How batches are made. Pixel values reach the model as ``p * input_scale + input_offset``."""

    batch_size: int = 64
    augment: tuple = DEFAULT_AUGMENTATIONS
    brightness: float = 0.25    # +- fraction of full scale
    contrast: float = 0.3       # factor in [1 - c, 1 + c]
    shift: int = 2              # +- pixels vertically, half that horizontally (a sideways
    #                             shift is a lateral offset the steering label does not follow)
    shadow: float = 0.4         # probability that a frame gets a shadow
    flip: float = 0.5           # probability of a horizontal flip (steering negated)
    color: float = 0.5          # probability of permuted colour channels / desaturation
    input_scale: float = 1.0 / 255.0
    input_offset: float = 0.0
    model_type: str = 'linear'
    steering_bins: int = 15
    throttle_bins: int = 20
    throttle_range: tuple = (0.0, 1.0)
    seed: int = 0

    def check(self) -> 'PipelineConfig':
        unknown = set(self.augment) - set(AUGMENTATIONS)
        if unknown:
            raise DataError(f"unknown augmentation(s) {', '.join(sorted(unknown))} "
                            f"(valid: {', '.join(AUGMENTATIONS)})")
        if self.batch_size < 1:
            raise DataError('batch size must be at least 1')
        return self


def two_hot(values, bins: int, value_range: tuple):
    """Soft one-hot targets: a value between two bin centres splits its weight between them."""
    import tensorflow as tf

    low, high = value_range
    position = (tf.clip_by_value(values, low, high) - low) / (high - low) * (bins - 1)
    below = tf.floor(position)
    frac = position - below
    below = tf.cast(below, tf.int32)
    above = tf.minimum(below + 1, bins - 1)
    return (tf.one_hot(below, bins) * (1.0 - frac)[:, None]
            + tf.one_hot(above, bins) * frac[:, None])


def augment_batch(images, steering, config: PipelineConfig):
    """Augments a float batch in [0, 1] (B x H x W x 3); returns (images, steering)."""
    import tensorflow as tf

    batch = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    active = set(config.augment)

    def uniform(low, high, shape=None):
        return tf.random.uniform(shape if shape is not None else [batch, 1, 1, 1], low, high)

    if 'contrast' in active and config.contrast > 0:
        mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
        images = (images - mean) * uniform(1 - config.contrast, 1 + config.contrast) + mean
    if 'brightness' in active and config.brightness > 0:
        images = images + uniform(-config.brightness, config.brightness)
    if 'color' in active and config.color > 0:
        # Other road/line colours: permute the RGB channels, and pull towards grey.
        permutations = tf.constant([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1],
                                    [2, 1, 0]], tf.int32)
        which = tf.random.uniform([batch], 1, 6, tf.int32)
        which = tf.where(tf.random.uniform([batch]) < config.color, which, 0)
        images = tf.gather(images, tf.gather(permutations, which), axis=3, batch_dims=1)
        grey = tf.reduce_mean(images, axis=3, keepdims=True)
        keep = uniform(0.3, 1.0)
        keep = tf.where(uniform(0, 1) < config.color, keep, tf.ones_like(keep))
        images = grey + (images - grey) * keep
    if 'shadow' in active and config.shadow > 0:
        # A straight shadow edge x = a + b * y across the frame; one side is darkened.
        ys = tf.reshape(tf.range(height, dtype=tf.float32) / height, [1, height, 1, 1])
        xs = tf.reshape(tf.range(width, dtype=tf.float32) / width, [1, 1, width, 1])
        edge = uniform(0.0, 1.0) + uniform(-0.6, 0.6) * ys
        side = tf.where(uniform(0, 1) < 0.5, xs < edge, xs >= edge)
        darkness = tf.where(uniform(0, 1) < config.shadow, uniform(0.35, 0.8), tf.ones([batch, 1, 1, 1]))
        images = images * tf.where(side, darkness, 1.0)
    if 'shift' in active and config.shift > 0:
        sideways = max(0, config.shift // 2)
        shifts = tf.cast(tf.concat([
            tf.random.uniform([batch, 1], -sideways, sideways + 1, tf.int32),
            tf.random.uniform([batch, 1], -config.shift, config.shift + 1, tf.int32)], axis=1),
            tf.float32)
        ones, zeros = tf.ones([batch, 1]), tf.zeros([batch, 1])
        transforms = tf.concat([ones, zeros, shifts[:, :1], zeros, ones, shifts[:, 1:],
                                zeros, zeros], axis=1)
        images = tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=transforms, output_shape=[height, width],
            fill_value=0.0, interpolation='NEAREST', fill_mode='NEAREST')
    if 'flip' in active and config.flip > 0:
        flip = tf.random.uniform([batch]) < config.flip
        images = tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)
        steering = tf.where(flip, -steering, steering)
    return tf.clip_by_value(images, 0.0, 1.0), steering


def make_dataset(frames: FrameSet, indices: np.ndarray, config: PipelineConfig,
                 training: bool, images_tensor=None):
    """A tf.data.Dataset of (images, {'steering', 'throttle'}) batches over ``indices``.

    ``images_tensor`` lets train and validation share one in-memory copy of the frames.
    Training batches are shuffled each epoch and augmented; validation batches are neither.
    """
    import tensorflow as tf

    config.check()
    if images_tensor is None:
        images_tensor = tf.constant(frames.images)
    steering_all = tf.constant(frames.steering)
    throttle_all = tf.constant(frames.throttle)
    make_batch = batch_maker(config, training)

    def load(batch_indices):
        return make_batch(tf.gather(images_tensor, batch_indices),
                          tf.gather(steering_all, batch_indices),
                          tf.gather(throttle_all, batch_indices))

    dataset = tf.data.Dataset.from_tensor_slices(np.asarray(indices, np.int64))
    if training:
        dataset = dataset.shuffle(len(indices), seed=config.seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(config.batch_size)
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
    return dataset.prefetch(tf.data.AUTOTUNE)


def batch_maker(config: PipelineConfig, training: bool):
    """The function that turns a batch of uint8 frames and their labels into what the model
    eats: (normalized, augmented if ``training``) images and the ``steering``/``throttle``
    targets. The in-memory and the streaming pipelines share it."""
    import tensorflow as tf

    scale = tf.constant(config.input_scale * 255.0, tf.float32)
    offset = tf.constant(config.input_offset, tf.float32)
    categorical = config.model_type == 'categorical'

    def make(images, steering, throttle):
        images = tf.cast(images, tf.float32) / 255.0
        if training and config.augment:
            images, steering = augment_batch(images, steering, config)
        images = images * scale + offset
        if categorical:
            steering = two_hot(steering, config.steering_bins, (-1.0, 1.0))
            throttle = two_hot(throttle, config.throttle_bins, config.throttle_range)
        else:
            steering, throttle = steering[:, None], throttle[:, None]
        return images, {'steering': steering, 'throttle': throttle}
    return make


def representative_frames(frames: FrameSet, count: int = 200, seed: int = 0) -> np.ndarray:
    """Frames spread over the whole recording, for int8 calibration."""
    if len(frames) <= count:
        return frames.images
    rng = np.random.default_rng(seed)
    return frames.images[np.sort(rng.choice(len(frames), count, replace=False))]
