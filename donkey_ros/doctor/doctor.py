"""`donkey-ros doctor`: run it on the car when something is wrong; a checklist with fixes.

    donkey-ros doctor [--config config/car.yaml] [--minutes 30] [--skip-ros] [--namespace car1]

Checks, in order: the parameter file (every value one the nodes accept), ROS 2 (rclpy, RMW,
domain), the install (which ROS 2 distro, both packages in the ament index, rosdep keys satisfied,
the pip-only dependencies importable by the nodes' interpreter, apt's NumPy/OpenCV not shadowed;
see docs/pi.md), the system clock, disk space for ``--minutes`` of recording, the user's groups
(i2c, video, input), the I2C bus and the PCA9685 on it, the pilot model (loads with LiteRT, takes
the camera's frames), the car stack's topics (publishers, with a short wait for discovery) and the
camera (opens, gives frames at the rate).
Exit status: 0 when nothing failed, 1 when a check failed (the failing checks are named).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from donkey_ros.doctor import checks, install
from donkey_ros.doctor.checks import FAIL, PASS, SKIP, WARN, CheckResult

NODE_MODULES = {
    'actuator': 'donkey_ros.actuation.actuator_node',
    'camera': 'donkey_ros.camera.camera_node',
    'pilot': 'donkey_ros.learning.pilot_node',
    'recorder': 'donkey_ros.recording.recorder_node',
    'mux': 'donkey_ros.control.mux_node',
    'joy_teleop': 'donkey_ros.teleop.joy_teleop_node',
}
"""The car's nodes whose parameters the doctor reads (section name -> module with PARAMS)."""

FALLBACK = {
    'actuator': {'backend': 'pca9685', 'i2c_bus': 1, 'i2c_address': 0x40},
    'camera': {'backend': 'opencv', 'device': '0', 'path': '', 'width': 160, 'height': 120,
               'fps': 20.0},
    'pilot': {'model_path': ''},
    'recorder': {'folder': '', 'compress_images': False},
}
"""Defaults used when the node modules cannot be imported (no rclpy)."""

DEFAULT_CONFIG = os.path.join('config', 'car.yaml')
MARKS = {PASS: 'PASS', WARN: 'WARN', FAIL: 'FAIL', SKIP: 'SKIP'}
COLOURS = {PASS: '\033[32m', WARN: '\033[33m', FAIL: '\033[31m', SKIP: '\033[90m'}


@dataclass
class CarConfig:
    """The car's node parameters: each node's defaults with the parameter file's values on top.

    Attributes:
        path: the parameter file ('' = defaults only).
        values: node -> {parameter: value}.
        problems: values the nodes would refuse, or parameters they do not declare.
        tables: whether the nodes' PARAMS tables could be read (False: FALLBACK values).
    """

    path: str = ''
    values: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    unknown: list = field(default_factory=list)
    tables: bool = True


def load_car_config(path: str | None) -> CarConfig:
    """Reads a ROS 2 parameter file for the car's nodes and checks each value against the node's
    ``Param`` (the same check the node makes at start-up).

    Raises:
        ParamFileError: the file is missing or not YAML.
    """
    from donkey_ros.common.param_file import node_params, read_param_file
    from donkey_ros.common.params import closest

    document = read_param_file(path) if path else {}
    config = CarConfig(path=path or '')
    for section, module_name in NODE_MODULES.items():
        try:
            module = importlib.import_module(module_name)
            specs = {spec.name: spec for spec in module.PARAMS}
            node = module.NODE_NAME
        except ImportError:
            config.tables = False
            specs, node = {}, section
        values = {name: spec.default for name, spec in specs.items()} if specs else \
            dict(FALLBACK.get(section, {}))
        for name, value in (node_params(document, node) or {}).items():
            spec = specs.get(name)
            if spec is None:
                if specs:
                    guess = closest(name, specs)
                    config.unknown.append(f'{node}.{name}' + (
                        f" (did you mean '{guess}'?)" if guess else ''))
                values[name] = value
                continue
            try:
                values[name] = spec.validate(value)
            except Exception as error:  # ConfigError: the node would refuse to start
                config.problems.append(f'{node}: {error}')
        config.values[section] = values
    return config


def check_config(config: CarConfig) -> CheckResult:
    title = 'Parameter file' + (f' {config.path}' if config.path else '')
    if not config.path:
        return CheckResult('config', title, WARN, f'no parameter file ({DEFAULT_CONFIG} not '
                           'found): checking the nodes\' defaults',
                           'give the car\'s file with --config, or import a DonkeyCar car: '
                           '`donkey-ros import-config ~/mycar/myconfig.py`')
    if config.problems:
        return CheckResult('config', title, FAIL, '; '.join(config.problems),
                           'correct these values: the nodes refuse to start with them')
    if config.unknown:
        return CheckResult('config', title, WARN,
                           f'parameters no node declares (ignored): {", ".join(config.unknown)}',
                           'check their spelling (`donkey-ros params` lists every parameter)')
    note = '' if config.tables else ' (nodes not importable: their defaults unknown)'
    return CheckResult('config', title, PASS, f'every value valid for '
                       f'{", ".join(config.values)}{note}')


