"""Schedules: a value that changes with the optimization step, usable for any numeric config value.

A schedule is called with the step index ``i_iter`` (from 0) and returns that step's value. meitorch's schedules
do not know the number of steps; the generation methods bind them to the config's ``iter_n`` with
:meth:`Schedule.bind`, which returns the engine's own schedule (:mod:`mei.schedules`: ``Linear``, ``Octave``,
``Random``, ``Constant``), the object the engine applies per step (:mod:`mei.engine.schedule`); the object in the
user's config is never changed. Called before being bound, they raise a :class:`ValueError` saying so. An engine
schedule may be given in a config directly.

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

from ... import schedules as engine
from ...engine.component import check_number
from ...engine.errors import HyperparameterError
from ...engine.schedule import Schedule as EngineSchedule
from ...engine.schedule import value_at as value_at


class Schedule(EngineSchedule):
    """Base class of meitorch's schedules: a schedule without the run's length, which :meth:`bind` turns into
    the engine's schedule (:mod:`mei.schedules`) for a run of ``n_iter`` steps; :meth:`bounds` gives the
    smallest and largest value."""

    n_iter: int | None = None
    seed: int = 0

    def bind(self, n_iter: int, seed: int = 0) -> EngineSchedule:
        """The engine's schedule for a run of ``n_iter`` steps (random values drawn from ``seed``); this
        object is left as it is."""
        check_number("n_iter", n_iter, minimum=1, maximum=10**9, integer=True)
        return self._engine(int(n_iter), int(seed) % 2**63)

    def _engine(self, n_iter: int, seed: int) -> EngineSchedule:
        raise NotImplementedError

    def __call__(self, i_iter: int) -> float:
        raise ValueError(f"{self!r} does not know the number of steps yet; call .bind(n_iter) first "
                         "(the generate_* methods do this with the config's iter_n)")


class LinearSchedule(Schedule):
    """From ``start`` at the first step to ``end`` at the last step, linearly (bound: :class:`mei.schedules.Linear`).

    Args:
        start (float): value at step 0.
        end (float): value at step ``n_iter - 1``.
    """

    def __init__(self, start: float, end: float) -> None:
        self.start = check_number("start", start)
        self.end = check_number("end", end)

    def bounds(self) -> tuple[float, float]:
        return min(self.start, self.end), max(self.start, self.end)

    def _engine(self, n_iter: int, seed: int) -> EngineSchedule:
        return engine.Linear(self.start, self.end, steps=n_iter)

    def __repr__(self) -> str:
        return f"LinearSchedule({self.start!r}, {self.end!r})"


class OctaveSchedule(Schedule):
    """``values[k]`` during the k-th of ``len(values)`` equal parts ("octaves") of the run (bound:
    :class:`mei.schedules.Octave`).

    Args:
        values (list[float]): one value per octave, at least one.
    """

    def __init__(self, values: Sequence[float]) -> None:
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"values must be a non-empty list of numbers, got {values!r}")
        self.values = [check_number(f"values[{i}]", v) for i, v in enumerate(values)]

    def bounds(self) -> tuple[float, float]:
        return min(self.values), max(self.values)

    def _engine(self, n_iter: int, seed: int) -> EngineSchedule:
        return engine.Octave(self.values, steps=n_iter)

    def __repr__(self) -> str:
        return f"OctaveSchedule({self.values!r})"


class RandomSchedule(Schedule):
    """A uniform random value in ``[minimum, maximum]`` at every step (bound: :class:`mei.schedules.Random`).

    The value of step ``i`` is a function of ``(seed, i)`` only, so a run is reproducible and two keys
    sharing the schedule see the same value in the same step.

    Args:
        minimum (float): smallest value.
        maximum (float): largest value, >= minimum.
    """

    def __init__(self, minimum: float, maximum: float) -> None:
        self.minimum = check_number("minimum", minimum)
        self.maximum = check_number("maximum", maximum, minimum=self.minimum)

    def bounds(self) -> tuple[float, float]:
        return self.minimum, self.maximum

    def _engine(self, n_iter: int, seed: int) -> EngineSchedule:
        return engine.Random(self.minimum, self.maximum, seed=seed)

    def __repr__(self) -> str:
        return f"RandomSchedule({self.minimum!r}, {self.maximum!r})"


class ConstantSchedule(Schedule):
    """``value`` at every step (bound: :class:`mei.schedules.Constant`)."""

    def __init__(self, value: float) -> None:
        self.value = check_number("value", value)

    def bounds(self) -> tuple[float, float]:
        return self.value, self.value

    def _engine(self, n_iter: int, seed: int) -> EngineSchedule:
        return engine.Constant(self.value)

    def __repr__(self) -> str:
        return f"ConstantSchedule({self.value!r})"


#: meitorch's ``scheduler_params["type"]`` -> the torch learning-rate scheduler it builds
LR_SCHEDULERS: dict[str, Any] = {
    "step": torch.optim.lr_scheduler.StepLR,
    "multi_step": torch.optim.lr_scheduler.MultiStepLR,
    "exponential": torch.optim.lr_scheduler.ExponentialLR,
    "cosine": torch.optim.lr_scheduler.CosineAnnealingLR,
    "cosine_warm": torch.optim.lr_scheduler.CosineAnnealingWarmRestarts,
}


def get_lr_scheduler(optimizer: torch.optim.Optimizer, hparams: Mapping[str, Any]) -> Any:
    """meitorch's learning-rate scheduler: ``hparams["type"]`` (``step``, ``multi_step``, ``exponential``,
    ``cosine``, ``cosine_warm``) picks torch's ``StepLR``, ``MultiStepLR``, ``ExponentialLR``,
    ``CosineAnnealingLR`` or ``CosineAnnealingWarmRestarts``; the other entries are its arguments (e.g.
    ``step_size`` and ``gamma``; ``T_0`` for ``cosine_warm``). ``hparams`` is not changed (meitorch deletes
    ``type`` from it).

    Raises:
        ValueError: an unknown type, or arguments the scheduler refuses (the message says which).
    """
    if not isinstance(hparams, Mapping) or "type" not in hparams:
        raise ValueError(f"scheduler_params must be a dict with 'type' (one of {sorted(LR_SCHEDULERS)}), "
                         f"got {hparams!r}")
    kind = hparams["type"]
    if kind not in LR_SCHEDULERS:
        raise ValueError(f"scheduler_params.type must be one of {sorted(LR_SCHEDULERS)}, got {kind!r}")
    kwargs = {k: copy.copy(v) for k, v in hparams.items() if k != "type"}
    try:
        return LR_SCHEDULERS[kind](optimizer, **kwargs)
    except (TypeError, ValueError, ZeroDivisionError) as error:
        raise ValueError(f"the {kind} scheduler ({LR_SCHEDULERS[kind].__name__}) rejected {kwargs}: {error}") \
            from None


_JSON_SCHEDULES: dict[str, type[Schedule]] = {
    "linear": LinearSchedule, "octave": OctaveSchedule, "random": RandomSchedule, "constant": ConstantSchedule,
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
    if isinstance(value, EngineSchedule):
        low = value.bounds()[0]
        if minimum is not None and (low < minimum or (strict_minimum and low == minimum)):
            raise HyperparameterError(name, f"must be {'>' if strict_minimum else '>='} {minimum}, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        or_none = " or None" if optional else ""
        raise HyperparameterError(name, f"must be a number{or_none} or a schedule, got {value!r}")
    check_number(name, value, minimum=minimum, integer=integer, strict_minimum=strict_minimum)
    return value


__all__ = ["Schedule", "LinearSchedule", "OctaveSchedule", "RandomSchedule", "ConstantSchedule", "value_at",
           "schedule_from_json", "is_schedule_spec", "check_schedulable", "get_lr_scheduler", "LR_SCHEDULERS"]
