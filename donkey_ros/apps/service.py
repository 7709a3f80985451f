"""`donkey-ros service install|show|remove`: start the car on power-up with a systemd unit.

The unit runs ``ros2 launch donkey_ros car.launch.py [ARGS]`` after sourcing the ROS setup and the
workspace's ``install/setup.bash``. ``KillSignal=SIGINT`` to ``ros2 launch`` (``KillMode=mixed``)
stops it as Ctrl-C does, so every node sends neutral before it exits; ``Restart=on-failure``
starts it again after a crash.

    donkey-ros service install                       # a user service (~/.config/systemd/user)
    donkey-ros service install model:=/home/pi/models/pilot.tflite
    sudo donkey-ros service install --system         # a system service running as you
    donkey-ros service show
    donkey-ros service remove

A user service starts at boot only when lingering is on (``sudo loginctl enable-linger $USER``,
printed by install). ``--dry-run`` prints the unit and the systemctl commands without writing or
running anything; ``--unit-dir`` writes the unit elsewhere and runs no systemctl.
"""
from __future__ import annotations

import argparse
import getpass
import glob
import os
import pwd
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from donkey_ros.common.errors import DonkeyRosError

NAME = 'donkey-ros'
SYSTEM_UNIT_DIR = Path('/etc/systemd/system')
PASSED_ENV = ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_STATIC_PEERS',
              'RMW_IMPLEMENTATION', 'DONKEY_ROS_DATA')
"""Environment copied from the installing shell, so the service talks on the same ROS domain and
keeps its data where the user's commands look for it."""


class ServiceError(DonkeyRosError):
    """The unit cannot be written, found or removed."""


@dataclass
class UnitSpec:
    """What the unit runs and as whom.

    Attributes:
        ros_setup: the ROS distribution's setup.bash (/opt/ros/<distro>/setup.bash).
        workspace_setup: the workspace's install/setup.bash.
        launch_args: ``name:=value`` arguments of car.launch.py.
        system: a system unit running as ``user`` (True) or a user unit (False).
        user: the account the car runs as; home: its home (working directory).
        environment: extra ``Environment=`` values.
    """

    ros_setup: Path
    workspace_setup: Path
    launch_args: list[str] = field(default_factory=list)
    system: bool = False
    user: str = ''
    home: Path = Path('~')
    environment: dict[str, str] = field(default_factory=dict)


def _systemd_quote(text: str) -> str:
    """One ExecStart argument in double quotes, with systemd's specials ($, %, \\, ") escaped."""
    escaped = (text.replace('\\', '\\\\').replace('"', '\\"').replace('$', '$$')
               .replace('%', '%%'))
    return f'"{escaped}"'


def launch_command(spec: UnitSpec) -> str:
    """The bash script the unit runs: source ROS and the workspace, then exec ros2 launch."""
    for arg in spec.launch_args:
        if ':=' not in arg:
            raise ServiceError(f"launch argument {arg!r} is not name:=value (e.g. mode:=user)")
    launch = ' '.join(['exec ros2 launch donkey_ros car.launch.py',
                       *map(shlex.quote, spec.launch_args)])
    return (f'source {shlex.quote(str(spec.ros_setup))} && '
            f'source {shlex.quote(str(spec.workspace_setup))} && {launch}')


def render_unit(spec: UnitSpec) -> str:
    """The unit file's text."""
    environment = ''.join(f'Environment={_systemd_quote(f"{k}={v}")}\n'
                          for k, v in sorted(spec.environment.items()))
    user = f'User={spec.user}\n' if spec.system and spec.user else ''
    return (
        '# Written by `donkey-ros service install`; `donkey-ros service remove` removes it.\n'
        '[Unit]\n'
        'Description=donkey_ros car (ros2 launch donkey_ros car.launch.py)\n'
        'Wants=network-online.target\n'
        'After=network-online.target\n'
        '\n'
        '[Service]\n'
        'Type=exec\n'
        f'{user}'
        f'WorkingDirectory={spec.home}\n'
        f'{environment}'
        f'ExecStart=/bin/bash -c {_systemd_quote(launch_command(spec))}\n'
        '# Ctrl-C for ros2 launch: it stops every node, and each sends neutral first.\n'
        'KillSignal=SIGINT\n'
        'KillMode=mixed\n'
        'TimeoutStopSec=20\n'
        'Restart=on-failure\n'
        'RestartSec=5\n'
        '\n'
        '[Install]\n'
        f"WantedBy={'multi-user.target' if spec.system else 'default.target'}\n")


