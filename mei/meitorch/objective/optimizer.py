"""meitorch's optimizers at its path (``meitorch.objective.optimizer``): :func:`get_optimizer`, ``MEIoptimizer`` and
``MEIBatchoptimizer``, built with meitorch's arguments, on the package's
:class:`~mei.optimizers.NormalizedGradient` (:class:`~mei.meitorch.optimizers.MEIOptimizer`, meitorch's halved
step).

``MEIoptimizer(params, {"lr": 0.1, "iter_n": 100, "step_gain": LinearSchedule(1.0, 0.1)})``: the step gain is a
number or a schedule (bound to ``iter_n``), applied before each ``step()`` by the engine's step pre-hook.
``MEIBatchoptimizer`` normalizes each image of a batch ``(N, C, H, W)`` (dimension 0) on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor

from ...engine.schedule import Schedule as EngineSchedule
from ...engine.schedule import schedule_optimizer
from ..optimizers import MEIOptimizer
from ..tools.schedules import Schedule

_KEYS = ("lr", "iter_n", "step_gain", "eps", "weight_decay")


class MEIoptimizer(MEIOptimizer):
    """meitorch's ``MEIoptimizer(params, defaults)``: ``x -= lr * step_gain / 2 * g / (mean(|g|) + eps)``.

    Args:
        params (Iterable[Tensor]): tensors to optimize.
        defaults (dict): ``lr`` and ``iter_n`` (required, as in meitorch), ``step_gain`` (a number or a schedule,
            default 1), ``eps`` (default 1e-8), ``weight_decay`` (default 0; this package's addition).

    Raises:
        ValueError: ``lr`` or ``iter_n`` missing, or a key meitorch's optimizer does not read.
    """

    per_image = False

    def __init__(self, params: Iterable[Tensor], defaults: Mapping[str, Any]) -> None:
        for required in ("lr", "iter_n"):
            if required not in defaults:
                raise ValueError(f"{required} must be specified")
        unknown = sorted(set(defaults) - set(_KEYS))
        if unknown:
            raise ValueError(f"unknown optimizer argument(s) {unknown}; known: {list(_KEYS)}")
        self.iter_n = int(defaults["iter_n"])
        gain = defaults.get("step_gain", 1.0)
        if isinstance(gain, Schedule):
            gain = gain.bind(self.iter_n)
        schedule = gain if isinstance(gain, EngineSchedule) else None
        super().__init__(params, lr=defaults["lr"], step_gain=schedule(0) if schedule else gain,
                         weight_decay=defaults.get("weight_decay", 0.0), eps=defaults.get("eps", 1e-8),
                         batch_dim=0 if self.per_image else None)
        if schedule is not None:
            schedule_optimizer(self, {"step_gain": schedule})


class MEIBatchoptimizer(MEIoptimizer):
    """meitorch's ``MEIBatchoptimizer``: :class:`MEIoptimizer` with each image of the batch (dimension 0)
    normalized by its own gradient's mean magnitude."""

    per_image = True


def get_optimizer(params: Iterable[Tensor], optimizer_type: str = "adam", iter_n: int | None = None,
                  **kwargs: Any) -> torch.optim.Optimizer:
    """meitorch's ``get_optimizer``: torch's ``adam``, ``sgd``, ``rmsprop`` with ``kwargs``, or ``mei`` /
    ``meibatch`` (which need ``iter_n``).

    Raises:
        ValueError: another ``optimizer_type``, or ``mei`` / ``meibatch`` without ``iter_n``.
    """
    torch_optimizers = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop}
    if optimizer_type in torch_optimizers:
        return torch_optimizers[optimizer_type](params, **kwargs)
    if optimizer_type in ("mei", "meibatch"):
        if iter_n is None:
            raise ValueError("iter_n must be specified")
        cls = MEIoptimizer if optimizer_type == "mei" else MEIBatchoptimizer
        return cls(params, {**kwargs, "iter_n": iter_n})
    raise ValueError(f"Invalid optimizer type {optimizer_type!r} (must be 'adam', 'sgd', 'rmsprop', 'mei' or "
                     "'meibatch')")


__all__ = ["get_optimizer", "MEIoptimizer", "MEIBatchoptimizer"]
