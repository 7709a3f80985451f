"""`donkey-ros clean BAG`: mark the segments a pilot should not learn from (DonkeyCar's tubclean).

Never rewrites the bag: it writes ``BAG/exclusions.yaml`` (time ranges the dataset skips) and
``BAG/contact_sheet.png`` (thumbnails across the bag, dropped ones crossed out in red, and a
timeline) so a person can check the result at a glance. Segments are found:

- around off-track events when simulator ground truth is recorded (sim/status on_track false),
  widened by ``margin_before`` (the mistake that led there) and ``margin_after``;
- around stops and collisions: speed near 0 (ground truth) or the throttle cut (user/cmd),
  lasting at least ``min_stop`` s, widened the same way;
- manual ranges, in seconds from the bag's start (kept across runs unless ``reset``).
"""
from __future__ import annotations

import argparse
import datetime
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from donkey_ros.recording.dataset import (
    EXCLUSIONS_FILE, DatasetError, decode_image, find_bags, open_reader, read_exclusions,
    resolve_topics)
from donkey_ros.recording.errors import BagError

SHEET_FILE = 'contact_sheet.png'


@dataclass
class Exclusion:
    start_ns: int
    end_ns: int
    reason: str


@dataclass
class CleanSettings:
    margin_before: float = 1.0
    margin_after: float = 0.5
    stop_speed: float = 0.05
    throttle_cut: float = 0.02
    min_stop: float = 0.5
    auto: bool = True


@dataclass
class CleanResult:
    bag: Path
    start_ns: int
    end_ns: int
    exclusions: list[Exclusion]
    frames: int
    dropped_frames: int
    exclusions_path: Path | None = None
    sheet_path: Path | None = None
    thumbnails: list = field(default_factory=list, repr=False)

    def text(self) -> str:
        total = sum(e.end_ns - e.start_ns for e in self.exclusions) / 1e9
        reasons: dict[str, int] = {}
        for e in self.exclusions:
            for reason in e.reason.split('+'):
                reasons[reason] = reasons.get(reason, 0) + 1
        detail = ', '.join(f'{k} {v}' for k, v in sorted(reasons.items())) or 'none'
        lines = [f'bag {self.bag}: {len(self.exclusions)} excluded range(s), {total:.1f} s '
                 f'({detail}); {self.frames - self.dropped_frames} of {self.frames} frames kept']
        for e in self.exclusions:
            lines.append(f'  {(e.start_ns - self.start_ns) / 1e9:8.2f} .. '
                         f'{(e.end_ns - self.start_ns) / 1e9:8.2f} s  {e.reason}')
        if self.exclusions_path:
            lines.append(f'wrote {self.exclusions_path}')
        if self.sheet_path:
            lines.append(f'wrote {self.sheet_path}')
        return '\n'.join(lines)


def condition_ranges(series: list[tuple[int, bool]],
                     min_length_ns: int = 0) -> list[tuple[int, int]]:
    """Time ranges where a sampled condition holds (first true sample to the next false one)."""
    ranges, begin, last = [], None, None
    for stamp, value in series:
        if value and begin is None:
            begin = stamp
        elif not value and begin is not None:
            ranges.append((begin, stamp))
            begin = None
        last = stamp
    if begin is not None:
        ranges.append((begin, last))
    return [(a, b) for a, b in ranges if b - a >= min_length_ns]


def merge(exclusions: list[Exclusion]) -> list[Exclusion]:
    """Sorted, overlapping ranges joined (reasons combined with '+')."""
    merged: list[Exclusion] = []
    for e in sorted(exclusions, key=lambda e: e.start_ns):
        if merged and e.start_ns <= merged[-1].end_ns:
            last = merged[-1]
            last.end_ns = max(last.end_ns, e.end_ns)
            if e.reason not in last.reason.split('+'):
                last.reason += '+' + e.reason
        else:
            merged.append(Exclusion(e.start_ns, e.end_ns, e.reason))
    return merged


