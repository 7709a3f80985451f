"""The doctor's checks of the install itself (scripts/pi_install.sh, docs/pi.md): which ROS 2,
both packages found, rosdep keys satisfied, the pip-only dependencies importable by the nodes'
interpreter, apt's NumPy/OpenCV not shadowed, the user's groups. Each returns a ``CheckResult``
with the fix; arguments only say where to look (defaults: this machine, this process).
"""
from __future__ import annotations

import grp
import importlib.util
import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Mapping

from donkey_ros.doctor import deps
from donkey_ros.doctor.checks import FAIL, PASS, SKIP, WARN, CheckResult, first_line

DISTROS = ('jazzy', 'kilted')
WORKSPACE_HINT = '~/ros2_ws'
APT_SITE = '/usr/lib/python3/dist-packages'
GROUPS = ('i2c', 'video', 'input')
GROUP_USE = {'i2c': 'PCA9685', 'video': 'camera', 'input': 'gamepad'}


def installed_distros(opt: Path = Path('/opt/ros')) -> list[str]:
    return sorted(p.parent.name for p in opt.glob('*/setup.bash')) if opt.is_dir() else []


def apt_ros(environ: Mapping[str, str] = os.environ) -> bool:
    """ROS 2 comes from apt (a sourced /opt/ros/<distro>), not from PyPI wheels in a venv."""
    distro = environ.get('ROS_DISTRO', '')
    return bool(distro) and any(p.startswith('/opt/ros/') for p in
                                environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep))


def check_distro(environ: Mapping[str, str] = os.environ,
                 opt: Path = Path('/opt/ros')) -> CheckResult:
    """A ROS 2 environment is sourced, and which distro."""
    title = 'ROS 2 distro'
    distro = environ.get('ROS_DISTRO', '')
    found = installed_distros(opt)
    if not distro:
        spec = importlib.util.find_spec('rclpy')
        if spec is not None and spec.origin and sys.prefix != sys.base_prefix and \
                spec.origin.startswith(sys.prefix):
            return CheckResult('distro', title, PASS, f'ROS 2 from PyPI wheels in {sys.prefix} '
                               '(development venv; no ROS_DISTRO)')
        which = found[0] if len(found) == 1 else '<distro>'
        return CheckResult('distro', title, FAIL,
                           'ROS_DISTRO is not set: no ROS 2 environment sourced'
                           + (f' (installed: {", ".join(found)})' if found else
                              ' and nothing in /opt/ros'),
                           f'source /opt/ros/{which}/setup.bash && source '
                           f'{WORKSPACE_HINT}/install/setup.bash' if found else
                           'install ROS 2 Jazzy or Kilted from apt (ros-jazzy-ros-base), then '
                           'run scripts/pi_install.sh')
    if distro not in DISTROS:
        return CheckResult('distro', title, WARN, f'ROS 2 {distro}: donkey_ros is tested on '
                           f'{" and ".join(DISTROS)}', 'use Jazzy or Kilted if something fails')
    where = 'apt, /opt/ros/' + distro if apt_ros(environ) else 'not from /opt/ros'
    return CheckResult('distro', title, PASS, f'ROS 2 {distro} ({where})')


