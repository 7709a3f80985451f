"""Crash-safe rosbag2 writing (MCAP or sqlite3) on top of rosbags' storage writers.

A ``BagWriter`` owns one bag directory: ``<name>_0.mcap``, ``<name>_1.mcap``... and
``metadata.yaml``. What makes it crash-safe:

- ``flush()`` closes the pending MCAP chunk (or commits the sqlite3 transaction), flushes and
  fsyncs; the recorder calls it about every 0.5 s, so a kill -9 or a power cut loses at most that.
  ``donkey-ros bag repair`` recovers everything up to the last complete chunk.
- Files are split by size or by *monotonic* duration and numbered sequentially, so a wall clock
  jumping (NTP sync on a Raspberry Pi) never splits, names or orders files wrongly.
- ``metadata.yaml`` is rewritten atomically each time a file is completed, and at ``close()``.

Messages are written as the serialized CDR bytes they arrived as (no deserialization).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from rosbags.interfaces import (
    Connection, ConnectionExtRosbag2, MessageDefinition, MessageDefinitionFormat)
from rosbags.rosbag2.enums import CompressionMode
from rosbags.rosbag2.storage_mcap import McapWriter
from rosbags.rosbag2.storage_sqlite3 import Sqlite3Writer

from donkey_ros.recording import types
from donkey_ros.recording.errors import BagError
from donkey_ros.recording.metadata import FileSummary, TopicSummary, metadata_dict, write_metadata

STORAGES = ('mcap', 'sqlite3')
COMPRESSIONS = ('none', 'zstd')
EXTENSIONS = {'mcap': '.mcap', 'sqlite3': '.db3'}


def qos_profile(reliability: str = 'reliable', durability: str = 'volatile',
                history: str = 'keep_last', depth: int = 10) -> dict:
    """One offered QoS profile in the rosbag2 v9 metadata form."""
    zero = {'sec': 0, 'nsec': 0}
    return {'history': history, 'depth': depth, 'reliability': reliability,
            'durability': durability, 'deadline': dict(zero), 'lifespan': dict(zero),
            'liveliness': 'automatic', 'liveliness_lease_duration': dict(zero),
            'avoid_ros_namespace_conventions': False}


class _Sqlite3File(Sqlite3Writer):
    """rosbags' sqlite3 writer, on a file name of our choosing (``<bag>_<n>.db3``)."""

    def __init__(self, file: Path) -> None:  # noqa: D107 - same state as Sqlite3Writer's
        import sqlite3
        self.path = file
        self.conn = sqlite3.connect(f'file:{file}', uri=True)
        self.conn.executescript(self.SQLITE_SCHEMA)
        self.cursor = self.conn.cursor()


@dataclass
class _Topic:
    summary: TopicSummary
    msgdef: str
    connection: Connection | None = None


