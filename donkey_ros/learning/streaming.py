"""Training data larger than memory: bags -> a compact frame cache on disk -> tf.data streams.

The in-memory path (donkey_ros/learning/training_data.py) decodes every frame into one array; an
hour of driving at 160x120 is several GB. The streaming path keeps memory flat:

1. **prepare**: every bag is read once by the bag dataset reader (the same pairing, filters and
   off-track rule as the in-memory path), each frame is cropped/resized by the pilot's own
   ``preprocess`` and appended to a *frame file*: fixed-size records of the uint8 input pixels and
   the float32 steering and throttle; the frame times go to a small ``.npy`` beside it. Bags are
   prepared in parallel (a thread per bag, ``threads`` at a time: JPEG decoding and resizing run
   outside the GIL). The files are named after the bag (path, size and time of its files), the
   filters and the crop/resize, so a cache folder (``--frame-cache``) is reused by later runs and
   only new or changed bags are read again.
2. **split**: the contiguous time-block validation split is computed from the frame times with
   the in-memory path's own rule (``pipeline.split_by_time``), so both paths put exactly the same
   frames in validation.
3. **stream**: each side of the split is a list of contiguous record ranges (the time blocks), so
   tf.data reads exactly those bytes of the frame files (``FixedLengthRecordDataset`` with header
   and footer offsets: C++ only, no Python and no filtering per frame), 8 blocks interleaved in
   parallel (block order shuffled each epoch), through a shuffle buffer of ``shuffle_mb`` megabytes
   of raw records; a whole batch is decoded at once (one ``decode_raw``) and goes through the same
   batch/augment/label function as the in-memory path.

With several workers (tf.distribute ``MultiWorkerMirroredStrategy``) each worker prepares and
streams only its shard of the bags (every n-th bag); the frame counts per bag are summed over the
workers so every worker computes the same split and the same number of steps.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from donkey_ros.common.errors import ConfigError
from donkey_ros.learning.metadata import ModelMetadata
from donkey_ros.learning.pipeline import (DataError, FrameSet, batch_maker, segment_validation,
                                          split_by_time)

CACHE_VERSION = 1
LABEL_BYTES = 8                    # float32 steering, float32 throttle after the pixels
DATA_PATHS = ('auto', 'memory', 'stream')
AUTO_MEMORY_LIMIT_MB = 512
"""``--data-path auto`` streams when the preprocessed frames would exceed this."""
SHUFFLE_MB = 32.0
"""Shuffle buffer of the streaming path, in MB of frames (~3300 frames at 80x40: 3 min of driving).
It costs about 3x that in resident memory (tensor overhead per frame; measured with
bench/train_memory.py: 128 MB of frames raised the peak by ~400 MB)."""
PIPELINE_RAM_BUDGET = 16 * 2**20
"""Bytes tf.data's autotuner may spend on its buffers (the shuffle buffer is apart); 64 MB let
the resident memory creep up ~40 MB more over a 100k-frame epoch (bench/train_memory.py)."""


@dataclass
class BagFrames:
    """One bag's prepared frames in the cache."""

    bag: str
    frames_path: Path
    times: np.ndarray            # float64 seconds, in record order
    counts: dict                 # the dataset reader's counts for this bag (+ off_track)

    def __len__(self) -> int:
        return len(self.times)


# --- choosing a path ---------------------------------------------------------------------------
def estimated_frames(bags) -> int | None:
    """Camera messages in ``bags`` according to their metadata (None if unknown)."""
    from donkey_ros.recording.dataset import (DatasetError, IMAGE_TOPIC, find_bags, open_reader,
                                              resolve_topics)
    total = 0
    try:
        for bag in find_bags(bags):
            reader = open_reader(bag)
            try:
                topic = resolve_topics(bag, reader.connections, IMAGE_TOPIC).image
                total += sum(c.msgcount for c in reader.connections if c.topic == topic)
            finally:
                reader.close()
    except (DatasetError, AttributeError, OSError):
        return None
    return total


