"""`donkey-ros import-config myconfig.py`: a DonkeyCar car's settings -> a ROS 2 parameter file.

    donkey-ros import-config ~/mycar/myconfig.py -o config/car.yaml [--model mypilot.tflite]

Reads ``config.py`` + ``myconfig.py`` as data (never executed, see ``donkeycar.config``) and
writes the ``actuator``, ``camera``, ``pilot`` and ``joy_teleop`` sections of a parameter file
(``ros2 launch ... params_file:=``/``--ros-args --params-file``). Every value is checked
against the parameter table (``PARAMS``) of the node that reads it, so the file can never name a
parameter that does not exist or hold a value the node would refuse. Each line says which
DonkeyCar setting it came from; settings that have no equivalent are listed, with why.

What is imported:

- PWM calibration: ``PWM_STEERING_THROTTLE`` (DonkeyCar 5, ``DRIVE_TRAIN_TYPE =
  "PWM_STEERING_THROTTLE"``: pulses, ``PCA9685.<bus>:<addr>.<channel>`` pins, PWM scales) or the
  older ``STEERING_LEFT_PWM`` ... ``THROTTLE_REVERSE_PWM``, ``STEERING_CHANNEL``,
  ``THROTTLE_CHANNEL``, ``PCA9685_I2C_ADDR``, ``PCA9685_I2C_BUSNUM`` (``SERVO_ESC``). Values stay
  in DonkeyCar's PWM ticks at 60 Hz; a PWM scale s becomes ``ticks_frequency = 60 / s`` (or
  microseconds if steering and throttle scales differ).
- Camera: ``CAMERA_TYPE``, ``CAMERA_INDEX``, ``IMAGE_W``, ``IMAGE_H``, ``DRIVE_LOOP_HZ`` (else
  ``CAMERA_FRAMERATE``), ``CAMERA_VFLIP``/``HFLIP``, and ``ROI_CROP_*`` when ``TRANSFORMATIONS``
  holds ``'CROP'`` (DonkeyCar 5 crops outside the model, so the camera must).
- Pilot: ``AI_THROTTLE_MULT``, ``MODEL_CATEGORICAL_MAX_THROTTLE_RANGE``, ``--model``.
- Joystick: ``JOYSTICK_MAX_THROTTLE``, ``JOYSTICK_STEERING_SCALE``, ``JOYSTICK_DEADZONE``,
  ``JOYSTICK_THROTTLE_DIR``, ``CONTROLLER_TYPE``.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from donkey_ros.common.errors import ConfigError
from donkey_ros.donkeycar.config import DonkeyCarConfig, read_config
from donkey_ros.common.param_file import (Change, ParamFileError, scalar, update_text,
                                               write_atomically)

NODE_MODULES = {
    'actuator': 'donkey_ros.actuation.actuator_node',
    'camera': 'donkey_ros.camera.camera_node',
    'pilot': 'donkey_ros.learning.pilot_node',
    'joy_teleop': 'donkey_ros.teleop.joy_teleop_node',
}
"""Section -> the node module whose ``NODE_NAME`` and ``PARAMS`` define it."""

PWM_KEYS = {'STEERING_LEFT_PWM': 'steering_left_pwm', 'STEERING_RIGHT_PWM': 'steering_right_pwm',
            'THROTTLE_FORWARD_PWM': 'throttle_forward_pwm',
            'THROTTLE_STOPPED_PWM': 'throttle_stopped_pwm',
            'THROTTLE_REVERSE_PWM': 'throttle_reverse_pwm'}
DONKEYCAR_PWM_HZ = 60.0
"""DonkeyCar drives its PCA9685 at 60 Hz; its PWM values are 12-bit ticks at that frequency."""
SERVO_ESC_TRAINS = ('SERVO_ESC', 'I2C_SERVO')
CAMERAS = {'PICAM': 'picamera2', 'WEBCAM': 'opencv', 'CVCAM': 'opencv', 'V4L': 'opencv'}
PADS = {'ps4': 'ps4', 'xbox': 'xbox', 'F710': 'xbox'}
PIN = re.compile(r'PCA9685\.(\d+):([0-9a-fA-F]+)\.(\d+)')


class ConfigImportError(ConfigError):
    """The DonkeyCar settings cannot be turned into a valid parameter file."""


@dataclass
class ImportedConfig:
    """Parameters by node section, where each came from, and what was left out.

    Attributes:
        params: section -> {parameter: value}.
        origins: (section, parameter) -> the DonkeyCar setting(s) it came from.
        notes: DonkeyCar settings not imported (or imported with a caveat), one sentence each.
        unreadable: settings the import needs that the files assign but that could not be read
            (computed, conditional...), one line each with file, line and why.
    """

    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    origins: dict[tuple[str, str], str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def set(self, section: str, name: str, value: Any, origin: str) -> None:
        self.params.setdefault(section, {})[name] = value
        self.origins[(section, name)] = origin

    def count(self) -> int:
        return sum(len(values) for values in self.params.values())


def node_tables() -> dict[str, tuple[str, dict]]:
    """Section -> (node name, {parameter name: Param}) from the node modules themselves."""
    tables = {}
    for section, module_name in NODE_MODULES.items():
        module = importlib.import_module(module_name)
        tables[section] = (module.NODE_NAME, {spec.name: spec for spec in module.PARAMS})
    return tables


# --- mapping ------------------------------------------------------------------------------------
def map_config(config: DonkeyCarConfig, model: str | None = None) -> ImportedConfig:
    """The donkey_ros parameters a DonkeyCar config describes (not validated yet)."""
    out = ImportedConfig()
    _map_actuator(config, out)
    _map_camera(config, out)
    _map_pilot(config, out, model)
    _map_joystick(config, out)
    out.unreadable = [str(skipped) for skipped in config.unreadable()]
    return out


def _map_actuator(config: DonkeyCarConfig, out: ImportedConfig) -> None:
    train = config.get('DRIVE_TRAIN_TYPE')
    table = config.get('PWM_STEERING_THROTTLE')
    if train is not None and train != 'PWM_STEERING_THROTTLE' and train not in SERVO_ESC_TRAINS:
        out.notes.append(f"DRIVE_TRAIN_TYPE = '{train}' is not a steering servo + ESC on a "
                         'PCA9685: no actuator section written (donkey_ros drives servo + ESC)')
        return
    use_table = isinstance(table, dict) and train not in SERVO_ESC_TRAINS
    if use_table:
        _map_pwm_table(table, out)
    else:
        _map_pwm_names(config, out)
    if not any(key in out.params.get('actuator', {}) for key in PWM_KEYS.values()):
        out.notes.append('no PWM calibration found (PWM_STEERING_THROTTLE or STEERING_LEFT_PWM...'
                         '): calibrate with `donkey-ros calibrate`')


def _map_pwm_table(table: dict, out: ImportedConfig) -> None:
    origin = 'PWM_STEERING_THROTTLE'
    scales = {}
    for part in ('STEERING', 'THROTTLE'):
        scale = table.get(f'PWM_{part}_SCALE', 1.0)
        scales[part] = float(scale) if isinstance(scale, (int, float)) else 1.0
    pulses = {key: table[key] for key in PWM_KEYS if key in table}
    frequency = DONKEYCAR_PWM_HZ / scales['STEERING'] if scales['STEERING'] > 0 else 0.0
    if scales['STEERING'] == scales['THROTTLE'] and abs(frequency - round(frequency)) < 1e-6:
        for key, value in pulses.items():
            out.set('actuator', PWM_KEYS[key], _int(value), f'{origin}["{key}"]')
        if pulses:
            out.set('actuator', 'units', 'ticks', 'DonkeyCar PWM values are ticks')
            out.set('actuator', 'ticks_frequency', int(round(frequency)),
                    f'60 Hz / PWM_*_SCALE {scales["STEERING"]:g}')
    else:
        # ticks_frequency (one integer) cannot express these scales: write pulse widths instead.
        for key, value in pulses.items():
            scale = scales['STEERING' if key.startswith('STEERING') else 'THROTTLE']
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                out.set('actuator', PWM_KEYS[key], value, f'{origin}["{key}"]')
                continue
            micros = float(value) * scale * 1e6 / (4096 * DONKEYCAR_PWM_HZ)
            out.set('actuator', PWM_KEYS[key], int(round(micros)),
                    f'{origin}["{key}"] {value} x scale {scale:g} at 60 Hz, in us')
        if pulses:
            out.set('actuator', 'units', 'us', 'PWM_STEERING_SCALE/PWM_THROTTLE_SCALE')
    boards = set()
    for part, channel in (('STEERING', 'steering_channel'), ('THROTTLE', 'throttle_channel')):
        pin = table.get(f'PWM_{part}_PIN')
        if pin is None:
            continue
        match = PIN.fullmatch(str(pin))
        if not match:
            out.notes.append(f'PWM_{part}_PIN = {pin!r} is not a PCA9685 pin: donkey_ros drives '
                             'a PCA9685 (RPI_GPIO/PIGPIO pins are not supported)')
            continue
        bus, address, number = int(match.group(1)), int(match.group(2), 16), int(match.group(3))
        boards.add((bus, address))
        out.set('actuator', channel, number, f'PWM_{part}_PIN {pin}')
        out.set('actuator', 'i2c_bus', bus, f'PWM_{part}_PIN {pin}')
        out.set('actuator', 'i2c_address', address, f'PWM_{part}_PIN {pin} (0x{address:02x})')
    if len(boards) > 1:
        out.notes.append('steering and throttle are on different PCA9685 boards: donkey_ros '
                         'drives both from one board; the throttle pin was kept')
    for part in ('STEERING', 'THROTTLE'):
        if table.get(f'PWM_{part}_INVERTED'):
            out.notes.append(
                f'PWM_{part}_INVERTED = True inverts the electrical PWM signal (for hardware '
                f'inverters); donkey_ros cannot do that ({part.lower()}_inverted swaps '
                'directions, which is a different thing): not imported')


def _map_pwm_names(config: DonkeyCarConfig, out: ImportedConfig) -> None:
    pulses = {key: config.get(key) for key in PWM_KEYS if config.get(key) is not None}
    for key, value in pulses.items():
        out.set('actuator', PWM_KEYS[key], _int(value), key)
    if pulses:
        out.set('actuator', 'units', 'ticks', 'DonkeyCar PWM values are ticks')
        out.set('actuator', 'ticks_frequency', int(DONKEYCAR_PWM_HZ), 'DonkeyCar PCA9685: 60 Hz')
    for key, name in (('STEERING_CHANNEL', 'steering_channel'),
                      ('THROTTLE_CHANNEL', 'throttle_channel'),
                      ('PCA9685_I2C_ADDR', 'i2c_address')):
        if config.get(key) is not None:
            out.set('actuator', name, _int(config.get(key)), key)
    bus = config.get('PCA9685_I2C_BUSNUM')
    if bus is not None:
        out.set('actuator', 'i2c_bus', _int(bus), 'PCA9685_I2C_BUSNUM')
    elif 'PCA9685_I2C_BUSNUM' in config:
        out.notes.append('PCA9685_I2C_BUSNUM = None (auto-detect): donkey_ros uses i2c_bus 1, '
                         "the Raspberry Pi's; set it if your board is on another bus")


def _map_camera(config: DonkeyCarConfig, out: ImportedConfig) -> None:
    kind = config.get('CAMERA_TYPE')
    if kind is not None:
        backend = CAMERAS.get(str(kind))
        if backend is None:
            out.notes.append(f"CAMERA_TYPE = '{kind}' has no donkey_ros backend (picamera2 for "
                             'PICAM, opencv for WEBCAM/CVCAM/V4L): camera backend not set')
        else:
            out.set('camera', 'backend', backend, f'CAMERA_TYPE {kind}')
            if backend == 'opencv' and config.get('CAMERA_INDEX') is not None:
                out.set('camera', 'device', str(config.get('CAMERA_INDEX')), 'CAMERA_INDEX')
    for key, name in (('IMAGE_W', 'width'), ('IMAGE_H', 'height')):
        if config.get(key) is not None:
            out.set('camera', name, _int(config.get(key)), key)
    loop, framerate = config.get('DRIVE_LOOP_HZ'), config.get('CAMERA_FRAMERATE')
    if loop is not None:
        out.set('camera', 'fps', loop, 'DRIVE_LOOP_HZ (DonkeyCar records and drives '
                'once per loop)')
        if framerate is not None and framerate != loop:
            out.notes.append(f'CAMERA_FRAMERATE = {framerate} differs from DRIVE_LOOP_HZ = {loop}:'
                             ' the camera publishes at DRIVE_LOOP_HZ, the rate DonkeyCar '
                             'recorded and drove at')
    elif framerate is not None:
        out.set('camera', 'fps', framerate, 'CAMERA_FRAMERATE')
    for key, name in (('CAMERA_VFLIP', 'flip_vertical'), ('CAMERA_HFLIP', 'flip_horizontal')):
        if config.get(key) is not None:
            out.set('camera', name, config.get(key), key)
    if config.get('IMAGE_DEPTH', 3) != 3:
        out.notes.append(f"IMAGE_DEPTH = {config.get('IMAGE_DEPTH')}: donkey_ros cameras publish "
                         'RGB (3 channels); grayscale models need retraining')
    transformations = config.get('TRANSFORMATIONS') or []
    if isinstance(transformations, (list, tuple)) and 'CROP' in transformations:
        for key, name in (('ROI_CROP_TOP', 'crop_top'), ('ROI_CROP_BOTTOM', 'crop_bottom'),
                          ('ROI_CROP_LEFT', 'crop_left'), ('ROI_CROP_RIGHT', 'crop_right')):
            if config.get(key):
                out.set('camera', name, _int(config.get(key)), f"{key} (TRANSFORMATIONS 'CROP')")
    others = [t for t in (transformations if isinstance(transformations, (list, tuple)) else [])
              if t != 'CROP'] + list(config.get('POST_TRANSFORMATIONS') or [])
    if others:
        out.notes.append(f'image transformations {others} have no donkey_ros equivalent: models '
                         'trained with them will see different images')


def _map_pilot(config: DonkeyCarConfig, out: ImportedConfig, model: str | None) -> None:
    if model:
        out.set('pilot', 'model_path', str(Path(model).expanduser()), '--model')
    if config.get('AI_THROTTLE_MULT') is not None:
        out.set('pilot', 'throttle_scale', config.get('AI_THROTTLE_MULT'), 'AI_THROTTLE_MULT')
    if config.get('MODEL_CATEGORICAL_MAX_THROTTLE_RANGE') is not None:
        out.set('pilot', 'throttle_range', config.get('MODEL_CATEGORICAL_MAX_THROTTLE_RANGE'),
                'MODEL_CATEGORICAL_MAX_THROTTLE_RANGE (categorical models)')
    if _positive(config.get('AI_LAUNCH_DURATION')) and _positive(config.get('AI_LAUNCH_THROTTLE')):
        out.notes.append('AI_LAUNCH_THROTTLE/AI_LAUNCH_DURATION (launch boost) is not supported: '
                         'not imported')
    kind = config.get('DEFAULT_MODEL_TYPE')
    if kind is not None and kind not in ('linear', 'categorical'):
        out.notes.append(f"DEFAULT_MODEL_TYPE = '{kind}': the pilot runs linear and categorical "
                         'models (one image in, steering and throttle out) only')


def _map_joystick(config: DonkeyCarConfig, out: ImportedConfig) -> None:
    for key, name in (('JOYSTICK_MAX_THROTTLE', 'throttle_scale'),
                      ('JOYSTICK_STEERING_SCALE', 'steering_scale'),
                      ('JOYSTICK_DEADZONE', 'deadzone')):
        if config.get(key) is not None:
            out.set('joy_teleop', name, config.get(key), key)
    direction = config.get('JOYSTICK_THROTTLE_DIR')
    if isinstance(direction, (int, float)) and not isinstance(direction, bool):
        out.set('joy_teleop', 'throttle_inverted', direction > 0,
                f'JOYSTICK_THROTTLE_DIR {direction} (-1 = the usual, not inverted)')
    pad = config.get('CONTROLLER_TYPE')
    if pad is not None:
        if pad in PADS:
            out.set('joy_teleop', 'pad', PADS[pad], f'CONTROLLER_TYPE {pad}')
        else:
            out.notes.append(f"CONTROLLER_TYPE = '{pad}' has no built-in layout (ps4, xbox, F710):"
                             ' set joy_teleop pad/axes by hand')
    if config.get('JOYSTICK_DEVICE_FILE') not in (None, '/dev/input/js0'):
        out.notes.append(f"JOYSTICK_DEVICE_FILE = '{config.get('JOYSTICK_DEVICE_FILE')}': give it "
                         'to the joy node (ros2 run joy joy_node --ros-args -p device_name:=...)')


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _int(value: Any) -> Any:
    """Integral numbers as int (PWM ticks, pixels); anything else unchanged (validation says)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# --- validation and output ----------------------------------------------------------------------
