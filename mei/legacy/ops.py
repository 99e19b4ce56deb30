"""sinzlab/mei's legacy operations (``mei.legacy.ops.*``) as declared components.

Published lab configs name these paths, e.g. ``{"path": "mei.legacy.ops.GaussianBlur", "kwargs": {"sigma": 1}}``
as a preconditioner or ``mei.legacy.ops.ChangeNorm`` as postprocessing. Each is called ``op(x, i_iter)`` by the
engine (or ``op(x, iteration=i)`` by :func:`mei.legacy.core.gradient_ascent`) and computes what sinzlab/mei's op
of the same name computes, on this package's kernels (:mod:`mei.engine.kernels`) and seeded random streams
(:mod:`mei.engine.rng`). Deliberate differences (``TotalVariation`` differences neighbouring rows, random ops
draw from the run's seeded streams, ``combine_op`` is named by a string) are listed in docs/sinzlab.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..engine import rng
from ..engine.component import Component, check_bool, check_choice, check_number, check_numbers, component
from ..engine.kernels import gaussian_blur, gaussian_kernel1d, radial_frequency, rescale_norm, total_variation

_ELEMENTWISE = ("transform", "precondition", "postprocessing")


def _pair(name: str, value: Any, **checks: Any) -> tuple[float, float]:
    values = check_numbers(name, list(value) if isinstance(value, (list, tuple)) else [value, value],
                           min_length=2, max_length=2, **checks)
    return values[0], values[1]


def _per_image(values: Tensor, x: Tensor) -> Tensor:
    return values.view(-1, *([1] * (x.dim() - 1)))


def _decayed(value: float, decay_factor: float | None, iteration: int | None) -> float:
    """``value + decay_factor * (iteration - 1)`` (sinzlab's schedule; ``iteration`` counts from 1 there)."""
    if decay_factor is None:
        return value
    return value + decay_factor * ((iteration or 0) - 1)


class _Op(Component):
    """An op: ``op(x, iteration)`` with the iteration by position or as ``iteration=``."""

    def __call__(self, x: Tensor, iteration: int | None = None, **unused: Any) -> Tensor:
        return self.apply(x, iteration)

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        raise NotImplementedError


# ------------------------------------------------------------------------------------------------ regularizers

@component("regularization")
class TotalVariation(_Op):
    """``weight * mean over images of TV(x)`` (anisotropic: L1 of the neighbour differences; or isotropic).

    Args:
        weight (float, optional): Default: 1.
        isotropic (bool, optional): Default: False.
    """

    def __init__(self, weight: float = 1.0, isotropic: bool = False) -> None:
        self.weight = check_number("weight", weight)
        self.isotropic = check_bool("isotropic", isotropic)

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        return self.weight * total_variation(x, isotropic=self.isotropic).mean()


@component("regularization")
class LpNorm(_Op):
    """``weight * mean over images of ||x||_p``.

    Args:
        weight (float, optional): Default: 1.
        p (float, optional): Default: 6.
    """

    def __init__(self, weight: float = 1.0, p: float = 6) -> None:
        self.weight = check_number("weight", weight)
        self.p = check_number("p", p, minimum=0, strict_minimum=True)

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        norms = (x.abs() ** self.p).reshape(len(x), -1).sum(-1) ** (1 / self.p)
        return self.weight * norms.mean()


_COMBINE: dict[str, Callable[[Tensor], Tensor]] = {
    "max": torch.max, "min": torch.min, "mean": torch.mean, "sum": torch.sum,
}


@component("regularization")
class Similarity(_Op):
    """``weight * combine(pairwise similarities)`` of the images of a batch (0 for one image).

    Args:
        weight (float, optional): Default: 1.
        metric (str, optional): ``"correlation"``, ``"cosine"`` or ``"neg_euclidean"``. Default: ``"correlation"``.
        combine_op (str, optional): ``"max"``, ``"min"``, ``"mean"`` or ``"sum"`` (sinzlab/mei passes the torch
            function). Default: ``"max"``.
    """

    def __init__(self, weight: float = 1.0, metric: str = "correlation", combine_op: str = "max") -> None:
        self.weight = check_number("weight", weight)
        self.metric = check_choice("metric", metric, ("correlation", "cosine", "neg_euclidean"))
        self.combine_op = check_choice("combine_op", combine_op, tuple(_COMBINE))

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        if len(x) < 2:
            return x.new_zeros(())
        flat = x.reshape(len(x), -1)
        if self.metric == "correlation":
            flat = flat - flat.mean(-1, keepdim=True)
        if self.metric == "neg_euclidean":
            matrix = -torch.cdist(flat, flat)
        else:
            unit = flat / (torch.linalg.vector_norm(flat, dim=-1, keepdim=True) + 1e-9)
            matrix = unit @ unit.T
        upper = torch.triu(torch.ones(len(x), len(x), dtype=torch.bool, device=x.device), diagonal=1)
        return self.weight * _COMBINE[self.combine_op](matrix[upper])


@component("regularization")
class BoxContrast(_Op):
    """Penalise local contrast above ``box_constraint`` (sum of squares in a sliding box), plus an L1 term.

    ``weight * mean(relu(box_sum(x**2) - box_constraint) ** p) + l1_weight * mean over images of ||x||_1``.

    Args:
        weight (float, optional): Default: 0.1.
        filter_size (int, optional): box side in pixels. Default: 7.
        box_constraint (float, optional): largest allowed sum of squares in a box. Default: 10.
        p (float, optional): power of the excess. Default: 2.
        padding (int, optional): zero padding of the box filter. Default: 0.
        l1_weight (float, optional): Default: 1e-3.
    """

    def __init__(self, weight: float = 0.1, filter_size: int = 7, box_constraint: float = 10, p: float = 2,
                 padding: int = 0, l1_weight: float = 1e-3) -> None:
        self.weight = check_number("weight", weight)
        self.filter_size = check_number("filter_size", filter_size, minimum=1, integer=True)
        self.box_constraint = check_number("box_constraint", box_constraint)
        self.p = check_number("p", p, minimum=0, strict_minimum=True)
        self.padding = check_number("padding", padding, minimum=0, integer=True)
        self.l1_weight = check_number("l1_weight", l1_weight)

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        box = x.new_ones(1, 1, self.filter_size, self.filter_size)
        energy = F.conv2d((x**2).reshape(-1, 1, *x.shape[-2:]), box, padding=self.padding)
        box_loss = self.weight * torch.mean(torch.relu(energy - self.box_constraint) ** self.p)
        return box_loss + self.l1_weight * x.abs().reshape(len(x), -1).sum(-1).mean()


@component("regularization")
class Transparency(_Op):
    """``weight * mean opacity`` (the last channel of a transparent MEI): rewards transparency when subtracted."""

    def __init__(self, weight: float = 0.5) -> None:
        self.weight = check_number("weight", weight)

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        return self.weight * x[:, -1].mean()


@component("regularization")
class RegTransparency(_Op):
    """``weight * x``: the regularization of a transparent MEI, given its mean opacity (a scalar)."""

    def __init__(self, weight: float = 0.0) -> None:
        self.weight = check_number("weight", weight)

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        return self.weight * x


# ------------------------------------------------------------------------------------------------ transforms

@component("transform")
class Jitter(_Op):
    """Shift the batch by a random ``(dy, dx)`` up to ``max_jitter`` (reflection padding, size kept).

    Args:
        max_jitter (int | list[int]): largest shift, or ``[y, x]``.
    """

    def __init__(self, max_jitter: int | Sequence[int]) -> None:
        pair = _pair("max_jitter", max_jitter, minimum=0, integer=True)
        self.max_jitter = [int(pair[0]), int(pair[1])]

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        dy, dx = (int(rng.randint(-m, m + 1, 1)[0]) for m in self.max_jitter)
        h, w = x.shape[-2:]
        padded = F.pad(x, (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0)), mode="reflect")
        top, left = max(-dy, 0), max(-dx, 0)
        return padded[..., top:top + h, left:left + w]


