"""The shared base of components: keyword hyperparameters, checked values, a readable repr, and the
declaration that makes a class or function a component.

Only declared objects can be named by a dotted path inside the package (see :mod:`mei.engine.resolve`): a class or
function becomes one with :func:`component`, which records the *kinds* of config slot it may fill. Nothing
else of the package — tables, the database, the command line, the demo runner, report writers, plotting,
file helpers — is ever handed out by the resolver, whatever its name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

COMPONENT_KINDS: tuple[str, ...] = (
    "initial", "optimizer", "stopper", "transform", "regularization", "precondition", "postprocessing", "objective",
    "reducer", "loss",
)
"""Kinds of the parts of a method config (and of the specs nested in them, such as an objective table's loss)."""
METHOD_KINDS: tuple[str, ...] = ("method",)
"""Method functions ``(dataloaders, model, config, seed) -> (mei, score, output)``, named by ``method_fn``."""
BUILDER_KINDS: tuple[str, ...] = ("dataset", "model", "trainer")
"""nnfabrik-protocol builders, named by ``dataset_fn`` / ``model_fn`` / ``trainer_fn``."""
KINDS: tuple[str, ...] = COMPONENT_KINDS + METHOD_KINDS + BUILDER_KINDS

_T = TypeVar("_T")
_declared: dict[int, tuple[Any, frozenset[str]]] = {}


def component(*kinds: str) -> Callable[[_T], _T]:
    """Declare the decorated class or function a component of ``kinds`` (see :data:`KINDS`).

    Example:
        >>> @component("stopper")
        ... class EveryOther: ...
    """
    unknown = [kind for kind in kinds if kind not in KINDS]
    if not kinds or unknown:
        raise ValueError(f"component kinds must be some of {list(KINDS)}, got {list(kinds)}")

    def declare(obj: _T) -> _T:
        previous = _declared.get(id(obj), (obj, frozenset()))[1]
        _declared[id(obj)] = (obj, previous | frozenset(kinds))
        return obj

    return declare


def declared_kinds(obj: Any) -> frozenset[str]:
    """The kinds ``obj`` was declared a component of with :func:`component` (empty if it was not)."""
    entry = _declared.get(id(obj))
    return entry[1] if entry is not None and entry[0] is obj else frozenset()


def declared_components() -> list[tuple[Any, frozenset[str]]]:
    """Every object declared so far (in the modules imported so far) with its kinds."""
    return list(_declared.values())


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