class BagWriter:
    """Writes one rosbag2 bag; use as a context manager or call ``open()``/``close()``.

    Args:
        path: the bag directory to create (must not exist).
        storage: 'mcap' (default) or 'sqlite3'.
        compression: 'none' or 'zstd' (MCAP chunk compression; readers decompress transparently).
        max_file_bytes: start a new file when the current one reaches this size (0 = never).
        max_file_seconds: start a new file after this many seconds, monotonic (0 = never).
        custom_data: strings stored in metadata.yaml (``custom_data``).

    Raises:
        BagError: bad storage/compression, or the path exists already.
    """

    def __init__(self, path: str | Path, storage: str = 'mcap', compression: str = 'none',
                 max_file_bytes: int = 0, max_file_seconds: float = 0.0,
                 custom_data: dict | None = None) -> None:
        if storage not in STORAGES:
            raise BagError(f"storage '{storage}' is not supported (use one of {STORAGES})")
        if compression not in COMPRESSIONS:
            raise BagError(f"compression '{compression}' is not supported (use {COMPRESSIONS})")
        if compression != 'none' and storage != 'mcap':
            raise BagError('chunk compression needs the mcap storage')
        self.path = Path(path)
        self.storage_id = storage
        self.compression = compression
        self.max_file_bytes = int(max_file_bytes)
        self.max_file_seconds = float(max_file_seconds)
        self.custom_data = dict(custom_data or {})
        self.files: list[FileSummary] = []
        self.topics: dict[str, _Topic] = {}
        self.message_count = 0
        self.bytes_written = 0
        self._storage = None
        self._file_started = 0.0
        self._closed_bytes = 0

    # -- life cycle ------------------------------------------------------------------------
    def open(self) -> 'BagWriter':
        if self.path.exists():
            raise BagError(f'{self.path} exists already; a bag is never overwritten')
        try:
            self.path.mkdir(parents=True)
        except OSError as error:
            raise BagError(f'cannot create bag directory {self.path}: {error.strerror}') from None
        self._open_file()
        return self

    def close(self) -> None:
        """Completes the current file (index, summary) and writes metadata.yaml."""
        if self._storage is None:
            return
        self._close_file()
        self._write_metadata()

    def abort(self) -> None:
        """Closes the files without completing them (what a crash leaves; used by tests).

        Also the way out after a write failure: the file is closed even when the flush fails
        (disk full); ``donkey-ros bag repair`` recovers it up to the last complete chunk.
        """
        storage, self._storage = self._storage, None
        if storage is None:
            return
        try:
            self._storage = storage
            self.flush()
        except OSError:
            pass
        finally:
            self._storage = None
            try:
                storage.abort()
            except OSError:
                pass

    def __enter__(self) -> 'BagWriter':
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._storage is not None

    @property
    def current_file(self) -> str:
        return self.files[-1].path if self.files else ''

    # -- topics and messages -----------------------------------------------------------------
    def add_topic(self, topic: str, msgtype: str, offered_qos: list | None = None,
                  msgdef: str | None = None, type_hash: str | None = None) -> None:
        """Declares a topic (absolute name) before its first message.

        Raises:
            BagError: the message type's definition cannot be found (see ``types.definition``).
        """
        if topic in self.topics:
            return
        if msgdef is None or type_hash is None:
            msgdef, type_hash = types.definition(msgtype)
        entry = _Topic(TopicSummary(topic, msgtype, list(offered_qos or [qos_profile()]),
                                    type_hash), msgdef)
        self.topics[topic] = entry
        if self._storage is not None:
            self._add_connection(entry)

    def write(self, topic: str, stamp_ns: int, data: bytes | memoryview) -> None:
        """Writes one serialized (CDR) message received at ``stamp_ns`` (ns since epoch)."""
        entry = self.topics.get(topic)
        if entry is None:
            raise BagError(f"topic '{topic}' was not added to bag {self.path}")
        if self._storage is None:
            raise BagError(f'bag {self.path} is not open')
        if self._split_due():
            self._rotate()
        self._storage.write(entry.connection, stamp_ns, data)
        entry.summary.count += 1
        self.files[-1].add(stamp_ns)
        self.message_count += 1
        self.bytes_written += len(data)

    def flush(self) -> None:
        """Makes everything written so far durable (closed chunk / committed, flushed, fsynced)."""
        storage = self._storage
        if storage is None:
            return
        if isinstance(storage, McapWriter):
            if storage.chunk.msgs:
                storage.close_chunk()
            storage.bio.flush()
            os.fsync(storage.bio.fileno())
        else:
            storage.conn.commit()

    def file_size(self) -> int:
        """Bytes of the current file, including the MCAP chunk still being assembled."""
        storage = self._storage
        if isinstance(storage, McapWriter):
            return storage.bio.tell() + storage.chunk.bio.tell()
        try:
            return storage.path.stat().st_size if storage else 0
        except OSError:
            return 0

    def total_bytes(self) -> int:
        """Bytes on disk of all files of the bag so far."""
        return self._closed_bytes + (self.file_size() if self._storage else 0)

    # -- internals ---------------------------------------------------------------------------
    def _file_name(self, index: int) -> str:
        return f'{self.path.name}_{index}{EXTENSIONS[self.storage_id]}'

    def _open_file(self) -> None:
        name = self._file_name(len(self.files))
        target = self.path / name
        try:
            if self.storage_id == 'mcap':
                mode = (CompressionMode.STORAGE if self.compression == 'zstd'
                        else CompressionMode.NONE)
                # rosbags names the file <bag>/<bag>.mcap; give it the rosbag2 split name at once
                # (the open descriptor keeps writing to the renamed file).
                storage = McapWriter(self.path, mode)
                os.rename(storage.path, target)
                storage.path = target
            else:
                storage = _Sqlite3File(target)
        except OSError as error:
            raise BagError(f'cannot create {target}: {error.strerror}') from None
        self._storage = storage
        self._file_started = time.monotonic()
        self.files.append(FileSummary(name))
        self._added_types: set[str] = set()
        self._next_id = 1
        for entry in self.topics.values():
            self._add_connection(entry)

    def _add_connection(self, entry: _Topic) -> None:
        summary = entry.summary
        fmt = (MessageDefinitionFormat.IDL if entry.msgdef.startswith('=' * 80 + '\nIDL: ')
               else MessageDefinitionFormat.MSG)
        connection = Connection(
            id=self._next_id,
            topic=summary.name, msgtype=summary.msgtype,
            msgdef=MessageDefinition(fmt, entry.msgdef), digest=summary.type_hash, msgcount=0,
            ext=ConnectionExtRosbag2(serialization_format=summary.serialization_format,
                                     offered_qos_profiles=[]),
            owner=self._storage)
        if summary.msgtype not in self._added_types:
            self._storage.add_msgtype(connection)
            self._added_types.add(summary.msgtype)
        qos_text = yaml.safe_dump(summary.offered_qos, default_flow_style=False).strip()
        self._storage.add_connection(connection, qos_text)
        entry.connection = connection
        self._next_id += 1

    def _split_due(self) -> bool:
        if self.files[-1].count == 0:
            return False
        if self.max_file_bytes and self.file_size() >= self.max_file_bytes:
            return True
        return bool(self.max_file_seconds) and (
            time.monotonic() - self._file_started >= self.max_file_seconds)

    def _rotate(self) -> None:
        self._close_file()
        self._write_metadata()
        self._open_file()

    def _close_file(self) -> None:
        storage, self._storage = self._storage, None
        info = metadata_dict(self.storage_id, [self.files[-1]],
                             [entry.summary for entry in self.topics.values()],
                             custom_data=self.custom_data)['rosbag2_bagfile_information']
        storage.close(9, yaml.safe_dump(info, default_flow_style=False).strip())
        try:
            with open(storage.path, 'rb') as stream:
                os.fsync(stream.fileno())
            self._closed_bytes += storage.path.stat().st_size
        except OSError:
            pass
        for entry in self.topics.values():
            entry.connection = None

    def _write_metadata(self) -> None:
        write_metadata(self.path, self.storage_id, self.files,
                       [entry.summary for entry in self.topics.values()],
                       custom_data=self.custom_data)