def validate(imported: ImportedConfig, tables: dict | None = None) -> ImportedConfig:
    """Checks every value against the declared ``Param`` of its node; returns the values coerced.

    Raises:
        ConfigImportError: a value the node would refuse (naming the DonkeyCar setting), or a
            parameter the node does not declare.
    """
    tables = tables or node_tables()
    problems = []
    checked = ImportedConfig(notes=list(imported.notes), unreadable=list(imported.unreadable))
    for section, values in imported.params.items():
        if section not in tables:
            raise ConfigImportError(f"no node module defines section '{section}'")
        _, specs = tables[section]
        for name, value in values.items():
            origin = imported.origins.get((section, name), '?')
            spec = specs.get(name)
            if spec is None:
                raise ConfigImportError(f"{section} has no parameter '{name}' (from {origin}): "
                                        'donkey_ros.donkeycar.config_import is out of date')
            try:
                checked.set(section, name, spec.validate(value), origin)
            except ConfigError as error:
                problems.append(f'{origin}: {error}')
    if problems:
        raise ConfigImportError('values the car would refuse: ' + '; '.join(problems))
    return checked


def header(sources: list, notes: list[str], unreadable: list[str] = ()) -> str:
    """The comment block that starts a new parameter file."""
    stamp = datetime.datetime.now().strftime('%Y-%m-%d %H:%M')
    lines = ['# donkey_ros parameters imported from DonkeyCar by `donkey-ros import-config` '
             f'({stamp})', '# from: ' + ', '.join(str(s) for s in sources),
             '# ROS 2 parameter file; `/**/name` matches the node in any namespace.',
             '# Every parameter is described by `donkey-ros params`; see docs/donkeycar.md.']
    if notes or unreadable:
        lines.append('# Not imported:')
        lines += [f'#  - {line}' for line in unreadable]
        lines += [f'#  - {note}' for note in notes]
    return '\n'.join(lines) + '\n'