def run_checks(config: CarConfig, minutes: float = 30.0, skip_ros: bool = False,
               namespace: str = '', wait: float = 3.0,
               report: Callable[[CheckResult], None] | None = None,
               starting: Callable[[str], None] | None = None) -> list[CheckResult]:
    """Runs every check in order; ``report`` is called with each result as it is known,
    ``starting`` with the title of a check about to run (for progress)."""
    results: list[CheckResult] = []
    actuator, camera = config.values['actuator'], config.values['camera']
    pilot, recorder = config.values['pilot'], config.values['recorder']

    def run(title: str, check: Callable[[], CheckResult]) -> CheckResult:
        if starting is not None:
            starting(title)
        try:
            result = check()
        except Exception as error:  # a check must never end the checklist
            result = CheckResult(title.lower(), title, FAIL, f'check crashed: {error!r}',
                                 'report this as a donkey_ros bug')
        results.append(result)
        if report is not None:
            report(result)
        return result

    run('Parameter file', lambda: check_config(config))
    if skip_ros:
        run('ROS 2', lambda: CheckResult('ros', 'ROS 2', SKIP, '--skip-ros'))
    else:
        run('ROS 2', checks.check_ros)
    if skip_ros:
        for name, title in (('distro', 'ROS 2 distro'), ('packages', 'Packages'),
                            ('rosdep', 'rosdep keys')):
            run(title, lambda name=name, title=title: CheckResult(name, title, SKIP, '--skip-ros'))
    else:
        run('ROS 2 distro', install.check_distro)
        run('Packages', install.check_packages)
        run('rosdep keys', install.check_rosdep)
    run('pip-only dependencies', install.check_pip_deps)
    run('NumPy/OpenCV from apt', install.check_apt_numpy)
    run('System clock', checks.check_clock)
    run('Disk space', lambda: checks.check_disk(
        recorder['folder'], minutes, checks.recording_rate(camera, recorder)))
    run('Groups', install.check_groups)
    uses_board = actuator['backend'] == 'pca9685'
    if uses_board:
        i2c = run('I2C bus', lambda: checks.check_i2c(actuator['i2c_bus']))
    if uses_board and i2c.failed:
        run('PCA9685', lambda: CheckResult(
            'pca9685', f"PCA9685 at 0x{actuator['i2c_address']:02x}", FAIL,
            f"not checked: I2C bus {actuator['i2c_bus']} is not available",
            'fix the I2C bus first (line above)'))
    else:
        run('PCA9685', lambda: checks.check_pca9685(actuator['i2c_bus'],
                                                    actuator['i2c_address'], actuator['backend']))
    run('Pilot model', lambda: checks.check_model(pilot, camera))
    in_use = False
    if skip_ros:
        run('Car stack topics', lambda: CheckResult('topics', 'Car stack topics', SKIP,
                                                    '--skip-ros'))
    else:
        counts: dict = {}

        def topics() -> CheckResult:
            wanted = [(topic, kind) for topic, kind, _ in checks.REQUIRED_TOPICS]
            try:
                counts.update(checks.graph_counts(namespace, wanted, wait))
            except Exception as error:  # rclpy missing, or the middleware failing to start
                return CheckResult('topics', 'Car stack topics', FAIL,
                                   f'cannot query the ROS graph: {checks.first_line(error)}',
                                   'fix the ROS 2 line above first')
            return checks.check_topics(namespace, wait, counts=counts)

        run('Car stack topics', topics)
        in_use = counts.get(('camera/image_raw', 'publisher'), 0) > 0
    run('Camera', lambda: checks.check_camera(camera, in_use=in_use))
    return results


def format_result(result: CheckResult, colour: bool = False) -> str:
    mark = MARKS[result.status]
    if colour:
        mark = f'{COLOURS[result.status]}{mark}\033[0m'
    lines = [f'  {mark}  {result.title}: {result.message}']
    if result.fix and result.status in (FAIL, WARN):
        lines.append(f'        fix: {result.fix}')
    return '\n'.join(lines)


def summary_line(results: list[CheckResult]) -> str:
    failed = [r.name for r in results if r.status == FAIL]
    warned = [r.name for r in results if r.status == WARN]
    if failed:
        text = f'{len(failed)} of {len(results)} checks failed: {", ".join(failed)}'
    else:
        text = f'all {len(results)} checks passed'
    if warned:
        text += f'; warnings: {", ".join(warned)}'
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='donkey-ros doctor', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=None,
                        help=f'the car\'s parameter file (default: {DEFAULT_CONFIG} if present)')
    parser.add_argument('--minutes', type=float, default=30.0,
                        help='minutes of recording the disk must hold (default: %(default)g)')
    parser.add_argument('--skip-ros', action='store_true',
                        help='skip the ROS 2 checks (rclpy, topics of the running car stack)')
    parser.add_argument('--namespace', default='', help="the car's namespace (e.g. car1)")
    parser.add_argument('--wait', type=float, default=3.0,
                        help='seconds to wait for the car stack\'s topics to be discovered')
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    path = args.config
    if path is None and Path(DEFAULT_CONFIG).is_file():
        path = DEFAULT_CONFIG
    if args.minutes <= 0:
        print('donkey-ros doctor: --minutes must be positive', file=sys.stderr)
        return 2
    config = load_car_config(path)
    interactive = sys.stdout.isatty()
    print(f"donkey-ros doctor: {path or 'no parameter file (node defaults)'}, "
          f'{args.minutes:g} min of recording', flush=True)

    def starting(title: str) -> None:
        if interactive:
            print(f'  ....  {title}', end='\r', flush=True)

    def report(result: CheckResult) -> None:
        if interactive:
            print('\033[2K', end='')
        print(format_result(result, colour=interactive), flush=True)

    results = run_checks(config, minutes=args.minutes, skip_ros=args.skip_ros,
                         namespace=args.namespace, wait=args.wait, report=report,
                         starting=starting)
    print(summary_line(results))
    return 1 if any(r.failed for r in results) else 0
