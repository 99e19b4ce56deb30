"""The ``optimizer`` key: torch's SGD, RMSprop and Adam, meitorch's normalized-gradient ``mei`` step, and
schedules for any optimizer hyperparameter (``optimizer_params``).

The engine builds the optimizer as ``factory([x])`` and calls ``zero_grad``/``step`` on it; scheduled
hyperparameters are set to the coming step's values by the engine's step pre-hook
(:func:`mei.engine.schedule.schedule_optimizer`), the same one that applies schedules in the engine's JSON
configs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor

from ..engine.component import check_number
from ..engine.resolve import ConfigError
from ..engine.schedule import Schedule, schedule_optimizer, value_at
from .tools.schedules import get_lr_scheduler


class MEIOptimizer(torch.optim.Optimizer):
    """The DeepDraw-style step: ``x -= lr * g / mean(|g|)`` (the gradient normalized to mean magnitude 1),
    with decoupled weight decay ``x *= 1 - lr * weight_decay``.

    Every step moves each pixel by ``lr`` on average, whatever the scale of the model's output.

    Args:
        params (Iterable[Tensor]): tensors to optimize.
        lr (float, optional): mean absolute change per step, >= 0. Default: 0.01.
        weight_decay (float, optional): >= 0. Default: 0.
        eps (float, optional): guards the normalization against a zero gradient. Default: 1e-12.
    """

    def __init__(self, params: Iterable[Tensor], lr: float = 0.01, weight_decay: float = 0.0,
                 eps: float = 1e-12) -> None:
        defaults = {"lr": check_number("lr", lr, minimum=0),
                    "weight_decay": check_number("weight_decay", weight_decay, minimum=0),
                    "eps": check_number("eps", eps, minimum=0, strict_minimum=True)}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> None:  # type: ignore[override]
        """One normalized-gradient step (``closure`` is not supported and must be None)."""
        if closure is not None:
            raise ValueError("MEIOptimizer.step takes no closure")
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if group["weight_decay"]:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(p.grad / p.grad.abs().mean().clamp_min(group["eps"]), alpha=-group["lr"])


OPTIMIZER_CLASSES: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD, "mei": MEIOptimizer, "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam,
}
_DEFAULT_LR = 0.01


def _with_lr_scheduler(optimizer: torch.optim.Optimizer, hparams: Mapping[str, Any] | None) -> torch.optim.Optimizer:
    """meitorch's ``scheduler_params``: a torch learning-rate scheduler stepped after every optimizer step."""
    if hparams is not None:
        scheduler = get_lr_scheduler(optimizer, hparams)
        optimizer.register_step_post_hook(lambda opt, args, kwargs: scheduler.step())
        optimizer.lr_scheduler = scheduler  # type: ignore[attr-defined]
    return optimizer


def optimizer_factory(name: str, params: Mapping[str, Any]) -> Callable[[list[Tensor]], torch.optim.Optimizer]:
    """The engine's optimizer factory for the ``optimizer`` / ``optimizer_params`` keys.

    ``lr`` defaults to 0.01. ``optimizer_params["scheduler_params"]`` (meitorch's key) adds a torch learning-rate
    scheduler (:func:`~mei.meitorch.tools.schedules.get_lr_scheduler`) stepped after each step. Checks the
    arguments at once by building the optimizer on a probe tensor (with every schedule at its step-0, smallest
    and largest value, and the scheduler); raises :class:`~mei.engine.resolve.ConfigError` naming
    ``optimizer_params`` (or ``optimizer_params.scheduler_params``) if they are refused.
    """
    cls = OPTIMIZER_CLASSES[name]
    kwargs = {"lr": _DEFAULT_LR, **{k: v for k, v in params.items() if k != "scheduler_params"}}
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
