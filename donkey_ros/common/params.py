"""Parameters declared once, from a table of ``Param`` specs.

A node lists its parameters as a tuple of ``Param``; ``declare_parameters`` declares them all with
their descriptions, validates them (type, range, choices) and returns their values. The same tables
serve the documentation (``donkey-ros params``) and the static launch-file check, so a parameter
exists in exactly one place.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Iterable

from donkey_ros.common.errors import ConfigError

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


def declare_parameters(node, specs: Iterable[Param],
                       on_change: Callable[[str, Any], None] | None = None) -> SimpleNamespace:
    """Declares ``specs`` on ``node`` and returns their validated values as attributes.

    Dots in names become underscores in the returned namespace. Later changes (``ros2 param set``)
    are validated the same way and rejected with a reason; accepted ones update the namespace and,
    if given, call ``on_change(name, value)``, which may raise ConfigError to reject the change.

    Raises:
        ConfigError: a value given at start-up (parameter file, launch, command line) is invalid.
    """
    from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
    from rclpy.parameter import Parameter

    specs = {spec.name: spec for spec in specs}
    values = SimpleNamespace()
    for spec in specs.values():
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        # An empty list has no type of its own: declare the array type statically instead.
        descriptor = ParameterDescriptor(
            description=spec.description, additional_constraints=spec.constraints,
            read_only=spec.read_only, dynamic_typing=default != [])
        if default == []:
            default = {'bool[]': Parameter.Type.BOOL_ARRAY, 'int[]': Parameter.Type.INTEGER_ARRAY,
                       'float[]': Parameter.Type.DOUBLE_ARRAY,
                       'str[]': Parameter.Type.STRING_ARRAY}[spec.type_name]
        raw = node.declare_parameter(spec.name, default, descriptor).value
        if raw is None:
            raw = []
        if hasattr(raw, 'tolist'):
            raw = raw.tolist()
        setattr(values, spec.name.replace('.', '_'), spec.validate(raw))

    def check(parameters):
        accepted = {}
        for parameter in parameters:
            spec = specs.get(parameter.name)
            if spec is None:
                continue
            try:
                raw = parameter.value.tolist() if hasattr(parameter.value, 'tolist') else parameter.value
                accepted[spec.name] = spec.validate(raw)
                if on_change is not None:
                    on_change(spec.name, accepted[spec.name])
            except ConfigError as error:
                node.get_logger().error(f'rejected parameter change: {error}')
                return SetParametersResult(successful=False, reason=str(error))
        for name, value in accepted.items():
            setattr(values, name.replace('.', '_'), value)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(check)
    return values


def markdown_table(specs: Iterable[Param]) -> str:
    """The parameters as a Markdown table for the README/docs."""
    rows = ['| parameter | type | default | description |', '|---|---|---|---|']
    for spec in specs:
        extra = f' ({spec.constraints})' if spec.constraints else ''
        rows.append(f'| `{spec.name}` | {spec.type_name} | `{spec.default!r}` | '
                    f'{spec.description}{extra} |')
    return '\n'.join(rows)