@component("transform")
class RandomCrop(_Op):
    """A random ``height`` x ``width`` crop of the batch (the size changes, as in sinzlab/mei)."""

    def __init__(self, height: int, width: int) -> None:
        self.height = check_number("height", height, minimum=1, integer=True)
        self.width = check_number("width", width, minimum=1, integer=True)

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        top = int(rng.randint(0, max(0, x.shape[-2] - self.height) + 1, 1)[0])
        left = int(rng.randint(0, max(0, x.shape[-1] - self.width) + 1, 1)[0])
        return x[..., top:top + self.height, left:left + self.width]


@component("transform")
class BatchedCrops(_Op):
    """All ``height`` x ``width`` crops of one image every ``step_size`` pixels, as a batch (optionally
    multiplied by a Gaussian window of ``sigma``)."""

    def __init__(self, height: int, width: int, step_size: int | Sequence[int],
                 sigma: float | Sequence[float] | None = None) -> None:
        self.height = check_number("height", height, minimum=1, integer=True)
        self.width = check_number("width", width, minimum=1, integer=True)
        steps = _pair("step_size", step_size, minimum=1, integer=True)
        self.step_size = [int(steps[0]), int(steps[1])]
        self.sigma = None if sigma is None else list(_pair("sigma", sigma, minimum=0, strict_minimum=True))

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        if len(x) > 1:
            raise ValueError("BatchedCrops takes one image")
        if x.shape[-2] < self.height or x.shape[-1] < self.width:
            raise ValueError(f"the image {tuple(x.shape[-2:])} is smaller than the crop {self.height}x{self.width}")
        crops = torch.cat([x[..., i:i + self.height, j:j + self.width]
                           for i in range(0, x.shape[-2] - self.height + 1, self.step_size[0])
                           for j in range(0, x.shape[-1] - self.width + 1, self.step_size[1])])
        if self.sigma is None:
            return crops
        window_y = gaussian_kernel1d(self.sigma[0], size=self.height, dtype=x.dtype, device=x.device)
        window_x = gaussian_kernel1d(self.sigma[1], size=self.width, dtype=x.dtype, device=x.device)
        window = window_y[:, None] * window_x / (window_y.max() * window_x.max())  # peak 1, as scipy's window
        return crops * window


