"""The :class:`Tracker` records objectives (see :mod:`mei.objectives`) over an optimization."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from .engine.component import reads_input
from .objectives import Objective


class TrackedLog(dict[str, Any]):
    """What a :class:`Tracker` recorded, ``{name: {"times": [...], "values": [...]}}`` (a plain ``dict`` subclass).

    ``gradient_ascent`` names each objective by its config's dotted path (``"mei.objectives.EvaluationObjective"``,
    as sinzlab/mei does). Earlier versions of this package named it by class name; so that code and stored rows
    of either kind keep working, a name that is not a key finds the one key it is the last part of
    (``log["EvaluationObjective"]`` on a log keyed by path) or the key that is the last part of it
    (``log["mei.objectives.EvaluationObjective"]`` on an old log keyed by class name).

    Pickled (``torch.save``) it is an ``OrderedDict``, which ``torch.load(..., weights_only=True)`` reads.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return OrderedDict, (list(self.items()),)

    def __missing__(self, name: Any) -> Any:
        if isinstance(name, str):
            short = [key for key in self if isinstance(key, str) and key.rsplit(".", 1)[-1] == name]
            if len(short) == 1:
                return self[short[0]]
            last = name.rsplit(".", 1)[-1]
            if last != name and last in self:
                return self[last]
        raise KeyError(name)

    def get(self, name: Any, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or self.get(name, _ABSENT) is not _ABSENT


_ABSENT = object()


class Tracker:
    """Records named objectives at the steps they ask for.

    ``tracker.log`` is ``{name: {"times": [step, ...], "values": [value, ...]}}``, the method's ``output``.

    Args:
        **objectives (Objective): name -> objective, e.g. ``evaluation=EvaluationObjective(10)``; any
            callable ``objective(state)`` works, returning ``None`` on steps it does not record.
    """

    def __init__(self, **objectives: Objective) -> None:
        self.objectives = objectives
        self.log: dict[str, dict[str, list[Any]]] = TrackedLog(
            (name, {"times": [], "values": []}) for name in objectives)

    @property
    def reads_input(self) -> bool:
        """Whether any objective may read ``state.input_`` / ``transformed_input``."""
        return any(reads_input(objective) for objective in self.objectives.values())

    def track(self, current_state: Any) -> None:
        """Let each objective look at ``current_state`` and store what it returns."""
        for name, objective in self.objectives.items():
            value = objective(current_state)
            if value is not None:
                self.log[name]["times"].append(current_state.i_iter)
                self.log[name]["values"].append(value)

    def __repr__(self) -> str:
        return f"Tracker({', '.join(self.objectives)})"  # the names, as sinzlab/mei writes it
