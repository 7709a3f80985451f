"""Independent bag reading for the recording tests, checked against metadata.yaml.

The `mcap` + `mcap-ros2-support` packages (not our code, not rosbags) and plain sqlite3.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import yaml


def read_metadata(bag: Path) -> dict:
    return yaml.safe_load((Path(bag) / 'metadata.yaml').read_text())['rosbag2_bagfile_information']


def read_file(path: Path, decode: bool = False) -> list[tuple]:
    """[(topic, msgtype, log_time, data or decoded message)] in file order."""
    if path.suffix == '.db3':
        connection = sqlite3.connect(path)
        try:
            rows = connection.execute(
                'SELECT t.name, t.type, m.timestamp, m.data FROM messages m '
                'JOIN topics t ON t.id = m.topic_id ORDER BY m.id').fetchall()
        finally:
            connection.close()
        return [(a, b, c, bytes(d)) for a, b, c, d in rows]
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    out = []
    with open(path, 'rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        if decode:
            for schema, channel, message, decoded in reader.iter_decoded_messages(
                    log_time_order=False):
                out.append((channel.topic, schema.name, message.log_time, decoded))
        else:
            for schema, channel, message in reader.iter_messages(log_time_order=False):
                out.append((channel.topic, schema.name, message.log_time, message.data))
    return out


def read_bag(bag: Path, decode: bool = False) -> list[tuple]:
    """Every message of the bag, file by file as metadata.yaml lists them."""
    meta = read_metadata(bag)
    messages = []
    for name in meta['relative_file_paths']:
        messages.extend(read_file(Path(bag) / name, decode))
    return messages


def check_metadata(bag: Path) -> list[tuple]:
    """Asserts metadata.yaml agrees with the content; returns the messages (raw)."""
    meta = read_metadata(bag)
    assert meta['version'] == 9
    messages = []
    for entry in meta['files']:
        content = read_file(Path(bag) / entry['path'])
        assert entry['message_count'] == len(content), entry
        if content:
            stamps = [m[2] for m in content]
            assert entry['starting_time']['nanoseconds_since_epoch'] == min(stamps)
            assert entry['duration']['nanoseconds'] == max(stamps) - min(stamps)
        messages.extend(content)
    assert meta['relative_file_paths'] == [f['path'] for f in meta['files']]
    assert meta['message_count'] == len(messages)
    counts = {}
    for topic, msgtype, _, _ in messages:
        counts[topic] = counts.get(topic, 0) + 1
    listed = {t['topic_metadata']['name']: t['message_count']
              for t in meta['topics_with_message_count']}
    assert {k: v for k, v in listed.items() if v} == counts
    types = {t['topic_metadata']['name']: t['topic_metadata']['type']
             for t in meta['topics_with_message_count']}
    for topic, msgtype, _, _ in messages:
        assert types[topic] == msgtype
    if messages:
        stamps = [m[2] for m in messages]
        assert meta['starting_time']['nanoseconds_since_epoch'] == min(stamps)
        assert meta['duration']['nanoseconds'] == max(stamps) - min(stamps)
    return messages


def test_the_checker_catches_metadata_that_disagrees(tmp_path):
    import pytest
    from donkey_ros.recording.synthetic import write_synthetic_bag
    bag = tmp_path / 'bag'
    written = write_synthetic_bag(bag, frames=10)
    assert len(check_metadata(bag)) == sum(written.topics.values()) == 26
    text = (bag / 'metadata.yaml').read_text()
    (bag / 'metadata.yaml').write_text(text.replace('message_count: 10\n', 'message_count: 9\n', 1))
    with pytest.raises(AssertionError):
        check_metadata(bag)