@component("transform")
class ChangeRange(_Op):
    """``sigmoid(x) * (x_max - x_min) + x_min``."""

    def __init__(self, x_min: float, x_max: float) -> None:
        self.x_min = check_number("x_min", x_min)
        self.x_max = check_number("x_max", x_max)

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        return torch.sigmoid(x) * (self.x_max - self.x_min) + self.x_min


@component("transform")
class Resize(_Op):
    """Resize by ``scale_factor`` (``round(scale_factor * size)``) with ``"nearest"`` or ``"bilinear"``."""

    def __init__(self, scale_factor: float, resize_method: str = "bilinear") -> None:
        self.scale_factor = check_number("scale_factor", scale_factor, minimum=0, strict_minimum=True)
        self.resize_method = check_choice("resize_method", resize_method, ("nearest", "bilinear"))

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        size = [int(round(s * self.scale_factor)) for s in x.shape[-2:]]
        return F.interpolate(x, size=size, mode=self.resize_method)


@component("transform")
class GrayscaleToRGB(_Op):
    """One channel copied into three."""

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"GrayscaleToRGB needs (N, 1, H, W) images, got {tuple(x.shape)}")
        return x.expand(-1, 3, -1, -1)


@component(*_ELEMENTWISE)
class Identity(_Op):
    """The input as it is."""

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        return x


# ------------------------------------------------------------------------------ gradient and post-update ops

@component(*_ELEMENTWISE)
class ChangeNorm(_Op):
    """Each image rescaled to L2 norm ``norm``."""

    def __init__(self, norm: float) -> None:
        self.norm = check_number("norm", norm, minimum=0)

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        return rescale_norm(x, self.norm)


@component(*_ELEMENTWISE)
class ClipRange(_Op):
    """``clamp(x, x_min, x_max)``."""

    def __init__(self, x_min: float, x_max: float) -> None:
        self.x_min = check_number("x_min", x_min)
        self.x_max = check_number("x_max", x_max)

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        return torch.clamp(x, self.x_min, self.x_max)


