"""Declarative node parameters: one table per node drives declaration, validation and docs.

Each node lists its parameters as :class:`ParamSpec` rows. The same table declares them
with ``ParameterDescriptor`` (description, ranges, read-only), validates values that ROS
itself cannot check (choices), and is read by the static launch/config test and by the
README tables, so the three never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node

ParamValue = bool | int | float | str


@dataclass(frozen=True)
class ParamSpec:
    """One ROS parameter of a node.

    Attributes:
        name: parameter name.
        default: default value; its Python type fixes the ROS parameter type.
        description: one sentence shown by ``ros2 param describe`` and in the README.
        minimum, maximum: inclusive numeric range, or ``None``.
        choices: allowed string values, or empty for any.
        read_only: cannot change after start-up (model paths, devices).
    """

    name: str
    default: ParamValue
    description: str
    minimum: float | int | None = None
    maximum: float | int | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False

    def descriptor(self) -> ParameterDescriptor:
        descriptor = ParameterDescriptor(
            name=self.name, description=self.description, read_only=self.read_only
        )
        if self.choices:
            descriptor.additional_constraints = "one of: " + ", ".join(self.choices)
        if self.minimum is not None and self.maximum is not None:
            if isinstance(self.default, bool):
                raise TypeError(f"{self.name}: a bool parameter cannot have a range")
            if isinstance(self.default, int):
                descriptor.integer_range = [
                    IntegerRange(from_value=int(self.minimum), to_value=int(self.maximum), step=0)
                ]
            else:
                descriptor.floating_point_range = [
                    FloatingPointRange(
                        from_value=float(self.minimum), to_value=float(self.maximum), step=0.0
                    )
                ]
        return descriptor

    def check(self, value: Any) -> str | None:
        """Return a reason the value is invalid, or ``None`` when it is fine."""
        expected = type(self.default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            return f"{self.name} must be {expected.__name__}, got {value!r}"
        if self.choices and value not in self.choices:
            return f"{self.name}={value!r} is not one of {', '.join(self.choices)}"
        if self.minimum is not None and value < self.minimum:
            return f"{self.name}={value!r} is below the minimum {self.minimum}"
        if self.maximum is not None and value > self.maximum:
            return f"{self.name}={value!r} is above the maximum {self.maximum}"
        return None

    def range_text(self) -> str:
        """Human-readable constraint for documentation tables."""
        if self.choices:
            return " \\| ".join(self.choices)
        if self.minimum is not None and self.maximum is not None:
            return f"[{self.minimum}, {self.maximum}]"
        return ""


class ParameterValueError(ValueError):
    """A parameter value was rejected; the message names the parameter and the reason."""


def declare_parameters(node: Node, specs: Iterable[ParamSpec]) -> dict[str, ParamValue]:
    """Declare every spec on ``node`` and return the validated values by name.

    Raises:
        ParameterValueError: a value (from a params file or ``-p``) is invalid.
    """
    values: dict[str, ParamValue] = {}
    for spec in specs:
        value = node.declare_parameter(spec.name, spec.default, spec.descriptor()).value
        reason = spec.check(value)
        if reason is not None:
            raise ParameterValueError(reason)
        values[spec.name] = float(value) if isinstance(spec.default, float) else value
    return values


def check_updates(specs: Iterable[ParamSpec], updates: Mapping[str, Any]) -> str | None:
    """Validate a runtime parameter update; return the first reason to reject it, or None."""
    by_name = {spec.name: spec for spec in specs}
    for name, value in updates.items():
        spec = by_name.get(name)
        if spec is None:
            continue
        reason = spec.check(value)
        if reason is not None:
            return reason
    return None


def accept_updates(specs: Iterable[ParamSpec], values: dict[str, ParamValue], params) -> SetParametersResult:
    """A node's parameter callback when its updates need only their specs' checks: reject
    the first bad value with its reason, or apply every update to ``values``."""
    updates = {param.name: param.value for param in params}
    reason = check_updates(specs, updates)
    if reason is not None:
        return SetParametersResult(successful=False, reason=reason)
    values.update(updates)
    return SetParametersResult(successful=True)


def markdown_table(specs: Iterable[ParamSpec]) -> str:
    """The README parameter table for a node, generated from its specs."""
    rows = ["| parameter | type | default | range | description |", "|---|---|---|---|---|"]
    for spec in specs:
        rows.append(
            f"| `{spec.name}` | {type(spec.default).__name__} | `{spec.default!r}` | "
            f"{spec.range_text()} | {spec.description}{' (read-only)' if spec.read_only else ''} |"
        )
    return "\n".join(rows)
