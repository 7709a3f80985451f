"""Where pulses go: a PCA9685 through the Adafruit driver (real or emulated bus), or a dry run.

- ``pca9685``: ``adafruit_pca9685.PCA9685`` on ``/dev/i2c-<bus>`` (via ``adafruit_extended_bus``).
- ``emulated``: the same driver on an ``EmulatedI2C`` bus holding an ``EmulatedPCA9685``: for
  tests and for trying the car stack without hardware; it logs the decoded output pulses.
- ``dry_run``: no board; reports what it would write.
"""
from __future__ import annotations

import os
import threading
from typing import Callable, Protocol

from donkey_ros.actuation.pwm import OSCILLATOR_HZ, realized_frequency, us_to_ticks
from donkey_ros.common.errors import DonkeyRosError

BACKENDS = ('pca9685', 'dry_run', 'emulated')


class ActuatorError(DonkeyRosError):
    """The PWM board cannot be reached, configured or written."""


class PwmOutput(Protocol):
    """A PWM generator with numbered channels."""

    description: str
    frequency_hz: float
    """The PWM frequency really produced."""

    def write(self, channel: int, pulse_us: float) -> None:
        """Outputs ``pulse_us`` on ``channel`` (raises ActuatorError if the board fails)."""

    def check(self) -> bool:
        """Verifies the board is still configured; re-initialises it and returns True if not."""

    def close(self) -> None:
        """Releases the board; the last pulses stay on the outputs."""


class Pca9685Output:
    """A PCA9685 driven by the Adafruit CircuitPython driver on any ``busio.I2C``-like bus.

    Args:
        i2c: the bus (``busio.I2C``, ``ExtendedI2C`` or ``EmulatedI2C``).
        address: 7-bit I2C address of the board.
        frequency: nominal PWM frequency (Hz).
        oscillator_hz: the board's reference clock (25 MHz nominal; see the Adafruit
            calibration example to measure yours).
        bus_name: how to name the bus in error messages.
    """

    def __init__(self, i2c, address: int = 0x40, frequency: float = 60,
                 oscillator_hz: float = OSCILLATOR_HZ, bus_name: str = 'I2C bus') -> None:
        import adafruit_pca9685

        self.description = f'PCA9685 at 0x{address:02x} on {bus_name}'
        self._where = f'address 0x{address:02x} on {bus_name}'
        self._nominal = frequency
        self._oscillator = oscillator_hz
        self.frequency_hz = realized_frequency(frequency, oscillator_hz)
        # The driver shares one module-level register buffer between all boards: one lock for all.
        self._lock = _DRIVER_LOCK
        try:
            with self._lock:
                self._pca = adafruit_pca9685.PCA9685(
                    i2c, address=address, reference_clock_speed=int(oscillator_hz))
                self._configure()
        except ValueError as error:  # the driver's probe: "No I2C device at address: 0x40"
            raise ActuatorError(
                f'no PCA9685 answers at {self._where} ({error}); check wiring, power and '
                f'the address (i2cdetect -y <bus> lists what answers)') from None
        except OSError as error:
            raise ActuatorError(f'cannot talk to the PCA9685 at {self._where}: '
                                f'{os.strerror(error.errno) if error.errno else error}') from None

    def _configure(self) -> None:
        self._pca.frequency = self._nominal
        self.frequency_hz = self._pca.frequency

    def write(self, channel: int, pulse_us: float) -> None:
        ticks = min(4095, max(0, us_to_ticks(pulse_us, self.frequency_hz)))
        try:
            with self._lock:
                self._pca.channels[channel].duty_cycle = ticks << 4
        except OSError as error:
            raise ActuatorError(f'writing channel {channel} of the PCA9685 at {self._where} '
                                f'failed: {os.strerror(error.errno) if error.errno else error}') \
                from None

    def check(self) -> bool:
        """Detects a board that reset (brown-out: asleep, default prescaler); re-configures it."""
        expected = int(self._oscillator / 4096.0 / self._nominal + 0.5) - 1
        try:
            with self._lock:
                mode1, prescale = self._pca.mode1_reg, self._pca.prescale_reg
                if not mode1 & 0x10 and mode1 & 0x20 and prescale == expected:
                    return False
                self._pca.reset()
                self._configure()
            return True
        except OSError as error:
            raise ActuatorError(f'the PCA9685 at {self._where} does not answer: '
                                f'{os.strerror(error.errno) if error.errno else error}') from None

    def close(self) -> None:
        # Not deinit(): the last pulses (stopped, centred) must stay on the outputs.
        pass


_DRIVER_LOCK = threading.RLock()


class DryRunOutput:
    """No hardware: reports each pulse it would write through ``report(text)``."""

    def __init__(self, report: Callable[[str], None], frequency: float = 60,
                 oscillator_hz: float = OSCILLATOR_HZ) -> None:
        self.description = 'dry run (no board)'
        self.frequency_hz = realized_frequency(frequency, oscillator_hz)
        self.pulses: dict[int, float] = {}
        self._report = report

    def write(self, channel: int, pulse_us: float) -> None:
        self.pulses[channel] = pulse_us
        self._report(f'dry run: channel {channel} <- {pulse_us:.0f} us '
                     f'({us_to_ticks(pulse_us, self.frequency_hz)} ticks)')

    def check(self) -> bool:
        return False

    def close(self) -> None:
        pass


def open_i2c(bus: int):
    """Opens ``/dev/i2c-<bus>`` as a ``busio.I2C``-compatible object (adafruit_extended_bus)."""
    device = f'/dev/i2c-{bus}'
    if not os.path.exists(device):
        raise ActuatorError(
            f'I2C bus {bus} not found ({device} does not exist); enable I2C '
            f'(Ubuntu: dtparam=i2c_arm=on in /boot/firmware/config.txt, reboot; Raspberry Pi '
            f'OS: sudo raspi-config -> Interface Options -> I2C) or set the i2c_bus parameter')
    try:
        from adafruit_extended_bus import ExtendedI2C
    except ImportError:
        raise ActuatorError('adafruit-extended-bus is not installed '
                            '(pip install adafruit-extended-bus)') from None
    try:
        return ExtendedI2C(bus)
    except PermissionError:
        raise ActuatorError(f'no permission to open {device}; add your user to the i2c group '
                            '(sudo adduser $USER i2c, then log in again)') from None
    except (OSError, ValueError) as error:
        raise ActuatorError(f'cannot open I2C bus {bus} ({device}): {error}') from None


def open_output(backend: str, *, bus: int = 1, address: int = 0x40, frequency: float = 60,
                oscillator_hz: float = OSCILLATOR_HZ, report: Callable[[str], None] = print,
                emulated_log: str = '', emulated_board_address: int = 0x40):
    """Opens the named backend. Raises ActuatorError with one readable line if it cannot."""
    if backend == 'pca9685':
        return Pca9685Output(open_i2c(bus), address, frequency, oscillator_hz,
                             bus_name=f'I2C bus {bus}')
    if backend == 'emulated':
        from donkey_ros.actuation.emulated_pca9685 import EmulatedI2C, EmulatedPCA9685
        board = EmulatedPCA9685(emulated_log)
        output = Pca9685Output(EmulatedI2C({emulated_board_address: board}), address, frequency,
                               oscillator_hz, bus_name='the emulated I2C bus')
        output.board = board
        return output
    if backend == 'dry_run':
        return DryRunOutput(report, frequency, oscillator_hz)
    raise ActuatorError(f"unknown actuator backend '{backend}' (valid: {', '.join(BACKENDS)})")
