"""The car's standard workflow, checked the way its tools read the repository:

- a workspace ``src/`` holding the clone, searched for packages with catkin_pkg exactly as
  `rosdep install --from-paths src` does: it finds donkey_ros, and (by design, see
  docs/interfaces.md) not the nested donkey_ros_interfaces, whose build donkey_ros's setup.py
  runs; so donkey_ros must declare every dependency of that nested package;
- every key of every package.xml is a rosdep key on ubuntu noble for jazzy and for kilted (pinned
  list test/data/rosdep_keys_noble.txt, from a stated ros/rosdistro commit), or a package of this
  repository;
- every third-party module the code imports (donkey_ros/ and launch/, ast walk) is declared:
  a rosdep key in package.xml, a pip-only distribution in requirements-pi.txt (which
  scripts/pi_install.sh installs), or listed as not used on the car (donkey_ros/doctor/deps.py).
"""
import ast
import importlib.util
import re
import sys
from pathlib import Path

import pytest
from catkin_pkg.package import parse_package
from catkin_pkg.packages import find_packages

from donkey_ros.doctor import deps

ROOT = Path(__file__).resolve().parents[1]
KEYS_FILE = ROOT / 'test' / 'data' / 'rosdep_keys_noble.txt'
DEPENDENCY_KINDS = ('buildtool_depends', 'build_depends', 'build_export_depends',
                    'buildtool_export_depends', 'exec_depends', 'test_depends', 'doc_depends')


@pytest.fixture(scope='module')
def clone_workspace(tmp_path_factory):
    """ws/src/donkey_ros holding the repository's files as a clone has them (git ls-files)."""
    import subprocess
    ws = tmp_path_factory.mktemp('ws')
    clone = ws / 'src' / 'donkey_ros'
    clone.mkdir(parents=True)
    files = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                           cwd=ROOT, capture_output=True, check=True).stdout.split(b'\0')
    for name in filter(None, (f.decode() for f in files)):
        source = ROOT / name
        if source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            (clone / name).write_bytes(source.read_bytes())
    return ws


def pinned_keys() -> dict[str, set[str]]:
    keys = {'jazzy': set(), 'kilted': set()}
    for line in KEYS_FILE.read_text().splitlines():
        if line.startswith('#') or not line.strip():
            continue
        key, flags = line.split()
        if 'J' in flags:
            keys['jazzy'].add(key)
        if 'K' in flags:
            keys['kilted'].add(key)
    return keys


def dependency_names(package) -> set[str]:
    names = set()
    for kind in DEPENDENCY_KINDS:
        names |= {dep.name for dep in getattr(package, kind)}
    return names


def test_pinned_key_list_states_its_source():
    header = [line for line in KEYS_FILE.read_text().splitlines()[:6] if line.startswith('#')]
    assert re.search(r'rosdistro commit: [0-9a-f]{40}', '\n'.join(header)), header
    assert any('scripts/pin_rosdep_keys.sh' in line for line in header)
    keys = pinned_keys()
    assert len(keys['jazzy']) > 3000 and len(keys['kilted']) > 3000   # a whole database


def test_rosdep_finds_donkey_ros_in_a_workspace_holding_the_clone(clone_workspace):
    found = find_packages(str(clone_workspace / 'src'))
    assert {p.name: path for path, p in found.items()} == {'donkey_ros': 'donkey_ros'}
    # The nested interface package is there, but neither rosdep nor colcon looks below a
    # package.xml: donkey_ros's setup.py builds it (the reason its keys are donkey_ros's).
    assert (clone_workspace / 'src' / 'donkey_ros' / 'donkey_ros_interfaces' /
            'package.xml').is_file()


def test_every_key_resolves_on_noble_for_jazzy_and_kilted(clone_workspace):
    found = find_packages(str(clone_workspace / 'src'))
    in_workspace = {p.name for p in found.values()}
    nested = parse_package(str(ROOT / 'donkey_ros_interfaces' / 'package.xml'))
    keys = pinned_keys()
    for package in [*found.values(), nested]:
        for distro in ('jazzy', 'kilted'):
            unknown = sorted(dependency_names(package) - in_workspace - keys[distro])
            assert not unknown, (f'{package.name}: no rosdep key on ubuntu noble for {distro}: '
                                 f'{unknown} (rosdep install would exit 1)')


