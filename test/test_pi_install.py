"""scripts/pi_install.sh, the car's one-shot install, in the parts this machine can run.

No apt ROS here: the whole sequence is checked with --dry-run (the exact commands, in order), and
the pip-only step runs for real against a local wheel folder, with a stand-in for apt's NumPy on
the system python's path, to show that the venv sees the system's packages and that the
constraints keep pip from ever replacing that NumPy.
"""
import grp
import json
import os
import pwd
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = getattr(sys, '_base_executable', sys.executable)


def workspace(tmp_path: Path) -> Path:
    """tmp/ws/src/donkey_ros -> this checkout (the script finds the workspace above the clone)."""
    src = tmp_path / 'ws' / 'src'
    src.mkdir(parents=True)
    (src / 'donkey_ros').symlink_to(ROOT)
    return tmp_path / 'ws'


def run_script(ws: Path, *args: str, env: dict | None = None, timeout: float = 300):
    return subprocess.run(['bash', str(ws / 'src' / 'donkey_ros' / 'scripts' / 'pi_install.sh'),
                           *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_dry_run_prints_the_whole_install_in_order(tmp_path):
    ws = workspace(tmp_path)
    venv = tmp_path / 'home' / '.local' / 'share' / 'donkey_ros' / 'venv'
    done = run_script(ws, '--dry-run', '--distro', 'jazzy',
                      env={'DONKEY_ROS_PIP_VENV': str(venv)})
    assert done.returncode == 0, done.stderr
    commands = [line[2:] for line in done.stdout.splitlines() if line.startswith('+ ')]
    text = '\n'.join(commands)
    order = [f'rosdep update --rosdistro jazzy',
             f'cd {ws} && rosdep install --from-paths src --ignore-src -y --rosdistro jazzy',
             f'-m venv --system-site-packages --clear {venv}',
             f'{venv}/bin/python -m pip install --disable-pip-version-check --upgrade-strategy '
             f'only-if-needed -c {venv}/donkey_ros-constraints.txt -r {ws}/src/donkey_ros/'
             'requirements-pi.txt',
             'source /opt/ros/jazzy/setup.bash',
             f'cd {ws} && env DONKEY_ROS_PIP_VENV={venv} colcon build']
    positions = [text.find(item) for item in order]
    assert all(p >= 0 for p in positions), (order, text)
    assert positions == sorted(positions), text
    user = pwd.getpwuid(os.getuid()).pw_name
    for group in ('i2c', 'video', 'input'):
        try:
            members = grp.getgrnam(group)
        except KeyError:
            continue
        if user not in members.gr_mem and members.gr_gid != os.getgid():
            assert f'usermod -aG {group} {user}' in text
    assert '    opencv-python<0' in done.stdout
    assert 'ros2 launch donkey_ros car.launch.py' in done.stderr
    # Nothing was changed.
    assert not venv.exists()


def test_refuses_a_clone_outside_a_workspace_and_unknown_steps(tmp_path):
    elsewhere = tmp_path / 'donkey_ros'
    elsewhere.symlink_to(ROOT)
    done = subprocess.run(['bash', str(elsewhere / 'scripts' / 'pi_install.sh'), '--dry-run',
                           '--distro', 'jazzy'], capture_output=True, text=True, timeout=60,
                          env={**os.environ, 'DONKEY_ROS_WORKSPACE': str(tmp_path / 'nowhere')})
    assert done.returncode == 1 and "must be in a workspace's src/" in done.stderr
    bad = run_script(workspace(tmp_path / 'a'), '--only', 'pip,bogus', '--dry-run',
                     '--distro', 'jazzy')
    assert bad.returncode == 1 and "unknown step 'bogus'" in bad.stderr


# --- the pip-only step, for real ----------------------------------------------------------------
def wheel(folder: Path, name: str, version: str, requires=(), code: str = '') -> None:
    """A minimal pure-Python wheel (one module named ``name``)."""
    info = f'{name}-{version}.dist-info'
    files = {
        f'{name}/__init__.py': code or f'__version__ = {version!r}\n',
        f'{info}/METADATA': ''.join([f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n']
                                    + [f'Requires-Dist: {r}\n' for r in requires]),
        f'{info}/WHEEL': 'Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n'
                         'Tag: py3-none-any\n',
    }
    files[f'{info}/RECORD'] = ''.join(f'{path},,\n' for path in files) + f'{info}/RECORD,,\n'
    with zipfile.ZipFile(folder / f'{name}-{version}-py3-none-any.whl', 'w') as archive:
        for path, text in files.items():
            archive.writestr(path, text)


@pytest.fixture
def pip_world(tmp_path):
    """A local wheel folder (a pip-only package, one needing NumPy >= 2, and a NumPy 99 that pip
    would gladly install) and an 'apt' NumPy 1.26.4 on the system python's path."""
    wheels = tmp_path / 'wheels'
    wheels.mkdir()
    wheel(wheels, 'litepkg', '1.0', ['numpy>=1.20'])
    wheel(wheels, 'needsnew', '1.0', ['numpy>=2'])
    wheel(wheels, 'wantscv', '1.0', ['opencv-python'])
    wheel(wheels, 'numpy', '99.0')
    wheel(wheels, 'opencv_python', '4.10.0')
    system_site = tmp_path / 'system-site'
    (system_site / 'numpy').mkdir(parents=True)
    (system_site / 'numpy' / '__init__.py').write_text("__version__ = '1.26.4'\n")
    (system_site / 'numpy-1.26.4.dist-info').mkdir()
    (system_site / 'numpy-1.26.4.dist-info' / 'METADATA').write_text(
        'Metadata-Version: 2.1\nName: numpy\nVersion: 1.26.4\n')
    ws = workspace(tmp_path)
    venv = tmp_path / 'venv'
    env = {'DONKEY_ROS_PIP_VENV': str(venv), 'DONKEY_ROS_SYSTEM_PYTHON': SYSTEM_PYTHON,
           'PYTHONPATH': str(system_site), 'PIP_NO_INDEX': '1', 'PIP_FIND_LINKS': str(wheels),
           'PIP_DISABLE_PIP_VERSION_CHECK': '1'}
    return ws, venv, env, tmp_path


def venv_python(venv: Path, code: str, env: dict) -> str:
    done = subprocess.run([str(venv / 'bin' / 'python'), '-c', code], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.timeout(600)
def test_pip_step_makes_a_system_site_venv_and_keeps_apt_numpy(pip_world):
    ws, venv, env, tmp = pip_world
    requirements = tmp / 'req.txt'
    requirements.write_text('litepkg  # a pip-only dependency\n')
    env = {**env, 'DONKEY_ROS_PI_REQUIREMENTS': str(requirements)}
    done = run_script(ws, '--only', 'pip', '--distro', 'jazzy', env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'include-system-site-packages = true' in (venv / 'pyvenv.cfg').read_text()
    constraints = (venv / 'donkey_ros-constraints.txt').read_text().splitlines()
    assert 'numpy==1.26.4' in constraints and 'opencv-python<0' in constraints
    found = json.loads(venv_python(venv, 'import json, litepkg, numpy; print(json.dumps('
                                   '[litepkg.__file__, numpy.__file__, numpy.__version__]))', env))
    assert found[0].startswith(str(venv)), found          # the pip-only package: in the venv
    assert found[1].startswith(str(tmp / 'system-site')) and found[2] == '1.26.4', found
    assert not list(venv.glob('lib/python*/site-packages/numpy*'))
    # Idempotent: a second run changes nothing and succeeds.
    again = run_script(ws, '--only', 'pip', '--distro', 'jazzy', env=env)
    assert again.returncode == 0, again.stderr
    assert 'creating' not in again.stderr


@pytest.mark.timeout(600)
@pytest.mark.parametrize('package', ['needsnew', 'wantscv'])
def test_pip_step_fails_rather_than_replace_apt_numpy_or_opencv(pip_world, package):
    """A pip-only package that wants NumPy 2 (or pip's OpenCV) is refused; without the
    constraints pip would install numpy 99 / opencv-python into the venv, over apt's."""
    ws, venv, env, tmp = pip_world
    requirements = tmp / 'req.txt'
    requirements.write_text(f'{package}\n')
    done = run_script(ws, '--only', 'pip', '--distro', 'jazzy',
                      env={**env, 'DONKEY_ROS_PI_REQUIREMENTS': str(requirements)})
    assert done.returncode != 0
    assert 'ResolutionImpossible' in done.stderr or 'conflict' in done.stderr.lower(), done.stderr
    assert not list(venv.glob('lib/python*/site-packages/numpy*'))
    assert not list(venv.glob('lib/python*/site-packages/opencv*'))


# --- the nodes run with the venv's python (setup.py) ----------------------------------------------
def setup_py_install(tmp_path: Path, env: dict) -> Path:
    """`setup.py install` the way colcon runs it (--record), interfaces off: the console scripts."""
    import subprocess as sp
    source = tmp_path / 'source'
    files = sp.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                   cwd=ROOT, capture_output=True, check=True).stdout.split(b'\0')
    for name in filter(None, (f.decode() for f in files)):
        if (ROOT / name).is_file() and not name.startswith(('test/', 'docs/', 'bench/')):
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((ROOT / name).read_bytes())
    (tmp_path / 'egg').mkdir()
    prefix = tmp_path / 'prefix'
    done = sp.run([sys.executable, 'setup.py', 'egg_info', '--egg-base', str(tmp_path / 'egg'),
                   'build', '--build-base', str(tmp_path / 'build'), 'install', '--record',
                   str(tmp_path / 'install.log'), '--prefix', str(prefix),
                   '--single-version-externally-managed'], cwd=source, capture_output=True,
                  text=True, timeout=300,
                  env={**os.environ, 'DONKEY_ROS_BUILD_INTERFACES': '0', **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return prefix / 'lib' / 'donkey_ros'


@pytest.mark.timeout(600)
def test_console_scripts_use_the_pip_venv_python_when_it_exists(tmp_path):
    venv = tmp_path / 'venv'
    subprocess.run([SYSTEM_PYTHON, '-m', 'venv', '--system-site-packages', '--without-pip',
                    str(venv)], check=True, timeout=120)
    scripts = setup_py_install(tmp_path / 'with', {'DONKEY_ROS_PIP_VENV': str(venv)})
    for name in ('pilot', 'actuator', 'donkey-ros'):
        assert (scripts / name).read_text().splitlines()[0] == f'#!{venv}/bin/python3'
    # That interpreter is the venv (its site-packages: the pip-only packages) over the system's.
    prefix = subprocess.run([f'{venv}/bin/python3', '-c', 'import sys; print(sys.prefix)'],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert prefix == str(venv)
    # No venv: the python that ran the build, as before.
    plain = setup_py_install(tmp_path / 'without', {'DONKEY_ROS_PIP_VENV': str(tmp_path / 'no')})
    assert (plain / 'pilot').read_text().splitlines()[0] == f'#!{sys.executable}'


@pytest.mark.timeout(600)
def test_wheel_builds_leave_the_interfaces_to_build_interfaces_sh(tmp_path):
    """pip (the dev venv, the launch-file test) never runs setup.py's interface build: only
    colcon's `install --record` / `develop --editable` do."""
    setup_py_install(tmp_path / 'colcon', {})
    source = tmp_path / 'colcon' / 'source'
    prefix = tmp_path / 'pip'
    done = subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps',
                           '--no-build-isolation', '--ignore-installed', '--no-compile',
                           '--prefix', str(prefix), str(source)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, 'DONKEY_ROS_PIP_VENV': str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert (prefix / 'share' / 'donkey_ros' / 'package.xml').is_file()
    assert not (prefix / 'share' / 'donkey_ros_interfaces').exists()
    assert 'building the nested package' not in done.stdout + done.stderr
