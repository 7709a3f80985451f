"""A DonkeyCar ``config.py`` / ``myconfig.py`` read as data: the file is parsed, never executed.

DonkeyCar loads ``config.py`` (every default) and then ``myconfig.py`` (the user's overrides)
from the car folder. ``read_config`` does the same with ``ast``: each top-level ``NAME = <literal>``
(numbers, strings, True/False/None, lists, tuples, dicts) is taken; so is
``NAME["KEY"] = <literal>`` on a dict read before (a common way to change one value of
``PWM_STEERING_THROTTLE``). Anything computed (``os.path.join(...)``, ``int(os.getenv(...))``,
``X += 1``, assignments inside ``if``/``for``) is not evaluated: the name is listed in
``skipped`` with the file, line, expression and why, and a value read earlier for it is dropped
(DonkeyCar would not have used it).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from donkey_ros.common.errors import ConfigError


class DonkeyCarConfigError(ConfigError):
    """A DonkeyCar config file cannot be read or parsed."""


@dataclass(frozen=True)
class Skipped:
    """A setting that was assigned but could not be read as a literal."""

    file: str
    line: int
    text: str
    """The assignment's source text (cut to 80 characters)."""
    reason: str

    def __str__(self) -> str:
        return f'{Path(self.file).name} line {self.line}: {self.text} ({self.reason})'


COMPUTED = 'computed, not a literal: the file is read, never run'
CONDITIONAL = 'assigned inside an if/for/while/with/try: which value DonkeyCar uses depends on it'
AUGMENTED = 'changed by +=, -=...: computed, not a literal'
ITEM = 'a key set to a computed value'
UNPACKED = 'tuple unpacking: not read'


@dataclass
class DonkeyCarConfig:
    """Settings read from one or more DonkeyCar config files (later files override).

    Attributes:
        values: NAME -> value (Python literals).
        sources: NAME -> the file its value came from.
        skipped: NAME -> where and why its last assignment could not be read (``Skipped``).
        files: the files read, in order.
        asked: the names a reader looked up (``unreadable`` reports those it could not have).
    """

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, Skipped] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    asked: set[str] = field(default_factory=set)
    """Every name looked up with ``get`` or ``in``: what a reader of the config needed."""

    def get(self, name: str, default: Any = None) -> Any:
        self.asked.add(name)
        return self.values.get(name, default)

    def __contains__(self, name: str) -> bool:
        self.asked.add(name)
        return name in self.values

    def unreadable(self) -> list[Skipped]:
        """The settings looked up so far that the files assign but could not be read."""
        return [self.skipped[name] for name in sorted(self.asked & set(self.skipped),
                                                      key=lambda n: (self.skipped[n].file,
                                                                     self.skipped[n].line))]


def _target_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for element in target.elts for name in _target_names(element)]
    return []


def parse_text(text: str, filename: str, config: DonkeyCarConfig | None = None
               ) -> DonkeyCarConfig:
    """Adds the literal top-level assignments of ``text`` to ``config`` (a new one if None).

    Raises:
        DonkeyCarConfigError: the text is not valid Python.
    """
    config = config or DonkeyCarConfig()
    try:
        tree = ast.parse(text, filename)
    except SyntaxError as error:
        raise DonkeyCarConfigError(
            f'{filename} line {error.lineno}: not valid Python ({error.msg}); DonkeyCar could not '
            'load it either') from None

    def take(name: str, value: Any) -> None:
        config.values[name] = value
        config.sources[name] = filename
        config.skipped.pop(name, None)

    def skip(name: str, node: ast.AST, reason: str) -> None:
        config.values.pop(name, None)
        config.sources.pop(name, None)
        source = ' '.join((ast.get_source_segment(text, node) or '?').split())
        config.skipped[name] = Skipped(filename, node.lineno, source[:80], reason)

    for statement in tree.body:
        if isinstance(statement, (ast.Assign, ast.AnnAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [
                statement.target]
            if statement.value is None:
                continue
            try:
                value = ast.literal_eval(statement.value)
                literal = True
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                literal = False
            for target in targets:
                if isinstance(target, ast.Subscript):
                    _assign_item(config, target, value if literal else None, literal, statement,
                                 filename, skip)
                    continue
                names = _target_names(target)
                if literal and isinstance(target, ast.Name):
                    take(target.id, value)
                else:  # computed value, or tuple unpacking
                    for name in names:
                        skip(name, statement, COMPUTED if isinstance(target, ast.Name)
                             else UNPACKED)
        elif isinstance(statement, ast.AugAssign):
            for name in _target_names(statement.target):
                skip(name, statement, AUGMENTED)
        elif isinstance(statement, (ast.If, ast.For, ast.While, ast.With, ast.Try)):
            for inner in ast.walk(statement):
                if isinstance(inner, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                    targets = inner.targets if isinstance(inner, ast.Assign) else [inner.target]
                    for target in targets:
                        for name in _target_names(target):
                            skip(name, inner, CONDITIONAL)
    return config


def _assign_item(config: DonkeyCarConfig, target: ast.Subscript, value: Any, literal: bool,
                 statement: ast.AST, filename: str, skip) -> None:
    """``NAME["KEY"] = value`` on a dict read before."""
    if not isinstance(target.value, ast.Name):
        return
    name = target.value.id
    key = target.slice
    current = config.values.get(name)
    if literal and isinstance(current, dict) and isinstance(key, ast.Constant):
        config.values[name] = {**current, key.value: value}
        config.sources[name] = filename
    elif name in config.values:
        skip(name, statement, ITEM if not literal else COMPUTED)


def read_file(path: str | Path, config: DonkeyCarConfig | None = None) -> DonkeyCarConfig:
    """Adds one file's literal assignments to ``config``.

    Raises:
        DonkeyCarConfigError: unreadable or not Python.
    """
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding='utf-8')
    except FileNotFoundError:
        raise DonkeyCarConfigError(f'{path} does not exist') from None
    except (OSError, UnicodeDecodeError) as error:
        raise DonkeyCarConfigError(f'cannot read {path}: {error}') from None
    config = parse_text(text, str(path), config)
    config.files.append(path)
    return config


def read_config(path: str | Path, base: str | Path | None | bool = True) -> DonkeyCarConfig:
    """A car's settings as DonkeyCar would load them: ``config.py`` then ``myconfig.py``.

    Args:
        path: ``myconfig.py`` (or ``config.py``, or a car folder holding them).
        base: the defaults file read first: True = ``config.py`` next to ``path`` if there is
            one; False/None = none; or a path.

    Raises:
        DonkeyCarConfigError: a file is missing, unreadable or not Python.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        folder = path
        path = folder / 'myconfig.py'
        if not path.is_file():
            path = folder / 'config.py'
        if not path.is_file():
            raise DonkeyCarConfigError(f'{folder} holds neither myconfig.py nor config.py')
    if base is True:
        candidate = path.with_name('config.py')
        base = candidate if candidate.is_file() and candidate.resolve() != path.resolve() \
            else None
    config = DonkeyCarConfig()
    if base:
        read_file(base, config)
    return read_file(path, config)
