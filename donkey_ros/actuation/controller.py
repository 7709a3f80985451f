"""The actuator's control core: command watchdog, ESC reverse sequence, failsafe writes.

``ActuatorController`` is a DonkeyCar-style part with no ROS in it. It is told about commands
(``command``) and about time passing (``tick``); it decides the pulses and writes them to a
``PwmOutput``. Whatever goes wrong, the answer is the same: stopped throttle, centred steering.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from donkey_ros.actuation.backends import ActuatorError, PwmOutput
from donkey_ros.actuation.pwm import PwmMapping
from donkey_ros.common.command import NEUTRAL, DriveCommand


@dataclass(frozen=True)
class Applied:
    """What was sent to the car: the limited command, its pulses, and why."""

    command: DriveCommand
    steering_us: float
    throttle_us: float
    state: str
    """'ok', 'timeout' (no valid command lately), 'stopped' (shutdown/failsafe),
    'brake' / 'neutral' (ESC reverse sequence), 'reverse'."""


class ReverseSequence:
    """Brake, then neutral, then reverse: what many car ESCs need before they go backwards.

    Such ESCs treat the first reverse pulse after forward as a brake and only reverse after the
    throttle has returned to neutral. Entering reverse therefore passes through ``brake_time`` s
    of the requested reverse pulse (braking) and ``neutral_time`` s of the stopped pulse.
    """

    def __init__(self, brake_time: float = 0.1, neutral_time: float = 0.1) -> None:
        self.brake_time = brake_time
        self.neutral_time = neutral_time
        self.reset()

    def reset(self) -> None:
        self.phase = 'idle'
        self._since = 0.0

    def filter(self, throttle: float, now: float) -> tuple[float, str]:
        """Returns the throttle to send now and the phase ('ok', 'brake', 'neutral', 'reverse')."""
        if throttle >= 0.0:
            self.reset()
            return throttle, 'ok'
        if self.phase == 'idle':
            self.phase, self._since = 'brake', now
        if self.phase == 'brake':
            if now - self._since < self.brake_time:
                return throttle, 'brake'
            self.phase, self._since = 'neutral', self._since + self.brake_time
        if self.phase == 'neutral':
            if now - self._since < self.neutral_time:
                return 0.0, 'neutral'
            self.phase = 'reverse'
        return throttle, 'reverse'


class ActuatorController:
    """Turns commands into pulses on two channels, and stops the car when commands stop.

    Thread-safe: commands, ticks and stops may come from different threads.

    Args:
        mapping: command -> pulse widths.
        output: where pulses go (PCA9685, dry run, emulated board).
        steering_channel: output channel of the steering servo.
        throttle_channel: output channel of the ESC.
        timeout: seconds without a valid command after which the car is stopped.
        reverse: the ESC reverse sequence, or None to reverse directly.
    """

    def __init__(self, mapping: PwmMapping, output: PwmOutput, steering_channel: int,
                 throttle_channel: int, timeout: float = 0.5,
                 reverse: ReverseSequence | None = None) -> None:
        if steering_channel == throttle_channel:
            raise ActuatorError(f'steering and throttle are both on channel {steering_channel}')
        self.mapping = mapping
        self.output = output
        self.steering_channel = steering_channel
        self.throttle_channel = throttle_channel
        self.timeout = timeout
        self.reverse = reverse
        self.stopped = False
        self.applied: Applied | None = None
        self.written: dict[int, float] = {}
        self._last_command: DriveCommand | None = None
        self._last_time: float | None = None
        self._lock = threading.RLock()

    def age(self, now: float) -> float:
        """Seconds since the last valid command (inf if none yet)."""
        return float('inf') if self._last_time is None else now - self._last_time

    def start(self) -> Applied:
        """Writes the stopped pulse and centred steering (what the car starts with)."""
        return self._write(self._neutral('timeout'))

    def command(self, command: DriveCommand, now: float) -> Applied:
        """A new valid command; applies it at once. Ignored once ``stop()`` has been called."""
        with self._lock:
            if self.stopped:
                return self.applied
            self._last_command, self._last_time = command, now
            return self._update(now)

    def tick(self, now: float) -> Applied:
        """Re-evaluates the output: watchdog timeout, reverse-sequence phases."""
        with self._lock:
            if self.stopped:
                return self.applied
            return self._update(now)

    def stop(self) -> Applied:
        """Failsafe: stopped pulse and centred steering; later commands are ignored."""
        with self._lock:
            self.stopped = True
            return self._write(self._neutral('stopped'))

    def failsafe(self) -> Applied:
        """Neutral now (after an error) without ending: the next valid command drives again."""
        with self._lock:
            self._last_time = None
            if self.reverse is not None:
                self.reverse.reset()
            return self._write(self._neutral('stopped'))

    def _update(self, now: float) -> Applied:
        try:
            target = self._target(now)
        except Exception:
            self._write(self._neutral('stopped'))
            raise
        return self._write(target)

    def _target(self, now: float) -> Applied:
        if self._last_command is None or self.age(now) > self.timeout:
            if self.reverse is not None:
                self.reverse.reset()
            return self._neutral('timeout')
        limited = self.mapping.limit(self._last_command)
        throttle, state = limited.throttle, 'ok'
        if self.reverse is not None:
            throttle, state = self.reverse.filter(limited.throttle, now)
        elif throttle < 0:
            state = 'reverse'
        sent = DriveCommand(limited.steering, throttle)
        return Applied(sent, self.mapping.steering_us(sent.steering),
                       self.mapping.throttle_us(sent.throttle), state)

    def _neutral(self, state: str) -> Applied:
        return Applied(NEUTRAL, self.mapping.steering_us(0.0), self.mapping.throttle_us(0.0),
                       state)

    def _write(self, applied: Applied) -> Applied:
        """Writes the pulses that changed; ``written`` only records what the board accepted."""
        self.applied = applied
        # Throttle first: if the bus fails half-way, the motor is the channel that matters.
        for channel, pulse in ((self.throttle_channel, applied.throttle_us),
                               (self.steering_channel, applied.steering_us)):
            if self.written.get(channel) != pulse:
                self.output.write(channel, pulse)
                self.written[channel] = pulse
        return applied

    def rewrite(self) -> None:
        """Writes both channels again (after the board was re-initialised)."""
        with self._lock:
            self.written.clear()
            if self.applied is not None:
                self._write(self.applied)
