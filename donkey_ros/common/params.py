"""Parameters declared once, from a table of ``Param`` specs.

A node lists its parameters as a tuple of ``Param``; ``declare_parameters`` declares them all on
rclpy's descriptors (real type, range, read_only, description), validates them (type, range,
choices) and returns their values; run-time changes are validated as a whole batch (on-set) and
applied after it is accepted (post-set). Unknown names are named with the closest declared one.
The same tables serve the documentation (``donkey-ros params``) and the static launch-file check,
so a parameter exists in exactly one place.
"""
from __future__ import annotations

import difflib
import math
import weakref
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Iterable

from donkey_ros.common.errors import ConfigError, DonkeyRosError

try:  # rclpy's parameter service answers this exception's text as the refusal's reason
    from rclpy.exceptions import ParameterNotDeclaredException as ParameterNotDeclaredBase
except ImportError:  # the tables are also read where rclpy is not installed (docs, doctor)
    ParameterNotDeclaredBase = Exception

_TYPE_NAMES = {bool: 'bool', int: 'int', float: 'float', str: 'str'}


@dataclass(frozen=True)
class Param:
    """One ROS parameter: name, default, what it means and what values are valid.

    Args:
        name: parameter name (dots allowed for groups).
        default: default value; its type is the parameter's type (a list default is a list type).
        description: one sentence for ``ros2 param describe`` and the README.
        min: inclusive lower bound for numbers.
        max: inclusive upper bound for numbers.
        choices: the allowed values for strings.
        read_only: cannot be changed after start-up.
        item_type: element type for list parameters whose default is empty.
    """

    name: str
    default: Any
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    read_only: bool = False
    item_type: type | None = None

    @property
    def type_name(self) -> str:
        if isinstance(self.default, (list, tuple)):
            item = self.item_type or (type(self.default[0]) if self.default else str)
            return _TYPE_NAMES[item] + '[]'
        return _TYPE_NAMES[type(self.default)]

    @property
    def constraints(self) -> str:
        parts = []
        if self.min is not None and self.max is not None:
            parts.append(f'{self.min} <= value <= {self.max}')
        elif self.min is not None:
            parts.append(f'value >= {self.min}')
        elif self.max is not None:
            parts.append(f'value <= {self.max}')
        if self.choices:
            parts.append('one of: ' + ', '.join(map(str, self.choices)))
        return '; '.join(parts)

    def validate(self, value: Any) -> Any:
        """Returns ``value`` coerced to this parameter's type, or raises ConfigError."""
        kind = self.type_name
        try:
            if kind.endswith('[]'):
                item = {'bool': bool, 'int': int, 'float': float, 'str': str}[kind[:-2]]
                if not isinstance(value, (list, tuple)):
                    raise TypeError
                value = [_coerce(item, v) for v in value]
            else:
                value = _coerce(type(self.default), value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"parameter '{self.name}' must be {kind}, got {value!r}") from None
        numbers = value if isinstance(value, list) else [value]
        for number in numbers:
            if isinstance(number, (int, float)) and not isinstance(number, bool):
                if isinstance(number, float) and not math.isfinite(number):
                    raise ConfigError(f"parameter '{self.name}' must be finite, got {number!r}")
                if (self.min is not None and number < self.min) or (
                        self.max is not None and number > self.max):
                    raise ConfigError(
                        f"parameter '{self.name}' = {number!r} is out of range ({self.constraints})")
        if self.choices and value not in self.choices:
            raise ConfigError(
                f"parameter '{self.name}' = {value!r} is not valid ({self.constraints})")
        return value


def _coerce(kind: type, value: Any) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is not type(value):
        raise TypeError
    return value


class UnknownParameterError(ParameterNotDeclaredBase):
    """A run-time set names a parameter the node does not declare (the reason names it)."""

    def __init__(self, message: str) -> None:
        Exception.__init__(self, message)


def closest(name: str, names: Iterable[str]) -> str | None:
    """The declared name ``name`` was most likely meant to be (None if nothing is close)."""
    matches = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    if not matches and len(name) >= 3:  # `model` for `model_path`: a prefix is a likely slip
        matches = [n for n in sorted(names) if n.startswith(name) or name.startswith(n)][:1]
    return matches[0] if matches else None


