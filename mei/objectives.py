"""Objectives a :class:`~mei.tracking.Tracker` records during an optimization.

An objective is called with the step's state and returns a value to keep (or ``None`` between its
intervals). Values are copied to the CPU: only tracked steps cost a host transfer.
"""

from __future__ import annotations

import abc
from typing import Any

from .engine.component import Component, check_number, component


class Objective(Component, abc.ABC):
    """Base class: ``compute(state)`` returns what to record.

    ``reads_input`` says whether it may read ``state.input_`` or ``transformed_input`` (default ``True``).
    """

    reads_input: bool = True

    def wants(self, i_iter: int) -> bool:
        """Whether this objective records step ``i_iter``."""
        return True

    @abc.abstractmethod
    def compute(self, current_state: Any) -> Any:
        """The value to record for ``current_state``."""

    def __call__(self, current_state: Any) -> Any:
        if type(self).wants is Objective.wants:  # records every step (sinzlab/mei's Objective)
            return self.compute(current_state)
        return self.compute(current_state) if self.wants(current_state.i_iter) else None


class RegularIntervalObjective(Objective):
    """Records every ``interval``-th step (steps 0, interval, 2*interval, ...).

    Args:
        interval (int): steps between records, >= 1.
    """

    _repr_fields = ("interval",)

    def __init__(self, interval: int) -> None:
        self.interval = check_number("interval", interval, minimum=1, maximum=10**9, integer=True)

    def wants(self, i_iter: int) -> bool:
        return i_iter % self.interval == 0


@component("objective")
class EvaluationObjective(RegularIntervalObjective):
    """Records the model's evaluation (a float)."""

    reads_input = False

    def compute(self, current_state: Any) -> Any:
        return current_state.evaluation


@component("objective")
class RegularizationObjective(RegularIntervalObjective):
    """Records the regularization term (a float)."""

    reads_input = False

    def compute(self, current_state: Any) -> Any:
        return current_state.reg_term


@component("objective")
class PostProcessedInputObjective(RegularIntervalObjective):
    """Records a CPU copy of the post-processed input."""

    reads_input = False

    def compute(self, current_state: Any) -> Any:
        return current_state.post_processed_input.detach().cpu().clone()


@component("objective")
class TransformedInputObjective(RegularIntervalObjective):
    """Records a CPU copy of the transformed input (what the model saw)."""

    def compute(self, current_state: Any) -> Any:
        return current_state.transformed_input.detach().cpu().clone()


@component("objective")
class GradientNormObjective(RegularIntervalObjective):
    """Records the L2 norm of the (un-preconditioned) gradient (a float)."""

    reads_input = False

    def compute(self, current_state: Any) -> Any:
        return float(current_state.grad.detach().norm())
