"""Stoppers decide after every step whether the optimization is done.

A stopper is called with the step's :class:`~mei.optimization.State` and returns ``(stop, output)``;
``output`` (any object or ``None``) is stored on the state as ``stopper_output``.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any

from .engine.component import Component, check_number, component, reads_input
from .engine.errors import HyperparameterError


class OptimizationStopper(Component, abc.ABC):
    """Base class of stoppers: implement ``__call__(current_state) -> (stop, output)``.

    ``reads_input`` says whether the stopper may read ``state.input_`` (or ``transformed_input``): the engine
    copies the pre-step input only when someone may. Leave it ``True`` (the default) unless you know better.
    """

    reads_input: bool = True

    @abc.abstractmethod
    def __call__(self, current_state: Any) -> tuple[bool, Any]:
        """Decide whether to stop after the step described by ``current_state``."""


@component("stopper")
class NumIterations(OptimizationStopper):
    """Stop after exactly ``num_iterations`` optimization steps.

    Args:
        num_iterations (int): number of steps, >= 1.
    """

    reads_input = False

    _repr_fields: tuple[str, ...] = ("num_iterations",)

    def __init__(self, num_iterations: int) -> None:
        self.num_iterations = check_number("num_iterations", num_iterations, minimum=1, maximum=10**9, integer=True)

    def __call__(self, current_state: Any) -> tuple[bool, Any]:
        return current_state.i_iter + 1 >= self.num_iterations, None


@component("stopper")
class EvaluationPlateau(OptimizationStopper):
    """Stop when the evaluation has not improved by ``min_delta`` for ``patience`` steps.

    Reads ``state.evaluation`` every step (a device synchronisation on the GPU).

    Args:
        patience (int): steps without improvement before stopping. Default: 20.
        min_delta (float, optional): smallest change that counts as improvement (relative to
            ``max(1, |best|)`` when ``relative``). Default: 1e-4.
        max_iterations (int, optional): hard limit on steps. Default: 10000.
        min_iterations (int, optional): never stop before this many steps. Default: 0.
        relative (bool, optional): measure ``min_delta`` relative to the best value so far. Default: True.
    """

    _repr_fields = ("patience", "min_delta", "max_iterations", "min_iterations", "relative")
    reads_input = False

    def __init__(self, patience: int = 20, min_delta: float = 1e-4, max_iterations: int = 10000,
                 min_iterations: int = 0, relative: bool = True) -> None:
        self.patience = check_number("patience", patience, minimum=1, maximum=10**9, integer=True)
        self.min_delta = check_number("min_delta", min_delta, minimum=0)
        self.max_iterations = check_number("max_iterations", max_iterations, minimum=1, maximum=10**9, integer=True)
        self.min_iterations = check_number("min_iterations", min_iterations, minimum=0,
                                           maximum=self.max_iterations, integer=True)
        self.relative = bool(relative)
        self._best = -math.inf
        self._since_best = 0

    def __call__(self, current_state: Any) -> tuple[bool, Any]:
        if current_state.i_iter == 0:
            self._best, self._since_best = -math.inf, 0
        value = float(current_state.evaluation)
        scale = max(1.0, abs(self._best)) if (self.relative and math.isfinite(self._best)) else 1.0
        if value > self._best + self.min_delta * scale:
            self._best, self._since_best = value, 0
        else:
            self._since_best += 1
        n_steps = current_state.i_iter + 1
        done = n_steps >= self.max_iterations or (
            n_steps >= self.min_iterations and self._since_best >= self.patience
        )
        return done, {"best": self._best, "steps_without_improvement": self._since_best}


class PerImageStopper(OptimizationStopper):
    """Stops each image of a batch on its own: image ``k`` is judged by ``stoppers[k]`` alone.

    Each stopper sees the image's view (:meth:`mei.optimization.State.image`), exactly what a run of that
    image alone would give it, until it says stop; from then on the image is frozen by
    :func:`mei.optimization.optimize` and its stopper is not called again. The batch stops when every image
    has. ``output`` is the list of the stoppers' outputs (``None`` for images already finished).

    Args:
        stoppers (list[OptimizationStopper]): one fresh stopper per image (they may keep state).
    """

    _repr_fields = ("stoppers",)

    def __init__(self, stoppers: Sequence[Any]) -> None:
        self.stoppers = list(stoppers)
        if not self.stoppers or not all(callable(s) for s in self.stoppers):
            raise HyperparameterError("stoppers",
                                      f"must be a non-empty list of stoppers, one per image, got {stoppers!r}")
        self.stopped_at: list[int | None] = [None] * len(self.stoppers)
        self.reads_input = any(reads_input(s) for s in self.stoppers)
        self.changed = False
        first = self.stoppers[0]
        # identical step counts decide for every image at once (no per-image views: cheap for large K)
        self._shared = all(type(s) is NumIterations and s.num_iterations == getattr(first, "num_iterations", None)
                           for s in self.stoppers)

    @property
    def finished(self) -> list[bool]:
        """One flag per image: has its stopper said stop?"""
        return [step is not None for step in self.stopped_at]

    @property
    def num_iterations(self) -> int | None:
        """The most steps the batch can take, when every stopper has a fixed count (for progress bars)."""
        counts = [getattr(stopper, "num_iterations", None) for stopper in self.stoppers]
        known = [count for count in counts if count is not None]
        return max(known) if len(known) == len(counts) else None

    def running_at(self, i_iter: int) -> list[bool]:
        """One flag per image: was it still optimized at step ``i_iter``?"""
        return [step is None or step >= i_iter for step in self.stopped_at]

    def __call__(self, current_state: Any) -> tuple[bool, Any]:
        if current_state.i_iter == 0:
            self.stopped_at = [None] * len(self.stoppers)
        if current_state.n_images != len(self.stoppers):
            raise ValueError(f"{len(self.stoppers)} stoppers for a batch of {current_state.n_images} images")
        self.changed = False
        if self._shared:
            stop, output = self.stoppers[0](current_state)
            if stop:
                self.stopped_at, self.changed = [current_state.i_iter] * len(self.stoppers), True
            return stop, [output] * len(self.stoppers)
        outputs: list[Any] = []
        for k, stopper in enumerate(self.stoppers):
            if self.stopped_at[k] is not None:
                outputs.append(None)
                continue
            view = current_state.image(k)
            stop, view.stopper_output = stopper(view)
            outputs.append(view.stopper_output)
            if stop:
                self.stopped_at[k], self.changed = current_state.i_iter, True
        return all(self.finished), outputs
