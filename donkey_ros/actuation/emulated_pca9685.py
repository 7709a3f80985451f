"""An emulated PCA9685 on an emulated I2C bus, for tests and for running without hardware.

The emulation sits *below* the real driver: ``adafruit_pca9685.PCA9685(EmulatedI2C(...))`` runs the
unmodified Adafruit code, which talks to ``EmulatedI2C`` exactly as it talks to ``busio.I2C`` on a
Raspberry Pi (``try_lock``/``unlock``/``writeto``/``readfrom_into``/``writeto_then_readfrom``/
``scan``).
``EmulatedPCA9685`` models the chip's registers as the datasheet describes them:

- MODE1 (0x00): power-on 0x11 (SLEEP | ALLCALL); the oscillator and all outputs are off while SLEEP
  is set; AI (auto-increment) decides whether multi-byte transfers advance the register pointer
  (without it, every byte of a transfer lands on the same register, as on the real chip).
- MODE2 (0x01): INVRT inverts the outputs.
- LEDn_ON_L/H, LEDn_OFF_L/H (0x06 + 4n): 12-bit on/off counts, bit 4 of the high bytes is
  full-on / full-off; power-on state is full-off.
- ALL_LED_ON/OFF (0xFA-0xFD): write to all channels, read as zero.
- PRE_SCALE (0xFE): power-on 0x1E; writes are ignored unless SLEEP is set.
- General-call software reset (address 0x00, byte 0x06) and power cycling restore power-on state.

From the registers it decodes what each output pin actually does: pulse width in microseconds,
the 12-bit count and the PWM frequency. Every change of an output is kept in ``history`` and, if a
log path is given, appended as one JSON line, so another process can check what the "board" output.
"""
from __future__ import annotations

import errno
import json
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Iterable

MODE1, MODE2, LED0_ON_L, ALL_LED_ON_L, PRE_SCALE = 0x00, 0x01, 0x06, 0xFA, 0xFE
LED_LAST = LED0_ON_L + 4 * 16 - 1  # 0x45
RESTART, AI, SLEEP, ALLCALL = 0x80, 0x20, 0x10, 0x01
INVRT = 0x10
FULL = 0x10  # bit 4 of LEDn_ON_H (full on) and LEDn_OFF_H (full off)
OSCILLATOR_HZ = 25_000_000
GENERAL_CALL, SWRST = 0x00, 0x06


@dataclass(frozen=True)
class Output:
    """What one output pin does: a pulse of ``pulse_us`` every ``1/frequency_hz`` seconds.

    ``ticks`` is the high time in 12-bit counts (0 = always low, 4096 = always high).
    """

    channel: int
    pulse_us: float
    ticks: int
    frequency_hz: float
    t: float = 0.0
    """time.monotonic() of the change (the same clock in every process on this machine)."""


