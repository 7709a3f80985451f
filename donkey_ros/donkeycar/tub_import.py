"""`donkey-ros import-tub TUB... OUT_BAG`: DonkeyCar Tub v2 folders -> one rosbag2 bag.

    donkey-ros import-tub ~/mycar/data/tub_1_24-05-03 ~/mycar/data/tub_2_24-05-04 data/bags/imported

Each non-deleted record becomes, at its own ``_timestamp_ms``:

- ``camera/image_raw/compressed`` (sensor_msgs/CompressedImage): the tub's JPEG, byte for byte
  (``--images raw``: decoded to ``camera/image_raw`` sensor_msgs/Image rgb8 instead, which the
  pilot can be fed with by ``donkey-ros replay``);
- ``user/cmd`` (geometry_msgs/TwistStamped): ``angular.z = -user/angle`` (DonkeyCar: - = left;
  here + = left), ``linear.x = user/throttle``;
- ``drive_mode`` (std_msgs/String, latched), written when it changes: DonkeyCar's 'user',
  'local_angle', 'local' become 'user', 'pilot_steer', 'pilot';
- ``pilot/cmd`` too when the tub recorded ``pilot/angle`` and ``pilot/throttle``.

Soft-deleted records (DonkeyCar's tub cleaner) are dropped. Time order is kept: a record whose
time goes backwards (a Raspberry Pi clock set by NTP mid-session) or repeats, or a tub that
starts before the previous one ends, is moved just after its predecessor and counted. The bag
gets a ``preview.png`` (steering/throttle over time and sample frames) and is read back through
the training dataset reader to say how many frames training will use.
"""
from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from donkey_ros.common import topics
from donkey_ros.common.command import clamp
from donkey_ros.common.image import ImageError, decode_jpeg
from donkey_ros.donkeycar.tub import MODES, STEERING_SIGN, Tub, TubError, TubRecord, find_tubs
from donkey_ros.recording.errors import BagError

IMAGE_CHOICES = ('jpeg', 'raw')
MIN_GAP_NS = 1_000_000
"""Spacing given to records whose time does not increase (the tub's resolution: 1 ms)."""
PREVIEW_NAME = 'preview.png'
THUMBNAILS = 6


@dataclass
class ImportSummary:
    """What ``import_tubs`` wrote and skipped."""

    bag: Path
    tubs: list = field(default_factory=list)
    """(tub path, records read, deleted) per tub."""
    records: int = 0
    """Non-deleted records converted."""
    frames: int = 0
    commands: int = 0
    pilot_commands: int = 0
    mode_changes: int = 0
    deleted: int = 0
    bad_lines: int = 0
    no_image: int = 0
    """Records without an image entry (command still written)."""
    bad_images: list = field(default_factory=list)
    """(tub, index, reason) of images missing or not decodable (command still written)."""
    no_command: int = 0
    bad_commands: int = 0
    clamped: int = 0
    missing_timestamps: int = 0
    reordered: int = 0
    modes: Counter = field(default_factory=Counter)
    unknown_modes: Counter = field(default_factory=Counter)
    sizes: Counter = field(default_factory=Counter)
    """(width, height) of the frames."""
    start_ns: int = 0
    end_ns: int = 0
    seconds: float = 0.0
    preview: Path | None = None
    usable: dict | None = None
    """Dataset counts of the written bag (see ``verify``)."""

    def text(self) -> str:
        lines = [f'wrote {self.bag}: {self.frames} frames, {self.commands} user/cmd'
                 + (f', {self.pilot_commands} pilot/cmd' if self.pilot_commands else '')
                 + f', {self.mode_changes} drive_mode from {len(self.tubs)} tub(s) '
                 f'in {self.seconds:.1f} s']
        for path, read, deleted in self.tubs:
            lines.append(f'  {path}: {read} records, {deleted} deleted (dropped)')
        if self.end_ns > self.start_ns:
            start = time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.start_ns / 1e9))
            span = (self.end_ns - self.start_ns) / 1e9
            lines.append(f'  recorded {start}, spanning {span:.1f} s')
        if self.modes:
            lines.append('  drive modes: ' + ', '.join(f'{m} {n}' for m, n in self.modes.items()))
        if len(self.sizes) > 1:
            sizes = ', '.join(f'{w}x{h} ({n})' for (w, h), n in self.sizes.items())
            lines.append(f'  warning: frames of several sizes ({sizes}); training takes one size: '
                         'import tubs of the same camera size together')
        for label, count in (('lines not readable (skipped)', self.bad_lines),
                             ('records without an image (command kept)', self.no_image),
                             ('images missing or corrupt (command kept)', len(self.bad_images)),
                             ('records without angle/throttle (image kept)', self.no_command),
                             ('commands not finite (dropped)', self.bad_commands),
                             ('commands outside [-1, 1] (clamped)', self.clamped),
                             ('records without _timestamp_ms (spaced by --rate)',
                              self.missing_timestamps),
                             ('records moved to keep time order (clock jumps, overlaps)',
                              self.reordered)):
            if count:
                lines.append(f'  warning: {count} {label}')
        for tub, index, reason in self.bad_images[:5]:
            lines.append(f'    {tub} record {index}: {reason}')
        if self.unknown_modes:
            modes = ', '.join(f"'{m}' ({n})" for m, n in self.unknown_modes.items())
            lines.append(f'  warning: unknown user/mode values kept as they are: {modes}')
        if self.usable is not None:
            lines.append(f"  read back: {self.usable['frames']} frames, {self.usable['paired']} "
                         f"paired with user/cmd; `donkey-ros train` (--modes user) will use "
                         f"{self.usable['user']}")
        if self.preview:
            lines.append(f'  preview: {self.preview}')
        return '\n'.join(lines)