# --- finding things -----------------------------------------------------------------------------
def find_ros_setup(given: str = '', environ: dict | None = None) -> Path:
    """The ROS setup.bash: ``given``, else /opt/ros/$ROS_DISTRO, else the only /opt/ros/*."""
    env = os.environ if environ is None else environ
    if given:
        path = Path(given).expanduser().absolute()
        if not path.is_file():
            raise ServiceError(f'--ros-setup {path} does not exist')
        return path
    if env.get('ROS_DISTRO'):
        path = Path('/opt/ros') / env['ROS_DISTRO'] / 'setup.bash'
        if path.is_file():
            return path
    found = sorted(glob.glob('/opt/ros/*/setup.bash'))
    if len(found) == 1:
        return Path(found[0])
    raise ServiceError('cannot tell which ROS setup to source ('
                       + (f"found {', '.join(found)}" if found else 'none in /opt/ros')
                       + '): give --ros-setup /opt/ros/<distro>/setup.bash')


def find_workspace_setup(given: str = '', module_file: str | None = None) -> Path:
    """The workspace's install/setup.bash: ``given`` (a workspace or its setup.bash), else the
    colcon install this donkey_ros runs from."""
    if given:
        path = Path(given).expanduser().absolute()
        for candidate in (path, path / 'install' / 'setup.bash', path / 'setup.bash'):
            if candidate.is_file():
                return candidate
        raise ServiceError(f'--workspace {path}: no install/setup.bash there (colcon build first)')
    here = Path(module_file or __file__).resolve()
    for parent in here.parents:
        if parent.name == 'install' and (parent / 'setup.bash').is_file():
            return parent / 'setup.bash'
    raise ServiceError(f'donkey_ros runs from {here.parent}, not from a colcon install: give '
                       '--workspace ~/ros2_ws (the workspace holding install/setup.bash)')


def unit_dir(system: bool, home: Path) -> Path:
    return SYSTEM_UNIT_DIR if system else home / '.config' / 'systemd' / 'user'


def _account(system: bool, user: str) -> tuple[str, Path]:
    """The account the car runs as (under sudo: the one who ran sudo) and its home."""
    name = user or (os.environ.get('SUDO_USER') if system else '') or getpass.getuser()
    try:
        return name, Path(pwd.getpwnam(name).pw_dir)
    except KeyError:
        raise ServiceError(f'no user {name!r} on this machine') from None


# --- actions ------------------------------------------------------------------------------------
def _systemctl(system: bool, *args: str) -> list[str]:
    return ['systemctl', *([] if system else ['--user']), *args]


def _run(commands: list[list[str]], dry_run: bool, out) -> int:
    """Runs systemctl commands (or prints them); returns how many failed."""
    failed = 0
    for command in commands:
        line = ' '.join(command)
        if dry_run or shutil.which(command[0]) is None:
            print(f'  {line}' + ('' if dry_run else '   (systemctl not found: run it yourself)'),
                  file=out)
            continue
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode:
            failed += 1
            message = (result.stderr or result.stdout).strip().splitlines()
            print(f'  {line}: failed: {message[0] if message else result.returncode}', file=out)
        else:
            print(f'  {line}: ok', file=out)
    return failed


