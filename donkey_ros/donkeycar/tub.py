"""DonkeyCar tubs read as plain records (no ROS, no DonkeyCar install needed).

A Tub v2 (DonkeyCar 4.x and 5.x, ``donkeycar/parts/tub_v2.py``) is a folder::

    manifest.json            5 JSON lines: inputs, types, user metadata, manifest metadata,
                             catalog metadata {"paths", "current_index", "max_len",
                             "deleted_indexes"}
    catalog_0.catalog        one JSON record per line (max_len records per catalog)
    catalog_0.catalog_manifest   {"path", "created_at", "start_index", "line_lengths"}
    images/0_cam_image_array_.jpg ...

A record holds its inputs (``cam/image_array`` is the image's file name in ``images/``,
``user/angle``, ``user/throttle``, ``user/mode``...) and the private ``_index``,
``_timestamp_ms`` and ``_session_id``. Deleting a record in DonkeyCar only adds its index to
``deleted_indexes``; those records are skipped here too (``Tub.records(include_deleted=True)`` gives
them back). Lines end in ``\\n`` (DonkeyCar 4.2+) or ``\\r\\n`` (earlier v2 tubs); both are read.

Older tubs (v1: ``meta.json`` + ``record_<n>.json`` files) are recognised and refused with the
way to convert them.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from donkey_ros.common.errors import DonkeyRosError

IMAGE_KEY = 'cam/image_array'
ANGLE_KEY = 'user/angle'
THROTTLE_KEY = 'user/throttle'
MODE_KEY = 'user/mode'
PILOT_ANGLE_KEY = 'pilot/angle'
PILOT_THROTTLE_KEY = 'pilot/throttle'
MANIFEST = 'manifest.json'
IMAGES = 'images'

MODES = {'user': 'user', 'local_angle': 'pilot_steer', 'local': 'pilot'}
"""DonkeyCar ``user/mode`` -> this project's ``drive_mode``."""

STEERING_SIGN = -1.0
"""DonkeyCar angle: negative = left. Ours (REP 103): positive = left. ours = SIGN * angle."""


class TubError(DonkeyRosError):
    """A folder is not a readable DonkeyCar tub; the message names the folder and the fix."""


@dataclass(frozen=True)
class TubRecord:
    """One record of a tub, with the DonkeyCar values as recorded (steering NOT converted).

    Attributes:
        index: the record's index in the tub (``_index``; the line position if absent).
        timestamp_ms: ``_timestamp_ms`` (ms since the epoch, the car's clock), None if absent.
        image: absolute path of the camera JPEG, None if the record has no image.
        angle, throttle: ``user/angle`` (DonkeyCar sign: - = left), ``user/throttle``.
        mode: ``user/mode`` ('user', 'local_angle', 'local'), None if not recorded.
        pilot_angle, pilot_throttle: ``pilot/angle``, ``pilot/throttle`` (RECORD_DURING_AI).
        deleted: the index is in the manifest's ``deleted_indexes``.
        values: the whole JSON record.
    """

    index: int
    timestamp_ms: int | None
    image: Path | None
    angle: float | None
    throttle: float | None
    mode: str | None
    pilot_angle: float | None
    pilot_throttle: float | None
    deleted: bool
    values: dict


@dataclass
class TubCounts:
    """What a pass over a tub found (reset by each ``Tub.records`` pass)."""

    lines: int = 0
    """Catalog lines read (records, deleted or not, readable or not)."""
    deleted: int = 0
    bad_lines: int = 0
    """Lines that are not a JSON object (a crash while writing leaves a partial last line)."""
    missing_catalogs: list = field(default_factory=list)


