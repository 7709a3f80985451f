"""`donkey-ros bag`: bag tools (`info`, `repair`)."""
from __future__ import annotations

import argparse
import sys
import time

from donkey_ros.recording import bag_info
from donkey_ros.recording.repair import repair_bag

USAGE = """usage: donkey-ros bag {info,repair} ...

  info BAG...     topics, counts, rates, duration, frames usable for training
  repair BAG...   recover a bag after a crash or power cut (rebuild index and metadata.yaml)
"""


def repair_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog='donkey-ros bag repair',
        description='Recover bags left incomplete by a crash, kill -9 or power cut: truncated '
        'MCAP files are rewritten from their readable part (originals kept as *.damaged), '
        'metadata.yaml is rebuilt from the files.')
    parser.add_argument('bags', nargs='+', help='bag directories')
    parser.add_argument('--delete-damaged', action='store_true',
                        help='delete damaged originals instead of keeping them as *.damaged')
    args = parser.parse_args(argv)
    last = [0.0]

    def progress(name: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] > 0.5 or done >= total:
            last[0] = now
            print(f'\r  recovering {name}: {100 * done / max(1, total):5.1f} %', end='',
                  file=sys.stderr, flush=True)

    for bag in args.bags:
        report = repair_bag(bag, keep_damaged=not args.delete_damaged, progress=progress)
        print('\r', end='', file=sys.stderr)
        print(report.text())
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ('-h', '--help'):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == 'info':
        return bag_info.main(rest)
    if command == 'repair':
        return repair_main(rest)
    print(f"donkey-ros bag: unknown sub-command '{command}'\n\n{USAGE}", file=sys.stderr)
    return 2
