"""Static check of launch files against the package (launch_ros is not installable from PyPI).

Reads a launch file's syntax tree, without running it, and checks every ``Node(...)`` action:
- ``package`` is this package and ``executable`` is one of its console scripts;
- every key of a parameter dict is declared (``PARAMS``) by that executable's node module;
- every ``LaunchConfiguration('x')`` used has a ``DeclareLaunchArgument('x')`` in the file;
- every file named under the package's share directory (``PathJoinSubstitution([FindPackageShare(
  'donkey_ros'), 'config', 'x.yaml'])`` or ``os.path.join(get_package_share_directory(...), ...)``)
  exists in the installed share directory, and parameter files it names only configure this
  package's nodes with parameters they declare.
"""
from __future__ import annotations

import argparse
import ast
from dataclasses import dataclass, field
from pathlib import Path


from donkey_ros.common.errors import DonkeyRosError
from donkey_ros.resources import console_scripts, node_modules, share_dir

PACKAGE = 'donkey_ros'
_SHARE_FINDERS = ('FindPackageShare', 'get_package_share_directory')


class LaunchCheckError(DonkeyRosError):
    """A launch file does not agree with the package."""


@dataclass
class LaunchReport:
    path: Path
    nodes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _const(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _call_name(node) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', None)


def _keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def _share_path(call: ast.Call) -> tuple[str, str] | None:
    """('pkg', 'rel/path') for PathJoinSubstitution/os.path.join rooted at a package share."""
    parts = call.args[0].elts if _call_name(call) == 'PathJoinSubstitution' and call.args and \
        isinstance(call.args[0], (ast.List, ast.Tuple)) else call.args
    if not parts or _call_name(parts[0]) not in _SHARE_FINDERS or not parts[0].args:
        return None
    package = _const(parts[0].args[0])
    rest = [_const(part) for part in parts[1:]]
    if package is None or not rest or any(r is None for r in rest):
        return None
    return package, '/'.join(rest)


def package_nodes(scripts: dict[str, str]) -> dict[str, set[str]]:
    """{node name: declared parameter names} for every node executable of the package."""
    return {getattr(module, 'NODE_NAME', script): {p.name for p in module.PARAMS}
            for script, module in node_modules(scripts).items()}


def check_param_file(path: Path, nodes: dict[str, set[str]]) -> list[str]:
    """Problems in a ROS 2 parameter file: unknown node names, undeclared parameters."""
    from donkey_ros.common.param_file import ParamFileError, read_param_file, sections

    try:
        content = read_param_file(path)
    except ParamFileError as error:
        return [f'{path.name}: {error}']
    problems = []
    for key, parameters in sections(content):
        node = key.rsplit('/', 1)[-1]
        if node in ('**', '*'):
            continue
        if not key.startswith('/'):
            problems.append(f"{path.name}: '{key}' applies only outside namespaces; "
                            f"write '/**/{key}' so it applies in any namespace")
        if node not in nodes:
            problems.append(f"{path.name}: '{key}' is not a node of this package "
                            f"(nodes: {', '.join(sorted(nodes))})")
            continue
        for param in parameters:
            if param not in nodes[node] and param != 'use_sim_time':
                problems.append(f"{path.name}: node '{node}' does not declare parameter '{param}'"
                                + _did_you_mean(param, nodes[node]))
    for key, section in content.items():
        if not any(k == key or k.startswith(f'{key}/') for k, _ in sections({key: section})):
            problems.append(f"{path.name}: '{key}' has no ros__parameters mapping")
    return problems


def _did_you_mean(name: str, names: set[str]) -> str:
    from donkey_ros.common.params import closest

    guess = closest(name, names)
    return f" (did you mean '{guess}'?)" if guess else ''


def check_launch_file(path: str | Path, share: Path | None = None,
                      scripts: dict[str, str] | None = None) -> LaunchReport:
    """Checks one launch file; problems are listed in the report (never raised)."""
    path = Path(path)
    report = LaunchReport(path)
    share = share or share_dir()
    scripts = scripts if scripts is not None else console_scripts()
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except (OSError, SyntaxError) as error:
        report.problems.append(f'cannot read: {error}')
        return report
    if not any(isinstance(n, ast.FunctionDef) and n.name == 'generate_launch_description'
               for n in tree.body):
        report.problems.append('no generate_launch_description() function')

    declared_args = {_const(c.args[0]) for c in ast.walk(tree)
                     if _call_name(c) == 'DeclareLaunchArgument' and c.args}
    for call in ast.walk(tree):
        name = _call_name(call)
        if name == 'LaunchConfiguration' and call.args:
            arg = _const(call.args[0])
            if arg not in declared_args:
                report.problems.append(f"LaunchConfiguration('{arg}') has no DeclareLaunchArgument")
        if name in ('PathJoinSubstitution', 'join'):
            found = _share_path(call)
            if found and found[0] == PACKAGE:
                report.files.append(found[1])
                if not (share / found[1]).exists():
                    report.problems.append(f'{found[1]} is not in the installed share ({share})')
    for call in ast.walk(tree):
        if _call_name(call) == 'Node':
            _check_node(call, report, scripts)
    nodes = package_nodes(scripts)
    for name in report.files:
        if name.endswith('.yaml') and (share / name).exists():
            report.problems += check_param_file(share / name, nodes)
    return report


def _check_node(call: ast.Call, report: LaunchReport, scripts: dict) -> None:
    package = _const(_keyword(call, 'package'))
    executable = _const(_keyword(call, 'executable'))
    where = f'line {call.lineno}'
    if package != PACKAGE:
        if package is None:
            report.problems.append(f'{where}: Node package must be a literal string')
        return
    if executable not in scripts:
        report.problems.append(
            f"{where}: executable '{executable}' is not a console script of {PACKAGE} "
            f"(known: {', '.join(sorted(scripts))})")
        return
    report.nodes.append(executable)
    module = node_modules({executable: scripts[executable]}).get(executable)
    declared = {p.name for p in module.PARAMS} if module else set()
    for item in getattr(_keyword(call, 'parameters'), 'elts', []):
        if isinstance(item, ast.Dict):
            for key in item.keys:
                key = _const(key)
                if key not in declared:
                    report.problems.append(
                        f"{where}: '{executable}' does not declare parameter '{key}'")


def check_package_launch_files(share: Path | None = None) -> list[LaunchReport]:
    share = share or share_dir()
    return [check_launch_file(p, share) for p in sorted((share / 'launch').glob('*.launch.py'))]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog='donkey-ros check-launch', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('files', nargs='*', help='launch files (default: the installed ones)')
    parser.add_argument('--share', type=Path, help='share directory to check against')
    args = parser.parse_args(argv)
    share = args.share or share_dir()
    reports = ([check_launch_file(f, share) for f in args.files] if args.files
               else check_package_launch_files(share))
    for report in reports:
        status = 'ok' if report.ok else 'FAILED'
        print(f'{report.path}: {status} (nodes: {", ".join(report.nodes) or "-"})')
        for problem in report.problems:
            print(f'  - {problem}')
    return 0 if all(r.ok for r in reports) else 1
