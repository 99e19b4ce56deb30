"""The shared base of components: keyword hyperparameters, checked values, a readable repr."""

from __future__ import annotations

import math
from typing import Any


class Component:
    """Base class of every built-in component.

    Subclasses set their hyperparameters as attributes in ``__init__`` and list them in ``_repr_fields``;
    the repr then reads like the call that built them, e.g. ``NumIterations(5)``.
    """

    _repr_fields: tuple[str, ...] = ()

    def __repr__(self) -> str:
        values = [repr(getattr(self, name)) for name in self._repr_fields]
        if len(values) > 1:
            values = [f"{name}={value}" for name, value in zip(self._repr_fields, values)]
        return f"{type(self).__name__}({', '.join(values)})"


def check_number(name: str, value: Any, minimum: float | None = None, maximum: float | None = None,
                 integer: bool = False, strict_minimum: bool = False) -> Any:
    """Validate one numeric hyperparameter, raising a ``ValueError`` that names it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if integer and not (isinstance(value, int) or float(value).is_integer()):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if minimum is not None and (value < minimum or (strict_minimum and value == minimum)):
        raise ValueError(f"{name} must be {'>' if strict_minimum else '>='} {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value!r}")
    return int(value) if integer else value


def reads_input(component: Any) -> bool:
    """Whether ``component`` may read ``State.input_`` / ``transformed_input``.

    Only a ``reads_input`` set on the instance or declared by the component's *own* class counts: a subclass
    (say, of ``NumIterations``) that does not declare it again is assumed to read the input.
    """
    if "reads_input" in getattr(component, "__dict__", {}):
        return bool(component.__dict__["reads_input"])
    own = type(component).__dict__.get("reads_input")
    if isinstance(own, property):  # computed by the component itself (e.g. a Tracker from its objectives)
        return bool(own.__get__(component))
    return True if own is None else bool(own)