def parse_range(text: str) -> tuple[float, float]:
    """'12.5:18' -> (12.5, 18.0); '30:' -> (30, inf); ':5' -> (0, 5).

    Raises:
        BagError: not START:END with START < END.
    """
    try:
        start_text, end_text = text.split(':')
        start = float(start_text) if start_text else 0.0
        end = float(end_text) if end_text else math.inf
    except ValueError:
        raise BagError(f"time range '{text}' is not START:END in seconds (e.g. 12.5:18)") from None
    if not (start < end and start >= 0):
        raise BagError(f"time range '{text}' must have 0 <= START < END")
    return start, end


def read_previous_manual(bag: Path) -> list[Exclusion]:
    """The manual ranges of an earlier run (``read_exclusions``'s checks: a misspelled key is
    an error, not a silently lost range)."""
    return [Exclusion(r['start_ns'], r['end_ns'], 'manual') for r in read_exclusions(bag)
            if 'manual' in r['reason']]


def clean_bag(bag: str | Path, manual: list[tuple[float, float]] = (),
              settings: CleanSettings | None = None, reset: bool = False,
              write: bool = True, sheet: bool = True, thumbnails: int = 120,
              namespace: str | None = None) -> CleanResult:
    """Finds the segments to drop in ``bag``, writes exclusions.yaml and the contact sheet.

    Raises:
        DatasetError / BagError: missing or damaged bag, no camera topic.
    """
    settings = settings or CleanSettings()
    bags = find_bags(bag)
    if len(bags) != 1 or not bags[0].is_dir():
        raise DatasetError(f"'{bag}' is not one bag directory")
    bag = bags[0]
    reader = open_reader(bag)
    try:
        topics = resolve_topics(bag, reader.connections, namespace=namespace)
        start_ns, end_ns = reader.start_time, reader.end_time
        frame_total = next((c.msgcount for c in reader.connections if c.topic == topics.image), 0)
        every = max(1, math.ceil(frame_total / max(1, thumbnails)))
        wanted = {topics.image, topics.command, topics.status, topics.odom} - {None}
        connections = [c for c in reader.connections if c.topic in wanted]
        from donkey_ros.recording.types import register_from_bag, typestore
        register_from_bag(connections)
        store = typestore()
        frames: list[int] = []
        thumbs: list[tuple[int, np.ndarray | None]] = []
        throttle: list[tuple[int, float]] = []
        status: list[tuple[int, bool, float]] = []
        odom_speed: list[tuple[int, float]] = []
        for connection, stamp, raw in reader.messages(connections):
            topic = connection.topic
            if topic == topics.image:
                if sheet and len(frames) % every == 0:
                    thumbs.append((stamp, _thumbnail(raw, connection.msgtype)))
                frames.append(stamp)
                continue
            try:
                msg = store.deserialize_cdr(raw, connection.msgtype)
            except Exception:  # a corrupt message is skipped, like in the dataset
                continue
            if topic == topics.command:
                throttle.append((stamp, float(msg.twist.linear.x)))
            elif topic == topics.status:
                status.append((stamp, bool(msg.on_track), float(msg.speed)))
            elif topic == topics.odom:
                odom_speed.append((stamp, float(msg.twist.twist.linear.x)))
    except (OSError, ValueError, EOFError) as error:
        raise DatasetError(f"bag '{bag}' is damaged ({error}): "
                           f'run `donkey-ros bag repair {bag}`') from None
    finally:
        reader.close()

    before, after = int(settings.margin_before * 1e9), int(settings.margin_after * 1e9)
    min_stop = int(settings.min_stop * 1e9)
    found: list[Exclusion] = []

    def widen(ranges, reason):
        for a, b in ranges:
            found.append(Exclusion(max(start_ns, a - before), min(end_ns, b + after), reason))

    if settings.auto:
        widen(condition_ranges([(t, not on) for t, on, _ in status]), 'off_track')
        speeds = [(t, v) for t, _, v in status] or odom_speed
        widen(condition_ranges([(t, abs(v) < settings.stop_speed) for t, v in speeds], min_stop),
              'stopped')
        widen(condition_ranges([(t, abs(v) < settings.throttle_cut) for t, v in throttle],
                               min_stop), 'throttle_cut')
    manual_ranges = [] if reset else read_previous_manual(bag)
    length = (end_ns - start_ns) / 1e9
    for a, b in manual:
        if a * 1e9 > end_ns - start_ns:
            raise BagError(f"--drop {a:g}:{'' if math.isinf(b) else f'{b:g}'} starts after the "
                           f'end of {bag} ({length:.1f} s long): give seconds from the bag start')
        first = start_ns + int(a * 1e9)
        last = end_ns if b * 1e9 >= end_ns - start_ns else start_ns + int(b * 1e9)
        manual_ranges.append(Exclusion(first, last, 'manual'))
    exclusions = merge(found + manual_ranges)
    dropped = sum(1 for t in frames if _inside(t, exclusions))
    result = CleanResult(bag, start_ns, end_ns, exclusions, len(frames), dropped,
                         thumbnails=thumbs)
    if write:
        result.exclusions_path = write_exclusions(bag, result, settings)
        if sheet:
            result.sheet_path = write_contact_sheet(result, bag / SHEET_FILE)
    return result


