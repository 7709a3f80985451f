"""`donkey-ros calibrate`: find the steering and throttle pulses by trying them on the car.

Like DonkeyCar's ``donkey calibrate``: type a pulse value, watch the wheels, repeat; then name
the value (``left``, ``right``, ``forward``, ``stopped``, ``reverse``) and ``save`` writes the five
values into the ``actuator`` section of the parameter file (comments and other sections are kept).
Values are DonkeyCar PWM ticks unless the file says ``units: us``.

``--import myconfig.py`` copies the calibration of an existing DonkeyCar car instead.
"""
from __future__ import annotations

import argparse
import os
import sys

from donkey_ros.actuation.backends import BACKENDS, ActuatorError, open_output
from donkey_ros.actuation.pwm import MAX_PULSE_US, MIN_PULSE_US, ticks_to_us
from donkey_ros.common.errors import ConfigError
from donkey_ros.common.param_file import (ParamFileError, node_params, read_param_file,
                                          update_text, write_atomically)

NAMES = {'left': 'steering_left_pwm', 'right': 'steering_right_pwm',
         'forward': 'throttle_forward_pwm', 'stopped': 'throttle_stopped_pwm',
         'reverse': 'throttle_reverse_pwm'}
STEERING_NAMES = ('left', 'right')
DEFAULT_CONFIG = os.path.join('config', 'car.yaml')
HELP = """commands:
  <number>        output this pulse on the current channel
  steering        work on the steering channel     throttle   work on the throttle (ESC) channel
  left | right | forward | stopped | reverse       keep the last pulse as that value
  show            the values so far                save       write them to the config file
  help            this text                        q          quit (ESC back to stopped)"""


CalibrationFileError = ParamFileError  # the parameter file cannot be read or updated


def read_actuator_params(path: str) -> dict:
    """The parameters the actuator node gets from the parameter file ``path`` ({} if none).

    Raises:
        ParamFileError: the file exists but cannot be read or parsed.
    """
    if not os.path.exists(path):
        return {}
    return dict(node_params(read_param_file(path), 'actuator') or {})


def update_actuator_params(path: str, values: dict) -> None:
    """Sets ``values`` in the actuator section of ``path``, keeping everything else as written.

    Creates the file or the section if missing. The file is replaced atomically and read back.

    Raises:
        ParamFileError: the file cannot be parsed, updated or written.
    """
    text = ''
    if os.path.exists(path):
        read_param_file(path)  # one clear line for a file that is not a parameter file
        with open(path, encoding='utf-8') as stream:
            text = stream.read()
    new_text, _ = update_text(text, {'actuator': values})
    write_atomically(path, new_text, backup=False)


def import_donkeycar(path: str) -> dict:
    """The actuator parameters of a DonkeyCar ``myconfig.py`` (with its ``config.py``).

    Uses the reader and mapping of ``donkey-ros import-config`` (the file is read as data, never
    executed); settings that cannot be carried over are printed as notes.
    """
    from donkey_ros.donkeycar.config import read_config
    from donkey_ros.donkeycar.config_import import map_config

    imported = map_config(read_config(path))
    for line in imported.unreadable:  # the calibration session starts from the defaults there
        print(f'not imported (could not be read): {line}', file=sys.stderr)
    for note in imported.notes:
        print(f'note: {note}', file=sys.stderr)
    params = imported.params.get('actuator', {})
    if not any(name in params for name in NAMES.values()):
        raise CalibrationFileError(f'no PWM calibration values (STEERING_LEFT_PWM...) in {path}')
    return params


