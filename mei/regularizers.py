"""Regularizers: ``regularization(x, i_iter) -> scalar`` penalty on the transformed input.

The loop maximizes ``evaluation - reg_term``. Each penalty is computed per image and summed over the
images, so K images optimized together get exactly the gradients each would get alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .engine.component import Component, check_dim, check_number, component
from .engine.errors import HyperparameterError
from .engine.kernels import total_variation


def per_image(x: Tensor) -> Tensor:
    """``x`` flattened to ``(images, -1)``."""
    return x.reshape(x.shape[0], -1)


@component("regularization")
class LpNorm(Component):
    """``weight * ||x||_p`` per image (or ``weight * sum |x|^p`` with ``power=True``).

    Args:
        p (float, optional): order, >= 1. Default: 2.
        weight (float, optional): Default: 1.
        power (bool, optional): penalize ``sum |x|^p`` instead of the norm. Default: False.
    """

    _repr_fields: tuple[str, ...] = ("p", "weight", "power")

    def __init__(self, p: float = 2.0, weight: float = 1.0, power: bool = False) -> None:
        self.p = check_number("p", p, minimum=1, maximum=100)
        self.weight = check_number("weight", weight, minimum=0)
        self.power = bool(power)

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        flat = per_image(x)
        if self.power:
            return self.weight * flat.abs().pow(self.p).sum()
        return self.weight * torch.linalg.vector_norm(flat, ord=self.p, dim=1).sum()


@component("regularization")
class L1Norm(LpNorm):
    """``weight * ||x||_1`` per image."""

    _repr_fields = ("weight",)

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__(p=1, weight=weight)


@component("regularization")
class L2Norm(LpNorm):
    """``weight * ||x||_2`` per image (``weight * ||x||^2`` with ``power=True``)."""

    _repr_fields = ("weight", "power")

    def __init__(self, weight: float = 1.0, power: bool = False) -> None:
        super().__init__(p=2, weight=weight, power=power)


@component("regularization")
class TotalVariation(Component):
    """``weight * sum |x[i+1] - x[i]|`` along each of ``dims`` (anisotropic TV), summed over images.

    With ``isotropic=True`` (two dims only) ``sum sqrt(dy^2 + dx^2 + eps)`` instead.

    Args:
        weight (float, optional): Default: 1.
        dims (list[int], optional): dimensions to difference. Default: ``[-2, -1]``.
        isotropic (bool, optional): Default: False.
    """

    _repr_fields = ("weight", "dims", "isotropic")

    def __init__(self, weight: float = 1.0, dims: Sequence[int] = (-2, -1), isotropic: bool = False) -> None:
        self.weight = check_number("weight", weight, minimum=0)
        self.dims = [check_dim("dims", d) for d in dims]
        self.isotropic = bool(isotropic)
        if self.isotropic and len(self.dims) != 2:
            raise HyperparameterError("dims", f"must be exactly two dims for isotropic total variation, got {dims!r}")

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        return self.weight * total_variation(x, self.dims, isotropic=self.isotropic, eps=1e-8, per_image=False)


# ------------------------------------------------------------------------------------ any rank: videos as well

@component("regularization")
class RangePenalty(Component):
    """``weight * sum(relu(x - x_max)^p + relu(x_min - x)^p)``: only values outside ``[x_min, x_max]`` cost.

    Args:
        x_min (float): lower end of the free range.
        x_max (float): upper end, >= x_min.
        weight (float, optional): Default: 1.
        p (float, optional): power of the excess, >= 1. Default: 2.
    """

    _repr_fields = ("x_min", "x_max", "weight", "p")

    def __init__(self, x_min: float, x_max: float, weight: float = 1.0, p: float = 2.0) -> None:
        self.x_min = check_number("x_min", x_min)
        self.x_max = check_number("x_max", x_max, minimum=self.x_min)
        self.weight = check_number("weight", weight, minimum=0)
        self.p = check_number("p", p, minimum=1, maximum=100)

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        excess = torch.relu(x - self.x_max) + torch.relu(self.x_min - x)
        return self.weight * excess.pow(self.p).sum()


@component("regularization")
class TemporalSmoothness(Component):
    """``weight * sum(d^2)`` of the ``order``-th difference ``d`` along the time dimension.

    Order 1 penalizes change from frame to frame, order 2 penalizes changes of that change (curvature).

    Args:
        weight (float, optional): Default: 1.
        dim (int, optional): the time dimension. Default: 2 (``(N, C, T, H, W)``).
        order (int, optional): 1 or 2. Default: 1.
    """

    time_dim_field = "dim"  # the input must have a time dimension there (checked before a run)
    _repr_fields = ("weight", "dim", "order")

    def __init__(self, weight: float = 1.0, dim: int = 2, order: int = 1) -> None:
        self.weight = check_number("weight", weight, minimum=0)
        self.dim = check_dim("dim", dim)
        self.order = check_number("order", order, minimum=1, maximum=2, integer=True)

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        if x.shape[self.dim] <= self.order:
            return x.sum() * 0.0
        return self.weight * torch.diff(x, n=self.order, dim=self.dim).pow(2).sum()


@component("regularization")
class Sum(Component):
    """The sum of several regularizers, each given as a component spec (e.g. total variation + smoothness).

    Args:
        regularizers (list[dict]): ``[{"path": ..., "kwargs": {...}}, ...]``, resolved like any component.
    """

    _repr_fields = ("regularizers",)
    _arguments_as_given = ("regularizers",)

    def __init__(self, regularizers: Sequence[Mapping[str, Any]]) -> None:
        from .engine.resolve import build_component

        if not isinstance(regularizers, (list, tuple)) or not regularizers:
            raise HyperparameterError("regularizers",
                                      f"must be a non-empty list of component specs, got {regularizers!r}")
        self.regularizers = [build_component(spec, f"regularizers[{i}]") for i, spec in enumerate(regularizers)]

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        return sum(regularizer(x, i_iter) for regularizer in self.regularizers)
