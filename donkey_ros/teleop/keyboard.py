"""Keyboard -> drive command (no ROS, no terminal in here): keys adjust a held command.

| key                 | does                                      |
|---------------------|-------------------------------------------|
| w / up arrow        | throttle + step                           |
| s / down arrow      | throttle - step (below 0: reverse)        |
| a / left arrow      | steer left by a step                      |
| d / right arrow     | steer right by a step                     |
| c                   | steering centre                           |
| space / x           | stop: throttle 0, steering centre         |
| m                   | next drive mode                           |
| e                   | emergency stop on / off                   |
| r                   | recording on / off                        |
| q / Ctrl-C / Ctrl-D | quit (sends neutral)                      |
"""
from __future__ import annotations

from donkey_ros.common.command import NEUTRAL, DriveCommand, clamp

ARROWS = {'\x1b[A': 'w', '\x1b[B': 's', '\x1b[D': 'a', '\x1b[C': 'd',
          '\x1bOA': 'w', '\x1bOB': 's', '\x1bOD': 'a', '\x1bOC': 'd'}
EVENTS = {'m': 'mode', 'e': 'estop', 'r': 'record', 'q': 'quit', '\x03': 'quit', '\x04': 'quit'}
HELP = ('w/s or up/down: throttle   a/d or left/right: steer   c: centre   space: stop   '
        'm: mode   e: e-stop   r: record   q: quit')


def split_keys(text: str) -> list[str]:
    """Splits terminal input into keys, keeping arrow escape sequences whole."""
    keys, i = [], 0
    while i < len(text):
        sequence = text[i:i + 3]
        if sequence in ARROWS:
            keys.append(ARROWS[sequence])
            i += 3
        else:
            keys.append(text[i])
            i += 1
    return keys


class KeyboardMapper:
    """Holds the command the keys have set.

    Args:
        throttle_step: throttle change per key press.
        steering_step: steering change per key press.
        max_throttle: largest throttle (forward or reverse) the keys can set.
    """

    def __init__(self, throttle_step: float = 0.05, steering_step: float = 0.25,
                 max_throttle: float = 0.5) -> None:
        self.throttle_step = throttle_step
        self.steering_step = steering_step
        self.max_throttle = max_throttle
        self.command = NEUTRAL

    def key(self, key: str) -> str | None:
        """Applies one key; returns an event ('mode', 'estop', 'record', 'quit') or None."""
        steering, throttle = self.command.steering, self.command.throttle
        lower = key.lower()
        if lower == 'w':
            throttle += self.throttle_step
        elif lower == 's':
            throttle -= self.throttle_step
        elif lower == 'a':
            steering += self.steering_step
        elif lower == 'd':
            steering -= self.steering_step
        elif lower == 'c':
            steering = 0.0
        elif key in (' ', 'x', 'X'):
            steering, throttle = 0.0, 0.0
        else:
            event = EVENTS.get(lower)
            if event in ('quit', 'estop'):
                self.command = NEUTRAL
            return event
        self.command = DriveCommand(round(clamp(steering), 6),
                                    round(clamp(throttle, -self.max_throttle,
                                                self.max_throttle), 6))
        return None