def _inside(stamp: int, exclusions: list[Exclusion]) -> bool:
    return any(e.start_ns <= stamp <= e.end_ns for e in exclusions)


def _thumbnail(raw: bytes, msgtype: str, width: int = 96) -> np.ndarray | None:
    try:
        image = decode_image(raw, msgtype)
    except Exception:  # an undecodable frame shows as a grey tile
        return None
    from PIL import Image
    height = max(1, round(image.shape[0] * width / image.shape[1]))
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def write_exclusions(bag: Path, result: CleanResult, settings: CleanSettings) -> Path:
    """Writes ``bag/exclusions.yaml`` (atomically)."""
    data = {
        'created': datetime.datetime.now().isoformat(timespec='seconds'),
        'tool': 'donkey-ros clean',
        'settings': vars(settings),
        'frames': result.frames,
        'dropped_frames': result.dropped_frames,
        'exclude': [{'start_ns': e.start_ns, 'end_ns': e.end_ns,
                     'start_s': round((e.start_ns - result.start_ns) / 1e9, 3),
                     'end_s': round((e.end_ns - result.start_ns) / 1e9, 3),
                     'reason': e.reason} for e in result.exclusions],
    }
    path = bag / EXCLUSIONS_FILE
    tmp = path.with_suffix('.yaml.tmp')
    tmp.write_text('# Time ranges (bag time, ns) that training skips. Written by '
                   '`donkey-ros clean`; edit or re-run it.\n'
                   + yaml.safe_dump(data, sort_keys=False))
    tmp.replace(path)
    return path


