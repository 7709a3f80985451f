"""rosbag2 ``metadata.yaml`` (format version 9, as written by ``ros2 bag record`` on Jazzy+).

The writer and the repair tool describe a bag with ``FileSummary`` records (one per storage
file) and ``TopicSummary`` records; ``write_metadata`` turns them into the YAML file, replaced
atomically so that a reader never sees half a file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from donkey_ros.common.distro import ros_distro
from donkey_ros.recording.errors import BagError

VERSION = 9


@dataclass
class TopicSummary:
    """One topic of a bag: name, type, serialization, QoS (v9 list of dicts), hash, count."""

    name: str
    msgtype: str
    offered_qos: list = field(default_factory=list)
    type_hash: str = ''
    serialization_format: str = 'cdr'
    count: int = 0


@dataclass
class FileSummary:
    """One storage file of a bag (path relative to the bag directory)."""

    path: str
    start_ns: int = 0
    end_ns: int = 0
    count: int = 0

    def add(self, stamp_ns: int) -> None:
        if self.count == 0:
            self.start_ns = self.end_ns = stamp_ns
        else:
            self.start_ns = min(self.start_ns, stamp_ns)
            self.end_ns = max(self.end_ns, stamp_ns)
        self.count += 1


def metadata_dict(storage: str, files: list[FileSummary], topics: list[TopicSummary],
                  compression_format: str = '', compression_mode: str = '',
                  custom_data: dict | None = None) -> dict:
    """The metadata as a dict, ready to dump."""
    used = [f for f in files if f.count]
    start = min((f.start_ns for f in used), default=0)
    end = max((f.end_ns for f in used), default=0)
    return {'rosbag2_bagfile_information': {
        'version': VERSION,
        'storage_identifier': storage,
        'relative_file_paths': [f.path for f in files],
        'duration': {'nanoseconds': end - start},
        'starting_time': {'nanoseconds_since_epoch': start},
        'message_count': sum(f.count for f in files),
        'topics_with_message_count': [
            {'topic_metadata': {
                'name': t.name, 'type': t.msgtype,
                'serialization_format': t.serialization_format,
                'offered_qos_profiles': t.offered_qos,
                'type_description_hash': t.type_hash},
             'message_count': t.count}
            for t in topics],
        'compression_format': compression_format,
        'compression_mode': compression_mode,
        'files': [
            {'path': f.path,
             'starting_time': {'nanoseconds_since_epoch': f.start_ns},
             'duration': {'nanoseconds': f.end_ns - f.start_ns},
             'message_count': f.count}
            for f in files],
        'custom_data': {str(k): str(v) for k, v in (custom_data or {}).items()} or None,
        'ros_distro': ros_distro(),
    }}


def write_metadata(bag: Path, storage: str, files: list[FileSummary], topics: list[TopicSummary],
                   compression_format: str = '', compression_mode: str = '',
                   custom_data: dict | None = None) -> Path:
    """Writes ``bag/metadata.yaml`` atomically (temporary file, fsync, rename); returns its path."""
    text = yaml.safe_dump(
        metadata_dict(storage, files, topics, compression_format, compression_mode, custom_data),
        default_flow_style=False, sort_keys=False)
    path = Path(bag) / 'metadata.yaml'
    tmp = path.with_suffix('.yaml.tmp')
    with open(tmp, 'w', encoding='utf8') as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    return path


def read_metadata(bag: Path) -> dict:
    """The ``rosbag2_bagfile_information`` dict of ``bag/metadata.yaml``.

    Raises:
        OSError: the file cannot be opened (e.g. missing).
        BagError: the file is not UTF-8, not YAML or not a rosbag2 metadata mapping.
    """
    path = Path(bag) / 'metadata.yaml'
    try:
        with open(path, encoding='utf8') as stream:
            data = yaml.safe_load(stream) or {}
    except UnicodeDecodeError:
        raise BagError(f'{path}: not a text file (not UTF-8)') from None
    except yaml.YAMLError as error:
        raise BagError(f'{path}: not valid YAML ({_first_line(error)})') from None
    info = data.get('rosbag2_bagfile_information', {}) if isinstance(data, dict) else None
    if not isinstance(info, dict):
        raise BagError(f'{path}: not rosbag2 metadata (no rosbag2_bagfile_information mapping)')
    return info


def _first_line(error: Exception) -> str:
    return ' '.join(str(error).split())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