@component(*_ELEMENTWISE)
class FourierSmoothing(_Op):
    """Each spectral bin multiplied by ``(1 - sqrt(2) * |f|) ** freq_exp`` (``|f|`` in cycles/pixel)."""

    def __init__(self, freq_exp: float) -> None:
        self.freq_exp = check_number("freq_exp", freq_exp, minimum=0)

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        h, w = x.shape[-2:]
        radius = radial_frequency(h, w, onesided=True, dtype=x.dtype, device=x.device) * math.sqrt(2)
        gain = (1 - radius).clamp_min(0) ** self.freq_exp
        return torch.fft.irfft2(torch.fft.rfft2(x) * gain, s=(h, w))


@component(*_ELEMENTWISE)
class DivideByMeanOfAbsolute(_Op):
    """Each image divided by the mean of its absolute values."""

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        return x / _per_image(x.abs().reshape(len(x), -1).mean(-1), x)


@component(*_ELEMENTWISE)
class MultiplyBy(_Op):
    """``x * (const + decay_factor * (iteration - 1))`` (``decay_factor=None``: ``x * const``)."""

    def __init__(self, const: float, decay_factor: float | None = None) -> None:
        self.const = check_number("const", const)
        self.decay_factor = None if decay_factor is None else check_number("decay_factor", decay_factor)

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        return _decayed(self.const, self.decay_factor, iteration) * x


@component(*_ELEMENTWISE)
class GaussianBlur(_Op):
    """Gaussian blur of standard deviation ``sigma`` (or ``[sigma_y, sigma_x]``), optionally growing by
    ``decay_factor`` per iteration; the kernel is cut at ``truncate`` sigmas.

    Args:
        sigma (float | list[float]): in pixels.
        decay_factor (float, optional): sigma becomes ``sigma + decay_factor * (iteration - 1)``. Default: None.
        truncate (float, optional): Default: 4.
        pad_mode (str, optional): ``"reflect"``, ``"replicate"`` or ``"constant"``. Default: ``"reflect"``.
    """

    def __init__(self, sigma: float | Sequence[float], decay_factor: float | None = None, truncate: float = 4,
                 pad_mode: str = "reflect") -> None:
        self.sigma = list(_pair("sigma", sigma, minimum=0))
        self.decay_factor = None if decay_factor is None else check_number("decay_factor", decay_factor)
        self.truncate = check_number("truncate", truncate, minimum=0, strict_minimum=True)
        self.pad_mode = check_choice("pad_mode", pad_mode, ("reflect", "replicate", "constant"))

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        sigma_y, sigma_x = (_decayed(s, self.decay_factor, iteration) for s in self.sigma)
        y = gaussian_blur(x, sigma_y, dims=(-2,), size=self._taps(sigma_y), padding=self.pad_mode)
        return gaussian_blur(y, sigma_x, dims=(-1,), size=self._taps(sigma_x), padding=self.pad_mode)

    def _taps(self, sigma: float) -> int:
        return 2 * max(int(round(sigma * self.truncate)), 1) + 1  # sinzlab's kernel size


@component(*_ELEMENTWISE)
class ChangeStd(_Op):
    """Each image multiplied so that its standard deviation is ``std`` (not centred, as in sinzlab/mei)."""

    def __init__(self, std: float) -> None:
        self.std = check_number("std", std, minimum=0)

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        return x * _per_image(self.std / (x.reshape(len(x), -1).std(-1) + 1e-9), x)


__all__ = [
    "TotalVariation", "LpNorm", "Similarity", "BoxContrast", "Transparency", "RegTransparency", "Jitter",
    "RandomCrop", "BatchedCrops", "ChangeRange", "Resize", "GrayscaleToRGB", "Identity", "ChangeNorm", "ClipRange",
    "FourierSmoothing", "DivideByMeanOfAbsolute", "MultiplyBy", "GaussianBlur", "ChangeStd",
]
