"""Bag repair (like ``ros2 bag reindex``, plus recovery of truncated MCAP files).

After a kill -9 or a power cut the recorder leaves MCAP files without their index and summary,
possibly ending in a half-written chunk, and a metadata.yaml that does not list the last file
(or none at all). ``repair_bag``:

1. checks every storage file of the bag;
2. for an incomplete MCAP file, streams its records with the ``mcap`` library until the first
   unreadable one and writes everything before it into a new, complete MCAP file (the damaged
   original is kept as ``<file>.damaged`` unless ``keep_damaged=False``);
3. sqlite3 files need no rewrite (SQLite rolls back the unfinished transaction itself);
4. rebuilds metadata.yaml from the files' contents.

Nothing is ever deleted unless asked, and the original is renamed only after its replacement is
complete and synced.
"""
from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from donkey_ros.recording.errors import BagError
from donkey_ros.recording.metadata import FileSummary, TopicSummary, read_metadata, write_metadata

DAMAGED_SUFFIX = '.damaged'
RECORD_SIZE_LIMIT = 2**31


class RepairError(BagError):
    """A bag cannot be repaired (not a bag, unreadable from the first byte...)."""


@dataclass
class FileReport:
    """What repair found in one storage file."""

    path: str
    status: str                    # 'ok', 'repaired', 'empty', 'unreadable'
    messages: int = 0
    detail: str = ''


@dataclass
class RepairReport:
    bag: Path
    files: list[FileReport] = field(default_factory=list)
    metadata_rewritten: bool = False
    message_count: int = 0

    @property
    def repaired(self) -> bool:
        return any(f.status != 'ok' for f in self.files) or self.metadata_rewritten

    def text(self) -> str:
        lines = [f'bag {self.bag}: {self.message_count} messages in {len(self.files)} file(s)']
        for f in self.files:
            lines.append(f'  {f.path}: {f.status}, {f.messages} messages'
                         + (f' ({f.detail})' if f.detail else ''))
        lines.append('  metadata.yaml rewritten' if self.metadata_rewritten
                     else '  metadata.yaml was correct')
        return '\n'.join(lines)


@dataclass
class _Content:
    """What one file holds: per-topic summaries and the file summary."""

    summary: FileSummary
    topics: dict[str, TopicSummary] = field(default_factory=dict)


def _split_index(path: Path) -> tuple:
    match = re.search(r'_(\d+)$', path.stem)
    return (int(match.group(1)) if match else -1, path.name)


def storage_files(bag: Path) -> list[Path]:
    """The bag's storage files: those metadata.yaml lists, then any others, in split order."""
    listed = []
    try:
        listed = [bag / p for p in read_metadata(bag).get('relative_file_paths', [])]
    except (OSError, BagError, TypeError):
        pass
    found = sorted([p for p in bag.iterdir() if p.suffix in ('.mcap', '.db3') and p.is_file()],
                   key=_split_index)
    files = [p for p in listed if p.is_file()]
    files += [p for p in found if p not in files]
    return files


def mcap_is_complete(path: Path) -> bool:
    """True if the MCAP file has its footer and summary (statistics) and reads back."""
    from mcap.reader import make_reader
    try:
        with open(path, 'rb') as stream:
            summary = make_reader(stream).get_summary()
        return summary is not None and summary.statistics is not None
    except Exception:  # any parse error means: not complete
        return False


def _topic_from_channel(channel, schema) -> TopicSummary:
    from donkey_ros.recording import types
    qos_text = channel.metadata.get('offered_qos_profiles', '')
    try:
        offered = yaml.safe_load(qos_text) if qos_text else []
        if not isinstance(offered, list):
            offered = []
    except yaml.YAMLError:
        offered = []
    msgtype = schema.name if schema is not None else ''
    type_hash = ''
    if schema is not None:
        try:
            store = types.typestore()
            if msgtype not in store.fielddefs:
                types.register_from_bag([_Conn(msgtype, schema.data.decode(errors='replace'))])
            type_hash = store.hash_rihs01(msgtype)
        except Exception:  # unknown type: the hash stays empty, the data is intact
            type_hash = ''
    return TopicSummary(channel.topic, msgtype, offered, type_hash,
                        channel.message_encoding or 'cdr')


@dataclass
class _Def:
    data: str


class _Conn:
    """The two attributes ``types.register_from_bag`` reads from a connection."""

    def __init__(self, msgtype: str, msgdef: str) -> None:
        self.msgtype = msgtype
        self.msgdef = _Def(msgdef)


def scan_mcap(path: Path) -> _Content:
    """Content of a complete MCAP file from its summary (fast: no message is read)."""
    from mcap.reader import make_reader
    with open(path, 'rb') as stream:
        summary = make_reader(stream).get_summary()
    stats = summary.statistics
    content = _Content(FileSummary(path.name, stats.message_start_time,
                                   stats.message_end_time, stats.message_count))
    for channel_id, channel in summary.channels.items():
        topic = _topic_from_channel(channel, summary.schemas.get(channel.schema_id))
        topic.count = stats.channel_message_counts.get(channel_id, 0)
        _merge_topic(content.topics, topic)
    return content