def choose_path(requested: str, bags, frame_bytes: int, workers: int = 1,
                limit_mb: float = AUTO_MEMORY_LIMIT_MB, transform=None) -> str:
    """'memory' or 'stream' for ``--data-path requested``: auto streams when the frames would take
    more than ``limit_mb`` in memory, or several workers share the bags."""
    if requested not in DATA_PATHS:
        raise ConfigError(f"data path '{requested}' unknown (valid: {', '.join(DATA_PATHS)})")
    if requested == 'stream' and transform is not None:
        raise ConfigError('--style-augment needs the in-memory data path (--data-path memory)')
    if requested != 'auto':
        return requested
    if transform is not None:
        return 'memory'
    if workers > 1:
        return 'stream'
    count = estimated_frames(bags)
    if count is None:
        return 'memory'
    return 'stream' if count * frame_bytes > limit_mb * 2**20 else 'memory'


# --- prepare: bags -> frame files --------------------------------------------------------------
def first_frame_size(bags, filters: dict) -> tuple[int, int]:
    """(width, height) of the first usable frame of ``bags`` (what the in-memory path sizes the
    model for)."""
    from donkey_ros.recording.dataset import open_dataset

    dataset = open_dataset(bags, **filters)
    for sample in dataset:
        height, width = sample.image.shape[:2]
        return width, height
    from donkey_ros.learning.training_data import counts_text
    raise DataError(f'no usable frames in {", ".join(map(str, bags))} '
                    f'({counts_text(dataset.counts.as_dict())})')


