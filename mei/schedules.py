"""Schedules: ``schedule(i_iter) -> value``, a hyperparameter that changes with the step.

Write one where a number would be in any component's kwargs, e.g. a learning rate or a blur's sigma::

    {"path": "mei.schedules.Linear", "kwargs": {"start": 1.0, "end": 0.1, "steps": 100}}

How they are applied (optimizer hyperparameters before each step, other components rebuilt with each step's
values) is :mod:`mei.engine.schedule`. A schedule that needs the length of the run takes it as ``steps`` and
keeps its last value after ``steps``.

Examples:
    >>> [Linear(1.0, 0.0, steps=5)(i) for i in range(6)]
    [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    >>> [Octave([3, 2, 1], steps=6)(i) for i in range(6)]
    [3, 3, 2, 2, 1, 1]
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from .engine.component import check_int, check_number, check_numbers, component
from .engine.schedule import Schedule

_MAX_STEPS = 10**9


def _steps(steps: int) -> int:
    return check_int("steps", steps, 1, _MAX_STEPS)


def _clamped(i_iter: int, steps: int) -> int:
    return min(max(int(i_iter), 0), steps - 1)


class _Ramp(Schedule):
    """A change from ``start`` at step 0 to ``end`` at step ``steps - 1``; ``end`` afterwards."""

    def __init__(self, start: float, end: float, steps: int) -> None:
        self.start = check_number("start", start)
        self.end = check_number("end", end)
        self.steps = _steps(steps)

    def bounds(self) -> tuple[float, float]:
        return min(self.start, self.end), max(self.start, self.end)

    def _fraction(self, i_iter: int) -> float:
        """How far step ``i_iter`` is along the change, 0 to 1."""
        return _clamped(i_iter, self.steps) / max(self.steps - 1, 1)


@component("schedule")
class Constant(Schedule):
    """The same ``value`` at every step."""

    def __init__(self, value: float) -> None:
        self.value = check_number("value", value)

    def bounds(self) -> tuple[float, float]:
        return self.value, self.value

    def __call__(self, i_iter: int) -> float:
        return self.value


@component("schedule")
class Linear(_Ramp):
    """From ``start`` at step 0 to ``end`` at step ``steps - 1``, linearly; ``end`` afterwards.

    Args:
        start (float): value at step 0.
        end (float): value at step ``steps - 1`` and later.
        steps (int): number of steps the change takes, >= 1.
    """

    def __call__(self, i_iter: int) -> float:
        return self.start + (self.end - self.start) * self._fraction(i_iter)


@component("schedule")
class Octave(Schedule):
    """``values[k]`` during the k-th of ``len(values)`` equal parts of ``steps`` steps; the last value afterwards.

    Args:
        values (list[float]): one value per part, at least one.
        steps (int): length of the run the parts divide, >= 1.
    """

    def __init__(self, values: Sequence[float], steps: int) -> None:
        self.values = check_numbers("values", values)
        self.steps = _steps(steps)

    def bounds(self) -> tuple[float, float]:
        return min(self.values), max(self.values)

    def __call__(self, i_iter: int) -> float:
        return self.values[_clamped(i_iter, self.steps) * len(self.values) // self.steps]


@component("schedule")
class Exponential(Schedule):
    """``start * gamma ** i_iter`` (torch's ``ExponentialLR``), never below ``minimum``.

    Args:
        start (float): value at step 0, > 0.
        gamma (float): factor per step, > 0.
        minimum (float, optional): floor of the value. Default: 0.
    """

    def __init__(self, start: float, gamma: float, minimum: float = 0.0) -> None:
        self.start = check_number("start", start, minimum=0, strict_minimum=True)
        self.gamma = check_number("gamma", gamma, minimum=0, strict_minimum=True)
        self.minimum = check_number("minimum", minimum)

    def bounds(self) -> tuple[float, float]:
        low = 0.0 if self.gamma < 1 else self.start
        high = self.start if self.gamma <= 1 else math.inf
        return max(low, self.minimum), max(high, self.minimum)

    def __call__(self, i_iter: int) -> float:
        return max(self.start * self.gamma ** max(int(i_iter), 0), self.minimum)


@component("schedule")
class Cosine(_Ramp):
    """Half a cosine from ``start`` at step 0 to ``end`` at step ``steps - 1`` (torch's ``CosineAnnealingLR``
    without restarts); ``end`` afterwards.

    Args:
        start (float): value at step 0.
        end (float): value at step ``steps - 1`` and later.
        steps (int): number of steps, >= 1.
    """

    def __call__(self, i_iter: int) -> float:
        return self.end + (self.start - self.end) * 0.5 * (1.0 + math.cos(math.pi * self._fraction(i_iter)))


@component("schedule")
class Random(Schedule):
    """A uniform value in ``[minimum, maximum]`` at every step, a function of ``(seed, i_iter)`` alone (so a
    run repeats exactly, and two components sharing the schedule see the same value in the same step).

    Args:
        minimum (float): smallest value.
        maximum (float): largest value, >= minimum.
        seed (int, optional): which sequence of values. Default: 0.
    """

    def __init__(self, minimum: float, maximum: float, seed: int = 0) -> None:
        self.minimum = check_number("minimum", minimum)
        self.maximum = check_number("maximum", maximum, minimum=self.minimum)
        self.seed = check_int("seed", seed, 0, 2**63 - 1)

    def bounds(self) -> tuple[float, float]:
        return self.minimum, self.maximum

    def __call__(self, i_iter: int) -> float:
        u = random.Random(self.seed * 1_000_003 + int(i_iter)).random()
        return self.minimum + (self.maximum - self.minimum) * u


__all__ = ["Schedule", "Constant", "Linear", "Octave", "Exponential", "Cosine", "Random"]