class _Stamper:
    """Turns tub times into strictly increasing bag times (ns), counting what it had to move."""

    def __init__(self, period_ns: int) -> None:
        self.period_ns = period_ns
        self.offset = 0
        self.last: int | None = None
        self.missing = 0
        self.reordered = 0

    def next_tub(self) -> None:
        """Each tub has its own clock history: a shift made in one is not carried to the next
        (an overlap with the previous tub still moves the new one after it)."""
        self.offset = 0

    def __call__(self, timestamp_ms: int | None, fallback_ns: int) -> int:
        if timestamp_ms is None:
            self.missing += 1
            stamp = self.last + self.period_ns if self.last is not None else fallback_ns
        else:
            stamp = timestamp_ms * 1_000_000 + self.offset
            if self.last is not None and stamp <= self.last:
                self.reordered += 1
                self.offset += self.last + MIN_GAP_NS - stamp
                stamp = self.last + MIN_GAP_NS
        self.last = stamp
        return stamp


class _Writer:
    """Builds and writes the messages of one record (typestore messages, CDR)."""

    def __init__(self, writer, namespace: str, images: str) -> None:
        from donkey_ros.recording import messages

        self.messages = messages
        self.writer = writer
        self.images = images
        self.namespace = namespace
        self.image_topic = messages.add_topic(
            writer, topics.COMPRESSED_IMAGE if images == 'jpeg' else topics.IMAGE, namespace)
        self.user_topic = messages.add_topic(writer, topics.USER_CMD, namespace)
        self.pilot_topic = topics.in_namespace(topics.PILOT_CMD, namespace)
        self.mode_topic = messages.add_topic(writer, topics.DRIVE_MODE, namespace)

    def image(self, stamp: int, jpeg: bytes, pixels: np.ndarray) -> None:
        msg = (self.messages.compressed_image(stamp, jpeg) if self.images == 'jpeg'
               else self.messages.image(stamp, pixels))
        self.messages.write(self.writer, self.image_topic, stamp, msg)

    def command(self, topic: str, stamp: int, steering: float, throttle: float) -> None:
        if topic not in self.writer.topics:  # pilot/cmd, added when a record has one
            self.messages.add_topic(self.writer, topics.PILOT_CMD, self.namespace)
        self.messages.write(self.writer, topic, stamp,
                            self.messages.twist_stamped(stamp, steering, throttle))

    def mode(self, stamp: int, mode: str) -> None:
        self.messages.write(self.writer, self.mode_topic, stamp, self.messages.string(mode))


