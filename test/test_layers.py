"""The package's layers, checked on the source: the import graph built with ``ast``.

The application layer (donkey_ros/apps/) composes the domain packages; the domain packages never
import it, and import each other only in the directions below (docs/conventions.md shows the same
table). Every import counts, also those inside functions: a lazy import is still a dependency.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / 'donkey_ros'

# Domain package -> the domain packages it may import (``common`` is below every one of them).
ALLOWED = {
    'common': set(),
    'sim': {'common'},
    'control': {'common'},
    'camera': {'common'},
    'recording': {'common'},
    'monitor': {'common'},
    'teleop': {'common', 'control'},
    'web': {'common', 'control'},
    'style': {'common', 'sim'},
    'learning': {'common', 'recording'},
    'donkeycar': {'common', 'recording'},
    'actuation': {'common', 'donkeycar'},
    'doctor': {'common', 'actuation', 'camera', 'donkeycar', 'learning'},
}
# Top-level modules: ``resources`` (where installed files are) is below everything; ``cli``,
# ``docs_params``, ``launch_check`` and ``launch_support`` (used by the launch files) are
# commands, at the level of the application layer.
BASE_MODULES = {'resources'}
APP = 'apps'
COMMAND_MODULES = {'cli', 'docs_params', 'launch_check', 'launch_support'}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imports(path: Path) -> set[str]:
    """Every ``donkey_ros...`` module ``path`` imports (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')[:len(package.split('.')) - node.level + 1]
                target = '.'.join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ''
            found.add(target)
            # `from donkey_ros import apps` / `from donkey_ros.common import qos`: the names may
            # be modules themselves.
            found.update(f'{target}.{a.name}' for a in node.names
                         if _is_module(f'{target}.{a.name}'))
    return {m for m in found if m == 'donkey_ros' or m.startswith('donkey_ros.')}


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split('.'))
    return path.with_suffix('.py').is_file() or (path / '__init__.py').is_file()


def unit(module: str) -> str | None:
    """The layer unit of a module: its sub-package or top-level module name."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else None


def graph() -> dict[str, dict[str, set[str]]]:
    """{unit: {imported unit: {'importing.module -> imported.module', ...}}}"""
    edges: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in sorted(PACKAGE.rglob('*.py')):
        source = module_name(path)
        for target in imports(path):
            a, b = unit(source), unit(target)
            if a and b and a != b:
                edges[a][b].add(f'{source} -> {target}')
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str]:
    """A cycle in a directed graph ``{node: {successors}}``, or []."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for succ in sorted(edges.get(node, ())):
            if state.get(succ) == 1:
                return stack[stack.index(succ):] + [succ]
            if succ not in state:
                cycle = visit(succ)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return []


def test_every_package_is_placed_in_a_layer():
    units = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / '__init__.py').exists()}
    units |= {p.stem for p in PACKAGE.glob('*.py') if p.stem != '__init__'}
    placed = set(ALLOWED) | BASE_MODULES | COMMAND_MODULES | {APP}
    assert units - placed == set(), 'new package or top-level module: give it a layer in ALLOWED'


def test_the_allowed_layering_is_acyclic():
    assert find_cycle(ALLOWED) == []


def test_domain_packages_import_only_downwards_and_never_the_application_layer():
    wrong = []
    for source, targets in graph().items():
        if source not in ALLOWED:
            continue  # apps and the commands may import any domain package
        allowed = ALLOWED[source] | BASE_MODULES
        for target, where in sorted(targets.items()):
            if target not in allowed:
                wrong += sorted(where)
    assert wrong == [], 'imports against the layering (docs/conventions.md):\n' + '\n'.join(wrong)


def test_domain_packages_form_an_acyclic_graph():
    edges = {a: {b for b in targets if b in ALLOWED} for a, targets in graph().items()
             if a in ALLOWED}
    assert find_cycle(edges) == []


def test_the_base_modules_import_only_common():
    for module in BASE_MODULES:
        targets = imports(PACKAGE / f'{module}.py')
        assert {unit(t) for t in targets} <= {'common', None}, targets


def test_the_checker_sees_an_upward_import(tmp_path):
    """The graph is built from real syntax: lazy, relative and `from package import module`."""
    for module in ('__init__', 'learning/__init__', 'style/__init__', 'style/augment',
                   'apps/__init__'):
        (tmp_path / 'donkey_ros' / f'{module}.py').parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / 'donkey_ros' / f'{module}.py').write_text('')
    path = tmp_path / 'donkey_ros' / 'learning' / 'x.py'
    path.write_text('def f():\n    from ..style import augment\n    from donkey_ros import apps\n')
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / 'donkey_ros'
    try:
        found = imports(path)
    finally:
        PACKAGE = saved
    assert {'donkey_ros.style.augment', 'donkey_ros.apps'} <= found
    assert find_cycle({'learning': {'style'}, 'style': {'learning'}}) == \
        ['learning', 'style', 'learning']


def test_no_module_imports_another_modules_private_names():
    """A private name (``_progress_bar``) used elsewhere is a helper that belongs in common."""
    found = []
    for path in sorted(PACKAGE.rglob('*.py')):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or '').startswith('donkey_ros'):
                found += [f'{module_name(path)}: from {node.module} import {a.name}'
                          for a in node.names
                          if a.name.startswith('_') and not a.name.startswith('__')]
    assert found == []