def unknown_message(name: str, names: Iterable[str]) -> str:
    """``unknown parameter 'model' (did you mean 'model_path'?)``."""
    guess = closest(name, names)
    return f"unknown parameter '{name}'" + (f" (did you mean '{guess}'?)" if guess else '')


def unknown_parameters(node) -> list[str]:
    """Warnings about parameter overrides given to ``node`` at start that it does not declare
    (``-p``, parameter files, launch files); shown on /diagnostics until the node restarts."""
    return list(_UNKNOWN.get(node, ()))


_UNKNOWN: 'weakref.WeakKeyDictionary' = weakref.WeakKeyDictionary()
# Overrides rclpy itself reads later (QoS overrides of publishers and subscriptions).
_FOREIGN_PREFIXES = ('qos_overrides.',)

_ROS_TYPES = {'bool': 'BOOL', 'int': 'INTEGER', 'float': 'DOUBLE', 'str': 'STRING',
              'bool[]': 'BOOL_ARRAY', 'int[]': 'INTEGER_ARRAY', 'float[]': 'DOUBLE_ARRAY',
              'str[]': 'STRING_ARRAY'}


def descriptor(spec: Param):
    """The rcl_interfaces ParameterDescriptor of ``spec``: its real type, range, read_only and
    description (what ``ros2 param describe`` shows and what rclpy enforces before any callback).
    """
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    from rclpy.parameter import Parameter

    kind = spec.type_name
    result = ParameterDescriptor(
        name=spec.name, type=getattr(Parameter.Type, _ROS_TYPES[kind]).value,
        description=spec.description, read_only=spec.read_only, dynamic_typing=False)
    if spec.choices:
        result.additional_constraints = 'one of: ' + ', '.join(map(str, spec.choices))
    if kind in ('int', 'float') and (spec.min is not None or spec.max is not None):
        if kind == 'int':
            result.integer_range = [IntegerRange(
                from_value=int(spec.min) if spec.min is not None else -2**63,
                to_value=int(spec.max) if spec.max is not None else 2**63 - 1, step=0)]
        else:
            result.floating_point_range = [FloatingPointRange(
                from_value=float(spec.min) if spec.min is not None else -math.inf,
                to_value=float(spec.max) if spec.max is not None else math.inf, step=0.0)]
    elif spec.constraints and not result.additional_constraints:
        result.additional_constraints = spec.constraints  # ranges of list items
    return result


def _plain(value: Any) -> Any:
    value = value.tolist() if hasattr(value, 'tolist') else value
    return list(value) if isinstance(value, tuple) else value


