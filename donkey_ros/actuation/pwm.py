"""Drive command -> servo/ESC pulse widths: DonkeyCar-compatible calibration, limits, inversion.

Pulse widths are handled in microseconds, the one physical unit every board agrees on. Calibration
values can be given in DonkeyCar's units: 12-bit PCA9685 counts ("ticks") at the PWM frequency
DonkeyCar runs the board at (60 Hz), i.e. the numbers of ``PWM_STEERING_THROTTLE`` in
``myconfig.py``
(``STEERING_LEFT_PWM``, ``THROTTLE_STOPPED_PWM``, ...). A count is converted with the frequency the
chip really produces for a nominal frequency (the prescaler is an integer: 60 Hz nominal is
59.84 Hz), so at the default settings the counts written to the board are exactly the counts
DonkeyCar writes.

Sign conventions follow the topic contract: steering +1 = full left, throttle +1 = full forward.
DonkeyCar's angle -1 is left; both map to ``STEERING_LEFT_PWM``, so its values carry over unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from donkey_ros.common.command import NEUTRAL, DriveCommand, clamp
from donkey_ros.common.errors import ConfigError

COUNTS = 4096
"""The PCA9685 divides every PWM period into 4096 counts."""
DONKEYCAR_FREQUENCY_HZ = 60
OSCILLATOR_HZ = 25_000_000
MIN_PULSE_US, MAX_PULSE_US = 500.0, 2500.0
"""Pulses outside this range are not servo/ESC signals; calibration values outside are rejected."""


def realized_frequency(nominal_hz: float, oscillator_hz: float = OSCILLATOR_HZ) -> float:
    """The PWM frequency a PCA9685 really produces when asked for ``nominal_hz``.

    Uses the prescaler rounding of both the Adafruit CircuitPython driver and the legacy
    Adafruit_PCA9685 library DonkeyCar uses: ``prescale = round(osc / 4096 / f) - 1``.
    """
    prescale = int(oscillator_hz / 4096.0 / nominal_hz + 0.5) - 1
    if prescale < 3 or prescale > 255:
        raise ConfigError(f'a PCA9685 cannot output {nominal_hz} Hz (24..1526 Hz)')
    return oscillator_hz / COUNTS / (prescale + 1)


def ticks_to_us(ticks: float, nominal_hz: float = DONKEYCAR_FREQUENCY_HZ,
                oscillator_hz: float = OSCILLATOR_HZ) -> float:
    """12-bit counts at ``nominal_hz`` -> pulse width in microseconds."""
    return ticks * 1e6 / (realized_frequency(nominal_hz, oscillator_hz) * COUNTS)


def us_to_ticks(pulse_us: float, frequency_hz: float) -> int:
    """Pulse width -> the nearest 12-bit count at the *realized* ``frequency_hz``."""
    return int(round(pulse_us * frequency_hz * COUNTS / 1e6))


@dataclass(frozen=True)
class Calibration:
    """The five calibrated pulse widths (µs), as DonkeyCar's ``donkey calibrate`` finds them."""

    steering_left_us: float
    steering_right_us: float
    throttle_forward_us: float
    throttle_stopped_us: float
    throttle_reverse_us: float

    @classmethod
    def from_ticks(cls, left: float, right: float, forward: float, stopped: float,
                   reverse: float, nominal_hz: float = DONKEYCAR_FREQUENCY_HZ,
                   oscillator_hz: float = OSCILLATOR_HZ) -> 'Calibration':
        """From DonkeyCar PWM values (counts at ``nominal_hz``); validated."""
        pulses = [ticks_to_us(ticks, nominal_hz, oscillator_hz)
                  for ticks in (left, right, forward, stopped, reverse)]
        return cls(*pulses).validated()

    @property
    def steering_center_us(self) -> float:
        return (self.steering_left_us + self.steering_right_us) / 2

    def validated(self, period_us: float | None = None) -> 'Calibration':
        """Returns self, or raises ConfigError naming the value at fault."""
        for name in ('steering_left', 'steering_right', 'throttle_forward', 'throttle_stopped',
                     'throttle_reverse'):
            value = getattr(self, name + '_us')
            if not (math.isfinite(value) and MIN_PULSE_US <= value <= MAX_PULSE_US):
                raise ConfigError(
                    f'{name} pulse {value:.0f} us is outside {MIN_PULSE_US:.0f}..{MAX_PULSE_US:.0f}'
                    ' us (servo/ESC range); check the calibration values and their units')
            if period_us is not None and value >= period_us * 0.9:
                raise ConfigError(f'{name} pulse {value:.0f} us does not fit in the PWM period '
                                  f'({period_us:.0f} us); lower the PWM frequency')
        if self.steering_left_us == self.steering_right_us:
            raise ConfigError('steering left and right pulses are equal: no steering range')
        if self.throttle_forward_us == self.throttle_stopped_us:
            raise ConfigError('throttle forward and stopped pulses are equal: no throttle range')
        forward = self.throttle_forward_us - self.throttle_stopped_us
        reverse = self.throttle_reverse_us - self.throttle_stopped_us
        if reverse * forward > 0:
            raise ConfigError('throttle reverse pulse is on the forward side of the stopped pulse')
        return self


