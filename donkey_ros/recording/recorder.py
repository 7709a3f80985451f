"""The recorder's core (no rclpy): a bounded queue, a writer thread and the bag's life cycle.

Subscription callbacks only call ``push()`` (append to a deque, O(1)); the writer thread takes
messages off the queue, writes them with ``BagWriter`` and flushes to disk every
``flush_period`` s. When the queue is over its byte or message budget the *oldest* message is
dropped and counted, so a slow disk never blocks the ROS executor and never grows memory
without bound.

Recording is on while ``start()`` was called and ``stop()`` was not; with ``auto_throttle`` it
is further gated on the throttle (DonkeyCar's AUTO_RECORD_ON_THROTTLE): messages are written
only while |throttle| > threshold, and for ``tail`` s after. A bag is created at the first
message after ``start()`` and completed by ``stop()`` or ``close()``; pauses of the throttle
gate stay in the same bag. Latched topics (drive_mode) are remembered while not recording and
written at the start of each bag, so every bag knows the drive mode.

The recorder never claims to record when it does not:

- ``start()`` first checks the folder (it can be created and written, ``check_folder``) and its
  free space (at least ``min_free_bytes``); if not, it raises ``BagError`` with the reason and
  does not start.
- While it runs, the writer thread looks at the free space at every flush: below
  ``warn_free_bytes`` it warns once (``low_disk``); below ``min_free_bytes`` it stops and
  completes the bag while there is still room for its index and metadata.yaml, so the bag stays
  readable.
- A write that fails (disk full anyway, I/O error, read-only remount) stops the recording: the
  message and everything still queued count as ``dropped``, the bag is completed if the disk
  allows it (otherwise closed as it is, for ``donkey-ros bag repair``), and ``error`` says what
  happened until the next successful ``start()``.
"""
from __future__ import annotations

import collections
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from donkey_ros.common.paths import bags_folder
from donkey_ros.recording.errors import BagError
from donkey_ros.recording.writer import BagWriter

IMAGE_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_TYPE = 'sensor_msgs/msg/CompressedImage'


@dataclass
class RecorderConfig:
    """Where and how to write (see the recorder node's parameters for meanings)."""

    folder: Path = field(default_factory=bags_folder)
    prefix: str = 'drive'
    storage: str = 'mcap'
    compression: str = 'none'
    max_file_bytes: int = 0
    max_file_seconds: float = 0.0
    flush_period: float = 0.5
    queue_bytes: int = 256 * 2**20
    queue_messages: int = 2000
    compress_images: bool = False
    jpeg_quality: int = 90
    auto_throttle: bool = False
    throttle_threshold: float = 0.05
    tail: float = 1.0
    min_free_bytes: int = 0
    warn_free_bytes: int = 0
    custom_data: dict = field(default_factory=dict)


@dataclass
class _Topic:
    name: str
    msgtype: str
    offered_qos: list
    latched: bool
    last: tuple[int, bytes, int] | None = None
    """Latched topics: the newest (stamp, data, sequence number), written when a bag opens."""


_STOP, _CLOSE = 'stop', 'close'


