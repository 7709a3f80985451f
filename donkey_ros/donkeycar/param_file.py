"""ROS 2 parameter files (``node: {ros__parameters: {...}}``): read by node, update in place.

A node's section may be keyed ``name``, ``/name`` or ``/**/name`` (any namespace, what this
project's config files use). ``update_text`` changes or adds single parameters line by line, so
the comments and layout a person wrote stay as they were; the result is parsed back and must hold
exactly the values asked for.
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
    return (f'/**/{node}', node, f'/{node}')


def node_params(document: dict, node: str) -> dict | None:
    """The ``ros__parameters`` of ``node`` in a parsed parameter file (None if no section).

    Sections that match the node in any namespace are merged, most specific last.
    """
    found = None
    if not isinstance(document, dict):
        return None
    for key in section_keys(node):
        section = document.get(key)
        if isinstance(section, dict) and isinstance(section.get('ros__parameters'), dict):
            found = {**(found or {}), **section['ros__parameters']}
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
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
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
    """Where the trailing comment of a ``name: value  # ...`` line starts (0 if none)."""
    match = re.search(r"""^[^#'"]*(?:(['"]).*?\1)?[^#]*?\s(#)""", line)
    return match.start(2) if match else 0


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
        mark = getattr(error, 'problem_mark', None)
        where = f' at line {mark.line + 1}' if mark is not None else ''
        raise ParamFileError(f'not valid YAML{where}: {getattr(error, "problem", None) or error}'
                             ) from None
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
        header = next((i for i, line in enumerate(lines) if _section_header(node).match(line)),
                      None)
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
            line = _param_line(indent, name, value, comments.get((node, name), ''),
                               _comment_column(lines[at]) if at is not None else 0)
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