def detect_format(path: Path) -> str | None:
    """'v2' (manifest.json), 'v1' (meta.json + record_*.json) or None (not a tub)."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return 'v2'
    if (path / 'meta.json').is_file() or any(path.glob('record_*.json')):
        return 'v1'
    return None


def _json_lines(path: Path) -> list[str]:
    """The non-empty lines of a DonkeyCar newline-delimited file, without \\r\\n."""
    with open(path, encoding='utf-8', newline='') as stream:
        return [line.rstrip('\r\n') for line in stream if line.strip()]


class Tub:
    """A DonkeyCar Tub v2 folder, opened for reading.

    Args:
        path: the tub folder (the one holding manifest.json).

    Raises:
        TubError: not a folder, a v1 tub, no manifest, or a manifest that is not Tub v2's.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        if not self.path.is_dir():
            raise TubError(f"tub '{self.path}' does not exist or is not a folder")
        kind = detect_format(self.path)
        if kind == 'v1':
            raise TubError(
                f"'{self.path}' is a DonkeyCar tub v1 (meta.json + record_<n>.json files); only "
                'Tub v2 (manifest.json + catalogs, DonkeyCar 4.0 and later) is imported: convert '
                "it first with DonkeyCar's scripts/convert_to_tub_v2.py --tub=OLD --output=NEW")
        if kind is None:
            raise TubError(f"'{self.path}' is not a DonkeyCar tub (no {MANIFEST}, no meta.json)")
        manifest = self.path / MANIFEST
        try:
            lines = _json_lines(manifest)
        except (OSError, UnicodeDecodeError) as error:
            raise TubError(f'cannot read {manifest}: {error}') from None
        if len(lines) < 5:
            raise TubError(f'{manifest} has {len(lines)} lines; a Tub v2 manifest has 5 (inputs, '
                           'types, metadata, manifest metadata, catalogs)')
        try:
            self.inputs, self.types, self.metadata, self.manifest_metadata, catalogs = (
                json.loads(line) for line in lines[:5])
            self.catalog_paths = [str(p) for p in catalogs['paths']]
            self.current_index = int(catalogs.get('current_index', 0))
            self.max_len = int(catalogs.get('max_len', 1000))
            self.deleted_indexes = {int(i) for i in catalogs.get('deleted_indexes', [])}
        except (ValueError, TypeError, KeyError) as error:
            raise TubError(f'{manifest} is not a Tub v2 manifest ({type(error).__name__}: '
                           f'{error})') from None
        if not isinstance(self.inputs, list) or not isinstance(self.types, list):
            raise TubError(f'{manifest}: the first two lines must be the inputs and types lists')
        self.input_types = dict(zip(self.inputs, self.types))
        images = [name for name, kind in self.input_types.items() if kind == 'image_array']
        self.image_key = IMAGE_KEY if IMAGE_KEY in images or not images else images[0]
        self.counts = TubCounts()

    def __len__(self) -> int:
        """Records DonkeyCar would train on (written minus deleted), as ``len(tub)`` there."""
        return self.current_index - len(self.deleted_indexes)

    def first_timestamp_ms(self) -> int | None:
        """``_timestamp_ms`` of the first readable record, None if none has one."""
        for record in self.records(include_deleted=True):
            return record.timestamp_ms
        return None

    def records(self, include_deleted: bool = False) -> Iterator[TubRecord]:
        """Streams the records in index order, skipping deleted ones unless asked.

        Unreadable lines are skipped and counted (``counts.bad_lines``), as DonkeyCar does.
        """
        self.counts = counts = TubCounts()
        position = 0
        for name in self.catalog_paths:
            catalog = self.path / name
            start = self._catalog_start(catalog)
            if start is not None:
                position = start
            try:
                lines = _json_lines(catalog)
            except FileNotFoundError:
                counts.missing_catalogs.append(name)
                continue
            except (OSError, UnicodeDecodeError) as error:
                raise TubError(f'cannot read {catalog}: {error}') from None
            for line in lines:
                counts.lines += 1
                here, position = position, position + 1
                try:
                    values = json.loads(line)
                    if not isinstance(values, dict):
                        raise ValueError
                    index = int(values.get('_index', here))
                except (ValueError, TypeError):
                    counts.bad_lines += 1
                    continue
                deleted = index in self.deleted_indexes
                if deleted:
                    counts.deleted += 1
                    if not include_deleted:
                        continue
                yield self._record(index, values, deleted)

    def _catalog_start(self, catalog: Path) -> int | None:
        """The start index a catalog's .catalog_manifest records, None if unreadable."""
        manifest = catalog.with_name(f'{catalog.stem}.catalog_manifest')
        try:
            return int(json.loads(_json_lines(manifest)[0])['start_index'])
        except (OSError, IndexError, ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None

    def _record(self, index: int, values: dict, deleted: bool) -> TubRecord:
        image = values.get(self.image_key)
        stamp = values.get('_timestamp_ms')
        return TubRecord(
            index=index,
            timestamp_ms=int(stamp) if isinstance(stamp, (int, float)) else None,
            image=self.path / IMAGES / image if isinstance(image, str) and image else None,
            angle=_number(values.get(ANGLE_KEY)),
            throttle=_number(values.get(THROTTLE_KEY)),
            mode=values.get(MODE_KEY) if isinstance(values.get(MODE_KEY), str) else None,
            pilot_angle=_number(values.get(PILOT_ANGLE_KEY)),
            pilot_throttle=_number(values.get(PILOT_THROTTLE_KEY)),
            deleted=deleted, values=values)


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def image_file_name(index: int, key: str = IMAGE_KEY) -> str:
    """The name DonkeyCar gives a record's image: ``{index}_cam_image_array_.jpg``."""
    return '_'.join([str(index), key.replace('/', '_'), '.jpg'])


def find_tubs(path: str | Path) -> list[Path]:
    """A tub folder, or the tub folders directly inside ``path`` (DonkeyCar's ``data/``), in
    name order (DonkeyCar names tubs by date, so that is recording order).

    Raises:
        TubError: ``path`` is neither a tub nor a folder of tubs.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        raise TubError(f"tub '{path}' does not exist or is not a folder")
    if detect_format(path):
        return [path]
    inner = sorted((p for p in path.iterdir() if p.is_dir() and detect_format(p)),
                   key=lambda p: _natural(p.name))
    if not inner:
        raise TubError(f"'{path}' is not a DonkeyCar tub (no {MANIFEST}) and holds none")
    return inner


def _natural(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', name)]
