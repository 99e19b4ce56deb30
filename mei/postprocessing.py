"""Postprocessing after each step, without gradient: ``postprocessing(x, i_iter) -> x``.

Statistics (norm, std) are per image, so a batch of K images is treated as K separate inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._component import Component, check_number


def _per_image_stat(x: Tensor, stat: Tensor) -> Tensor:
    return stat.view(x.shape[0], *([1] * (x.dim() - 1)))


class ChangeNorm(Component):
    """Rescale each image to L2 norm ``norm``.

    Args:
        norm (float): target norm, > 0.
    """

    _repr_fields = ("norm",)

    def __init__(self, norm: float) -> None:
        self.norm = check_number("norm", norm, minimum=0, strict_minimum=True)

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        norms = torch.linalg.vector_norm(x.reshape(x.shape[0], -1), dim=1).clamp_min(1e-12)
        return x * (self.norm / _per_image_stat(x, norms))


class ClipRange(Component):
    """Clip every value into ``[x_min, x_max]``.

    Args:
        x_min (float): lower bound.
        x_max (float): upper bound, >= x_min.
    """

    _repr_fields = ("x_min", "x_max")

    def __init__(self, x_min: float, x_max: float) -> None:
        self.x_min = check_number("x_min", x_min)
        self.x_max = check_number("x_max", x_max, minimum=self.x_min)

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        return x.clamp(self.x_min, self.x_max)


class ChangeStd(Component):
    """Rescale each image to standard deviation ``std`` (the mean is kept).

    Args:
        std (float): target standard deviation, > 0.
    """

    _repr_fields = ("std",)

    def __init__(self, std: float) -> None:
        self.std = check_number("std", std, minimum=0, strict_minimum=True)

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        flat = x.reshape(x.shape[0], -1)
        mean = _per_image_stat(x, flat.mean(dim=1))
        std = _per_image_stat(x, flat.std(dim=1).clamp_min(1e-12))
        return (x - mean) * (self.std / std) + mean


class ChangeNormAndClip(Component):
    """Rescale each image to L2 norm ``norm``, then clip into ``[x_min, x_max]``.

    Args:
        norm (float): target norm, > 0.
        x_min (float): lower bound.
        x_max (float): upper bound.
    """

    _repr_fields = ("norm", "x_min", "x_max")

    def __init__(self, norm: float, x_min: float, x_max: float) -> None:
        self._norm, self._clip = ChangeNorm(norm), ClipRange(x_min, x_max)
        self.norm, self.x_min, self.x_max = norm, x_min, x_max

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        return self._clip(self._norm(x, i_iter), i_iter)
