"""The ``optimizer`` key: torch's SGD, RMSprop and Adam, meitorch's normalized-gradient ``mei`` and ``meibatch``
steps (:class:`MEIOptimizer`), and
schedules for any optimizer hyperparameter (``optimizer_params``).

The engine builds the optimizer as ``factory([x])`` and calls ``zero_grad``/``step`` on it; scheduled
hyperparameters are set to the coming step's values by the engine's step pre-hook
(:func:`mei.engine.schedule.schedule_optimizer`), the same one that applies schedules in the engine's JSON
configs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from ..engine.resolve import ConfigError
from ..engine.schedule import Schedule, schedule_optimizer, value_at
from ..optimizers import NormalizedGradient
from .tools.schedules import get_lr_scheduler


class MEIOptimizer(NormalizedGradient):
    """meitorch's ``mei`` and ``meibatch`` step on the package's :class:`~mei.optimizers.NormalizedGradient`:
    ``x -= lr * step_gain / 2 * g / (mean(|g|) + eps)``.

    meitorch divides the step by twice a standard deviation it fixes at 1, so its steps are half of
    ``lr * step_gain``; this class keeps that factor, so a meitorch config moves the pixels as far as it does
    there. ``meibatch`` is ``batch_dim`` set to the dimension of the samples.
    """

    step_factor = 0.5


OPTIMIZER_CLASSES: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD, "mei": MEIOptimizer, "meibatch": MEIOptimizer, "rmsprop": torch.optim.RMSprop,
    "adam": torch.optim.Adam,
}
_DEFAULT_LR = 0.01


def _with_lr_scheduler(optimizer: torch.optim.Optimizer, hparams: Mapping[str, Any] | None) -> torch.optim.Optimizer:
    """meitorch's ``scheduler_params``: a torch learning-rate scheduler stepped after every optimizer step."""
    if hparams is not None:
        scheduler = get_lr_scheduler(optimizer, hparams)
        optimizer.register_step_post_hook(lambda opt, args, kwargs: scheduler.step())
        optimizer.lr_scheduler = scheduler  # type: ignore[attr-defined]
    return optimizer


def optimizer_factory(name: str, params: Mapping[str, Any],
                      batch_dim: int | None = None) -> Callable[[list[Tensor]], torch.optim.Optimizer]:
    """The engine's optimizer factory for the ``optimizer`` / ``optimizer_params`` keys.

    ``lr`` defaults to 0.01. ``meibatch`` normalizes the gradient of each sample along ``batch_dim`` (the
    samples' dimension of the optimized tensor; None: all at once). ``optimizer_params["scheduler_params"]``
    (meitorch's key) adds a torch learning-rate scheduler (:func:`~mei.meitorch.tools.schedules.get_lr_scheduler`)
    stepped after each step. Checks the
    arguments at once by building the optimizer on a probe tensor (with every schedule at its step-0, smallest
    and largest value, and the scheduler); raises :class:`~mei.engine.resolve.ConfigError` naming
    ``optimizer_params`` (or ``optimizer_params.scheduler_params``) if they are refused.
    """
    cls = OPTIMIZER_CLASSES[name]
    kwargs = {"lr": _DEFAULT_LR, **{k: v for k, v in params.items() if k != "scheduler_params"}}
    if name == "meibatch":
        if "batch_dim" in kwargs:
            raise ConfigError("optimizer_params.batch_dim", "meibatch sets it to the samples' dimension itself")
        kwargs["batch_dim"] = batch_dim
    scheduler = params.get("scheduler_params")
    schedules = {k: v for k, v in kwargs.items() if isinstance(v, Schedule)}
    first = {k: value_at(v, 0) for k, v in kwargs.items()}

    def make(tensors: list[Tensor]) -> torch.optim.Optimizer:
        return _with_lr_scheduler(schedule_optimizer(cls(tensors, **first), schedules), scheduler)

    probes = [first] + [{**first, **{k: v.bounds()[end] for k, v in schedules.items()}} for end in (0, 1)]
    for probe in probes if schedules else probes[:1]:
        try:
            cls([torch.zeros(1, requires_grad=True)], **probe)
        except (TypeError, ValueError) as error:
            raise ConfigError("optimizer_params",
                              f"the {name} optimizer rejected {dict(params)!r}: {error}") from None
    try:
        make([torch.zeros(1, requires_grad=True)])
    except ValueError as error:
        raise ConfigError("optimizer_params.scheduler_params", str(error)) from None
    return make
