"""The :class:`Tracker` records objectives (see :mod:`mei.objectives`) over an optimization."""

from __future__ import annotations

from typing import Any

from .engine.component import reads_input
from .objectives import Objective


class Tracker:
    """Records named objectives at the steps they ask for.

    ``tracker.log`` is ``{name: {"times": [step, ...], "values": [value, ...]}}``, the method's ``output``.

    Args:
        **objectives (Objective): name -> objective, e.g. ``evaluation=EvaluationObjective(10)``; any
            callable ``objective(state)`` works, returning ``None`` on steps it does not record.
    """

    def __init__(self, **objectives: Objective) -> None:
        self.objectives = objectives
        self.log: dict[str, dict[str, list[Any]]] = {name: {"times": [], "values": []} for name in objectives}

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
        return f"Tracker({', '.join(f'{k}={v!r}' for k, v in self.objectives.items())})"