def cache_key(bag: Path, filters: dict, drop_off_track: bool, metadata: ModelMetadata) -> str:
    """Names a bag's frame file: the bag (path, size and time of its files) and everything that
    changes its frames."""
    files = sorted(bag.iterdir()) if bag.is_dir() else [bag]
    stats = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file()]
    recipe = {
        'version': CACHE_VERSION, 'bag': str(bag.resolve()), 'files': stats,
        'filters': {k: repr(v) for k, v in sorted(filters.items())},
        'drop_off_track': drop_off_track,
        'image': [metadata.image_width, metadata.image_height],
        'crop': [metadata.crop_top, metadata.crop_bottom],
        'input': [metadata.input_width, metadata.input_height],
    }
    digest = hashlib.sha1(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    return f'{bag.name}-{digest}'


def prepare_bag(bag: Path, folder: Path, metadata: ModelMetadata, filters: dict,
                drop_off_track: bool = True, progress=None) -> BagFrames:
    """Reads one bag into its frame file in ``folder`` (or finds it there already)."""
    from donkey_ros.learning.inference import preprocess
    from donkey_ros.recording.dataset import open_dataset

    key = cache_key(bag, filters, drop_off_track, metadata)
    frames_path, times_path = folder / f'{key}.frames', folder / f'{key}.times.npy'
    info_path = folder / f'{key}.json'
    if frames_path.is_file() and times_path.is_file() and info_path.is_file():
        counts = json.loads(info_path.read_text())['counts']
        times = np.load(times_path)
        if progress is not None:
            progress(len(times))
        return BagFrames(str(bag), frames_path, times, counts)
    want = (metadata.image_height, metadata.image_width, 3)
    dataset = open_dataset([bag], **filters)
    times, off_track = [], 0
    partial = frames_path.with_name(frames_path.name + f'.{os.getpid()}.part')
    try:
        with open(partial, 'wb', buffering=1 << 20) as out:
            for i, sample in enumerate(dataset):
                if drop_off_track and sample.truth and sample.truth.get('on_track') is False:
                    off_track += 1
                    continue
                image = sample.image
                if image.shape != want or image.dtype != np.uint8:
                    raise DataError(
                        f'{bag}: frame {i} is {"x".join(map(str, image.shape[1::-1]))} '
                        f'{image.dtype}, expected {want[1]}x{want[0]} RGB uint8 (all frames of '
                        'one training run must have the same size)')
                steering, throttle = float(sample.steering), float(sample.throttle)
                if not (math.isfinite(steering) and math.isfinite(throttle)):
                    continue
                out.write(np.ascontiguousarray(preprocess(image, metadata)).tobytes())
                out.write(np.array([steering, throttle], '<f4').tobytes())
                times.append(sample.stamp_ns * 1e-9)
                if progress is not None:
                    progress(1)
        counts = {**dataset.counts.as_dict(), 'off_track': off_track}
        times = np.asarray(times, np.float64)
        np.save(times_path, times)
        info_path.write_text(json.dumps({'bag': str(bag), 'counts': counts}))
        os.replace(partial, frames_path)
    finally:
        partial.unlink(missing_ok=True)
    return BagFrames(str(bag), frames_path, times, counts)


def prepare(bags, folder: Path, metadata: ModelMetadata, filters: dict,
            drop_off_track: bool = True, threads: int = 2, progress=None) -> list[BagFrames]:
    """``prepare_bag`` for every bag, ``threads`` bags at a time; results in bag order."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()

    def count(n):
        with lock:
            progress(n)

    with ThreadPoolExecutor(max(1, threads)) as pool:
        jobs = [pool.submit(prepare_bag, Path(bag), folder, metadata, filters, drop_off_track,
                            count if progress is not None else None) for bag in bags]
        return [job.result() for job in jobs]


# --- the source ---------------------------------------------------------------------------------
@dataclass
class StreamedFrames:
    """Frames prepared on disk, split and streamed; what ``learning.train.train`` trains on
    instead of a ``FrameSet``.

    ``bags`` are all the run's bags in order; ``prepared`` those of this worker's shard
    (``shard = (worker index, workers)``).
    """

    metadata: ModelMetadata
    bags: list
    prepared: list                    # BagFrames of this worker's shard, in bag order
    shard: tuple = (0, 1)
    shuffle_mb: float = SHUFFLE_MB
    temporary: Path | None = None     # a cache folder to delete when done
    counts: dict = field(default_factory=dict)
    is_val: list = field(default_factory=list)      # per prepared bag: bool array
    totals: np.ndarray | None = None  # frames per bag of the whole run (all workers)
    seconds: float = 0.0
    sources: list = field(default_factory=list)

    @property
    def frame_bytes(self) -> int:
        return self.metadata.input_height * self.metadata.input_width * 3

    @property
    def record_bytes(self) -> int:
        return self.frame_bytes + LABEL_BYTES

    def __len__(self) -> int:
        return int(self.totals.sum()) if self.totals is not None else \
            sum(len(b) for b in self.prepared)

    # split --------------------------------------------------------------------------------------
    def split(self, val_fraction: float, block_seconds: float, sum_over_workers=None
              ) -> tuple[int, int]:
        """Computes the validation split; returns (train frames, validation frames) of the run.

        ``sum_over_workers(vector)`` sums a float vector over the workers (several workers:
        each only knows its own bags' frame counts).
        """
        workers = self.shard[1]
        mine = np.zeros(len(self.bags), np.float64)
        for bag_index, frames in zip(self._bag_indices(), self.prepared):
            mine[bag_index] = len(frames)
        totals = mine if workers == 1 else np.asarray(sum_over_workers(mine))
        self.totals = np.rint(totals).astype(np.int64)
        order = np.cumsum(self.totals > 0) - 1          # segment order of non-empty bags
        if workers == 1:
            # The in-memory path's own function over the same times: exactly its split.
            times = np.concatenate([b.times for b in self.prepared if len(b)] or [np.zeros(0)])
            segments = np.concatenate([np.full(len(b), k, np.int32) for k, b in
                                       enumerate([b for b in self.prepared if len(b)])]
                                      or [np.zeros(0, np.int32)])
            virtual = FrameSet(np.empty((len(times), 0, 0, 3), np.uint8),
                               np.zeros(len(times), np.float32),
                               np.zeros(len(times), np.float32), times, segments)
            _, val_idx = split_by_time(virtual, val_fraction, block_seconds)
            flags = np.zeros(len(times), bool)
            flags[val_idx] = True
            self.is_val, start = [], 0
            for frames in self.prepared:
                self.is_val.append(flags[start:start + len(frames)])
                start += len(frames)
        else:
            self.is_val = [segment_validation(f.times, int(order[i]), val_fraction,
                                              block_seconds) if len(f) else np.zeros(0, bool)
                           for i, f in zip(self._bag_indices(), self.prepared)]
        val_mine = np.zeros(len(self.bags))
        for bag_index, flags in zip(self._bag_indices(), self.is_val):
            val_mine[bag_index] = flags.sum()
        val_total = int(round(float(np.sum(val_mine if workers == 1
                                           else sum_over_workers(val_mine)))))
        self.sources = [str(b) for b, n in zip(self.bags, self.totals) if n]
        self.seconds = float(sum(b.times.max() - b.times.min() for b in self.prepared if len(b)))
        return int(self.totals.sum()) - val_total, val_total

    def _bag_indices(self) -> list[int]:
        index, workers = self.shard
        return list(range(index, len(self.bags), workers))

    # tf.data ------------------------------------------------------------------------------------
    def blocks(self, validation: bool) -> list[tuple[str, int, int]]:
        """(frame file, first record, end record) of every contiguous run of one side of the
        split: the time blocks of ``split`` (about ``block_seconds`` of frames each)."""
        runs = []
        for frames, flags in zip(self.prepared, self.is_val):
            wanted = np.concatenate([[False], flags == validation, [False]]).astype(np.int8)
            edges = np.flatnonzero(np.diff(wanted))
            runs += [(str(frames.frames_path), int(a), int(b))
                     for a, b in zip(edges[::2], edges[1::2])]
        return runs

    def rows(self, validation: bool, shuffle: bool = False, seed: int = 0):
        """A tf.data.Dataset of the raw records (one string per frame) of one side of the split,
        read straight from the frame files' block ranges (no per-frame filtering or decoding).
        ``shuffle``: the block order is shuffled each epoch and 8 blocks are interleaved in
        parallel; otherwise the blocks are read in order."""
        import tensorflow as tf

        runs = self.blocks(validation)
        if not runs:
            return tf.data.Dataset.from_tensor_slices(tf.zeros([0], tf.string))
        sizes = {name: os.path.getsize(name) for name, _, _ in runs}
        record = self.record_bytes
        names = tf.constant([name for name, _, _ in runs])
        headers = tf.constant([a * record for _, a, _ in runs], tf.int64)
        footers = tf.constant([sizes[name] - b * record for name, _, b in runs], tf.int64)

        def one_block(name, header, footer):
            return tf.data.FixedLengthRecordDataset(name, record, header_bytes=header,
                                                    footer_bytes=footer, buffer_size=1 << 18)

        dataset = tf.data.Dataset.from_tensor_slices((names, headers, footers))
        if not shuffle:   # in order, one block after the other: no buffers in parallel
            return dataset.flat_map(one_block)
        dataset = dataset.shuffle(len(runs), seed=seed, reshuffle_each_iteration=True)
        return dataset.interleave(one_block, cycle_length=min(len(runs), 8), block_length=1,
                                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)

    def decode(self, rows):
        """A batch of raw records -> (uint8 images B x H x W x 3, steering B, throttle B)."""
        import tensorflow as tf

        height, width = self.metadata.input_height, self.metadata.input_width
        raw = tf.io.decode_raw(rows, tf.uint8)                # B x record bytes
        images = tf.reshape(raw[:, :self.frame_bytes], (-1, height, width, 3))
        # '<f4' on disk; bitcast is the host's order, little-endian wherever TensorFlow runs
        labels = tf.bitcast(tf.reshape(raw[:, self.frame_bytes:], (-1, 2, 4)), tf.float32)
        return images, labels[:, 0], labels[:, 1]

    def records(self, validation: bool, shuffle: bool = False, seed: int = 0):
        """A tf.data.Dataset of (uint8 image, steering, throttle) of one side of the split: the
        training reader (``rows`` + ``decode``), a frame at a time."""
        import tensorflow as tf

        return self.rows(validation, shuffle, seed).batch(256).map(
            self.decode, num_parallel_calls=tf.data.AUTOTUNE).unbatch()

    def dataset(self, config, validation: bool, training: bool, repeat: bool = False):
        """Batches for Keras (``config``: a ``PipelineConfig``): shuffled through a buffer of
        ``shuffle_mb`` MB and augmented when ``training``. Frames stay raw records until a whole
        batch is decoded at once."""
        import tensorflow as tf

        data = self.rows(validation, shuffle=training, seed=config.seed)
        if training:
            buffer = max(config.batch_size, int(self.shuffle_mb * 2**20 / self.record_bytes))
            data = data.shuffle(buffer, seed=config.seed, reshuffle_each_iteration=True)
        if repeat:
            data = data.repeat()
        make = batch_maker(config, training)
        data = data.batch(config.batch_size)
        if not repeat:   # known length: Keras shows the epoch's progress and time left
            frames = int(sum(int((flags == validation).sum()) for flags in self.is_val))
            data = data.apply(tf.data.experimental.assert_cardinality(
                math.ceil(frames / config.batch_size)))
        data = data.map(lambda rows: make(*self.decode(rows)),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = \
            tf.data.experimental.AutoShardPolicy.OFF   # each worker reads its own bags already
        # Flat memory: tf.data's autotuner would otherwise grow its buffers during a long epoch
        # (up to half the RAM); two batches ahead keep the model fed.
        options.autotune.ram_budget = PIPELINE_RAM_BUDGET
        return data.with_options(options).prefetch(2)

    # numpy --------------------------------------------------------------------------------------
    def iter_frames(self, validation: bool, chunk: int = 256):
        """(images, steering, throttle) numpy chunks of one side of the split, in order."""
        for frames, flags in zip(self.prepared, self.is_val):
            wanted = np.flatnonzero(flags == validation)
            for start in range(0, len(wanted), chunk):
                rows = wanted[start:start + chunk]
                yield self._read_rows(frames, rows)

    def _read_rows(self, frames: BagFrames, rows: np.ndarray):
        h, w = self.metadata.input_height, self.metadata.input_width
        images = np.empty((len(rows), h, w, 3), np.uint8)
        labels = np.empty((len(rows), 2), np.float32)
        with open(frames.frames_path, 'rb') as f:
            for k, row in enumerate(rows):
                f.seek(int(row) * self.record_bytes)
                raw = f.read(self.record_bytes)
                images[k] = np.frombuffer(raw, np.uint8, self.frame_bytes).reshape(h, w, 3)
                labels[k] = np.frombuffer(raw, '<f4', 2, self.frame_bytes)
        return images, labels[:, 0], labels[:, 1]

    def representative(self, count: int = 200, seed: int = 0) -> np.ndarray:
        """Training frames spread over the run, for int8 calibration."""
        rng = np.random.default_rng(seed)
        chosen = [(k, row) for k, flags in enumerate(self.is_val)
                  for row in np.flatnonzero(~flags)]
        if len(chosen) > count:
            chosen = [chosen[i] for i in np.sort(rng.choice(len(chosen), count, replace=False))]
        images = [self._read_rows(self.prepared[k], np.array([row]))[0][0] for k, row in chosen]
        return np.stack(images)

    def close(self) -> None:
        """Deletes a temporary frame cache."""
        if self.temporary is not None:
            shutil.rmtree(self.temporary, ignore_errors=True)
            self.temporary = None


def stream_bags(paths, config, filters: dict | None = None, drop_off_track: bool = True,
                cache: str | Path | None = None, shard: tuple = (0, 1), progress: bool = True,
                shuffle_mb: float = SHUFFLE_MB) -> tuple[StreamedFrames, ModelMetadata, dict]:
    """The streaming twin of ``training_data.load_bags``: prepares this worker's bags into the
    frame cache ``cache`` (a temporary folder, deleted by ``close()``, when None); returns
    (frames, metadata, reader counts of this worker's bags).

    Raises:
        DataError: no usable frame.
        DatasetError: a path is not a readable bag.
    """
    from donkey_ros.common.progress import progress_bar
    from donkey_ros.recording.dataset import find_bags

    filters = dict(filters or {})
    bags = find_bags(paths)
    width, height = first_frame_size(bags, filters)
    metadata = config.model_metadata(width, height)
    index, workers = shard
    mine = bags[index::workers]
    temporary = None
    if cache is None:
        temporary = folder = Path(tempfile.mkdtemp(prefix='donkey_ros_frames_'))
    else:
        folder = Path(cache).expanduser()
    bar = progress_bar('preparing bags', 'frames') if progress else None
    try:
        prepared = prepare(mine, folder, metadata, filters, drop_off_track,
                           threads=getattr(config, 'threads', 2),
                           progress=bar.update if bar is not None else None)
    except BaseException:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    counts: dict = {}
    for frames in prepared:
        for name, value in frames.counts.items():
            counts[name] = counts.get(name, 0) + value
    if workers == 1 and not any(len(p) for p in prepared):
        from donkey_ros.learning.training_data import counts_text
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        raise DataError(f'no usable frames in {", ".join(map(str, paths))} '
                        f'({counts_text(counts)})')
    return (StreamedFrames(metadata, bags, prepared, shard, shuffle_mb, temporary),
            metadata, counts)
