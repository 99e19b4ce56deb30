"""Regularizers: ``regularization(x, i_iter) -> scalar`` penalty on the transformed input.

The loop maximizes ``evaluation - reg_term``. Each penalty is computed per image and summed over the
images, so K images optimized together get exactly the gradients each would get alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ._component import Component, check_number


def per_image(x: Tensor) -> Tensor:
    """``x`` flattened to ``(images, -1)``."""
    return x.reshape(x.shape[0], -1)


class LpNorm(Component):
    """``weight * ||x||_p`` per image (or ``weight * sum |x|^p`` with ``power=True``).

    Args:
        p (float, optional): order, >= 1. Default: 2.
        weight (float, optional): Default: 1.
        power (bool, optional): penalize ``sum |x|^p`` instead of the norm. Default: False.
    """

    _repr_fields = ("p", "weight", "power")

    def __init__(self, p: float = 2.0, weight: float = 1.0, power: bool = False) -> None:
        self.p = check_number("p", p, minimum=1, maximum=100)
        self.weight = check_number("weight", weight, minimum=0)
        self.power = bool(power)

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        flat = per_image(x)
        if self.power:
            return self.weight * flat.abs().pow(self.p).sum()
        return self.weight * torch.linalg.vector_norm(flat, ord=self.p, dim=1).sum()


class L1Norm(LpNorm):
    """``weight * ||x||_1`` per image."""

    _repr_fields = ("weight",)

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__(p=1, weight=weight)


class L2Norm(LpNorm):
    """``weight * ||x||_2`` per image (``weight * ||x||^2`` with ``power=True``)."""

    _repr_fields = ("weight", "power")

    def __init__(self, weight: float = 1.0, power: bool = False) -> None:
        super().__init__(p=2, weight=weight, power=power)


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
        self.dims = [check_number("dims", d, integer=True) for d in dims]
        self.isotropic = bool(isotropic)
        if self.isotropic and len(self.dims) != 2:
            raise ValueError("isotropic total variation needs exactly two dims")

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        diffs = [torch.diff(x, dim=d) for d in self.dims]
        if self.isotropic:
            dy, dx = diffs
            dy, dx = dy[..., :, :-1], dx[..., :-1, :]
            return self.weight * torch.sqrt(dy**2 + dx**2 + 1e-8).sum()
        return self.weight * sum(d.abs().sum() for d in diffs)