class Session:
    """The interactive loop, reading commands from ``read`` and writing text to ``write``."""

    def __init__(self, output, values: dict, config: str, steering_channel: int,
                 throttle_channel: int, units: str, ticks_frequency: float,
                 write=print) -> None:
        self.output = output
        self.values = values
        self.config = config
        self.channels = {'steering': steering_channel, 'throttle': throttle_channel}
        self.units = units
        self.ticks_frequency = ticks_frequency
        self.write = write
        self.current = 'steering'
        self.last: dict[str, float] = {}
        self.dirty = False

    def to_us(self, value: float) -> float:
        return value if self.units == 'us' else ticks_to_us(value, self.ticks_frequency)

    def set(self, channel_name: str, value: float) -> None:
        pulse = self.to_us(value)
        if not MIN_PULSE_US <= pulse <= MAX_PULSE_US:
            self.write(f'{value} is {pulse:.0f} us, outside {MIN_PULSE_US:.0f}..'
                       f'{MAX_PULSE_US:.0f} us: not sent')
            return
        self.output.write(self.channels[channel_name], pulse)
        self.last[channel_name] = value
        self.write(f'{channel_name} (channel {self.channels[channel_name]}) <- {value:g} '
                   f'({pulse:.0f} us)')

    def start(self) -> None:
        self.set('throttle', self.values['throttle_stopped_pwm'])
        center = (self.values['steering_left_pwm'] + self.values['steering_right_pwm']) / 2
        self.set('steering', round(center))

    def handle(self, line: str) -> bool:
        """Runs one command; returns False to quit."""
        words = line.strip().lower().split()
        if not words:
            return True
        word = words[0]
        if word in ('q', 'quit', 'exit'):
            return False
        if word in ('steering', 'throttle'):
            self.current = word
            self.write(f'now on {word} (channel {self.channels[word]})')
        elif word in NAMES:
            channel_name = 'steering' if word in STEERING_NAMES else 'throttle'
            if channel_name not in self.last:
                self.write(f'try a {channel_name} pulse first')
                return True
            value = self.last[channel_name]
            self.values[NAMES[word]] = int(value) if float(value).is_integer() else value
            self.dirty = True
            self.write(f'{NAMES[word]} = {value:g}')
        elif word == 'show':
            for name in NAMES.values():
                self.write(f'  {name}: {self.values[name]}')
        elif word == 'save':
            update_actuator_params(self.config,
                                   {name: self.values[name] for name in NAMES.values()})
            self.dirty = False
            self.write(f'saved to {self.config}')
        elif word in ('help', 'h', '?'):
            self.write(HELP)
        else:
            try:
                value = float(word)
            except ValueError:
                self.write(f"unknown command '{word}' (help lists them)")
                return True
            self.set(self.current, int(value) if value.is_integer() else value)
        return True

    def finish(self) -> None:
        """The ESC back to stopped, the steering to centre (values as calibrated now)."""
        self.set('throttle', self.values['throttle_stopped_pwm'])
        self.set('steering', round((self.values['steering_left_pwm']
                                    + self.values['steering_right_pwm']) / 2))


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='donkey-ros calibrate', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='parameter file to read and update (default: %(default)s)')
    parser.add_argument('--import', dest='import_path', metavar='MYCONFIG_PY',
                        help='copy the calibration of a DonkeyCar myconfig.py and exit')
    parser.add_argument('--backend', choices=BACKENDS, default=None,
                        help='pca9685 (default), emulated or dry_run')
    parser.add_argument('--bus', type=int, default=None, help='I2C bus (default: config or 1)')
    parser.add_argument('--address', type=lambda text: int(text, 0), default=None,
                        help='I2C address, e.g. 0x40 (default: config or 0x40)')
    parser.add_argument('--frequency', type=int, default=None, help='PWM frequency in Hz')
    parser.add_argument('--emulated-log', default='',
                        help='emulated backend: log the board outputs to this file')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from donkey_ros.actuation.actuator_node import PARAMS

    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.import_path:
        params = import_donkeycar(args.import_path)
        update_actuator_params(args.config, params)
        print(f'wrote {len(params)} values from {args.import_path} to {args.config}:')
        for key, value in params.items():
            print(f'  {key}: {value}')
        return 0
    values = {spec.name: spec.default for spec in PARAMS}
    values.update(read_actuator_params(args.config))
    for key, override in (('backend', args.backend), ('i2c_bus', args.bus),
                          ('i2c_address', args.address), ('frequency', args.frequency)):
        if override is not None:
            values[key] = override
    output = open_output(values['backend'], bus=values['i2c_bus'],
                         address=values['i2c_address'], frequency=values['frequency'],
                         oscillator_hz=values['reference_clock'], report=print,
                         emulated_log=args.emulated_log)
    session = Session(output, values, args.config, values['steering_channel'],
                      values['throttle_channel'], values['units'], values['ticks_frequency'])
    print(f'calibrating: {output.description}, {output.frequency_hz:.2f} Hz; values in '
          f"{'microseconds' if values['units'] == 'us' else 'DonkeyCar ticks'}; "
          f'config {args.config}')
    print('Lift the car off the ground: the wheels will move.')
    print(HELP)
    session.start()
    try:
        while True:
            try:
                line = input(f'{session.current}> ')
            except EOFError:
                break
            try:
                if not session.handle(line):
                    break
            except (ActuatorError, ConfigError) as error:
                print(f'error: {error}')
    finally:
        try:
            session.finish()
        finally:
            output.close()
    if session.dirty:
        print(f'note: the last values were not saved (type save before q); {args.config} '
              'keeps its previous values')
    return 0