def _merge_topic(topics: dict[str, TopicSummary], topic: TopicSummary) -> None:
    if topic.name in topics:
        topics[topic.name].count += topic.count
    else:
        topics[topic.name] = topic


def recover_mcap(path: Path, target: Path,
                 progress: Callable[[int, int], None] | None = None) -> tuple[_Content, str]:
    """Copies every readable record of ``path`` into a complete MCAP file ``target``.

    Returns the content written and why reading stopped ('' if the file ended cleanly).

    Raises:
        RepairError: not an MCAP file.
    """
    from mcap.exceptions import InvalidMagic
    from mcap.records import Channel, Chunk, Header, Message, Schema
    from mcap.stream_reader import StreamReader, breakup_chunk
    from mcap.writer import CompressionType, Writer

    total = path.stat().st_size
    content = _Content(FileSummary(path.name))
    schemas: dict[int, Schema] = {}
    channel_map: dict[int, int] = {}
    schema_map: dict[int, int] = {}
    channel_topic: dict[int, TopicSummary] = {}
    stop_reason = ''
    with open(path, 'rb') as source, open(target, 'wb') as out:
        reader = StreamReader(source, record_size_limit=RECORD_SIZE_LIMIT, emit_chunks=True)
        writer = None
        saw_header = False
        good_end = 0
        records = reader.records
        while True:
            try:
                record = next(records)
                inner = breakup_chunk(record) if isinstance(record, Chunk) else [record]
            except StopIteration:
                break
            except InvalidMagic as error:
                if writer is None and not saw_header:
                    raise RepairError(f'{path} is not an MCAP file ({error})') from None
                stop_reason = 'no end magic'
                break
            except Exception as error:  # truncated or garbled record: the valid prefix ends here
                stop_reason = (f'{total - good_end} bytes at the end unreadable '
                               f'({type(error).__name__})')
                break
            if writer is None and isinstance(record, Header):
                saw_header = True   # the new file gets its own header
                continue
            if writer is None:
                compression = CompressionType.NONE
                if isinstance(record, Chunk) and record.compression:
                    compression = {'zstd': CompressionType.ZSTD,
                                   'lz4': CompressionType.LZ4}.get(record.compression,
                                                                    CompressionType.NONE)
                writer = Writer(out, compression=compression)
                writer.start(profile='ros2', library='donkey_ros bag repair')
            for item in inner:
                if isinstance(item, Schema) and item.id not in schema_map:
                    schemas[item.id] = item
                    schema_map[item.id] = writer.register_schema(item.name, item.encoding,
                                                                 item.data)
                elif isinstance(item, Channel) and item.id not in channel_map:
                    channel_map[item.id] = writer.register_channel(
                        item.topic, item.message_encoding, schema_map.get(item.schema_id, 0),
                        dict(item.metadata))
                    content.topics.setdefault(
                        item.topic, _topic_from_channel(item, schemas.get(item.schema_id)))
                    channel_topic[item.id] = content.topics[item.topic]
                elif isinstance(item, Message) and item.channel_id in channel_map:
                    writer.add_message(channel_map[item.channel_id], item.log_time, item.data,
                                       item.publish_time, item.sequence)
                    content.summary.add(item.log_time)
                    channel_topic[item.channel_id].count += 1
            good_end = source.tell()
            if progress is not None:
                progress(good_end, total)
        if writer is None and saw_header:
            writer = Writer(out, compression=CompressionType.NONE)
            writer.start(profile='ros2', library='donkey_ros bag repair')
        if writer is None:
            raise RepairError(f'{path} holds no readable MCAP data')
        writer.finish()
        out.flush()
        os.fsync(out.fileno())
    return content, stop_reason


def scan_sqlite(path: Path) -> _Content:
    """Content of a sqlite3 storage file (opening it rolls back an unfinished transaction)."""
    try:
        connection = sqlite3.connect(f'file:{path}', uri=True)
        try:
            rows = connection.execute(
                'SELECT t.name, t.type, t.serialization_format, t.offered_qos_profiles, '
                't.type_description_hash, COUNT(m.id), MIN(m.timestamp), MAX(m.timestamp) '
                'FROM topics t LEFT JOIN messages m ON m.topic_id = t.id GROUP BY t.id').fetchall()
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise RepairError(f'{path} is not a readable rosbag2 sqlite3 file ({error})') from None
    content = _Content(FileSummary(path.name))
    for name, msgtype, fmt, qos_text, type_hash, count, first, last in rows:
        try:
            offered = yaml.safe_load(qos_text) if qos_text else []
        except yaml.YAMLError:
            offered = []
        content.topics[name] = TopicSummary(name, msgtype, offered if isinstance(offered, list)
                                            else [], type_hash or '', fmt or 'cdr', count)
        if count:
            summary = content.summary
            summary.start_ns = first if not summary.count else min(summary.start_ns, first)
            summary.end_ns = last if not summary.count else max(summary.end_ns, last)
            summary.count += count
    return content