def install(spec: UnitSpec, path: Path, manage: bool, dry_run: bool, out=None) -> int:
    text = render_unit(spec)
    name = path.name
    commands = [_systemctl(spec.system, 'daemon-reload'), _systemctl(spec.system, 'enable', name)]
    if dry_run:
        print(f'# {path} (dry run: nothing written)', file=out)
        print(text, file=out)
        print('then:', file=out)
        _run(commands, True, out)
        return 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as error:
        hint = ' (a system unit needs sudo; or install a user unit without --system)' \
            if spec.system else ''
        raise ServiceError(f'cannot write {path}: {error.strerror}{hint}') from None
    print(f'wrote {path}', file=out)
    failed = _run(commands, False, out) if manage else 0
    if not manage:
        print(f'not the standard unit folder: no systemctl run (link or copy {path} yourself)',
              file=out)
    scope = '' if spec.system else '--user '
    print(f'start it now: systemctl {scope}start {name}; logs: journalctl {scope}-u {name} -f',
          file=out)
    if not spec.system:
        print(f'at boot without logging in: sudo loginctl enable-linger {spec.user}', file=out)
    return 1 if failed else 0


def show(spec: UnitSpec, path: Path, manage: bool, out=None) -> int:
    if not path.exists():
        print(f'{path}: not installed; `donkey-ros service install` would write:\n', file=out)
        print(render_unit(spec), file=out)
        return 0
    print(f'# {path}', file=out)
    print(path.read_text(), file=out)
    if manage and shutil.which('systemctl'):
        for what in ('is-enabled', 'is-active'):
            result = subprocess.run(_systemctl(spec.system, what, path.name),
                                    capture_output=True, text=True)
            print(f'{what}: {result.stdout.strip() or result.stderr.strip()}', file=out)
    return 0


def remove(spec: UnitSpec, path: Path, manage: bool, dry_run: bool, out=None) -> int:
    if not path.exists():
        print(f'{path}: not installed, nothing to remove', file=out)
        return 0
    failed = 0
    if manage or dry_run:
        failed = _run([_systemctl(spec.system, 'disable', '--now', path.name)], dry_run, out)
    if dry_run:
        print(f'  rm {path}', file=out)
        return 0
    try:
        path.unlink()
    except OSError as error:
        raise ServiceError(f'cannot remove {path}: {error.strerror}') from None
    print(f'removed {path}', file=out)
    if manage:
        failed += _run([_systemctl(spec.system, 'daemon-reload')], False, out)
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog='donkey-ros service', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('action', choices=('install', 'show', 'remove'))
    parser.add_argument('launch_args', nargs='*', metavar='NAME:=VALUE',
                        help='car.launch.py arguments (install), e.g. mode:=user')
    parser.add_argument('--system', action='store_true',
                        help='a system unit in /etc/systemd/system (needs sudo) running as '
                             '--run-as')
    parser.add_argument('--run-as', default='',
                        help='account the car runs as, for --system (default: you, or SUDO_USER)')
    parser.add_argument('--workspace', default='',
                        help='colcon workspace (or its install/setup.bash); default: the install '
                             'this donkey_ros runs from')
    parser.add_argument('--ros-setup', default='',
                        help='ROS setup.bash (default: /opt/ros/$ROS_DISTRO/setup.bash)')
    parser.add_argument('--name', default=NAME, help=f'unit name (default {NAME})')
    parser.add_argument('--unit-dir', type=Path,
                        help='write the unit here instead (no systemctl is run)')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the unit and the commands; write and run nothing')
    args = parser.parse_intermixed_args(argv)
    if args.launch_args and args.action != 'install':
        parser.error('launch arguments go with install')
    user, home = _account(args.system, args.run_as)
    folder = args.unit_dir.expanduser().absolute() if args.unit_dir else unit_dir(args.system,
                                                                                 home)
    path = folder / f'{args.name}.service'
    manage = args.unit_dir is None
    if args.action == 'remove' or (args.action == 'show' and path.exists()):
        # Only the scope matters: no need to find ROS or the workspace.
        spec = UnitSpec(Path(), Path(), system=args.system, user=user, home=home)
    else:
        spec = UnitSpec(
            ros_setup=find_ros_setup(args.ros_setup),
            workspace_setup=find_workspace_setup(args.workspace), launch_args=args.launch_args,
            system=args.system, user=user, home=home,
            environment={k: os.environ[k] for k in PASSED_ENV if os.environ.get(k)})
    if args.action == 'install':
        return install(spec, path, manage, args.dry_run)
    if args.action == 'show':
        return show(spec, path, manage)
    return remove(spec, path, manage, args.dry_run)
