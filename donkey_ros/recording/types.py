"""Message definitions for bags: one rosbags typestore, extended on demand.

rosbag2 files carry each topic's message definition and type hash (RIHS01). Standard ROS 2 types
come from rosbags' newest typestore; project types (``donkey_ros_interfaces``) and any other type
are registered from their ``.msg`` files (the interface packages install them under
``<prefix>/share/<package>/msg/``), dependencies first. Bags from elsewhere bring their own
definitions, which ``register_from_bag`` reads.
"""
from __future__ import annotations

import os
import sys
import threading
from functools import lru_cache
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from donkey_ros.recording.errors import BagError

_PROJECT_MSG_DIR = Path(__file__).resolve().parents[2] / 'donkey_ros_interfaces' / 'msg'
_lock = threading.Lock()


@lru_cache(maxsize=1)
def typestore():
    """The shared typestore: newest ROS 2 distribution known to rosbags + donkey_ros_interfaces."""
    store_id = getattr(Stores, 'ROS2_KILTED', None) or Stores.ROS2_JAZZY
    store = get_typestore(store_id)
    for msgtype in ('donkey_ros_interfaces/msg/SimStatus',
                    'donkey_ros_interfaces/msg/RecorderStatus'):
        try:
            ensure_type(msgtype, store)
        except BagError:
            pass  # the package is optional for reading bags; writing it will say why it failed
    return store


def _share_dirs() -> list[Path]:
    prefixes = os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep)
    dirs = [Path(p) / 'share' for p in prefixes if p]
    dirs.append(Path(sys.prefix) / 'share')
    return dirs


def find_msg_file(msgtype: str) -> Path | None:
    """The ``.msg`` file defining ``pkg/msg/Type``, or None."""
    package, _, name = msgtype.split('/')
    if package == 'donkey_ros_interfaces' and (_PROJECT_MSG_DIR / f'{name}.msg').is_file():
        return _PROJECT_MSG_DIR / f'{name}.msg'
    for share in _share_dirs():
        candidate = share / package / 'msg' / f'{name}.msg'
        if candidate.is_file():
            return candidate
    return None


def ensure_type(msgtype: str, store=None) -> None:
    """Registers ``msgtype`` (and the types it uses) in the typestore if it is missing.

    Raises:
        BagError: no definition of the type (or of one it uses) can be found.
    """
    store = store or typestore()
    if msgtype in store.fielddefs:
        return
    if msgtype.count('/') != 2:
        raise BagError(f"'{msgtype}' is not a ROS 2 message type name (package/msg/Type)")
    with _lock:
        _register(msgtype, store, set())


def _register(msgtype: str, store, seen: set) -> None:
    if msgtype in store.fielddefs or msgtype in seen:
        return
    seen.add(msgtype)
    path = find_msg_file(msgtype)
    if path is None:
        raise BagError(f"no definition found for message type '{msgtype}' "
                       f'(looked for {msgtype.split("/")[0]}/msg/*.msg under share/ of '
                       f'{", ".join(str(d.parent) for d in _share_dirs())})')
    types = get_types_from_msg(path.read_text(), msgtype)
    for _, fields in types.values():
        for _, field in fields:
            for name in _referenced(field):
                if name not in store.fielddefs and name not in types:
                    _register(name, store, seen)
    store.register(types)


def _referenced(desc) -> list[str]:
    """Names of message types used by a parsed field description."""
    names = []
    kind, detail = desc
    if getattr(kind, 'name', '') == 'NAME':
        names.append(detail)
    elif isinstance(detail, tuple):
        for part in detail:
            if isinstance(part, tuple) and len(part) == 2:
                names.extend(_referenced(part))
    return names


def definition(msgtype: str) -> tuple[str, str]:
    """Returns ``(msgdef, rihs01)`` for writing ``msgtype`` into a bag.

    Raises:
        BagError: the type is unknown and no ``.msg`` file defines it.
    """
    store = typestore()
    ensure_type(msgtype, store)
    msgdef, _ = store.generate_msgdef(msgtype, ros_version=2)
    return msgdef, store.hash_rihs01(msgtype)


def register_from_bag(connections) -> list[str]:
    """Registers the types that a bag's connections define and the store lacks.

    Returns the types that could not be registered (their topics cannot be decoded).
    """
    store = typestore()
    failed = []
    for connection in connections:
        if connection.msgtype in store.fielddefs:
            continue
        try:
            with _lock:
                if connection.msgdef.data:
                    from rosbags.typesys import get_types_from_idl
                    data = connection.msgdef.data
                    types = (get_types_from_idl(data) if data.startswith('=' * 80 + '\nIDL: ')
                             else get_types_from_msg(data, connection.msgtype))
                    store.register(types)
                else:
                    _register(connection.msgtype, store, set())
        except Exception:  # any parse failure means: cannot decode this topic
            failed.append(connection.msgtype)
    return failed
