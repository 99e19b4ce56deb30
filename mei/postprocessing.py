"""Postprocessing after each step, without gradient: ``postprocessing(x, i_iter) -> x``.

Statistics (norm, std) are per image, so a batch of K images is treated as K separate inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .engine.component import Component, check_number, component
from .engine.kernels import rescale_norm


def _per_image_stat(x: Tensor, stat: Tensor) -> Tensor:
    return stat.view(x.shape[0], *([1] * (x.dim() - 1)))


@component("postprocessing")
class ChangeNorm(Component):
    """Rescale each image to L2 norm ``norm``.

    Args:
        norm (float): target norm, > 0.
    """

    _repr_fields = ("norm",)

    def __init__(self, norm: float) -> None:
        self.norm = check_number("norm", norm, minimum=0, strict_minimum=True)

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        return rescale_norm(x, self.norm)


@component("postprocessing")
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


@component("postprocessing")
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


@component("postprocessing")
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


# ------------------------------------------------------------------------------------ any rank: videos as well

def channel_bounds(x_min: float | Sequence[float], x_max: float | Sequence[float]) -> tuple[list[float], list[float]]:
    """Checked per-channel ``(lows, highs)``; a single number is repeated to the other list's length."""
    lows = [x_min] if isinstance(x_min, (int, float)) else list(x_min)
    highs = [x_max] if isinstance(x_max, (int, float)) else list(x_max)
    if len(lows) == 1:
        lows = lows * len(highs)
    if len(highs) == 1:
        highs = highs * len(lows)
    if not lows or len(lows) != len(highs):
        raise ValueError(f"x_min and x_max need one value per channel, got {x_min!r} and {x_max!r}")
    lows = [check_number("x_min", low) for low in lows]
    return lows, [check_number("x_max", high, minimum=low) for high, low in zip(highs, lows, strict=True)]


@component("postprocessing")
class ClipRangePerChannel(Component):
    """Clip channel ``c`` (dimension 1) of every image into ``[x_min[c], x_max[c]]``.

    A single number applies to every channel. Videos ``(N, C, T, H, W)`` clip every frame of a channel alike.

    Args:
        x_min (float | list[float]): lower bound(s), one per channel.
        x_max (float | list[float]): upper bound(s), one per channel, each >= its lower bound.
    """

    _repr_fields = ("x_min", "x_max")

    def __init__(self, x_min: float | Sequence[float], x_max: float | Sequence[float]) -> None:
        self.x_min, self.x_max = channel_bounds(x_min, x_max)
        self._bounds: dict[tuple, tuple[Tensor, Tensor]] = {}

    def bounds(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(low, high)`` shaped to broadcast over ``x``; made once per rank, dtype and device (no copy to
        the device at every step)."""
        key = (x.dim(), x.dtype, x.device)
        if key not in self._bounds:
            view = (1, -1) + (1,) * (x.dim() - 2)
            low, high = (torch.tensor(v, dtype=x.dtype, device=x.device).view(view) for v in (self.x_min, self.x_max))
            self._bounds[key] = (low, high)
        return self._bounds[key]

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        n = len(self.x_min)
        if n > 1 and x.shape[1] != n:
            raise ValueError(f"{n} channel ranges given for an input with {x.shape[1]} channels")
        low, high = self.bounds(x)
        return torch.maximum(torch.minimum(x, high), low)


@component("postprocessing")
class ChangeNormAndClipPerChannel(Component):
    """Rescale each image (all channels and frames jointly) to L2 norm ``norm``, then clip per channel.

    Args:
        norm (float): target norm, > 0.
        x_min (float | list[float]): lower bound(s), one per channel.
        x_max (float | list[float]): upper bound(s), one per channel.
    """

    _repr_fields = ("norm", "x_min", "x_max")

    def __init__(self, norm: float, x_min: float | Sequence[float], x_max: float | Sequence[float]) -> None:
        self._norm, self._clip = ChangeNorm(norm), ClipRangePerChannel(x_min, x_max)
        self.norm, self.x_min, self.x_max = self._norm.norm, self._clip.x_min, self._clip.x_max

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        return self._clip(self._norm(x, i_iter), i_iter)


# Postprocessors share the ``(x, i_iter) -> x`` signature of transforms, so one Compose chains either kind:
# {"path": "mei.postprocessing.Compose", "kwargs": {"transforms": [spec, spec]}}.
from .transforms import Compose as Compose  # noqa: E402 - re-exported: the path is a component