def import_config(path: str | Path, output: str | Path, base: Any = True,
                  model: str | None = None, allow_partial: bool = False
                  ) -> tuple[ImportedConfig, list[Change], Path | None]:
    """Reads a DonkeyCar config and writes its values into the parameter file ``output``.

    An existing file is updated in place: the imported parameters are set (each with a comment
    naming its DonkeyCar setting), every other line is kept, and the old file is kept as
    ``output.bak``. A missing file is created.

    Returns:
        (the imported values, the changes made, the backup path or None).

    Args:
        allow_partial: write the file even when settings the import needs could not be read
            (``imported.unreadable``); otherwise that is an error and nothing is written.

    Raises:
        DonkeyCarConfigError: the config cannot be read.
        ConfigImportError: invalid values, nothing to import, or (without ``allow_partial``)
            settings found but not readable, each named with its file, line and why.
        ParamFileError: the output cannot be read or updated.
    """
    output = Path(output).expanduser()
    config = read_config(path, base)
    tables = node_tables()
    imported = validate(map_config(config, model), tables)
    if imported.unreadable and not allow_partial:
        raise ConfigImportError(
            f'{len(imported.unreadable)} setting(s) found but not imported, nothing written: '
            + '; '.join(imported.unreadable) + '. Write them as plain values, or pass '
            '--allow-partial to import the rest (the car then uses its defaults for these)')
    if not imported.count():
        raise ConfigImportError(f'nothing to import from {", ".join(map(str, config.files))} '
                                '(no PWM, camera, pilot or joystick settings)')
    if output.exists():
        try:
            text = output.read_text(encoding='utf-8')
        except (OSError, UnicodeDecodeError) as error:
            raise ParamFileError(f'cannot read {output}: {error}') from None
    else:
        text = header(config.files, imported.notes, imported.unreadable)
    updates = {tables[section][0]: values for section, values in imported.params.items()}
    comments = {(tables[section][0], name): f'DonkeyCar {origin}'
                for (section, name), origin in imported.origins.items()}
    try:
        new_text, changes = update_text(text, updates, comments)
    except ParamFileError as error:
        raise ParamFileError(f'{output}: {error}') from None
    backup = write_atomically(output, new_text) if new_text != text else None
    return imported, changes, backup


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='donkey-ros import-config', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help="DonkeyCar myconfig.py (or config.py, or the car folder)")
    parser.add_argument('-o', '--output', default=os.path.join('config', 'car.yaml'),
                        help='parameter file to create or update in place (default: %(default)s)')
    parser.add_argument('--base', default=None,
                        help='defaults read first (default: config.py next to myconfig.py, as '
                        'DonkeyCar does)')
    parser.add_argument('--no-base', action='store_true', help='read only the given file')
    parser.add_argument('--model', default=None, help='a .tflite model for the pilot section')
    parser.add_argument('--allow-partial', action='store_true',
                        help='write the file even if settings it needs could not be read '
                        '(computed values, values set inside an if...); they are listed')
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    base = False if args.no_base else (args.base or True)
    imported, changes, backup = import_config(args.config, args.output, base=base,
                                              model=args.model, allow_partial=args.allow_partial)
    print(f'{args.output}: {len(changes)} of {imported.count()} imported parameters changed'
          + (f' (previous file kept as {backup})' if backup else ''))
    for change in changes:
        old = 'new' if change.old is None else scalar(change.old)
        print(f'  {change.node}.{change.name}: {old} -> {scalar(change.new)}')
    for line in imported.unreadable:
        print(f'  NOT IMPORTED (could not be read, the default stays): {line}')
    for note in imported.notes:
        print(f'  not imported: {note}')
    print(f'use it: ros2 launch donkey_ros car.launch.py config:={Path(args.output).resolve()}\n'
          f'check the car: donkey-ros doctor --config {args.output}')
    return 0
