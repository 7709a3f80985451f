"""Launch files are checked statically against a real install of the package (launch_ros is not
installable from PyPI): executables, parameters, files in share/."""
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from donkey_ros.launch_check import check_launch_file, check_param_file, package_nodes
from donkey_ros.resources import console_scripts

ROOT = Path(__file__).resolve().parent.parent
LAUNCH_FILES = sorted((ROOT / 'launch').glob('*.launch.py'))


@pytest.fixture(scope='module')
def installed_share(tmp_path_factory):
    """share/donkey_ros of a real (non-editable) pip install of this checkout."""
    prefix = tmp_path_factory.mktemp('prefix')
    # Built from a copy, so the build leaves no egg-info in the source tree.
    source = tmp_path_factory.mktemp('source') / 'donkey_ros'
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        '.venv*', '.git', 'build', 'install', 'log', 'data', '*.egg-info', '__pycache__'))
    subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps', '--no-build-isolation',
         '--ignore-installed',  # never touch the venv's own (editable) install
         '--no-compile', '--prefix', str(prefix), str(source)],
        check=True, capture_output=True)
    share = prefix / 'share' / 'donkey_ros'
    assert (share / 'package.xml').exists()
    return share


def test_every_console_script_has_a_main():
    scripts = console_scripts()
    assert {'donkey-ros', 'sim', 'expert', 'mux'} <= set(scripts)
    for name, target in scripts.items():
        module, function = target.split(':')
        assert callable(getattr(importlib.import_module(module), function)), name


def test_launch_files_are_installed(installed_share):
    installed = {p.name for p in (installed_share / 'launch').glob('*.launch.py')}
    assert installed == {p.name for p in LAUNCH_FILES}
    assert {'sim.launch.py', 'car.launch.py'} <= installed


@pytest.fixture(scope='module')
def installed_scripts(installed_share):
    """The console scripts of that install (the venv's editable install may predate setup.py)."""
    from importlib import metadata
    prefix = installed_share.parent.parent
    dists = [d for d in metadata.distributions(path=[str(p) for p in prefix.glob(
        'lib/python*/site-packages')]) if d.metadata['Name'] == 'donkey_ros']
    assert dists, f'no donkey_ros distribution under {prefix}'
    return {ep.name: ep.value for ep in dists[0].entry_points if ep.group == 'console_scripts'}


@pytest.mark.parametrize('launch_file', LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_agrees_with_package(launch_file, installed_share, installed_scripts):
    report = check_launch_file(launch_file, installed_share, installed_scripts)
    assert report.ok, '\n'.join(report.problems)
    assert report.nodes, 'the check found no donkey_ros nodes to check'


def test_parameter_files_only_set_declared_parameters():
    nodes = package_nodes(console_scripts())
    for path in sorted((ROOT / 'config').glob('*.yaml')):
        assert check_param_file(path, nodes) == [], path.name


def write_launch(tmp_path, node_call, extra=''):
    path = tmp_path / 'broken.launch.py'
    path.write_text(
        'from launch import LaunchDescription\n'
        'from launch.actions import DeclareLaunchArgument\n'
        'from launch.substitutions import LaunchConfiguration, PathJoinSubstitution\n'
        'from launch_ros.actions import Node\n'
        'from launch_ros.substitutions import FindPackageShare\n\n\n'
        'def generate_launch_description():\n'
        f'    {extra}\n'
        f'    return LaunchDescription([{node_call}])\n')
    return path


def test_unknown_executable_is_caught(tmp_path, installed_share):
    path = write_launch(tmp_path, "Node(package='donkey_ros', executable='warp_drive')")
    report = check_launch_file(path, installed_share)
    assert not report.ok
    assert "executable 'warp_drive' is not a console script" in report.problems[0]


def test_undeclared_parameter_is_caught(tmp_path, installed_share):
    path = write_launch(
        tmp_path, "Node(package='donkey_ros', executable='mux', parameters=[{'modee': 'user'}])")
    report = check_launch_file(path, installed_share)
    assert report.problems == ["line 10: 'mux' does not declare parameter 'modee'"]


def test_missing_share_file_and_undeclared_argument_are_caught(tmp_path, installed_share):
    path = write_launch(
        tmp_path,
        "Node(package='donkey_ros', executable='sim', parameters=[PathJoinSubstitution("
        "[FindPackageShare('donkey_ros'), 'config', 'nowhere.yaml']), "
        "{'track': LaunchConfiguration('trak')}])")
    problems = check_launch_file(path, installed_share).problems
    assert any('config/nowhere.yaml is not in the installed share' in p for p in problems)
    assert any("LaunchConfiguration('trak') has no DeclareLaunchArgument" in p for p in problems)


def test_parameter_file_with_undeclared_parameter_is_caught(tmp_path):
    path = tmp_path / 'bad.yaml'
    path.write_text('/**/mux:\n  ros__parameters:\n    mode: user\n    turbo: true\n'
                    '/**/nobody:\n  ros__parameters: {}\n'
                    'sim:\n  ros__parameters: {track: oval}\n')
    problems = check_param_file(path, package_nodes(console_scripts()))
    assert "bad.yaml: node 'mux' does not declare parameter 'turbo'" in problems
    assert any("'/**/nobody' is not a node of this package" in p for p in problems)
    assert any("'sim' applies only outside namespaces" in p for p in problems)


def test_check_launch_command_fails_on_a_broken_file(tmp_path):
    path = write_launch(tmp_path, "Node(package='donkey_ros', executable='warp_drive')")
    result = subprocess.run([sys.executable, '-m', 'donkey_ros.cli', 'check-launch', str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert 'warp_drive' in result.stdout


def test_parameter_documentation_is_current():
    from donkey_ros.docs_params import render
    documented = (ROOT / 'docs' / 'parameters.md').read_text()
    assert documented == render(), 'run: donkey-ros params > docs/parameters.md'