def write_contact_sheet(result: CleanResult, path: Path, columns: int = 12) -> Path:
    """A PNG grid of thumbnails (red border + cross = dropped) with a timeline of the ranges."""
    from PIL import Image, ImageDraw

    thumbs = result.thumbnails
    tile_w = 96
    tile_h = max((t.shape[0] for _, t in thumbs if t is not None), default=72)
    pad, label_h, header_h, timeline_h = 4, 12, 36, 40
    rows = max(1, math.ceil(len(thumbs) / columns))
    width = columns * (tile_w + pad) + pad
    height = header_h + rows * (tile_h + label_h + pad) + timeline_h + pad
    sheet = Image.new('RGB', (width, height), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    kept = result.frames - result.dropped_frames
    draw.text((pad, 4), f'{result.bag.name}: {kept} of {result.frames} frames kept, '
              f'{len(result.exclusions)} range(s) dropped', fill=(255, 255, 255))
    draw.text((pad, 18), 'green = kept, red = dropped (off_track / stopped / throttle_cut / '
              'manual)', fill=(180, 180, 180))
    for index, (stamp, thumb) in enumerate(thumbs):
        x = pad + (index % columns) * (tile_w + pad)
        y = header_h + (index // columns) * (tile_h + label_h + pad)
        if thumb is not None:
            sheet.paste(Image.fromarray(thumb), (x, y))
        else:
            draw.rectangle([x, y, x + tile_w - 1, y + tile_h - 1], fill=(90, 90, 90))
        dropped = _inside(stamp, result.exclusions)
        color = (230, 40, 40) if dropped else (40, 200, 60)
        draw.rectangle([x, y, x + tile_w - 1, y + tile_h - 1], outline=color, width=3)
        if dropped:
            draw.line([x, y, x + tile_w - 1, y + tile_h - 1], fill=color, width=2)
            draw.line([x, y + tile_h - 1, x + tile_w - 1, y], fill=color, width=2)
        draw.text((x + 2, y + tile_h), f'{(stamp - result.start_ns) / 1e9:.1f}s',
                  fill=(220, 220, 220))
    # Timeline: the whole bag, dropped ranges in red.
    top = height - timeline_h
    left, right = pad, width - pad
    span = max(1, result.end_ns - result.start_ns)
    draw.rectangle([left, top + 8, right, top + 24], fill=(40, 200, 60))
    for e in result.exclusions:
        a = left + (right - left) * (e.start_ns - result.start_ns) / span
        b = left + (right - left) * (e.end_ns - result.start_ns) / span
        draw.rectangle([a, top + 8, max(a + 1, b), top + 24], fill=(230, 40, 40))
    draw.text((left, top + 26), '0 s', fill=(200, 200, 200))
    draw.text((right - 60, top + 26), f'{span / 1e9:.1f} s', fill=(200, 200, 200))
    sheet.save(path)
    return path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog='donkey-ros clean',
        description='Mark segments to drop from training (off-track, stops/collisions, manual '
        'ranges): writes BAG/exclusions.yaml and BAG/contact_sheet.png; the bag is not changed.')
    parser.add_argument('bags', nargs='+', help='bag directories (or folders of bags)')
    parser.add_argument('--drop', action='append', default=[], metavar='START:END',
                        help='drop this range, seconds from the bag start (repeatable; '
                        "'30:' = to the end)")
    parser.add_argument('--no-auto', action='store_true',
                        help='only manual ranges (no off-track / stop detection)')
    parser.add_argument('--reset', action='store_true', help='forget earlier manual ranges')
    parser.add_argument('--margin-before', type=float, default=1.0,
                        help='seconds dropped before an event (default 1.0)')
    parser.add_argument('--margin-after', type=float, default=0.5,
                        help='seconds dropped after an event (default 0.5)')
    parser.add_argument('--stop-speed', type=float, default=0.05,
                        help='speed (m/s) below which the car counts as stopped (default 0.05)')
    parser.add_argument('--min-stop', type=float, default=0.5,
                        help='shortest stop / throttle cut (s) to drop (default 0.5)')
    parser.add_argument('--no-sheet', action='store_true', help='do not draw the contact sheet')
    parser.add_argument('--thumbnails', type=int, default=120, help='thumbnails on the sheet')
    parser.add_argument('--dry-run', action='store_true', help='print, write nothing')
    parser.add_argument('--namespace', default=None, help='car namespace if a bag has several')
    args = parser.parse_args(argv)
    manual = [parse_range(text) for text in args.drop]
    settings = CleanSettings(margin_before=args.margin_before, margin_after=args.margin_after,
                             stop_speed=args.stop_speed, min_stop=args.min_stop,
                             auto=not args.no_auto)
    for path in args.bags:
        for bag in find_bags(path):
            result = clean_bag(bag, manual, settings, reset=args.reset, write=not args.dry_run,
                               sheet=not args.no_sheet, thumbnails=args.thumbnails,
                               namespace=args.namespace)
            print(result.text())
    return 0
