"""donkey_ros builds as a ROS 2 workspace: a plain `colcon build` of a workspace whose src/ holds
this repository (the ament_python package at the root, whose setup.py also builds the nested
rosidl package donkey_ros_interfaces into the same prefix), checked by scripts/colcon_check.sh
(install tree: package.xml, launch files, console scripts, ament index, imports)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'scripts' / 'colcon_check.sh'


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_colcon_build_and_install(tmp_path):
    venv = Path(sys.prefix)
    if not (venv / 'bin' / 'colcon').exists():
        pytest.fail(f'colcon is not installed in {venv} (see requirements-test.txt)')
    if shutil.which('cmake') is None:
        pytest.fail('cmake is not installed')
    env = dict(os.environ)
    env['VIRTUAL_ENV'] = str(venv)
    env['DONKEY_ROS_COLCON_WS'] = str(tmp_path / 'ws')
    env['TMPDIR'] = str(tmp_path)
    result = subprocess.run(['bash', str(SCRIPT)], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=570)
    assert result.returncode == 0, f'colcon check failed:\n{result.stdout[-6000:]}'
    assert 'OK: donkey_ros' in result.stdout, result.stdout
    install = tmp_path / 'ws' / 'install'
    assert (install / 'donkey_ros' / 'share' / 'donkey_ros' / 'package.xml').is_file()
    assert list((install / 'donkey_ros' / 'share' / 'donkey_ros' / 'launch').glob('*.launch.py'))
    assert os.access(install / 'donkey_ros' / 'lib' / 'donkey_ros' / 'sim', os.X_OK)
    srv = install / 'donkey_ros' / 'share' / 'donkey_ros_interfaces' / 'srv'
    assert (srv / 'Stylize.srv').is_file() and (srv / 'ListStyles.srv').is_file()
    # One package for colcon (no base paths, no defaults file): donkey_ros; no separate prefix.
    assert not (install / 'donkey_ros_interfaces').exists()
    index = install / 'donkey_ros' / 'share' / 'ament_index' / 'resource_index'
    assert (index / 'rosidl_interfaces' / 'donkey_ros_interfaces').is_file()
