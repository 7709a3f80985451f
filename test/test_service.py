"""`donkey-ros service`: the systemd unit that starts the car on power-up, rendered, checked with
systemd-analyze where it exists, its ExecStart run by bash, and install/show/remove in a folder."""
import getpass
import os
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from donkey_ros import cli
from donkey_ros.apps.service import UnitSpec, find_workspace_setup, render_unit

ARGS = ['model:=/home/pi/my model$1 100%.tflite', 'mode:=user']


@pytest.fixture
def setups(tmp_path):
    """A ROS setup and a workspace install/setup.bash that mark the environment when sourced."""
    ros = tmp_path / 'opt' / 'setup.bash'
    ros.parent.mkdir()
    ros.write_text('export FAKE_ROS_SOURCED=1\n')
    ws = tmp_path / 'ws'
    (ws / 'install').mkdir(parents=True)
    (ws / 'install' / 'setup.bash').write_text(
        'test "$FAKE_ROS_SOURCED" = 1 && export FAKE_WS_SOURCED=1\n')
    return ros, ws


def spec_for(setups, system=False):
    ros, ws = setups
    return UnitSpec(ros, ws / 'install' / 'setup.bash', ARGS, system=system,
                    user=getpass.getuser(), home=Path.home(),
                    environment={'ROS_DOMAIN_ID': '7'})


def unit_values(text: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        if '=' in line and not line.startswith(('#', '[')):
            key, value = line.split('=', 1)
            values.setdefault(key, []).append(value)
    return values


def exec_start_argv(value: str) -> list[str]:
    """ExecStart's argv as systemd reads it: specifiers (%%), quotes and escapes, then $$."""
    return [word.replace('$$', '$') for word in shlex.split(value.replace('%%', '%'))]


@pytest.mark.parametrize('system', [False, True], ids=['user', 'system'])
def test_unit_has_the_car_settings_and_verifies(setups, tmp_path, system):
    text = render_unit(spec_for(setups, system))
    values = unit_values(text)
    assert values['KillSignal'] == ['SIGINT'] and values['Restart'] == ['on-failure']
    assert values['After'] == ['network-online.target']
    assert values['Wants'] == ['network-online.target']
    assert values['WantedBy'] == ['multi-user.target' if system else 'default.target']
    assert ('User' in values) == system
    assert values['Environment'] == ['"ROS_DOMAIN_ID=7"']
    if shutil.which('systemd-analyze') is None:
        return
    path = tmp_path / 'donkey-ros.service'
    path.write_text(text)
    result = subprocess.run(['systemd-analyze', 'verify', str(path)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert str(path) not in result.stderr, result.stderr   # no warnings about our unit


def test_exec_start_sources_ros_then_the_workspace_and_execs_ros2_launch(setups, tmp_path):
    argv = exec_start_argv(unit_values(render_unit(spec_for(setups)))['ExecStart'][0])
    assert argv[:2] == ['/bin/bash', '-c'] and len(argv) == 3
    # Run it as systemd would, with a ros2 on PATH that records what it was given.
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    record = tmp_path / 'ros2_args'
    ros2 = bin_dir / 'ros2'
    ros2.write_text('#!/bin/bash\necho "$FAKE_ROS_SOURCED$FAKE_WS_SOURCED" > "$RECORD"\n'
                    'printf "%s\\n" "$@" >> "$RECORD"\necho $$ $PPID >> "$RECORD"\n')
    ros2.chmod(ros2.stat().st_mode | stat.S_IXUSR)
    env = {'PATH': f'{bin_dir}:/usr/bin:/bin', 'RECORD': str(record)}
    process = subprocess.run(argv, env=env, timeout=30)
    assert process.returncode == 0
    lines = record.read_text().splitlines()
    assert lines[0] == '11'                                  # both setups sourced, in order
    assert lines[1:-1] == ['launch', 'donkey_ros', 'car.launch.py', *ARGS]


def test_install_show_remove_in_a_unit_folder(setups, tmp_path, capsys):
    ros, ws = setups
    units = tmp_path / 'units'
    common = ['--unit-dir', str(units), '--ros-setup', str(ros), '--workspace', str(ws)]
    assert cli.main(['service', 'install', '--dry-run', *common, *ARGS]) == 0
    out = capsys.readouterr().out
    assert 'systemctl --user enable donkey-ros.service' in out and 'KillSignal=SIGINT' in out
    assert not units.exists()

    assert cli.main(['service', 'install', *common, *ARGS]) == 0
    unit = units / 'donkey-ros.service'
    assert 'car.launch.py' in unit.read_text()
    assert 'no systemctl run' in capsys.readouterr().out
    assert cli.main(['service', 'show', *common]) == 0
    assert unit.read_text() in capsys.readouterr().out
    assert cli.main(['service', 'remove', '--unit-dir', str(units)]) == 0
    assert not unit.exists() and 'removed' in capsys.readouterr().out
    assert cli.main(['service', 'remove', '--unit-dir', str(units)]) == 0
    assert 'not installed' in capsys.readouterr().out


def test_mistakes_are_one_line(setups, tmp_path, capsys):
    ros, ws = setups
    assert cli.main(['service', 'install', '--dry-run', '--ros-setup', str(ros),
                     '--workspace', str(tmp_path / 'nowhere')]) == 1
    assert capsys.readouterr().err.count('\n') == 1
    assert cli.main(['service', 'install', '--dry-run', '--ros-setup', str(ros),
                     '--workspace', str(ws), 'mode=user']) == 1
    assert "'mode=user' is not name:=value" in capsys.readouterr().err


def test_workspace_is_the_colcon_install_donkey_ros_runs_from(tmp_path):
    install = tmp_path / 'ros2_ws' / 'install'
    module = install / 'donkey_ros' / 'lib' / 'python3.12' / 'site-packages' / 'donkey_ros'
    module.mkdir(parents=True)
    (install / 'setup.bash').write_text('')
    assert find_workspace_setup(module_file=str(module / 'service.py')) == \
        install / 'setup.bash'
    assert find_workspace_setup(str(tmp_path / 'ros2_ws')) == install / 'setup.bash'
    with pytest.raises(Exception, match='not from a colcon install'):
        find_workspace_setup(module_file=str(tmp_path / 'src' / 'donkey_ros' / 'service.py'))
    assert os.path.isabs(find_workspace_setup(str(install / 'setup.bash')))