class EmulatedPCA9685:
    """The register file of one PCA9685 and the outputs it produces.

    Args:
        log_path: append every output change as a JSON line here (empty: keep it in memory only).
        oscillator_hz: the internal oscillator (nominally 25 MHz).
    """

    def __init__(self, log_path: str = '', oscillator_hz: float = OSCILLATOR_HZ) -> None:
        self.oscillator_hz = oscillator_hz
        self.history: deque[Output] = deque(maxlen=100_000)
        self.connected = True
        """Set False to make the board stop answering (unplugged cable): transfers raise OSError."""
        self._log = open(log_path, 'a', encoding='utf-8') if log_path else None
        self._lock = threading.Lock()
        self._outputs: dict[int, Output] = {}
        self.power_cycle()

    # ---- chip state -------------------------------------------------------------------------
    def power_cycle(self) -> None:
        """Power-on reset: sleeping, prescale 0x1E, every output full-off."""
        self.registers = bytearray(256)
        self.registers[MODE1] = SLEEP | ALLCALL
        self.registers[MODE2] = 0x04
        self.registers[0x02], self.registers[0x03], self.registers[0x04] = 0xE2, 0xE4, 0xE8
        self.registers[0x05] = 0xE0
        for channel in range(16):
            self.registers[LED0_ON_L + 4 * channel + 3] = FULL
        self.registers[PRE_SCALE] = 0x1E
        self.pointer = 0
        self._record_changes()

    @property
    def sleeping(self) -> bool:
        return bool(self.registers[MODE1] & SLEEP)

    @property
    def frequency_hz(self) -> float:
        return self.oscillator_hz / 4096 / (self.registers[PRE_SCALE] + 1)

    def output(self, channel: int) -> Output:
        """Decodes the current output of ``channel`` from the registers."""
        base = LED0_ON_L + 4 * channel
        on_l, on_h, off_l, off_h = self.registers[base:base + 4]
        if self.sleeping or off_h & FULL:
            ticks = 0
        elif on_h & FULL:
            ticks = 4096
        else:
            on, off = ((on_h & 0x0F) << 8) | on_l, ((off_h & 0x0F) << 8) | off_l
            ticks = (off - on) % 4096
        if self.registers[MODE2] & INVRT and not self.sleeping:
            ticks = 4096 - ticks
        period_us = 1e6 / self.frequency_hz
        return Output(channel, ticks / 4096 * period_us, ticks, self.frequency_hz)

    def outputs(self) -> dict[int, Output]:
        """The latest recorded output of every channel."""
        with self._lock:
            return dict(self._outputs)

    def pulse_us(self, channel: int) -> float:
        return self.output(channel).pulse_us

    # ---- I2C transfers ----------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """An I2C write transfer addressed to this chip: register pointer, then data bytes."""
        self._check_connected()
        if not data:
            return  # address-only probe: ACK
        self.pointer = data[0]
        for value in data[1:]:
            self._write_register(self.pointer, value)
            self._advance()
        self._record_changes()

    def read(self, count: int) -> bytes:
        """An I2C read transfer: ``count`` bytes from the register pointer."""
        self._check_connected()
        values = bytearray()
        for _ in range(count):
            register = self.pointer
            values.append(0 if ALL_LED_ON_L <= register <= ALL_LED_ON_L + 3
                          else self.registers[register])
            self._advance()
        return bytes(values)

    def _check_connected(self) -> None:
        if not self.connected:
            raise OSError(errno.EREMOTEIO, 'Remote I/O error (emulated PCA9685 disconnected)')

    def _advance(self) -> None:
        if self.registers[MODE1] & AI:
            self.pointer = 0 if self.pointer == LED_LAST else (self.pointer + 1) % 256

    def _write_register(self, register: int, value: int) -> None:
        if register == MODE1:
            was_sleeping = self.sleeping
            value &= 0xFF
            if value & RESTART:
                value &= ~RESTART  # writing 1 clears RESTART
            elif value & SLEEP and not was_sleeping:
                value |= RESTART if self._any_active() else 0
            self.registers[MODE1] = value & 0xFF
        elif register == PRE_SCALE:
            if self.sleeping:  # datasheet: PRE_SCALE can only be written while sleeping
                self.registers[PRE_SCALE] = max(value, 3)
        elif ALL_LED_ON_L <= register <= ALL_LED_ON_L + 3:
            offset = register - ALL_LED_ON_L
            for channel in range(16):
                self.registers[LED0_ON_L + 4 * channel + offset] = value
        elif register == 0xFF:
            pass  # TestMode: reserved, never written by drivers
        else:
            self.registers[register] = value

    def _any_active(self) -> bool:
        return any(self.output(channel).ticks for channel in range(16))

    def _record_changes(self) -> None:
        now = time.monotonic()
        changed = []
        with self._lock:
            for channel in range(16):
                current = self.output(channel)
                previous = self._outputs.get(channel)
                if previous is None or (previous.ticks, previous.pulse_us) != (
                        current.ticks, current.pulse_us):
                    output = Output(current.channel, current.pulse_us, current.ticks,
                                    current.frequency_hz, now)
                    self._outputs[channel] = output
                    changed.append(output)
            self.history.extend(changed)
        if self._log is not None and changed:
            self._log.write(''.join(json.dumps(asdict(o)) + '\n' for o in changed))
            self._log.flush()

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class EmulatedI2C:
    """An I2C bus holding emulated devices, with the interface of ``busio.I2C``.

    Absent addresses answer like Linux ``/dev/i2c-N`` does: ``OSError`` (Remote I/O error).

    Args:
        devices: ``{7-bit address: device}``; a device has ``write(bytes)`` and ``read(n)``.
    """

    def __init__(self, devices: dict[int, EmulatedPCA9685]) -> None:
        self.devices = dict(devices)
        self._lock = threading.Lock()

    def try_lock(self) -> bool:
        return self._lock.acquire(blocking=False)

    def unlock(self) -> None:
        self._lock.release()

    def scan(self) -> list[int]:
        return sorted(address for address, device in self.devices.items()
                      if getattr(device, 'connected', True))

    def _device(self, address: int) -> EmulatedPCA9685:
        device = self.devices.get(address)
        if device is None or not getattr(device, 'connected', True):
            raise OSError(errno.EREMOTEIO, f'Remote I/O error (no device at 0x{address:02x})')
        return device

    def writeto(self, address: int, buffer, *, start: int = 0, end: int | None = None) -> None:
        data = bytes(memoryview(buffer)[start:end])
        if address == GENERAL_CALL:
            if data == bytes([SWRST]):
                for device in self.devices.values():
                    device.power_cycle()
            return
        self._device(address).write(data)

    def readfrom_into(self, address: int, buffer, *, start: int = 0,
                      end: int | None = None) -> None:
        end = len(buffer) if end is None else end
        buffer[start:end] = self._device(address).read(end - start)

    def writeto_then_readfrom(self, address: int, buffer_out, buffer_in, *, out_start: int = 0,
                              out_end: int | None = None, in_start: int = 0,
                              in_end: int | None = None) -> None:
        device = self._device(address)
        device.write(bytes(memoryview(buffer_out)[out_start:out_end]))
        in_end = len(buffer_in) if in_end is None else in_end
        buffer_in[in_start:in_end] = device.read(in_end - in_start)

    def deinit(self) -> None:
        pass


def read_log(path: str) -> list[Output]:
    """The outputs an emulated board logged to ``path`` (JSON lines), oldest first."""
    outputs = []
    try:
        with open(path, encoding='utf-8') as log:
            for line in log:
                if line.endswith('\n'):  # a line being written by another process is skipped
                    outputs.append(Output(**json.loads(line)))
    except FileNotFoundError:
        pass
    return outputs


def latest(outputs: Iterable[Output]) -> dict[int, Output]:
    """The last output of each channel."""
    last = {}
    for output in outputs:
        last[output.channel] = output
    return last