def check_packages(environ: Mapping[str, str] = os.environ) -> CheckResult:
    """donkey_ros and donkey_ros_interfaces found in the ament index (what ros2 launch/run and
    `ros2 interface` use) and their Python modules importable."""
    title = 'Packages donkey_ros, donkey_ros_interfaces'
    build = (f'cd {WORKSPACE_HINT} && colcon build && source install/setup.bash '
             '(scripts/pi_install.sh --only build)')
    missing = [m for m in ('donkey_ros', 'donkey_ros_interfaces.msg')
               if importlib.util.find_spec(m) is None]
    if missing:
        return CheckResult('packages', title, FAIL, f'cannot import {", ".join(missing)}', build)
    prefixes = [p for p in environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    if not prefixes:
        if apt_ros(environ) or environ.get('ROS_DISTRO'):
            return CheckResult('packages', title, FAIL, 'AMENT_PREFIX_PATH is empty',
                               f'source {WORKSPACE_HINT}/install/setup.bash')
        return CheckResult('packages', title, PASS, 'both import (development venv: no ament '
                           'index, ros2 launch is not used here)')
    index = 'share/ament_index/resource_index'
    places = {}
    for name, kind in (('donkey_ros', 'packages'), ('donkey_ros_interfaces', 'packages'),
                       ('donkey_ros_interfaces', 'rosidl_interfaces')):
        places[(name, kind)] = next((p for p in prefixes
                                     if (Path(p) / index / kind / name).is_file()), None)
    lost = [f'{name} ({kind})' for (name, kind), where in places.items() if where is None]
    if lost:
        return CheckResult('packages', title, FAIL, f'not in the ament index of AMENT_PREFIX_PATH: '
                           f'{", ".join(lost)}', build)
    return CheckResult('packages', title, PASS, 'both in the ament index: donkey_ros in '
                       f"{places[('donkey_ros', 'packages')]}, donkey_ros_interfaces in "
                       f"{places[('donkey_ros_interfaces', 'packages')]}")


def package_xml_dir(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The directory of donkey_ros's installed package.xml (share/donkey_ros), else the source."""
    for prefix in environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        share = Path(prefix) / 'share' / 'donkey_ros'
        if prefix and (share / 'package.xml').is_file():
            return share
    source = Path(__file__).resolve().parents[2]
    return source if (source / 'package.xml').is_file() else None


def check_rosdep(environ: Mapping[str, str] = os.environ, timeout: float = 60) -> CheckResult:
    """`rosdep check` of donkey_ros's package.xml: every system dependency installed."""
    title = 'rosdep keys'
    distro = environ.get('ROS_DISTRO', '')
    rosdep = shutil.which('rosdep', path=environ.get('PATH'))
    if not distro:
        return CheckResult('rosdep', title, SKIP, 'no ROS_DISTRO (not an apt ROS 2)')
    if rosdep is None:
        return CheckResult('rosdep', title, SKIP, 'rosdep is not installed',
                           'sudo apt install python3-rosdep (scripts/pi_install.sh does)')
    where = package_xml_dir(environ)
    if where is None:
        return CheckResult('rosdep', title, FAIL, 'donkey_ros\'s package.xml not found',
                           f'source {WORKSPACE_HINT}/install/setup.bash')
    try:
        done = subprocess.run([rosdep, 'check', '--from-paths', str(where), '--ignore-src',
                               '--rosdistro', distro], capture_output=True, text=True,
                              timeout=timeout, env=dict(environ))
    except (OSError, subprocess.SubprocessError) as error:
        return CheckResult('rosdep', title, FAIL, f'rosdep check failed: {first_line(error)}',
                           'run it by hand: rosdep check --from-paths src --ignore-src')
    text = (done.stdout + done.stderr).strip()
    if done.returncode == 0:
        return CheckResult('rosdep', title, PASS, f'all system dependencies of {where}/package.xml '
                           'installed')
    if 'rosdep init' in text or 'rosdep update' in text:
        return CheckResult('rosdep', title, FAIL, 'rosdep has no database: ' +
                           text.splitlines()[0], 'sudo rosdep init; rosdep update')
    missing = sorted({line.split()[-1] for line in text.splitlines()
                      if line.strip().startswith(('apt', 'pip'))})
    return CheckResult('rosdep', title, FAIL, 'missing: ' + (', '.join(missing) or
                                                            text.splitlines()[-1]),
                       f'cd {WORKSPACE_HINT} && rosdep install --from-paths src --ignore-src -y')


def nodes_python(environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """(interpreter, where it was read): the shebang of donkey_ros's installed `pilot` script
    (what `ros2 run`/launch start), else this process's interpreter."""
    for prefix in environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        script = Path(prefix) / 'lib' / 'donkey_ros' / 'pilot'
        if prefix and script.is_file():
            first = script.read_text(errors='replace').splitlines()[0]
            if first.startswith('#!'):
                return first[2:].strip().split()[0], str(script)
    return sys.executable, 'this process'


def probe(python: str, code: str, environ: Mapping[str, str] = os.environ,
          timeout: float = 60) -> dict:
    """Runs ``code`` (printing one JSON value) in ``python``; {'error': ...} when it cannot."""
    try:
        done = subprocess.run([python, '-c', code], capture_output=True, text=True,
                              timeout=timeout, env=dict(environ))
    except (OSError, subprocess.SubprocessError) as error:
        return {'error': first_line(error)}
    if done.returncode != 0:
        return {'error': first_line(RuntimeError(done.stderr.strip().splitlines()[-1]
                                                 if done.stderr.strip() else 'failed'))}
    return json.loads(done.stdout.strip().splitlines()[-1])


FIND = ('import importlib.util, json; print(json.dumps({m: (s.origin or "namespace") if '
        '(s := importlib.util.find_spec(m)) else None for m in MODULES}))')


def check_pip_deps(environ: Mapping[str, str] = os.environ, python: str | None = None,
                   venv: Path | None = None) -> CheckResult:
    """Each pip-only module (requirements-pi.txt) importable by the nodes' interpreter."""
    title = 'pip-only dependencies'
    venv = venv or deps.PIP_VENV
    where = 'given'
    if python is None:
        python, where = nodes_python(environ)
    modules = sorted(deps.PIP_ONLY)
    code = FIND.replace('MODULES', repr(modules))
    found = probe(python, code, environ)
    if 'error' in found:
        return CheckResult('pip', title, FAIL, f'cannot run the nodes\' python {python}: '
                           f'{found["error"]}', 'scripts/pi_install.sh --only pip,build')
    missing = [m for m in modules if not found.get(m)]
    if not missing:
        return CheckResult('pip', title, PASS, f'all {len(modules)} import with {python} '
                           f'(from {where})')
    in_venv = (venv / 'pyvenv.cfg').is_file()
    dists = ' '.join(deps.PIP_ONLY[m] for m in missing)
    if in_venv and not python.startswith(str(venv)):
        fix = (f'the nodes run with {python}, not {venv}/bin/python3: rebuild so they use it '
               f'(cd {WORKSPACE_HINT} && colcon build)')
    else:
        fix = (f'scripts/pi_install.sh --only pip,build (installs {dists} into {venv} and '
               'points the nodes at it)')
    return CheckResult('pip', title, FAIL, f'{python} (from {where}) cannot import '
                       f'{", ".join(missing)}', fix)


NUMPY = ('import json, importlib.util as u; import numpy; s = u.find_spec("cv2"); '
         'print(json.dumps({"numpy": numpy.__file__, "version": numpy.__version__, '
         '"cv2": s.origin if s else None}))')


def check_apt_numpy(environ: Mapping[str, str] = os.environ, python: str | None = None,
                    apt_site: str = APT_SITE, apt: bool | None = None) -> CheckResult:
    """With apt ROS 2, the nodes import apt's NumPy and OpenCV (the ones cv_bridge, matplotlib and
    the ROS message packages were built against), not copies pip put somewhere else."""
    title = 'NumPy/OpenCV from apt'
    apt = apt_ros(environ) if apt is None else apt
    if python is None:
        python, _ = nodes_python(environ)
    found = probe(python, NUMPY, environ)
    if 'error' in found:
        return CheckResult('numpy', title, FAIL, f'{python} cannot import NumPy: '
                           f'{found["error"]}', f'cd {WORKSPACE_HINT} && rosdep install '
                           '--from-paths src --ignore-src -y (python3-numpy)')
    if not apt:
        return CheckResult('numpy', title, SKIP, f'ROS 2 not from apt: NumPy {found["version"]} '
                           f'from {Path(found["numpy"]).parent.parent}')
    shadowed = [(name, found[name]) for name in ('numpy', 'cv2')
                if found.get(name) and not found[name].startswith(apt_site + os.sep)]
    if shadowed:
        places = ', '.join(f'{name} from {Path(path).parent}' for name, path in shadowed)
        owners = sorted({str(Path(path).parent.parent) for _, path in shadowed})
        return CheckResult('numpy', title, FAIL, f'{python} imports {places}, not apt\'s '
                           f'({apt_site})', 'remove the pip copies: ' + '; '.join(
                               f'{python} -m pip uninstall numpy opencv-python '
                               f'opencv-python-headless (installed in {o})' for o in owners)
                           + '; never pip install NumPy/OpenCV on the car')
    return CheckResult('numpy', title, PASS, f'NumPy {found["version"]} and OpenCV from '
                       f'{apt_site}')


def check_groups(user: str | None = None, wanted=GROUPS,
                 active: set[int] | None = None) -> CheckResult:
    """The user is in i2c, video and input (PCA9685, camera, gamepad), and the session has them."""
    title = 'Groups ' + ', '.join(wanted)
    user = user or pwd.getpwuid(os.getuid()).pw_name
    if user == 'root':
        return CheckResult('groups', title, SKIP, 'running as root: every device opens (the car '
                           'should run as your user)')
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return CheckResult('groups', title, FAIL, f'no user {user}', 'run as the car\'s user')
    active = set(os.getgroups()) if active is None else active
    absent, out, pending = [], [], []
    for name in wanted:
        try:
            group = grp.getgrnam(name)
        except KeyError:
            absent.append(name)
            continue
        member = user in group.gr_mem or group.gr_gid == entry.pw_gid
        if not member:
            out.append(name)
        elif group.gr_gid not in active:
            pending.append(name)
    if absent or out:
        problems = [f'not in {", ".join(out)}'] if out else []
        problems += [f'no group {", ".join(absent)} on this system'] if absent else []
        uses = ', '.join(f'{g}: {GROUP_USE.get(g, g)}' for g in out + absent)
        return CheckResult('groups', title, FAIL, f'{user}: {"; ".join(problems)} ({uses})',
                           f'sudo usermod -aG {",".join(out) or ",".join(absent)} {user}, then '
                           'log out and in' + ('; scripts/pi_install.sh --only groups creates '
                                               'the i2c group' if 'i2c' in absent else ''))
    if pending:
        return CheckResult('groups', title, WARN, f'{user} was added to {", ".join(pending)} but '
                           'this session does not have it yet', 'log out and in (or reboot)')
    return CheckResult('groups', title, PASS, f'{user} is in {", ".join(wanted)}')
