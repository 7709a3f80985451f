"""ROS 2 parameter files (``node: {ros__parameters: {...}}``): read, merge, edit in place, write.

The one module for parameter files: the loop's simulator settings, ``calibrate``, ``doctor``,
``import-config`` and the launch check read and write them here. Sections are matched to a node
and merged exactly as rcl and rclpy do it (``node_params``): the key ``/**/sim`` applies to
``sim`` in any namespace (what this project's config files use), ``sim`` and ``/sim`` only
outside namespaces, ``/**`` to every node; the later section in the file wins. ``update_text``
changes or adds single parameters line by line, so the comments and layout a person wrote stay as
they were; the result is parsed back and must hold exactly the values asked for.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from donkey_ros.common.errors import ConfigError

INDENT = '    '


class ParamFileError(ConfigError):
    """A parameter file cannot be read, parsed or updated."""


@dataclass(frozen=True)
class Change:
    """One parameter set by ``update_text``: ``old`` is None when it was added."""

    node: str
    name: str
    old: Any
    new: Any


def section_keys(node: str) -> tuple[str, ...]:
    """The keys a section for ``node`` (in the root or any namespace) is usually written with."""
    return (f'/**/{node}', node, f'/{node}')


def sections(document: Any) -> list[tuple[str, dict]]:
    """The ``(node key, parameters)`` sections of a parsed file, in rcl's order.

    As rcl_yaml_param_parser reads a file: mapping keys above ``ros__parameters`` are joined with
    ``/`` into the node key (``/ns: {sim: ...}`` is ``/ns/sim``), nested parameter mappings are
    joined with ``.`` (``a: {b: 1}`` is ``a.b``), and a node key met again adds to its first
    section (order of first appearance).
    """
    found: dict[str, dict] = {}

    def node_level(mapping: Any, prefix: str) -> None:
        if not isinstance(mapping, dict):
            return
        for key, value in mapping.items():
            key = str(key)
            if key == 'ros__parameters':
                if prefix and isinstance(value, dict):
                    found.setdefault(prefix, {}).update(_flatten(value))
                continue
            node_level(value, key if not prefix else
                       prefix + ('' if prefix.endswith('/') else '/') + key)

    node_level(document, '')
    return list(found.items())


def _flatten(mapping: dict, prefix: str = '') -> dict:
    flat = {}
    for key, value in mapping.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            flat.update(_flatten(value, name + '.'))
        else:
            flat[name] = value
    return flat


def key_matches(key: str, fqn: str) -> bool:
    """Whether a section key applies to the node ``fqn`` (``/ns/name``), exactly as rclpy's
    node.cpp decides: a key without a leading ``/`` gets one, ``/*`` is one namespace level,
    ``/**`` any number (none included)."""
    key = key if key.startswith('/') else '/' + key
    pattern = key.replace('/*', r'(/\w+)')
    return re.fullmatch(pattern, fqn) is not None


def node_fqn(node: str, namespace: str = '/') -> str:
    namespace = '/' + namespace.strip('/') if namespace.strip('/') else ''
    return f'{namespace}/{node}'


def node_params(documents: Any, node: str, namespace: str = '/') -> dict | None:
    """The parameters the node ``node`` in ``namespace`` gets from parsed parameter file(s).

    ``documents``: one parsed file, or a list of them in command-line order. The rule is rcl's
    and rclpy's: all files go into one table of sections keyed by node key (a key met again, in
    the same or a later file, adds to and overrides its first section); then every section whose
    key matches the node (``/**/sim``, ``/**``, ``sim`` = ``/sim``, ``/ns/sim``, ``/*/sim``...)
    is applied in the table's order, so a later section wins over an earlier one whatever their
    keys, and a later file's value wins within the same key. None if no section applies.
    """
    table: dict[str, dict] = {}
    for document in documents if isinstance(documents, list) else [documents]:
        for key, params in sections(document):
            table.setdefault(key, {}).update(params)
    fqn = node_fqn(node, namespace)
    found = None
    for key, params in table.items():
        if key_matches(key, fqn):
            found = {**(found or {}), **params}
    return found


def read_param_file(path: str | Path) -> dict:
    """The parsed file (``{}`` for an empty file).

    Raises:
        ParamFileError: missing, unreadable or not YAML.
    """
    path = Path(path).expanduser()
    try:
        document = yaml.safe_load(path.read_text(encoding='utf-8')) or {}
    except FileNotFoundError:
        raise ParamFileError(f'parameter file {path} does not exist') from None
    except yaml.MarkedYAMLError as error:
        where = f' at line {error.problem_mark.line + 1}' if error.problem_mark else ''
        raise ParamFileError(f'cannot read parameter file {path}: {error.problem or error.context}'
                             f'{where}') from None
    except UnicodeDecodeError:
        raise ParamFileError(f'parameter file {path}: not a text file (not UTF-8); expected a ROS 2 '
                             'parameter file (YAML)') from None
    except (OSError, yaml.YAMLError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ParamFileError(f'cannot read parameter file {path}: {first}') from None
    if not isinstance(document, dict):
        raise ParamFileError(f'{path} is not a ROS 2 parameter file (not a mapping)')
    return document


def scalar(value: Any) -> str:
    """A YAML scalar for a parameter value (strings double-quoted, so '0' stays a string)."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(scalar(v) for v in value) + ']'
    return '"' + str(value).replace('\\', '\\\\').replace('"', '\\"') + '"'


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(' '))


def _meaningful(line: str) -> bool:
    return bool(line.strip()) and not line.lstrip().startswith('#')


