"""`donkey-ros bag info`: what a bag holds and how much of it can train a pilot."""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from donkey_ros.recording.dataset import (
    Dataset, DatasetError, find_bags, load_exclusions, open_reader)


@dataclass
class TopicInfo:
    name: str
    msgtype: str
    count: int
    rate: float


@dataclass
class BagInfo:
    path: str
    storage: str
    files: list[str]
    size_bytes: int
    start_ns: int
    duration_s: float
    messages: int
    topics: list[TopicInfo] = field(default_factory=list)
    excluded_ranges: int = 0
    excluded_s: float = 0.0
    usable: dict | None = None


def bag_info(path: str | Path, usable: bool = True, **filters) -> BagInfo:
    """Summarises one bag; ``usable`` also counts the frames a ``Dataset`` would yield.

    Raises:
        DatasetError: missing, damaged or not a bag.
    """
    bag = Path(path).expanduser()
    if not bag.exists():
        raise DatasetError(f"bag '{bag}' does not exist")
    bags = find_bags(bag)
    if len(bags) != 1 or bags[0] != bag:
        raise DatasetError(f"'{bag}' is a folder of {len(bags)} bags; give one bag")
    reader = open_reader(bag)
    try:
        duration = reader.duration / 1e9 if reader.message_count else 0.0
        files = [p.name for p in (bag.iterdir() if bag.is_dir() else [bag])
                 if p.suffix in ('.mcap', '.db3')]
        size = sum((bag / f).stat().st_size for f in files) if bag.is_dir() else bag.stat().st_size
        topics = []
        for name, topic in sorted(reader.topics.items()):
            rate = topic.msgcount / duration if duration > 0 else 0.0
            topics.append(TopicInfo(name, topic.msgtype or '?', topic.msgcount, rate))
        storage = 'mcap' if any(f.endswith('.mcap') for f in files) or bag.suffix == '.mcap' \
            else 'sqlite3'
        info = BagInfo(str(bag), storage, sorted(files), size,
                       reader.start_time if reader.message_count else 0, duration,
                       reader.message_count, topics)
    finally:
        reader.close()
    ranges = load_exclusions(bag)
    info.excluded_ranges = len(ranges)
    info.excluded_s = sum(b - a for a, b in ranges) / 1e9
    if usable:
        data = Dataset([bag], decode_images=False, **filters)
        for _ in data:
            pass
        info.usable = data.counts.as_dict()
    return info


def format_info(info: BagInfo) -> str:
    start = (time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(info.start_ns / 1e9))
             if info.start_ns else '-')
    lines = [
        f'bag:       {info.path}',
        f'storage:   {info.storage}, {len(info.files)} file(s), {info.size_bytes / 1e6:.1f} MB',
        f'start:     {start}',
        f'duration:  {info.duration_s:.1f} s',
        f'messages:  {info.messages}',
        'topics:']
    width = max((len(t.name) for t in info.topics), default=5)
    for t in info.topics:
        lines.append(f'  {t.name:<{width}}  {t.count:>7}  {t.rate:7.1f} Hz  {t.msgtype}')
    if info.excluded_ranges:
        lines.append(f'excluded:  {info.excluded_ranges} range(s), {info.excluded_s:.1f} s '
                     '(exclusions.yaml)')
    if info.usable is not None:
        u = info.usable
        lines.append(f"training:  {u['used']} of {u['frames']} frames usable "
                     f"(skipped: no command {u['no_command']}, mode {u['mode']}, throttle "
                     f"{u['throttle']}, excluded {u['excluded']}, bad image {u['bad_image']})")
    return '\n'.join(lines)


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--modes', default='user',
                        help="drive modes kept, comma-separated, or 'any' (default: user)")
    parser.add_argument('--min-throttle', type=float, default=None,
                        help='keep frames with throttle >= this')
    parser.add_argument('--tolerance', type=float, default=0.1,
                        help='max age (s) of the command paired with a frame (default 0.1)')
    parser.add_argument('--namespace', default=None, help='car namespace if a bag has several')


def filters_from(args) -> dict:
    modes = None if args.modes in ('any', '') else tuple(m for m in args.modes.split(',') if m)
    return {'modes': modes, 'min_throttle': args.min_throttle, 'tolerance': args.tolerance,
            'namespace': args.namespace}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog='donkey-ros bag info',
                                     description='Summarise bags: topics, counts, rates, '
                                     'duration, frames usable for training.')
    parser.add_argument('bags', nargs='+', help='bag directories (or folders of bags)')
    parser.add_argument('--fast', action='store_true',
                        help='skip counting usable frames (reads only the index)')
    parser.add_argument('--json', action='store_true', help='print JSON')
    add_filter_arguments(parser)
    args = parser.parse_args(argv)
    infos = []
    for path in args.bags:
        for bag in find_bags(path):
            infos.append(bag_info(bag, usable=not args.fast, **filters_from(args)))
    if args.json:
        print(json.dumps([vars(i) | {'topics': [vars(t) for t in i.topics]} for i in infos],
                         indent=2))
    else:
        print('\n\n'.join(format_info(i) for i in infos))
    return 0