def declare_parameters(node, specs: Iterable[Param],
                       on_change: Callable[[str, Any], None] | None = None,
                       check: Callable[[SimpleNamespace, dict], None] | None = None
                       ) -> SimpleNamespace:
    """Declares ``specs`` on ``node`` and returns their validated values as attributes.

    Dots in names become underscores in the returned namespace. Each parameter gets a real type,
    its range and read_only flag on rclpy's descriptor (``ros2 param describe`` shows them, rclpy
    refuses a wrong type, an out-of-range value or a read-only change before any callback).

    A run-time change (``ros2 param set``, SetParameters[Atomically]) is a batch, applied whole or
    refused whole:

    1. validation (on-set callback): every value of the batch is checked against its ``Param``,
       then ``check(proposed, changed)`` sees the values the node would have after the batch
       (``proposed``, same attributes as the returned namespace) and the changed ones
       (``{name: value}``); it raises ``DonkeyRosError`` (ConfigError, ModelError...) to refuse
       the batch with that reason. It must have no effect beyond preparing what the batch needs
       (a loaded model, a built simulator) for step 2.
    2. after the batch is accepted (post-set callback): the returned namespace holds the new
       values, then ``on_change(name, value)`` runs once per changed parameter to apply them.

    An integer given for a float parameter is taken as that float. A name the node does not
    declare is refused naming the closest declared one; overrides given at start for names it
    does not declare are logged as warnings (and kept for /diagnostics, ``unknown_parameters``).

    Raises:
        ConfigError: a value given at start-up (parameter file, launch, command line) is invalid.
    """
    from rcl_interfaces.msg import SetParametersResult
    from rclpy.parameter import Parameter

    specs = {spec.name: spec for spec in specs}
    values = SimpleNamespace()
    overrides = getattr(node, '_parameter_overrides', {}) or {}
    for spec in specs.values():
        given = overrides.get(spec.name)
        value = spec.validate(_plain(given.value) if given is not None else _plain(spec.default))
        if value == [] and spec.type_name.endswith('[]'):
            # An empty list has no type of its own: declare the array type, unset.
            initial = getattr(Parameter.Type, _ROS_TYPES[spec.type_name])
        else:
            initial = value
        node.declare_parameter(spec.name, initial, descriptor(spec), ignore_override=True)
        setattr(values, spec.name.replace('.', '_'), value)

    logger = node.get_logger()
    unknown = [unknown_message(name, specs) for name in overrides
               if not node.has_parameter(name) and not name.startswith(_FOREIGN_PREFIXES)]
    if unknown:
        _UNKNOWN[node] = unknown
        for message in unknown:
            logger.warning(f'{message}: ignored')

    def before_set(parameters):
        """Refuses names the node does not declare (naming them); ints become floats."""
        missing = [p.name for p in parameters if not node.has_parameter(p.name)]
        if missing and not getattr(node, '_allow_undeclared_parameters', False):
            declared = list(getattr(node, '_parameters', specs))
            text = '; '.join(unknown_message(name, declared) for name in missing)
            logger.error(f'rejected parameter change: {text}')
            raise UnknownParameterError(text)
        return [_as_declared(specs.get(p.name), p) for p in parameters]

    def validate(parameters):
        changed = {}
        try:
            for parameter in parameters:
                spec = specs.get(parameter.name)
                if spec is not None:
                    changed[spec.name] = spec.validate(_plain(parameter.value))
            if check is not None and changed:
                proposed = SimpleNamespace(**vars(values))
                for name, value in changed.items():
                    setattr(proposed, name.replace('.', '_'), value)
                check(proposed, changed)
        except DonkeyRosError as error:
            logger.error(f'rejected parameter change: {error}')
            return SetParametersResult(successful=False, reason=str(error))
        return SetParametersResult(successful=True)

    def apply(parameters):
        changed = {}
        for parameter in parameters:
            spec = specs.get(parameter.name)
            if spec is not None:
                changed[spec.name] = spec.validate(_plain(parameter.value))
                setattr(values, spec.name.replace('.', '_'), changed[spec.name])
        if on_change is None:
            return
        for name, value in changed.items():
            try:
                on_change(name, value)
            except Exception as error:  # accepted already: say so loudly, never raise into rclpy
                logger.error(f'parameter {name} = {value!r} was accepted but applying it '
                             f'failed: {error}')

    node.add_pre_set_parameters_callback(before_set)
    node.add_on_set_parameters_callback(validate)
    node.add_post_set_parameters_callback(apply)
    return values


def _as_declared(spec: Param | None, parameter):
    """``parameter`` with an int given for a float parameter turned into that float."""
    from rclpy.parameter import Parameter

    if spec is None:
        return parameter
    kind, value = spec.type_name, _plain(parameter.value)
    if kind == 'float' and parameter.type_ == Parameter.Type.INTEGER:
        return Parameter(parameter.name, Parameter.Type.DOUBLE, float(value))
    if kind == 'float[]' and parameter.type_ == Parameter.Type.INTEGER_ARRAY:
        return Parameter(parameter.name, Parameter.Type.DOUBLE_ARRAY, [float(v) for v in value])
    return parameter


def markdown_table(specs: Iterable[Param]) -> str:
    """The parameters as a Markdown table for the README/docs."""
    rows = ['| parameter | type | default | description |', '|---|---|---|---|']
    for spec in specs:
        extra = f' ({spec.constraints})' if spec.constraints else ''
        rows.append(f'| `{spec.name}` | {spec.type_name} | `{spec.default!r}` | '
                    f'{spec.description}{extra} |')
    return '\n'.join(rows)