def repair_bag(bag: str | Path, keep_damaged: bool = True,
               progress: Callable[[str, int, int], None] | None = None) -> RepairReport:
    """Makes ``bag`` complete and readable again; returns what was done.

    Args:
        bag: the bag directory.
        keep_damaged: keep each damaged original as ``<file>.damaged`` (default) or delete it.
        progress: called with (file name, bytes read, total bytes) while recovering.

    Raises:
        RepairError: not a bag directory, or no storage file in it.
    """
    bag = Path(bag).expanduser()
    if not bag.exists():
        raise RepairError(f"bag '{bag}' does not exist")
    if not bag.is_dir():
        raise RepairError(f"'{bag}' is not a bag directory (repair works on the directory)")
    files = storage_files(bag)
    if not files:
        raise RepairError(f"'{bag}' holds no .mcap or .db3 file: nothing to repair")
    storages = {p.suffix for p in files}
    if len(storages) > 1:
        raise RepairError(f"'{bag}' mixes .mcap and .db3 files; repair them as separate bags")
    storage = 'mcap' if '.mcap' in storages else 'sqlite3'
    report = RepairReport(bag)
    contents: list[_Content] = []
    for path in files:
        if storage == 'sqlite3':
            content = scan_sqlite(path)
            report.files.append(FileReport(path.name, 'ok', content.summary.count))
        elif mcap_is_complete(path):
            content = scan_mcap(path)
            report.files.append(FileReport(path.name, 'ok', content.summary.count))
        else:
            content = _repair_mcap(path, keep_damaged, progress, report)
            if content is None:
                continue
        contents.append(content)
    report.message_count = sum(c.summary.count for c in contents)
    topics: dict[str, TopicSummary] = {}
    for content in contents:
        for topic in content.topics.values():
            _merge_topic(topics, TopicSummary(**vars(topic)))
    previous = _previous_metadata(bag)
    files_meta = [c.summary for c in contents]
    if _metadata_differs(previous, storage, files_meta, list(topics.values())):
        custom = dict(previous.get('custom_data') or {}) if previous else {}
        custom['donkey_ros.repaired'] = 'true'
        _keep_hashes(previous, topics)
        write_metadata(bag, storage, files_meta, list(topics.values()), custom_data=custom)
        report.metadata_rewritten = True
    return report


def _repair_mcap(path: Path, keep_damaged: bool, progress, report: RepairReport):
    tmp = path.with_name(path.name + '.repairing')
    callback = (lambda done, total: progress(path.name, done, total)) if progress else None
    try:
        content, reason = recover_mcap(path, tmp, callback)
    except RepairError as error:
        tmp.unlink(missing_ok=True)
        report.files.append(FileReport(path.name, 'unreadable', 0, str(error)))
        _set_aside(path, keep_damaged)
        return None
    damaged = path.with_name(path.name + DAMAGED_SUFFIX)
    if keep_damaged:
        os.replace(path, damaged)
    else:
        path.unlink()
    os.replace(tmp, path)
    content.summary.path = path.name
    status = 'repaired' if content.summary.count else 'empty'
    detail = reason or 'index and summary rebuilt'
    if keep_damaged:
        detail += f'; original kept as {damaged.name}'
    report.files.append(FileReport(path.name, status, content.summary.count, detail))
    return content


def _set_aside(path: Path, keep: bool) -> None:
    if keep:
        os.replace(path, path.with_name(path.name + DAMAGED_SUFFIX))
    else:
        path.unlink()


def _previous_metadata(bag: Path) -> dict:
    try:
        return read_metadata(bag)
    except (OSError, BagError):
        return {}


def _keep_hashes(previous: dict, topics: dict[str, TopicSummary]) -> None:
    for entry in previous.get('topics_with_message_count', []) if previous else []:
        meta = entry.get('topic_metadata', {})
        topic = topics.get(meta.get('name'))
        if topic is not None and not topic.type_hash:
            topic.type_hash = meta.get('type_description_hash', '')


def _metadata_differs(previous: dict, storage: str, files: list[FileSummary],
                      topics: list[TopicSummary]) -> bool:
    if not previous:
        return True
    try:
        if previous.get('storage_identifier') != storage:
            return True
        if previous.get('relative_file_paths') != [f.path for f in files]:
            return True
        if previous.get('message_count') != sum(f.count for f in files):
            return True
        counts = {e['topic_metadata']['name']: e['message_count']
                  for e in previous.get('topics_with_message_count', [])}
        return counts != {t.name: t.count for t in topics}
    except (KeyError, TypeError):
        return True
