"""The drive-mode mux: which source steers and which throttles (DonkeyCar's user/local_angle/local).

| mode          | steering from | throttle from |
|---------------|---------------|---------------|
| `user`        | user          | user          |
| `pilot_steer` | pilot         | user          |
| `pilot`       | pilot         | pilot         |

A source whose last command is older than ``timeout`` is stale. If a source the mode needs is
stale, or the emergency stop is engaged, the output is neutral (steering 0, throttle 0): half a
command from a dead source is never sent.
"""
from __future__ import annotations

from dataclasses import dataclass

from donkey_ros.common.command import NEUTRAL, DriveCommand
from donkey_ros.common.errors import DonkeyRosError

MODES = ('user', 'pilot_steer', 'pilot')


class MuxError(DonkeyRosError):
    """An unknown drive mode was requested."""


@dataclass
class _Latest:
    command: DriveCommand = NEUTRAL
    time: float | None = None
    stamp: object = None


class DriveModeMux:
    """Combines user and pilot commands by drive mode. Times are seconds on any monotonic clock."""

    def __init__(self, timeout: float = 0.5, mode: str = 'user') -> None:
        self.timeout = timeout
        self.mode = check_mode(mode)
        self.estop = False
        self._sources = {'user': _Latest(), 'pilot': _Latest()}

    def set_mode(self, mode: str) -> None:
        self.mode = check_mode(mode)

    def update(self, source: str, command: DriveCommand, now: float, stamp=None) -> None:
        """Records the newest command of ``source`` ('user' or 'pilot')."""
        self._sources[source] = _Latest(command, now, stamp)

    def age(self, source: str, now: float) -> float:
        """Seconds since ``source`` last spoke (inf if never)."""
        time = self._sources[source].time
        return float('inf') if time is None else now - time

    def is_fresh(self, source: str, now: float) -> bool:
        return self.age(source, now) <= self.timeout

    def steering_source(self) -> str:
        return 'user' if self.mode == 'user' else 'pilot'

    def throttle_source(self) -> str:
        return 'pilot' if self.mode == 'pilot' else 'user'

    def output(self, now: float) -> tuple[DriveCommand, str]:
        """Returns the command to send and why: 'ok', 'estop' or 'stale <source>'."""
        if self.estop:
            return NEUTRAL, 'estop'
        steer_from, throttle_from = self.steering_source(), self.throttle_source()
        for source in {steer_from, throttle_from}:
            if not self.is_fresh(source, now):
                return NEUTRAL, f'stale {source}'
        return DriveCommand(self._sources[steer_from].command.steering,
                            self._sources[throttle_from].command.throttle), 'ok'

    def stamp(self) -> object:
        """The stamp of the command that sets the steering (carries the pilot's image stamp)."""
        return self._sources[self.steering_source()].stamp


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise MuxError(f"unknown drive mode '{mode}' (valid: {', '.join(MODES)})")
    return mode