def convert_command(angle: float, throttle: float) -> tuple[float, float, bool]:
    """DonkeyCar (angle - = left, throttle) -> ours (steering + = left, throttle), clamped to
    [-1, 1]; the flag says whether clamping changed a value."""
    steering = STEERING_SIGN * angle
    clamped = (clamp(steering), clamp(throttle))
    return clamped[0], clamped[1], clamped != (steering, throttle)


def convert_mode(mode: str) -> str:
    """DonkeyCar ``user/mode`` -> ``drive_mode``; unknown values are returned unchanged."""
    return MODES.get(mode, mode)


def import_tubs(tubs: Sequence[str | Path], bag: str | Path, images: str = 'jpeg',
                namespace: str = '', rate_hz: float = 20.0, storage: str = 'mcap',
                compression: str = 'none', preview: bool = True, verify: bool = True,
                progress: Callable[[int], None] | None = None) -> ImportSummary:
    """Converts DonkeyCar tubs (in the order given) into one new bag.

    Args:
        tubs: Tub v2 folders, or folders of tubs (DonkeyCar's ``data/``).
        bag: the bag directory to create (must not exist).
        images: 'jpeg' keeps each JPEG as a CompressedImage; 'raw' decodes to rgb8 Images.
        namespace: put the topics under this namespace (e.g. 'car1'); '' for none.
        rate_hz: spacing of records that have no ``_timestamp_ms`` (DonkeyCar DRIVE_LOOP_HZ).
        storage, compression: as ``donkey_ros.recording.writer.BagWriter``.
        preview: write ``BAG/preview.png``.
        verify: read the bag back through the dataset reader (``summary.usable``).
        progress: called with the number of records handled since the last call.

    Raises:
        TubError: a path is not a Tub v2 (v1 tubs are named as such).
        BagError: the bag exists already or cannot be written, or no frame at all could be
            imported (every image missing...): the bag is removed and the message says why.
    """
    from donkey_ros.recording.writer import BagWriter

    if images not in IMAGE_CHOICES:
        raise BagError(f"images must be one of {', '.join(IMAGE_CHOICES)}, got '{images}'")
    if not (rate_hz > 0 and math.isfinite(rate_hz)):
        raise BagError(f'rate must be a positive number of Hz, got {rate_hz!r}')
    paths = [tub for path in tubs for tub in find_tubs(path)]
    opened = [Tub(path) for path in paths]          # every tub checked before anything is written
    bag = Path(bag).expanduser()
    summary = ImportSummary(bag)
    started = time.monotonic()
    stamper = _Stamper(int(round(1e9 / rate_hz)))
    timeline: list[tuple[int, float, float]] = []
    thumbs: list[tuple[int, np.ndarray, float | None]] = []
    expected = sum(len(tub) for tub in opened)
    every = max(1, expected // THUMBNAILS)
    custom = {'donkey_ros.source': 'donkeycar tub v2',
              'donkey_ros.namespace': '/' + namespace.strip('/') if namespace.strip('/') else '/',
              'donkeycar.tubs': ';'.join(str(p.resolve()) for p in paths)}
    writer = BagWriter(bag, storage=storage, compression=compression, custom_data=custom)
    writer.open()
    try:
        out = _Writer(writer, namespace, images)
        mode = None
        for tub in opened:
            fallback = _created_ns(tub)
            stamper.next_tub()
            read = 0
            for record in tub.records():
                read += 1
                stamp = stamper(record.timestamp_ms, fallback)
                mode = _write_record(out, tub, record, stamp, mode, summary, timeline,
                                     thumbs if (summary.records % every == 0
                                                and len(thumbs) < THUMBNAILS) else None)
                if progress is not None:
                    progress(1)
            summary.tubs.append((str(tub.path), read + tub.counts.deleted, tub.counts.deleted))
            summary.deleted += tub.counts.deleted
            summary.bad_lines += tub.counts.bad_lines
            if progress is not None and tub.counts.deleted:
                progress(tub.counts.deleted)
            for name in tub.counts.missing_catalogs:
                summary.bad_images.append((str(tub.path), '-', f'catalog {name} missing'))
        writer.close()
        if not summary.frames:
            raise BagError(_nothing_imported(summary, len(opened)))
    except BaseException:
        # A half-written bag must not pass for an import: remove what this run created.
        writer.close()
        shutil.rmtree(bag, ignore_errors=True)
        raise
    summary.missing_timestamps = stamper.missing
    summary.reordered = stamper.reordered
    if timeline:
        summary.start_ns, summary.end_ns = timeline[0][0], timeline[-1][0]
    summary.seconds = time.monotonic() - started
    if verify and summary.frames:
        summary.usable = verify_bag(bag)
    if preview and summary.frames:
        summary.preview = write_preview(bag / PREVIEW_NAME, timeline, thumbs, summary)
    return summary


def _nothing_imported(summary: ImportSummary, tubs: int) -> str:
    """Why an import wrote no frame, in one line (the bag is then removed)."""
    why = f'{summary.records} record(s)'
    if summary.bad_images:
        tub, index, reason = summary.bad_images[0]
        why += (f', {len(summary.bad_images)} image(s) missing or corrupt (first: {tub} record '
                f'{index}: {reason})')
    if summary.no_image:
        why += f', {summary.no_image} record(s) without an image entry'
    if summary.deleted:
        why += f', {summary.deleted} deleted record(s) dropped'
    return (f'no frames imported from {tubs} tub(s) ({why}); nothing written, '
            f'{summary.bag} removed')


def _created_ns(tub: Tub) -> int:
    created = tub.manifest_metadata.get('created_at') if isinstance(
        tub.manifest_metadata, dict) else None
    return int(float(created) * 1e9) if isinstance(created, (int, float)) else time.time_ns()


def _write_record(out: _Writer, tub: Tub, record: TubRecord, stamp: int, mode: str | None,
                  summary: ImportSummary, timeline: list, thumbs: list | None) -> str | None:
    """Writes one record's messages (mode, command(s), image); returns the drive mode in force."""
    summary.records += 1
    if record.mode is not None:
        new = convert_mode(record.mode)
        if record.mode not in MODES:
            summary.unknown_modes[record.mode] += 1
        summary.modes[new] += 1
        if new != mode:
            out.mode(stamp, new)
            summary.mode_changes += 1
            mode = new
    steering = throttle = None
    if record.angle is None or record.throttle is None:
        summary.no_command += 1
    elif not (math.isfinite(record.angle) and math.isfinite(record.throttle)):
        summary.bad_commands += 1
    else:
        steering, throttle, clamped = convert_command(record.angle, record.throttle)
        summary.clamped += clamped
        out.command(out.user_topic, stamp, steering, throttle)
        summary.commands += 1
    if record.pilot_angle is not None and record.pilot_throttle is not None and math.isfinite(
            record.pilot_angle) and math.isfinite(record.pilot_throttle):
        pilot_steering, pilot_throttle, _ = convert_command(record.pilot_angle,
                                                            record.pilot_throttle)
        out.command(out.pilot_topic, stamp, pilot_steering, pilot_throttle)
        summary.pilot_commands += 1
    timeline.append((stamp, np.nan if steering is None else steering,
                     np.nan if throttle is None else throttle))
    if record.image is None:
        summary.no_image += 1
        return mode
    try:
        data = record.image.read_bytes()
    except OSError as error:
        summary.bad_images.append((str(tub.path), record.index,
                                   f'{record.image.name}: {error.strerror or error}'))
        return mode
    try:
        pixels = decode_jpeg(data)
    except ImageError:
        summary.bad_images.append((str(tub.path), record.index,
                                   f'{record.image.name} is not a readable JPEG'))
        return mode
    out.image(stamp, data, pixels)
    summary.frames += 1
    summary.sizes[(pixels.shape[1], pixels.shape[0])] += 1
    if thumbs is not None:
        thumbs.append((stamp, pixels, steering))
    return mode


def verify_bag(bag: Path) -> dict:
    """Reads the bag back as training does: frames, frames paired with a user/cmd, and frames
    the default training filters (drive mode 'user') keep."""
    from donkey_ros.recording.dataset import open_dataset

    everything = open_dataset([bag], modes=None, decode_images=False)
    for _ in everything:
        pass
    user = open_dataset([bag], modes=('user',), decode_images=False)
    for _ in user:
        pass
    return {'frames': everything.counts.frames, 'paired': everything.counts.used,
            'user': user.counts.used}


def write_preview(path: Path, timeline: list, thumbs: list, summary: ImportSummary) -> Path:
    """A picture of the import: steering (+ = left) and throttle over time, sample frames."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    data = np.array([(t, s, g) for t, s, g in timeline], dtype=np.float64)
    seconds = (data[:, 0] - data[0, 0]) / 1e9
    figure = plt.figure(figsize=(11, 6.5))
    grid = figure.add_gridspec(2, max(1, len(thumbs)), height_ratios=(2.2, 1))
    axes = figure.add_subplot(grid[0, :])
    axes.plot(seconds, data[:, 1], lw=0.8, label='steering (+ = left, = -DonkeyCar angle)')
    axes.plot(seconds, data[:, 2], lw=0.8, label='throttle')
    axes.axhline(0.0, color='0.6', lw=0.5)
    axes.set_ylim(-1.05, 1.05)
    axes.set_xlabel('seconds since the first record')
    axes.legend(loc='upper right', fontsize=8)
    axes.set_title(f'{summary.bag.name}: {summary.frames} frames from {len(summary.tubs)} tub(s), '
                   f'{summary.deleted} deleted records dropped', fontsize=10)
    for i, (stamp, pixels, steering) in enumerate(thumbs):
        thumb = figure.add_subplot(grid[1, i])
        thumb.imshow(pixels)
        thumb.set_axis_off()
        label = 'no command' if steering is None else f'steer {steering:+.2f}'
        thumb.set_title(f'{(stamp - data[0, 0]) / 1e9:.1f} s, {label}', fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='donkey-ros import-tub', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('tubs', nargs='+', metavar='TUB',
                        help="DonkeyCar Tub v2 folders, or folders of tubs (DonkeyCar's data/)")
    parser.add_argument('bag', metavar='OUT_BAG', help='the bag directory to create')
    parser.add_argument('--images', choices=IMAGE_CHOICES, default='jpeg',
                        help='jpeg: keep the JPEGs as camera/image_raw/compressed (exact, '
                        'small; default); raw: decode to camera/image_raw rgb8')
    parser.add_argument('--namespace', default='', help="put the topics under a car's "
                        'namespace (e.g. car1)')
    parser.add_argument('--rate', type=float, default=20.0,
                        help='Hz used to space records without _timestamp_ms (DRIVE_LOOP_HZ)')
    parser.add_argument('--compression', choices=('none', 'zstd'), default='none',
                        help='MCAP chunk compression')
    parser.add_argument('--no-preview', action='store_true', help='do not write preview.png')
    parser.add_argument('--no-verify', action='store_true',
                        help='do not read the bag back through the dataset reader')
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    tubs, bag = args.tubs, args.bag
    if Path(bag).exists():
        raise BagError(f"'{bag}' exists already; give a new bag path (a bag is never "
                       'overwritten)')
    # Every tub is opened (and a bad one reported) before the progress bar starts.
    total = sum(Tub(path).current_index for tub in tubs for path in find_tubs(tub))
    from tqdm import tqdm

    bar = tqdm(total=total, desc='importing', unit=' records', file=sys.stderr,
               dynamic_ncols=True, mininterval=0.5, disable=None)
    try:
        summary = import_tubs(tubs, bag, images=args.images, namespace=args.namespace,
                              rate_hz=args.rate, compression=args.compression,
                              preview=not args.no_preview, verify=not args.no_verify,
                              progress=bar.update)
    finally:
        bar.close()
    print(summary.text())
    return 0


__all__ = ['ImportSummary', 'TubError', 'convert_command', 'convert_mode', 'import_tubs', 'main']
