"""What the page sends over its WebSocket, and the joystick deadman. No rclpy, no aiohttp.

Client -> server messages are JSON objects with a ``type``:

| type     | fields                                   | meaning                                   |
|----------|------------------------------------------|-------------------------------------------|
| `joy`    | `steering`, `throttle` in [-1, 1]        | stick position (every 50 ms when held) |
| `release`| -                                        | stick let go: neutral now                 |
| `mode`   | `mode`: user / pilot_steer / pilot       | request a drive mode                      |
| `record` | `on`: bool                               | start/stop the recorder                   |
| `estop`  | `on`: bool                               | engage/release the mux's emergency stop   |
| `scale`  | `value` in [0, 1]                        | throttle scale (slider)                   |

Server -> client: binary messages are JPEG camera frames; text messages are JSON objects
``{"type": "status", ...}`` or ``{"type": "notice", "level": "info|error", "text": ...}``.
"""
from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass

from donkey_ros.common.command import NEUTRAL, DriveCommand
from donkey_ros.common.errors import DonkeyRosError
from donkey_ros.control.mux import MODES

MAX_MESSAGE = 4096
"""Longest client message (characters); the WebSocket closes on frames over 4x this (1009)."""
MAX_DEPTH = 4
"""Deepest JSON nesting accepted (client messages are flat objects): deeper is refused before
parsing, so a nested list never reaches the recursive JSON parser."""
MAX_FRAME = MAX_MESSAGE * 4
"""Largest WebSocket frame the server reads; a larger one closes the connection with 1009."""

NORMAL_CLOSE_CODES = frozenset({1000, 1001})
"""WebSocket close codes of an ordinary goodbye (closed, page navigated away)."""
_CLOSE_REASONS = {
    1002: 'protocol error', 1003: 'unsupported data', 1006: 'connection lost',
    1007: 'invalid text', 1008: 'policy violation',
    1009: f'message over {MAX_FRAME} bytes', 1011: 'server error'}


def close_reason(code: int) -> str:
    """Words for a WebSocket close code, for the one log line that says why a page went away."""
    return _CLOSE_REASONS.get(code, 'abnormal close')


class ProtocolError(DonkeyRosError):
    """A message from the page cannot be used (not JSON, unknown type, bad value)."""


@dataclass(frozen=True)
class Message:
    """One parsed client message; ``value`` is a DriveCommand, str, bool, float or None."""

    type: str
    value: object = None


def _number(data: dict, key: str, low: float, high: float) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(f"'{key}' must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or not low <= value <= high:
        raise ProtocolError(f"'{key}' = {value!r} is outside [{low:g}, {high:g}]")
    return value


def _flag(data: dict, key: str) -> bool:
    value = data.get(key)
    if not isinstance(value, bool):
        raise ProtocolError(f"'{key}' must be true or false, got {value!r}")
    return value


def parse_message(text: str) -> Message:
    """Reads one client message.

    Raises:
        ProtocolError: the text is not a JSON object of a known type with valid fields.
    """
    if len(text) > MAX_MESSAGE:
        raise ProtocolError(f'message of {len(text)} characters is too long')
    if nesting_depth(text) > MAX_DEPTH:
        raise ProtocolError(f'JSON nested deeper than {MAX_DEPTH} levels')
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError(f'not JSON: {text[:60]!r}') from None
    if not isinstance(data, dict):
        raise ProtocolError(f'expected a JSON object, got {type(data).__name__}')
    kind = data.get('type')
    if kind == 'joy':
        return Message('joy', DriveCommand(_number(data, 'steering', -1.0, 1.0),
                                           _number(data, 'throttle', -1.0, 1.0)))
    if kind == 'release':
        return Message('release')
    if kind == 'mode':
        mode = data.get('mode')
        if mode not in MODES:
            raise ProtocolError(f"unknown drive mode {mode!r} (valid: {', '.join(MODES)})")
        return Message('mode', mode)
    if kind in ('record', 'estop'):
        return Message(kind, _flag(data, 'on'))
    if kind == 'scale':
        return Message('scale', _number(data, 'value', 0.0, 1.0))
    raise ProtocolError(f'unknown message type {kind!r}')


def nesting_depth(text: str) -> int:
    """Deepest nesting of JSON arrays/objects in ``text`` (brackets inside strings ignored)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == '\\':
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in '[{':
            depth += 1
            deepest = max(deepest, depth)
        elif char in ']}':
            depth -= 1
    return deepest


class Joystick:
    """The virtual stick's state, with a deadman. Thread-safe; times are monotonic seconds.

    The stick is *active* while a connection keeps sending positions. It falls back to neutral
    (once) when that connection releases the stick, closes, or stays silent for ``timeout``.
    Each method returns the command to publish now, or None when nothing is to be sent.
    """

    def __init__(self, timeout: float = 0.3) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self.active = False
        self.owner: object = None
        self.command = NEUTRAL
        self.last = -math.inf
        self.deadman_trips = 0

    def move(self, owner: object, command: DriveCommand, now: float) -> DriveCommand:
        with self._lock:
            self.active, self.owner, self.command, self.last = True, owner, command, now
            return command

    def release(self, owner: object) -> DriveCommand | None:
        """The stick was let go, or ``owner``'s connection closed."""
        with self._lock:
            if not self.active or self.owner is not owner:
                return None
            self.active, self.owner, self.command = False, None, NEUTRAL
            return NEUTRAL

    def stop(self) -> DriveCommand | None:
        """Forget the stick whoever holds it (e-stop, shutdown)."""
        with self._lock:
            was_active = self.active
            self.active, self.owner, self.command = False, None, NEUTRAL
            return NEUTRAL if was_active else None

    def check(self, now: float) -> DriveCommand | None:
        """Call periodically: neutral once when the active stick went silent."""
        with self._lock:
            if self.active and now - self.last > self.timeout:
                self.active, self.owner, self.command = False, None, NEUTRAL
                self.deadman_trips += 1
                return NEUTRAL
            return None
