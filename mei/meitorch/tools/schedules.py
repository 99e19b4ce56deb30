"""Schedules: a value that changes with the optimization step, usable for any numeric config value.

A schedule is called with the step index ``i_iter`` (from 0) and returns that step's value. Linear and octave
schedules need the number of steps; the generation methods bind it from the config's ``iter_n`` with
:meth:`Schedule.bind` (a bound copy; the object in the user's config is never changed). Called before being
bound, they raise a :class:`ValueError` saying so.

Examples:
    >>> LinearSchedule(0.1, 0.01).bind(10)(9)
    0.01
    >>> [OctaveSchedule([3, 2, 1]).bind(6)(i) for i in range(6)]
    [3, 3, 2, 2, 1, 1]
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ...engine.component import check_number
from ...engine.errors import HyperparameterError


class Schedule:
    """Base class: ``schedule(i_iter) -> value``; :meth:`bounds` gives the smallest and largest value."""

    n_iter: int | None = None
    seed: int = 0

    def bind(self, n_iter: int, seed: int = 0) -> "Schedule":
        """A copy that knows the run has ``n_iter`` steps (and draws random values from ``seed``)."""
        bound = copy.copy(self)
        bound.n_iter = check_number("n_iter", n_iter, minimum=1, maximum=10**9, integer=True)
        bound.seed = int(seed)
        return bound

    def _steps(self) -> int:
        if self.n_iter is None:
            raise ValueError(f"{self!r} does not know the number of steps yet; call .bind(n_iter) first "
                             "(the generate_* methods do this with the config's iter_n)")
        return self.n_iter

    def bounds(self) -> tuple[float, float]:
        """``(smallest, largest)`` value the schedule can return."""
        raise NotImplementedError

    def __call__(self, i_iter: int) -> float:
        raise NotImplementedError


class LinearSchedule(Schedule):
    """From ``start`` at the first step to ``end`` at the last step, linearly.

    Args:
        start (float): value at step 0.
        end (float): value at step ``n_iter - 1``.
    """

    def __init__(self, start: float, end: float) -> None:
        self.start = check_number("start", start)
        self.end = check_number("end", end)

    def bounds(self) -> tuple[float, float]:
        return min(self.start, self.end), max(self.start, self.end)

    def __call__(self, i_iter: int) -> float:
        n = self._steps()
        fraction = min(max(i_iter, 0), n - 1) / max(n - 1, 1)
        return self.start + (self.end - self.start) * fraction

    def __repr__(self) -> str:
        return f"LinearSchedule({self.start!r}, {self.end!r})"


class OctaveSchedule(Schedule):
    """``values[k]`` during the k-th of ``len(values)`` equal parts ("octaves") of the run.

    Args:
        values (list[float]): one value per octave, at least one.
    """

    def __init__(self, values: Sequence[float]) -> None:
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"values must be a non-empty list of numbers, got {values!r}")
        self.values = [check_number(f"values[{i}]", v) for i, v in enumerate(values)]

    def bounds(self) -> tuple[float, float]:
        return min(self.values), max(self.values)

    def __call__(self, i_iter: int) -> float:
        n = self._steps()
        k = min(max(i_iter, 0), n - 1) * len(self.values) // n
        return self.values[k]

    def __repr__(self) -> str:
        return f"OctaveSchedule({self.values!r})"


class RandomSchedule(Schedule):
    """A uniform random value in ``[minimum, maximum]`` at every step.

    The value of step ``i`` is a function of ``(seed, i)`` only, so a run is reproducible and two keys
    sharing the schedule see the same value in the same step. Needs no ``n_iter``.

    Args:
        minimum (float): smallest value.
        maximum (float): largest value, >= minimum.
    """

    def __init__(self, minimum: float, maximum: float) -> None:
        self.minimum = check_number("minimum", minimum)
        self.maximum = check_number("maximum", maximum, minimum=self.minimum)

    def bounds(self) -> tuple[float, float]:
        return self.minimum, self.maximum

    def __call__(self, i_iter: int) -> float:
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + int(i_iter)) % (2**63))
        u = float(torch.rand((), generator=generator, dtype=torch.float64))
        return self.minimum + (self.maximum - self.minimum) * u

    def __repr__(self) -> str:
        return f"RandomSchedule({self.minimum!r}, {self.maximum!r})"


_JSON_SCHEDULES: dict[str, type[Schedule]] = {
    "linear": LinearSchedule, "octave": OctaveSchedule, "random": RandomSchedule,
}


def is_schedule_spec(value: Any) -> bool:
    """Whether ``value`` is the JSON form of a schedule, e.g. ``{"schedule": "linear", "start": 1, "end": 0}``."""
    return isinstance(value, Mapping) and "schedule" in value


def schedule_from_json(value: Mapping[str, Any]) -> Schedule:
    """Build a schedule from its JSON form (``schedule`` = linear / octave / random, plus its arguments)."""
    kind = value.get("schedule")
    if kind not in _JSON_SCHEDULES:
        raise ValueError(f"schedule must be one of {sorted(_JSON_SCHEDULES)}, got {kind!r}")
    kwargs = {k: v for k, v in value.items() if k != "schedule"}
    try:
        return _JSON_SCHEDULES[kind](**kwargs)
    except TypeError as error:
        raise ValueError(f"{kind} schedule: {error}") from None


def check_schedulable(name: str, value: Any, minimum: float | None = None, strict_minimum: bool = False,
                      integer: bool = False, optional: bool = False) -> Any:
    """Validate a hyperparameter that may be a number or a :class:`Schedule` (or ``None`` when ``optional``).

    A number is checked as :func:`~mei.engine.component.check_number` checks it; a schedule by its smallest
    value (:meth:`Schedule.bounds`). Returns ``value`` unchanged. Raises a
    :class:`~mei.engine.errors.HyperparameterError` naming ``name``.
    """
    if value is None and optional:
        return None
    if isinstance(value, Schedule):
        low = value.bounds()[0]
        if minimum is not None and (low < minimum or (strict_minimum and low == minimum)):
            raise HyperparameterError(name, f"must be {'>' if strict_minimum else '>='} {minimum}, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        or_none = " or None" if optional else ""
        raise HyperparameterError(name, f"must be a number{or_none} or a schedule, got {value!r}")
    check_number(name, value, minimum=minimum, integer=integer, strict_minimum=strict_minimum)
    return value


def value_at(value: Any, i_iter: int) -> Any:
    """``value(i_iter)`` for a schedule, ``value`` itself otherwise."""
    return value(i_iter) if isinstance(value, Schedule) else value


__all__ = ["Schedule", "LinearSchedule", "OctaveSchedule", "RandomSchedule", "value_at", "schedule_from_json",
           "is_schedule_spec", "check_schedulable"]