class PwmMapping:
    """Normalized command -> (steering µs, throttle µs), with inversion and throttle limits.

    Args:
        calibration: the pulse widths.
        steering_inverted: swap left and right (the servo is mounted the other way round).
        throttle_inverted: swap forward and reverse (the motor is wired the other way round).
        max_forward: largest forward throttle allowed, fraction of full.
        max_reverse: largest reverse throttle allowed, fraction of full (0 = never reverse).
    """

    def __init__(self, calibration: Calibration, steering_inverted: bool = False,
                 throttle_inverted: bool = False, max_forward: float = 1.0,
                 max_reverse: float = 1.0) -> None:
        for name, value in (('max_forward', max_forward), ('max_reverse', max_reverse)):
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ConfigError(f'{name} must be in [0, 1], got {value}')
        self.calibration = calibration
        self.steering_inverted = steering_inverted
        self.throttle_inverted = throttle_inverted
        self.max_forward = max_forward
        self.max_reverse = max_reverse

    def limit(self, command: DriveCommand) -> DriveCommand:
        """The command the car will actually get: finite, in [-1, 1], throttle within limits.

        A non-finite value (which ``DriveCommand.checked`` never lets through) gives NEUTRAL.
        """
        if not (math.isfinite(command.steering) and math.isfinite(command.throttle)):
            return NEUTRAL
        return DriveCommand(clamp(command.steering),
                            clamp(command.throttle, -self.max_reverse, self.max_forward))

    def steering_us(self, steering: float) -> float:
        """+1 -> left pulse, -1 -> right pulse, linear in between (DonkeyCar's map_range)."""
        cal = self.calibration
        steering = clamp(-steering if self.steering_inverted else steering)
        return cal.steering_right_us + (steering + 1.0) / 2.0 * (
            cal.steering_left_us - cal.steering_right_us)

    def throttle_us(self, throttle: float) -> float:
        """0 -> stopped, +1 -> forward, -1 -> reverse; each half linear (as DonkeyCar's)."""
        cal = self.calibration
        throttle = clamp(-throttle if self.throttle_inverted else throttle)
        end = cal.throttle_forward_us if throttle > 0 else cal.throttle_reverse_us
        return cal.throttle_stopped_us + abs(throttle) * (end - cal.throttle_stopped_us)

    def pulses(self, command: DriveCommand) -> tuple[DriveCommand, float, float]:
        """Returns (limited command, steering µs, throttle µs)."""
        limited = self.limit(command)
        return limited, self.steering_us(limited.steering), self.throttle_us(limited.throttle)

    def steering_range(self) -> tuple[float, float]:
        cal = self.calibration
        return (min(cal.steering_left_us, cal.steering_right_us),
                max(cal.steering_left_us, cal.steering_right_us))

    def throttle_range(self) -> tuple[float, float]:
        """The pulses the throttle channel can ever get, limits included."""
        ends = [self.throttle_us(self.max_forward), self.throttle_us(-self.max_reverse),
                self.calibration.throttle_stopped_us]
        return min(ends), max(ends)