def _section_header(node: str) -> re.Pattern:
    names = '|'.join(re.escape(k) for k in section_keys(node))
    return re.compile(rf"""^(['"]?)({names})\1\s*:\s*(#.*)?$""")


def _param_line(indent: str, name: str, value: Any, comment: str, column: int = 0) -> str:
    """``name: value  # comment``, the comment at ``column`` when the text leaves room."""
    text = f'{indent}{name}: {scalar(value)}'
    if not comment:
        return text
    return f'{text:<{column - 1}} # {comment}' if len(text) < column - 1 else f'{text}  # {comment}'


def _comment_column(line: str) -> int:
    """Where the trailing comment of a ``name: value  # ...`` line starts (0 if none): the first
    `` #`` whose removal leaves the same YAML value (so a ``#`` inside quotes is no comment)."""
    try:
        whole = yaml.safe_load(line.strip())
    except yaml.YAMLError:
        return 0
    for match in re.finditer(r'\s#', line):
        try:
            if yaml.safe_load(line[:match.start()].strip()) == whole:
                return match.start() + 1
        except yaml.YAMLError:
            continue
    return 0


def update_text(text: str, updates: dict[str, dict[str, Any]],
                comments: dict[tuple[str, str], str] | None = None) -> tuple[str, list[Change]]:
    """Sets parameters in parameter-file text, keeping every other line as it was.

    Args:
        text: the file's text ('' for a new file).
        updates: node name -> {parameter: value}.
        comments: (node, parameter) -> comment written after the value.

    Returns:
        (new text, the changes made; values already equal are not changes).

    Raises:
        ParamFileError: the text is not a parameter file, or cannot be updated line by line
            (flow style ``{...}``); the message says so.
    """
    comments = comments or {}
    try:
        before = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as error:
        where = getattr(error, 'problem_mark', None)
        raise ParamFileError('not a ROS 2 parameter file (not valid YAML'
                             + (f' at line {where.line + 1}' if where else '') + ')') from None
    if before is None:
        before = {}
    if not isinstance(before, dict):
        raise ParamFileError('not a ROS 2 parameter file (not a mapping)')
    lines = text.splitlines()
    changes: list[Change] = []
    for node, values in updates.items():
        if not values:
            continue
        old_values = node_params(before, node) or {}
        # The last section for the node is the one whose values win (node_params).
        header = next((i for i in reversed(range(len(lines)))
                       if _section_header(node).match(lines[i])), None)
        if header is None:
            if lines and lines[-1].strip():
                lines.append('')
            lines += [f'/**/{node}:', '  ros__parameters:']
            lines += [_param_line(INDENT, name, value, comments.get((node, name), ''))
                      for name, value in values.items()]
            changes += [Change(node, name, None, value) for name, value in values.items()]
            continue
        # The ros__parameters block of this section: [start, end) lines.
        start = next((i for i in range(header + 1, len(lines))
                      if lines[i].strip().startswith('ros__parameters:')
                      or (_meaningful(lines[i]) and _indent(lines[i]) == 0)), None)
        if start is None or not lines[start].strip().startswith('ros__parameters:'):
            lines.insert(header + 1, '  ros__parameters:')
            start = header + 1
        if lines[start].split(':', 1)[1].split('#')[0].strip():
            raise ParamFileError(f'the {node} section is written in flow style ({{...}}); '
                                 'write the imported values to a new file (-o)')
        base = _indent(lines[start])
        end = start + 1
        while end < len(lines) and (not _meaningful(lines[end]) or _indent(lines[end]) > base):
            end += 1
        while end > start + 1 and not _meaningful(lines[end - 1]):
            end -= 1
        params = [i for i in range(start + 1, end) if _meaningful(lines[i])]
        indent = ' ' * (_indent(lines[params[0]]) if params else base + 2)
        for name, value in values.items():
            pattern = re.compile(rf"""^\s*(['"]?){re.escape(name)}\1\s*:""")
            at = next((i for i in params if pattern.match(lines[i])
                       and _indent(lines[i]) == len(indent)), None)
            column = _comment_column(lines[at]) if at is not None else 0
            # A new comment replaces the line's comment; without one the line keeps its own.
            comment = comments.get((node, name)) or (
                lines[at][column + 1:].strip() if column else '')
            line = _param_line(indent, name, value, comment, column)
            if at is None:
                lines.insert(end, line)
                params.append(end)
                end += 1
                changes.append(Change(node, name, None, value))
            else:
                if old_values.get(name) != value or type(old_values.get(name)) is not type(value):
                    changes.append(Change(node, name, old_values.get(name), value))
                    lines[at] = line
    new_text = '\n'.join(lines) + '\n'
    check_text(new_text, updates)
    return new_text, changes


def check_text(text: str, updates: dict[str, dict[str, Any]]) -> None:
    """Raises ParamFileError unless ``text`` parses to the ``updates`` values for every node."""
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ParamFileError(f'the updated file would not be valid YAML ({error})') from None
    for node, values in updates.items():
        got = node_params(document, node) or {}
        wrong = {name: got.get(name) for name, value in values.items()
                 if got.get(name) != value or type(got.get(name)) is not type(value)}
        if wrong:
            raise ParamFileError(f'the {node} section would not read back as written '
                                 f'({wrong}); write the values to a new file (-o)')


def write_atomically(path: str | Path, text: str, backup: bool = True) -> Path | None:
    """Replaces ``path`` with ``text`` (temporary file + rename); returns the backup written."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = None
    if backup and path.exists():
        saved = path.with_name(path.name + '.bak')
        saved.write_bytes(path.read_bytes())
    temporary = path.with_name(path.name + '.tmp')
    temporary.write_text(text, encoding='utf-8')
    os.replace(temporary, path)
    return saved
