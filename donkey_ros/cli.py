"""`donkey-ros`: the command-line tool. Each sub-command is a module with ``main(argv) -> int``.

Modules are imported only when their command runs, so `donkey-ros --help` is instant and a
command's heavy dependencies (TensorFlow...) load only for that command.
"""
from __future__ import annotations

import importlib
import sys

from donkey_ros.common.errors import DonkeyRosError

# name: (module, one-line help)
COMMANDS = {
    'drive': ('donkey_ros.apps.drive',
              'run the car stack on the simulator (default) and report laps'),
    'car': ('donkey_ros.apps.car',
            'the car (camera, pilot, mux, actuator) in one process; see docs/hardware.md'),
    'tracks': ('donkey_ros.sim.pictures',
               'pictures of the shipped tracks and camera views; --generate N: new tracks'),
    'params': ('donkey_ros.docs_params', 'print every node\'s parameters as Markdown'),
    'bag': ('donkey_ros.recording.bag_cli',
            'bag tools: info (topics, usable frames), repair (after a crash)'),
    'replay': ('donkey_ros.recording.replay', 'publish a bag with its original timing'),
    'clean': ('donkey_ros.recording.clean',
              'mark segments to drop from training; contact sheet PNG'),
    'check-launch': ('donkey_ros.launch_check', 'check launch files against the package'),
    'calibrate': ('donkey_ros.actuation.calibrate',
                  'find steering/throttle PWM values on the car and save them (PCA9685)'),
    'stylize': ('donkey_ros.style.stylize_cli',
                'stylize a picture via the style_transfer node (or --local); --list, --sheet'),
    'import-tub': ('donkey_ros.donkeycar.tub_import',
                   'convert DonkeyCar tubs (v2) into a bag for training'),
    'import-config': ('donkey_ros.donkeycar.config_import',
                      "DonkeyCar myconfig.py (PWM calibration, camera...) -> parameter file"),
    'doctor': ('donkey_ros.doctor.doctor',
               'check the car (clock, I2C/PCA9685, camera, model, disk, topics); fixes'),
    'train': ('donkey_ros.apps.train', 'train a pilot model (.tflite) on recorded bags'),
    'evaluate': ('donkey_ros.learning.evaluate',
                 'steering/throttle error of a model on held-out bags, with a plot'),
    'model-info': ('donkey_ros.learning.model_info',
                   "a .tflite model's inputs, outputs, ops, size and metadata"),
    'benchmark': ('donkey_ros.apps.benchmark',
                  'drive a model on a held-out suite of tracks and looks; table + picture'),
    'dataset': ('donkey_ros.apps.dataset',
                'expert recordings on many generated tracks and looks, with recoveries (bags)'),
    'loop': ('donkey_ros.apps.loop',
             'record expert laps in the sim -> train -> drive, measured'),
    'service': ('donkey_ros.apps.service',
                'start the car on power-up: install, show or remove a systemd unit'),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ['usage: donkey-ros COMMAND [ARGS...]', '', 'commands:']
    lines += [f'  {name:<{width}}  {help_}' for name, (_, help_) in COMMANDS.items()]
    lines += ['', "`donkey-ros COMMAND --help` for a command's options."]
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ('-h', '--help', 'help'):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"donkey-ros: unknown command '{name}'\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.main(rest) or 0)
    except DonkeyRosError as error:
        print(f'donkey-ros {name}: error: {error}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
