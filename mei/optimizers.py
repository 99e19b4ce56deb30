"""Optimizer components of the package: torch optimizers a config may name besides ``torch.optim``'s.

:class:`NormalizedGradient` (a ``torch.optim.Optimizer``) is the DeepDraw step of meitorch's ``mei`` and
``meibatch`` optimizers: every step moves the pixels by ``lr * step_gain`` on average, whatever the scale of the
model's output. A config names it through its declared factory, :func:`normalized_gradient`:
``{"path": "mei.optimizers.normalized_gradient", "kwargs": {"lr": 0.5}}``; ``lr`` and ``step_gain`` may be
schedules there like any other number. (The optimizer classes themselves follow ``torch.optim``'s design, not
the components' ``Component`` base, so the declared component is the factory, as a config's ``torch.optim.SGD``
is torch's class.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from .engine.component import check_int, check_number, component


def _mean_magnitude(grad: Tensor, batch_dim: int | None) -> Tensor:
    """``mean(|grad|)`` over the whole tensor, or over each slice along ``batch_dim`` (kept for broadcasting)."""
    if batch_dim is None or grad.dim() == 0:
        return grad.abs().mean()
    dim = batch_dim % grad.dim()
    others = [d for d in range(grad.dim()) if d != dim]
    return grad.abs().mean(dim=others, keepdim=True) if others else grad.abs()


class NormalizedGradient(torch.optim.Optimizer):
    """The normalized-gradient step ``x -= lr * step_gain * g / (mean(|g|) + eps)``, with decoupled weight
    decay ``x *= 1 - lr * weight_decay``.

    The gradient is divided by its mean magnitude: over the whole tensor (``batch_dim=None``, meitorch's ``mei``
    optimizer), or over each image along ``batch_dim`` (meitorch's ``meibatch``), so that every image of a
    batch moves by the same mean amount whatever the size of its own gradient.

    Args:
        params (Iterable[Tensor]): tensors to optimize.
        lr (float, optional): mean absolute change per step, >= 0. Default: 0.01.
        step_gain (float, optional): a second factor of the step, >= 0 (meitorch's ``step_gain``; schedule it
            to shrink the steps over the run). Default: 1.
        weight_decay (float, optional): >= 0. Default: 0.
        eps (float, optional): added to the mean magnitude, > 0 (guards a zero gradient). Default: 1e-8.
        batch_dim (int, optional): the dimension of the images whose gradients are normalized one by one;
            None normalizes the whole tensor at once. Default: None.
    """

    step_factor = 1.0
    """The step's constant factor (meitorch's front end halves it, as meitorch does)."""

    def __init__(self, params: Iterable[Tensor], lr: float = 0.01, step_gain: float = 1.0,
                 weight_decay: float = 0.0, eps: float = 1e-8, batch_dim: int | None = None) -> None:
        defaults = {"lr": check_number("lr", lr, minimum=0),
                    "step_gain": check_number("step_gain", step_gain, minimum=0),
                    "weight_decay": check_number("weight_decay", weight_decay, minimum=0),
                    "eps": check_number("eps", eps, minimum=0, strict_minimum=True),
                    "batch_dim": None if batch_dim is None else check_int("batch_dim", batch_dim, -64, 63)}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> None:  # type: ignore[override]
        """One normalized-gradient step (``closure`` is not supported and must be None)."""
        if closure is not None:
            raise ValueError(f"{type(self).__name__}.step takes no closure")
        for group in self.param_groups:
            rate = group["lr"] * group["step_gain"] * self.step_factor
            for p in group["params"]:
                if p.grad is None:
                    continue
                if group["weight_decay"]:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                p.sub_(rate * p.grad / (_mean_magnitude(p.grad, group["batch_dim"]) + group["eps"]))


@component("optimizer")
def normalized_gradient(params: Iterable[Tensor], lr: float = 0.01, step_gain: float = 1.0, weight_decay: float = 0.0,
                        eps: float = 1e-8, batch_dim: int | None = None) -> NormalizedGradient:
    """The normalized-gradient optimizer ``x -= lr * step_gain * g / (mean(|g|) + eps)`` over ``params``
    (:class:`NormalizedGradient`; ``batch_dim`` normalizes each image along that dimension on its own)."""
    return NormalizedGradient(params, lr=lr, step_gain=step_gain, weight_decay=weight_decay, eps=eps,
                              batch_dim=batch_dim)


__all__ = ["NormalizedGradient", "normalized_gradient"]
