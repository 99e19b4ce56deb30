"""Schedules: hyperparameters that change with the optimization step, in any component's kwargs.

A schedule is a component of kind ``"schedule"`` (the concrete ones live in :mod:`mei.schedules`):
``schedule(i_iter) -> float``, plus :meth:`Schedule.bounds`, the smallest and largest value it can take. In a
JSON method config it is written where a number would be, as a component spec::

    "optimizer": {"path": "torch.optim.SGD",
                  "kwargs": {"lr": {"path": "mei.schedules.Linear",
                                    "kwargs": {"start": 1.0, "end": 0.1, "steps": 100}}}},
    "precondition": {"path": "mei.preconditioners.GaussianBlur",
                     "kwargs": {"sigma": {"path": "mei.schedules.Linear",
                                          "kwargs": {"start": 2.0, "end": 0.5, "steps": 100}}}}

:func:`mei.engine.resolve.build_component` builds such specs and hands them to the two applicators here:

* :class:`ScheduledComponent` (transforms, regularizations, preconditioners, postprocessors, anything called
  as ``(x, i_iter)``): before a call it evaluates the schedules at ``i_iter`` and, when the values differ from
  the previous call's, uses the component built with them (built once per distinct set of values, a few kept);
* :func:`schedule_optimizer` (the optimizer): a step pre-hook of the ``torch.optim.Optimizer`` that sets each
  scheduled hyperparameter (``lr``, ``momentum``, …) of every parameter group to the coming step's value.

Both are checked when the config is built: the component (the optimizer) is constructed with each
schedule's smallest and largest value, so a schedule that would leave the component's range is refused before
anything runs. The per-step cost is a few Python calls; the loop itself (:mod:`mei.optimization`) is unchanged.

No torch at import time (the resolver imports this module).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from .component import Component

_KEEP = 16  # components built for distinct values kept by a ScheduledComponent (octave schedules revisit none)


class Schedule(Component):
    """Base class of schedules: ``schedule(i_iter) -> float`` for the step ``i_iter`` (from 0)."""

    def bounds(self) -> tuple[float, float]:
        """``(smallest, largest)`` value the schedule can return."""
        raise NotImplementedError

    def __call__(self, i_iter: int) -> float:
        raise NotImplementedError


def is_schedule(value: Any) -> bool:
    """Whether ``value`` is a schedule (an instance of :class:`Schedule`)."""
    return isinstance(value, Schedule)


def value_at(value: Any, i_iter: int) -> Any:
    """``value(i_iter)`` for a schedule, ``value`` itself otherwise."""
    return value(i_iter) if isinstance(value, Schedule) else value


def values_at(kwargs: Mapping[str, Any], i_iter: int) -> dict[str, Any]:
    """``kwargs`` with every schedule replaced by its value at ``i_iter``."""
    return {name: value_at(value, i_iter) for name, value in kwargs.items()}


def extreme_kwargs(kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``kwargs`` with every schedule at its smallest value, then at its largest: what a config check builds."""
    low = {n: (v.bounds()[0] if isinstance(v, Schedule) else v) for n, v in kwargs.items()}
    high = {n: (v.bounds()[1] if isinstance(v, Schedule) else v) for n, v in kwargs.items()}
    return [low, high]


class ScheduledComponent:
    """A component whose scheduled hyperparameters take each step's value.

    Args:
        factory (Callable): the component's class (or factory), called with plain values.
        kwargs (dict): its keyword arguments; the :class:`Schedule` values among them are evaluated per step.
        name (str, optional): the component's dotted path, for the ``repr``.

    The component for step 0 is built at once (so bad values raise here); later ones when the values change.
    A component rebuilt for new values starts afresh: give schedules to stateless components (blurs,
    filters, norms, clips, weights), as all the package's transforms, preconditioners and postprocessors are.
    """

    def __init__(self, factory: Callable[..., Any], kwargs: Mapping[str, Any], name: str = "") -> None:
        self.factory, self.kwargs, self.name = factory, dict(kwargs), name or getattr(factory, "__name__", "")
        self.schedules = {n: v for n, v in self.kwargs.items() if isinstance(v, Schedule)}
        self._built: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._current_key: tuple[Any, ...] | None = None
        self._current: Any = None
        self.component_at(0)

    def component_at(self, i_iter: int) -> Any:
        """The component built with the hyperparameters of step ``i_iter``."""
        key = tuple(schedule(i_iter) for schedule in self.schedules.values())
        if key == self._current_key:
            return self._current
        built = self._built.get(key)
        if built is None:
            built = self.factory(**{**self.kwargs, **dict(zip(self.schedules, key, strict=True))})
            self._built[key] = built
            if len(self._built) > _KEEP:
                self._built.popitem(last=False)
        self._current_key, self._current = key, built
        return built

    def __call__(self, x: Any, i_iter: int) -> Any:
        return self.component_at(i_iter)(x, i_iter)

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={v!r}" for n, v in self.kwargs.items())
        return f"Scheduled({self.name}({args}))"


def schedule_optimizer(optimizer: Any, schedules: Mapping[str, Schedule]) -> Any:
    """Make ``optimizer`` (a ``torch.optim.Optimizer``) set ``schedules`` before each of its steps.

    Step ``k`` of the optimizer (its ``k``-th ``step()`` call, from 0, which is the engine's step ``k``) runs
    with ``group[name] = schedule(k)`` in every parameter group. Returns the optimizer itself (with a step
    pre-hook registered), so closures (LBFGS) and state dicts work as before.

    Raises:
        TypeError: ``optimizer`` is not a ``torch.optim.Optimizer`` (it has no step hooks).
    """
    if not schedules:
        return optimizer
    register = getattr(optimizer, "register_step_pre_hook", None)
    if register is None:
        raise TypeError(f"scheduled hyperparameters need a torch.optim.Optimizer; {type(optimizer).__name__} "
                        "has no step hooks")
    items = list(schedules.items())
    counter = [0]

    def set_values(opt: Any, args: Any, kwargs: Any) -> None:
        i_iter = counter[0]
        counter[0] += 1
        for name, schedule in items:
            value = schedule(i_iter)
            for group in opt.param_groups:
                group[name] = value

    register(set_values)
    return optimizer


__all__ = ["Schedule", "ScheduledComponent", "schedule_optimizer", "is_schedule", "value_at", "values_at",
           "extreme_kwargs"]