def test_donkey_ros_declares_what_its_nested_interface_build_needs():
    root = parse_package(str(ROOT / 'package.xml'))
    nested = parse_package(str(ROOT / 'donkey_ros_interfaces' / 'package.xml'))
    declared = dependency_names(root)
    missing = sorted(dependency_names(nested) - declared)
    assert not missing, f'package.xml lacks the interface build dependencies {missing}'
    assert 'donkey_ros_interfaces' not in declared   # not a rosdep key: built by setup.py
    build = {d.name for d in root.buildtool_depends + root.build_depends}
    assert {'ament_cmake', 'rosidl_default_generators'} <= build
    assert {d.name for d in root.exec_depends} >= {'rosidl_default_runtime'}


def third_party_imports() -> dict[str, set[str]]:
    """{top-level module: files} for every absolute import (and importlib.import_module /
    find_spec of a literal name) in donkey_ros/ and launch/ that is not the standard library."""
    found: dict[str, set[str]] = {}

    def add(name: str, path: Path):
        top = name.split('.')[0]
        if top and top not in sys.stdlib_module_names and top != '__future__':
            found.setdefault(top, set()).add(str(path.relative_to(ROOT)))

    for path in [*(ROOT / 'donkey_ros').rglob('*.py'), *(ROOT / 'launch').glob('*.py')]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    add(alias.name, path)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                add(node.module, path)
            elif (isinstance(node, ast.Call) and node.args
                  and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                  and getattr(node.func, 'attr', getattr(node.func, 'id', '')) in (
                      'import_module', 'find_spec')):
                add(node.args[0].value, path)
    return found


def test_every_third_party_import_is_declared():
    root = parse_package(str(ROOT / 'package.xml'))
    declared = dependency_names(root)
    pip_list = set(deps.read_requirements(ROOT / 'requirements-pi.txt'))
    imports = third_party_imports()
    assert {'rclpy', 'numpy', 'cv2', 'ai_edge_litert', 'rosbags'} <= set(imports)  # the walk works
    problems = []
    for module, files in sorted(imports.items()):
        where = ', '.join(sorted(files)[:2])
        if module in deps.BUILT_HERE or module in deps.NOT_ON_CAR:
            continue
        if module in deps.PIP_ONLY:
            if deps.PIP_ONLY[module] not in pip_list:
                problems.append(f'{module} ({where}): {deps.PIP_ONLY[module]} not in '
                                'requirements-pi.txt')
        elif module in deps.ROSDEP:
            if deps.ROSDEP[module] not in declared:
                problems.append(f'{module} ({where}): {deps.ROSDEP[module]} not in package.xml')
        elif deps.ros_key(module) not in declared:
            problems.append(f'{module} ({where}): not in package.xml, requirements-pi.txt or '
                            'donkey_ros/doctor/deps.py')
    assert not problems, '\n'.join(problems)


def test_pip_list_is_exactly_the_pip_only_modules_and_none_has_a_rosdep_key():
    pip_list = deps.read_requirements(ROOT / 'requirements-pi.txt')
    assert sorted(pip_list) == sorted(deps.PIP_ONLY.values())
    keys = pinned_keys()
    for module, key in deps.ROSDEP.items():
        assert key in keys['jazzy'] and key in keys['kilted'], key
    # A pip-only distribution with an apt key for noble would belong in package.xml instead.
    for dist in pip_list:
        candidates = {f'python3-{dist}', f'python3-{dist.replace("-", "")}',
                      f'python3-{dist.split("-")[-1]}'}
        assert not candidates & keys['jazzy'], (dist, candidates & keys['jazzy'])
    # The pip-only distributions really provide the modules deps.py names (in this venv).
    for module in deps.PIP_ONLY:
        assert importlib.util.find_spec(module) is not None, module
