"""Recorded bags -> the frames a training run holds in memory.

The bag dataset reader (donkey_ros/recording/dataset.py) pairs frames with commands; frames the
simulator marked off the road are dropped; an optional *frame transform* then sees the stream of
samples before they are cropped and collected. The transform is how other packages add frames
without training knowing them: style augmentation (donkey_ros/style/augment.py) plugs in from the
application layer (donkey_ros/apps/train.py).
"""
from __future__ import annotations

from typing import Iterable, Iterator, Protocol

from donkey_ros.common.errors import ConfigError
from donkey_ros.common.progress import progress_bar
from donkey_ros.learning.metadata import ModelMetadata
from donkey_ros.learning.pipeline import DataError, FrameSet, collect_frames


class FrameTransform(Protocol):
    """A callable applied to the stream of samples (``recording.dataset.Sample``) before they are
    collected; it may add, drop or change samples. ``counts()`` says what it did (merged into the
    reading counts and the training report)."""

    def __call__(self, samples: Iterator) -> Iterable: ...

    def counts(self) -> dict: ...


def load_bags(paths, config, filters: dict | None = None, progress: bool = True,
              drop_off_track: bool = True, transform: FrameTransform | None = None
              ) -> tuple[FrameSet, ModelMetadata, dict]:
    """Reads bags through the dataset reader into memory; returns (frames, metadata, counts).

    Args:
        paths: bags, folders of bags, ``.mcap`` files.
        config: a ``TrainConfig`` (crop and input size give the metadata frames are made for).
        filters: ``donkey_ros.recording.dataset.open_dataset`` keyword arguments.
        progress: show a progress bar.
        drop_off_track: drop frames whose simulator ground truth says the car was off the road.
        transform: applied to the samples before they are collected (see ``FrameTransform``).

    Raises:
        DataError: no usable frame.
        DatasetError: a path is not a readable bag.
    """
    from donkey_ros.recording.dataset import open_dataset

    if getattr(config, 'style_augment', ()) and transform is None:
        raise ConfigError('style augmentation needs its frame transform: '
                          'donkey_ros.apps.train.frame_transform(config)')
    dataset = open_dataset(paths, **(filters or {}))
    samples = iter(dataset)
    first = next(samples, None)
    if first is None:
        raise DataError(f'no usable frames in {", ".join(map(str, paths))} '
                        f'({counts_text(dataset.counts.as_dict())})')
    height, width = first.image.shape[:2]
    metadata = config.model_metadata(width, height)
    off_track = [0]

    def on_road(stream):
        for sample in stream:
            if drop_off_track and sample.truth and sample.truth.get('on_track') is False:
                off_track[0] += 1
                continue
            yield sample

    bar = progress_bar('reading bags', 'frames') if progress else None
    try:
        stream = on_road(_chain(first, samples))
        if transform is not None:
            stream = transform(stream)
        frames = collect_frames(stream, metadata, progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    counts = dataset.counts.as_dict()
    counts['off_track'] = off_track[0]
    if transform is not None:
        counts.update(transform.counts())
    if not len(frames):
        raise DataError(f'no usable frames in {", ".join(map(str, paths))} '
                        f'({counts_text(counts)})')
    return frames, metadata, counts


def _chain(first, rest):
    yield first
    yield from rest


def counts_text(counts: dict) -> str:
    """'frames 120, off_track 3' (zero counts left out)."""
    return ', '.join(f'{k} {v}' for k, v in counts.items() if v)