class Recorder:
    """Records pushed serialized messages into bags. Thread-safe; call ``close()`` at the end.

    Args:
        config: a ``RecorderConfig``.
        log_error: called with one-line messages when something goes wrong in the writer thread.
    """

    def __init__(self, config: RecorderConfig,
                 log_error: Callable[[str], None] = print,
                 log_info: Callable[[str], None] = print,
                 log_warning: Callable[[str], None] | None = None) -> None:
        self.config = config
        self._log_error = log_error
        self._log_info = log_info
        self._log_warning = log_warning or log_info
        self.error = ''
        """Why the recording stopped or could not start; '' while all is well."""
        self.low_disk = False
        """True while the free space is below ``warn_free_bytes`` (warned once per episode)."""
        self.free_bytes: int | None = None
        self._halted = False
        self._topics: dict[str, _Topic] = {}
        self._queue: collections.deque = collections.deque()
        self._queued_bytes = 0
        self._cond = threading.Condition()
        self._wanted = False
        self._throttle_active_until = -1.0
        self.dropped = 0
        self.write_errors = 0
        self.bags: list[Path] = []
        self._writer: BagWriter | None = None
        self._stats = {'messages': 0, 'bytes': 0, 'file': '', 'bag': '', 'started': None,
                       'flushed': 0}
        self._closed = False
        self._sequence = 0
        self._latched_written: dict[str, int] = {}
        self._thread = threading.Thread(target=self._run, name='recorder-writer', daemon=True)
        self._thread.start()

    # -- called from ROS callbacks ---------------------------------------------------------
    def add_topic(self, name: str, msgtype: str, offered_qos: list | None = None,
                  latched: bool = False) -> None:
        """Declares a topic (absolute name) that ``push`` may be called with."""
        with self._cond:
            self._topics.setdefault(name, _Topic(name, msgtype, list(offered_qos or []), latched))

    def push(self, topic: str, stamp_ns: int, data: bytes) -> bool:
        """Queues one serialized message; returns False if it is not recorded (not recording)."""
        with self._cond:
            entry = self._topics.get(topic)
            if entry is None:
                return False
            self._sequence += 1
            if entry.latched:
                entry.last = (stamp_ns, data, self._sequence)
            if not self._gate_open() and not (entry.latched and self._writer_open()):
                return False
            self._append(('msg', topic, stamp_ns, data, self._sequence))
            return True

    def note_throttle(self, throttle: float, now: float | None = None) -> None:
        """Feeds the throttle of ``cmd`` for the auto-record gate."""
        if abs(throttle) > self.config.throttle_threshold:
            now = time.monotonic() if now is None else now
            self._throttle_active_until = now + self.config.tail

    def start(self) -> None:
        """Starts recording (a new bag opens with the next message).

        Raises:
            BagError: the folder cannot be written or has less than ``min_free_bytes`` free
                (also kept in ``error``); recording does not start.
        """
        try:
            self.free_bytes = check_folder(self.config.folder, self.config.min_free_bytes)
        except BagError as error:
            with self._cond:
                self._wanted = False
                self.error = str(error)
            raise
        with self._cond:
            self.error = ''
            self._halted = False
            self._wanted = True

    def stop(self) -> None:
        """Stops recording: completes the current bag (its metadata.yaml is written)."""
        with self._cond:
            if self._wanted:
                self._wanted = False
                self._append((_STOP,))

    @property
    def wanted(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._wanted

    @property
    def recording(self) -> bool:
        """True while messages are being written (started, and the throttle gate open)."""
        return self._gate_open()

    def close(self, timeout: float = 10.0) -> None:
        """Writes what is queued, completes the bag and ends the writer thread."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._wanted = False
            self._queue.append((_CLOSE,))
            self._cond.notify()
        self._thread.join(timeout)

    def stats(self) -> dict:
        """messages, bytes, file, bag, duration (s) of the current bag; dropped, queued."""
        with self._cond:
            stats = dict(self._stats)
            stats['queued'] = len(self._queue)
        started = stats.pop('started')
        stats.pop('flushed')
        stats['duration'] = time.monotonic() - started if started is not None else 0.0
        stats['dropped'] = self.dropped
        stats['write_errors'] = self.write_errors
        stats['recording'] = self.recording
        stats['error'] = self.error
        stats['free_bytes'] = self.free_bytes
        stats['low_disk'] = self.low_disk
        return stats

    # -- internals -------------------------------------------------------------------------
    def _gate_open(self) -> bool:
        if not self._wanted:
            return False
        return not self.config.auto_throttle or time.monotonic() < self._throttle_active_until

    def _writer_open(self) -> bool:
        return self._wanted and self._writer is not None

    def _append(self, item: tuple) -> None:
        size = len(item[3]) if item[0] == 'msg' else 0
        config = self.config
        while self._queue and (self._queued_bytes + size > config.queue_bytes
                               or len(self._queue) >= config.queue_messages):
            if not self._drop_oldest():
                break
        self._queue.append(item)
        self._queued_bytes += size
        self._cond.notify()

    def _drop_oldest(self) -> bool:
        for index, item in enumerate(self._queue):
            if item[0] == 'msg':
                del self._queue[index]
                self._queued_bytes -= len(item[3])
                self.dropped += 1
                return True
        return False

    def _run(self) -> None:
        period = self.config.flush_period
        next_flush = time.monotonic() + period
        while True:
            with self._cond:
                if not self._queue:
                    self._cond.wait(max(0.0, next_flush - time.monotonic()))
                items = list(self._queue)
                self._queue.clear()
                self._queued_bytes = 0
            for item in items:
                if item[0] == 'msg':
                    self._write(*item[1:])
                elif item[0] == _STOP:
                    self._finish_bag()
                elif item[0] == _CLOSE:
                    self._finish_bag()
                    return
            if time.monotonic() >= next_flush:
                self._flush()
                self._check_space()
                next_flush = time.monotonic() + period

    def _write(self, topic: str, stamp_ns: int, data: bytes, sequence: int) -> None:
        if self._halted:  # queued before a write failure stopped the recording
            self.dropped += 1
            return
        try:
            if self._writer is None:
                self._open_bag(stamp_ns)
            if self._latched_written.get(topic) == sequence:
                return  # already written from the latched cache when the bag opened
            entry = self._topics[topic]
            name, data = self._transform(entry, data)
            if name not in self._writer.topics:
                self._add_to_bag(entry, name)
            self._writer.write(name, stamp_ns, data)
            with self._cond:
                self._stats['messages'] += 1
        except OSError as error:  # disk full, I/O error, read-only: stop, say so
            self.write_errors += 1
            self.dropped += 1
            self._stop_on_error(f'cannot write {topic} to {self._bag_name()}: '
                                f'{error.strerror or error}')
        except BagError as error:
            self.write_errors += 1
            self.dropped += 1
            if self._writer is None:  # the bag could not be created
                self._stop_on_error(str(error))
            else:
                self._log_error(f'recorder: {error}')
        except Exception as error:  # codec errors: count, log, keep recording
            self.write_errors += 1
            self.dropped += 1
            self._log_error(f'recorder: cannot write {topic}: {error}')

    def _transform(self, entry: _Topic, data: bytes) -> tuple[str, bytes]:
        if not (self.config.compress_images and entry.msgtype == IMAGE_TYPE):
            return entry.name, data
        return entry.name + '/compressed', compress_image(data, self.config.jpeg_quality)

    def _add_to_bag(self, entry: _Topic, name: str) -> None:
        msgtype = COMPRESSED_TYPE if name != entry.name else entry.msgtype
        self._writer.add_topic(name, msgtype, entry.offered_qos or None)

    def _open_bag(self, first_stamp_ns: int) -> None:
        config = self.config
        path = unique_bag_path(config.folder, config.prefix)
        writer = BagWriter(path, storage=config.storage, compression=config.compression,
                           max_file_bytes=config.max_file_bytes,
                           max_file_seconds=config.max_file_seconds,
                           custom_data=config.custom_data)
        writer.open()
        self._writer = writer
        self.bags.append(path)
        with self._cond:
            self._stats.update(messages=0, bytes=0, file=writer.current_file, bag=str(path),
                               started=time.monotonic(), flushed=0)
            latched = [(t, t.last) for t in self._topics.values() if t.latched and t.last]
        self._log_info(f'recording to {path}')
        self._latched_written = {}
        for entry, (_, data, sequence) in latched:
            # Stamped with the bag's first message so it does not stretch the bag backwards.
            if entry.name not in writer.topics:
                self._add_to_bag(entry, entry.name)
            writer.write(entry.name, first_stamp_ns, data)
            self._latched_written[entry.name] = sequence
            with self._cond:
                self._stats['messages'] += 1

    def _flush(self) -> None:
        writer = self._writer
        if writer is None:
            return
        try:
            writer.flush()
            with self._cond:
                self._stats.update(bytes=writer.total_bytes(), file=writer.current_file,
                                   flushed=self._stats['messages'])
        except (OSError, BagError) as error:
            self.write_errors += 1
            self._stop_on_error(f'cannot write {writer.path}: '
                                f'{getattr(error, "strerror", None) or error}')

    def _check_space(self) -> None:
        """Free space of the bag folder: warn once when low, stop cleanly before it is full."""
        config = self.config
        free = free_space(config.folder)
        self.free_bytes = free
        if free is None:
            return
        if config.warn_free_bytes and free < config.warn_free_bytes:
            if not self.low_disk:
                self.low_disk = True
                self._log_warning(f'recorder: low disk space: {free / 2**20:.1f} MB free in '
                                  f'{config.folder} (warning below '
                                  f'{config.warn_free_bytes / 2**20:g} MB)')
        else:
            self.low_disk = False
        if self._wanted and config.min_free_bytes and free < config.min_free_bytes:
            self._stop_on_error(f'disk almost full: {free / 2**20:.1f} MB free in '
                                f'{config.folder}, below min_free_mb '
                                f'({config.min_free_bytes / 2**20:g} MB)')

    def _bag_name(self) -> str:
        return str(self._writer.path) if self._writer is not None else str(self.config.folder)

    def _stop_on_error(self, text: str) -> None:
        """Stops recording after a failure: queued messages are dropped, the bag is closed."""
        with self._cond:
            self._wanted = False
            self._halted = True
            kept = collections.deque()
            for item in self._queue:
                if item[0] == 'msg':
                    self.dropped += 1
                else:
                    kept.append(item)
            self._queue = kept
            self._queued_bytes = 0
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
                text += f'; recording stopped, bag {writer.path} complete'
            except Exception:
                writer.abort()
                text += (f'; recording stopped, bag {writer.path} incomplete: run '
                         f'`donkey-ros bag repair {writer.path}` once there is space')
                with self._cond:  # what was not flushed before the failure is lost
                    lost = self._stats['messages'] - self._stats['flushed']
                    self.dropped += max(0, lost)
                    self._stats['messages'] -= max(0, lost)
            with self._cond:
                self._stats.update(bytes=bytes_on_disk(writer.path), started=None)
        else:
            text += '; recording stopped'
        with self._cond:
            self.error = text
        self._log_error(f'recorder: {text}')

    def _finish_bag(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.close()
            with self._cond:
                self._stats.update(bytes=writer.total_bytes(), started=None)
            self._log_info(f'bag complete: {writer.path} ({writer.message_count} messages, '
                           f'{writer.total_bytes() / 1e6:.1f} MB)')
        except Exception as error:
            self.write_errors += 1
            self._log_error(f'recorder: cannot complete {writer.path}: {error}; '
                            f'run `donkey-ros bag repair {writer.path}`')


def free_space(folder: str | Path) -> int | None:
    """Bytes free for this user on the file system ``folder`` is (or will be) on."""
    path = Path(folder).expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def check_folder(folder: str | Path, min_free_bytes: int = 0) -> int | None:
    """Checks that bags can be written in ``folder`` (created if missing); returns free bytes.

    Raises:
        BagError: the folder cannot be created or written, or has less than ``min_free_bytes``.
    """
    folder = Path(folder).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f'.donkey_ros_write_check_{os.getpid()}'
        with open(probe, 'wb') as stream:
            stream.write(b'x')
            stream.flush()
            os.fsync(stream.fileno())
        probe.unlink()
    except OSError as error:
        raise BagError(f'cannot write to {folder}: {error.strerror or error}') from None
    free = free_space(folder)
    if free is not None and free < min_free_bytes:
        raise BagError(f'disk almost full: {free / 2**20:.1f} MB free in {folder}, '
                       f'min_free_mb is {min_free_bytes / 2**20:g} MB')
    return free


def bytes_on_disk(bag: str | Path) -> int:
    """Total size of a bag's storage files (all but metadata.yaml; 0 if it cannot be read)."""
    try:
        return sum(entry.stat().st_size for entry in Path(bag).iterdir()
                   if entry.is_file() and entry.name != 'metadata.yaml')
    except OSError:
        return 0


def unique_bag_path(folder: Path, prefix: str) -> Path:
    """``folder/<prefix>_<local time>``, with a counter if that exists (clocks can go back)."""
    folder = Path(folder).expanduser()
    base = f"{prefix}_{time.strftime('%Y-%m-%d_%H-%M-%S')}"
    path, n = folder / base, 1
    while path.exists():
        path, n = folder / f'{base}_{n}', n + 1
    return path


def compress_image(data: bytes, quality: int = 90) -> bytes:
    """A serialized sensor_msgs/Image -> serialized sensor_msgs/CompressedImage (JPEG).

    Raises:
        BagError: the image cannot be decoded or encoded.
    """
    import numpy as np

    from donkey_ros.common.image import ImageError, encode_jpeg, image_to_array
    from donkey_ros.recording.types import typestore

    store = typestore()
    msg = store.deserialize_cdr(data, IMAGE_TYPE)
    try:
        rgb = image_to_array(msg)
        jpeg = encode_jpeg(rgb, quality)
    except ImageError as error:
        raise BagError(f'cannot compress image: {error}') from None
    out = store.types[COMPRESSED_TYPE](header=msg.header, format='rgb8; jpeg compressed bgr8',
                                       data=np.frombuffer(jpeg, np.uint8))
    return bytes(store.serialize_cdr(out, COMPRESSED_TYPE))
