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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..engine import rng
from ..engine.component import Component, check_bool, check_choice, check_number, check_numbers, component
from ..engine.errors import HyperparameterError
from ..engine.kernels import (
    LAPLACE_KERNELS,
    gaussian_blur,
    gaussian_kernel1d,
    laplace_filter,
    radial_frequency,
    rescale_norm,
    total_variation,
)
from ..engine.resolve import resolve

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
class BoxContrastPixelL2(_Op):
    """Penalise pixels outside ``[lower, upper]``, plus a Laplace smoothness term and an L1 term.

    ``weight * sum(relu(x - upper) ** p + relu(lower - x) ** p)`` (over the whole batch)
    ``+ l2_weight * mean(laplace(x) ** 2) / 2`` (neuralpredictors' ``LaplaceL2`` with ``avg=True``: every plane
    filtered with the ``filter_size`` Laplace filter, zero padded) ``+ l1_weight * mean over images of ||x||_1``.

    Args:
        weight (float, optional): Default: 0.1.
        upper, lower (float, optional): the allowed pixel range. Default: 2.0, -1.5.
        p (float, optional): power of the excess. Default: 2.
        l2_weight (float, optional): weight of the Laplace term. Default: 1.
        l1_weight (float, optional): Default: 0.
        filter_size (int, optional): 3, 5 or 7. Default: 3.
    """

    def __init__(self, weight: float = 0.1, upper: float = 2.0, lower: float = -1.5, p: float = 2,
                 l2_weight: float = 1, l1_weight: float = 0, filter_size: int = 3) -> None:
        self.weight = check_number("weight", weight)
        self.upper = check_number("upper", upper)
        self.lower = check_number("lower", lower, maximum=self.upper)
        self.p = check_number("p", p, minimum=0, strict_minimum=True)
        self.l2_weight = check_number("l2_weight", l2_weight)
        self.l1_weight = check_number("l1_weight", l1_weight)
        self.filter_size = check_choice("filter_size", filter_size, tuple(LAPLACE_KERNELS))

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        outside = torch.relu(x - self.upper) ** self.p + torch.relu(self.lower - x) ** self.p
        smoothness = laplace_filter(x, self.filter_size).pow(2).mean() / 2
        l1 = x.abs().reshape(len(x), -1).sum(-1).mean()
        return self.weight * outside.sum() + self.l2_weight * smoothness + self.l1_weight * l1


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
        mei_only (bool, optional): leave the last channel (a transparent MEI's opacity) unblurred.
            Default: False.
    """

    def __init__(self, sigma: float | Sequence[float], decay_factor: float | None = None, truncate: float = 4,
                 pad_mode: str = "reflect", mei_only: bool = False) -> None:
        self.sigma = list(_pair("sigma", sigma, minimum=0))
        self.decay_factor = None if decay_factor is None else check_number("decay_factor", decay_factor)
        self.truncate = check_number("truncate", truncate, minimum=0, strict_minimum=True)
        self.pad_mode = check_choice("pad_mode", pad_mode, ("reflect", "replicate", "constant"))
        self.mei_only = check_bool("mei_only", mei_only)

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        if self.mei_only:
            return torch.cat((self.blur(x[:, :-1], iteration), x[:, -1:]), dim=1)
        return self.blur(x, iteration)

    def blur(self, x: Tensor, iteration: int | None) -> Tensor:
        """``x`` blurred with this step's sigma."""
        sigma_y, sigma_x = (_decayed(s, self.decay_factor, iteration) for s in self.sigma)
        y = gaussian_blur(x, sigma_y, dims=(-2,), size=self._taps(sigma_y), padding=self.pad_mode)
        return gaussian_blur(y, sigma_x, dims=(-1,), size=self._taps(sigma_x), padding=self.pad_mode)

    def _taps(self, sigma: float) -> int:
        return 2 * max(int(round(sigma * self.truncate)), 1) + 1  # sinzlab's kernel size


# ------------------------------------------------------------------- ring, centre and surround MEIs (masked blur)

MEISource = Callable[[dict[str, Any]], Any]
_mei_sources: list[MEISource] = []


def set_mei_source(source: MEISource | None) -> None:
    """Where the ring / centre / surround ops read earlier MEIs: ``source(restriction)`` returns the MEI tensor
    (or the path of a ``torch.save`` file of it, as fetching an ``<attach@store>`` column gives) of the one MEI
    matching ``restriction`` (``method_fn``, ``ensemble_hash``, ``method_hash``, ``unit_id``), e.g.
    ``lambda r: (MyMEI & r).fetch1("mei")``. ``None`` removes it."""
    _mei_sources.clear()
    if source is not None:
        if not callable(source):
            raise TypeError(f"the MEI source must be callable, got {type(source).__name__}")
        _mei_sources.append(source)


def opacity_of(mei: Any) -> Tensor:
    """The opacity (last channel) of the first image of a transparent MEI: a tensor, or a ``torch.save`` file."""
    if isinstance(mei, (str, bytes)) or hasattr(mei, "__fspath__"):
        mei = torch.load(mei, map_location="cpu", weights_only=True)
    mei = torch.as_tensor(mei, dtype=torch.float32)
    if mei.dim() != 4 or mei.shape[1] < 2:
        raise ValueError(f"a transparent MEI is (images, channels + opacity, height, width), got {tuple(mei.shape)}")
    return mei[0, -1]


class _MaskedBlur(GaussianBlur):
    """A Gaussian blur whose result is multiplied by a 0/1 mask made from earlier transparent MEIs' opacity."""

    which: tuple[str, ...] = ()

    def __init__(self, sigma: float | Sequence[float], key: Mapping[str, Any] | None = None,
                 decay_factor: float | None = None, truncate: float = 4, threshold: float = 0.3,
                 pad_mode: str = "reflect", meis: Mapping[str, Any] | None = None) -> None:
        super().__init__(sigma, decay_factor=decay_factor, truncate=truncate, pad_mode=pad_mode)
        if key is not None and not isinstance(key, Mapping):
            raise HyperparameterError("key", f"must be a dict (the MEI table's key) or None, got {key!r}")
        self.key = None if key is None else dict(key)
        self.threshold = check_number("threshold", threshold)
        self._meis = dict(meis or {})
        self._mask: Tensor | None = None

    def _mei(self, which: str) -> Tensor:
        if which in self._meis:
            return opacity_of(self._meis[which])
        if self.key is None:
            raise ValueError(f"{type(self).__name__} needs the MEI table's key (its 'key' kwarg, filled in by "
                             "MEIMethodMixin.generate_mei) or the earlier MEIs themselves")
        if not _mei_sources:
            raise ValueError(f"{type(self).__name__} reads earlier MEIs: register where with "
                             "mei.legacy.ops.set_mei_source(...)")
        restriction = {"method_fn": self.key["src_method_fn"], "ensemble_hash": self.key[f"{which}_ensemble_hash"],
                       "method_hash": self.key[f"{which}_method_hash"], "unit_id": self.key["unit_id"]}
        return opacity_of(_mei_sources[0](restriction))

    def mask(self) -> Tensor:
        """The 0/1 mask (height x width), made on first use."""
        if self._mask is None:
            self._mask = self.make_mask(*(self._mei(which) for which in self.which))
        return self._mask

    def make_mask(self, *opacities: Tensor) -> Tensor:
        raise NotImplementedError

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        return self.blur(x, iteration) * self.mask().to(device=x.device, dtype=x.dtype)


@component(*_ELEMENTWISE)
class GaussianBlurforRing(_MaskedBlur):
    """Gaussian blur kept only on the ring where the outer MEI is more opaque than the inner one by more than
    ``mask_thres_for_ring``: ``blur(x) * (opacity(outer) - opacity(inner) > mask_thres_for_ring)``.

    Args:
        sigma, decay_factor, truncate, pad_mode: as :class:`GaussianBlur`.
        key (dict): the MEI table's key with ``src_method_fn``, ``inner_ensemble_hash``, ``outer_ensemble_hash``,
            ``inner_method_hash``, ``outer_method_hash`` and ``unit_id``; the two MEIs are read through
            :func:`set_mei_source` on first use.
        mask_thres_for_ring (float, optional): Default: 0.3.
        meis (dict, optional): ``{"inner": mei, "outer": mei}`` (tensors or files) instead of ``key``.
    """

    which = ("inner", "outer")

    def __init__(self, sigma: float | Sequence[float], key: Mapping[str, Any] | None = None,
                 decay_factor: float | None = None, truncate: float = 4, mask_thres_for_ring: float = 0.3,
                 pad_mode: str = "reflect", meis: Mapping[str, Any] | None = None) -> None:
        super().__init__(sigma, key, decay_factor, truncate, mask_thres_for_ring, pad_mode, meis)

    def make_mask(self, *opacities: Tensor) -> Tensor:
        inner, outer = opacities
        return (outer - inner > self.threshold).float()


@component(*_ELEMENTWISE)
class GaussianBlurforCenter(_MaskedBlur):
    """Gaussian blur kept only where the inner MEI is more opaque than ``mask_thres``:
    ``blur(x) * (opacity(inner) > mask_thres)``.

    Args:
        sigma, decay_factor, truncate, pad_mode: as :class:`GaussianBlur`.
        key (dict): the MEI table's key with ``src_method_fn``, ``inner_ensemble_hash``, ``inner_method_hash``
            and ``unit_id``; the inner MEI is read through :func:`set_mei_source` on first use.
        mask_thres (float, optional): Default: 0.3.
        meis (dict, optional): ``{"inner": mei}`` (a tensor or file) instead of ``key``.
    """

    which = ("inner",)

    def __init__(self, sigma: float | Sequence[float], key: Mapping[str, Any] | None = None,
                 decay_factor: float | None = None, truncate: float = 4, mask_thres: float = 0.3,
                 pad_mode: str = "reflect", meis: Mapping[str, Any] | None = None) -> None:
        super().__init__(sigma, key, decay_factor, truncate, mask_thres, pad_mode, meis)

    def make_mask(self, *opacities: Tensor) -> Tensor:
        return (opacities[0] > self.threshold).float()


@component(*_ELEMENTWISE)
class GaussianBlurforSurround(GaussianBlurforCenter):
    """Gaussian blur kept only outside the inner MEI's centre: ``blur(x) * (1 - (opacity(inner) > mask_thres))``.

    Arguments as :class:`GaussianBlurforCenter`.
    """

    def make_mask(self, *opacities: Tensor) -> Tensor:
        return 1.0 - super().make_mask(*opacities)


# ------------------------------------------------------------------------- backgrounds of transparent MEIs

def _background_shape(shape: Any) -> tuple[int, int]:
    height, width = _pair("shape", shape, minimum=1, integer=True)
    return int(height), int(width)


@component("background")
class WhiteNoiseBackground(_Op):
    """A new white-noise image each step: ``N(mean, std)`` of ``shape``, scaled so that its largest absolute
    pixel is ``2.12 * strength``.

    Args:
        mean, std (float): of the noise before the scaling.
        shape (list[int], optional): ``[height, width]``. Default: ``[72, 128]``.
        strength (float, optional): Default: 1.
    """

    def __init__(self, mean: float, std: float, shape: Sequence[int] = (72, 128), strength: float = 1) -> None:
        self.mean = check_number("mean", mean)
        self.std = check_number("std", std, minimum=0, strict_minimum=True)
        self.shape = list(_background_shape(shape))
        self.strength = check_number("strength", strength)

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        noise = self.mean + self.std * rng.randn((1, *self.shape))[0]
        return noise * (2.12 * self.strength / noise.abs().max().clamp_min(1e-12))


def dataset_images(dataset_fn: str, dataset_path: Any, dataset_name: str) -> Tensor:
    """Every image of one session of a dataset, ``(n, height, width)``: the dataset function (an allowed
    ``dataset`` builder, named by dotted path) is called with sinzlab/mei's background dataset config
    (``paths=dataset_path``, normalized, no behaviour, batch size 128, ...) and the first element of every
    batch of ``dataloaders[tier][dataset_name]`` for the tiers ``train``, ``test``, ``validation`` is kept."""
    build = resolve(dataset_fn, "dataset_fn", kinds=("dataset",))
    dataloaders = build(paths=dataset_path, normalize=True, include_behavior=False, batch_size=128, exclude=None,
                        file_tree=True, scale=1)
    images = [torch.as_tensor(batch[0]).detach().float().cpu() for tier in ("train", "test", "validation")
              if tier in dataloaders for batch in dataloaders[tier][dataset_name]]
    if not images:
        raise ValueError(f"dataset {dataset_name!r} of {dataset_fn} has no images")
    return torch.cat([image.reshape(-1, *image.shape[-2:]) for image in images])


@component("background")
class NatImgBackground(_Op):
    """A random natural image of a dataset each step (drawn from the run's seeded streams), rescaled to L2 norm
    ``norm`` and clipped to ``[-1.96, 2.12]`` if ``norm`` is given.

    Args:
        dataset_fn (str): an allowed dataset builder (dotted path), called as in :func:`dataset_images`.
        dataset_path: its ``paths``.
        norm (float, optional): Default: None (the image as it is).
        dataset_name (str, optional): the session. Default: ``"22564-3-12"``.
        images (Tensor | list, optional): ``(n, height, width)`` images instead of a dataset.
    """

    def __init__(self, dataset_fn: str | None = None, dataset_path: Any = None, norm: float | None = None,
                 dataset_name: str = "22564-3-12", images: Any = None) -> None:
        self.dataset_fn, self.dataset_path, self.dataset_name = dataset_fn, dataset_path, dataset_name
        self.norm = None if norm is None else check_number("norm", norm, minimum=0, strict_minimum=True)
        self._images = None if images is None else torch.as_tensor(images, dtype=torch.float32)
        if self._images is not None and (self._images.dim() != 3 or len(self._images) == 0):
            raise HyperparameterError("images", f"must be (n, height, width), got {tuple(self._images.shape)}")

    @property
    def images(self) -> Tensor:
        """The images drawn from (loaded from the dataset on first use)."""
        if self._images is None:
            if self.dataset_fn is None:
                raise ValueError(f"{type(self).__name__} needs a dataset function (dataset_fn) or images")
            self._images = dataset_images(str(self.dataset_fn), self.dataset_path, self.dataset_name)
        return self._images

    def draw(self) -> Tensor:
        """One image, drawn from the run's seeded streams."""
        images = self.images
        return images[int(rng.randint(0, len(images), 1)[0])]

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        image = self.draw()
        if self.norm is None:
            return image
        return rescale_norm(image[None], self.norm)[0].clamp(-1.96, 2.12)


@component("background")
class NatImgBackgroundHighNorm(NatImgBackground):
    """A random natural image each step, rescaled to an L2 norm that grows linearly from ``start_norm``
    (step 0) by ``(end_norm - start_norm) / 1000`` per step (``end_norm`` at step 1000).

    Args:
        dataset_fn, dataset_path, dataset_name, images: as :class:`NatImgBackground`.
        start_norm, end_norm (float): the norms at steps 0 and 1000.
    """

    def __init__(self, dataset_fn: str | None = None, dataset_path: Any = None, start_norm: float = 1.0,
                 end_norm: float = 1.0, dataset_name: str = "22564-3-12", images: Any = None) -> None:
        super().__init__(dataset_fn, dataset_path, None, dataset_name, images)
        self.start_norm = check_number("start_norm", start_norm, minimum=0)
        self.end_norm = check_number("end_norm", end_norm, minimum=0)

    def apply(self, x: Tensor, iteration: int | None) -> Tensor:
        norm = self.start_norm + (iteration or 0) * (self.end_norm - self.start_norm) / 1000.0
        return rescale_norm(self.draw()[None], norm)[0]


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
    "FourierSmoothing", "DivideByMeanOfAbsolute", "MultiplyBy", "GaussianBlur", "ChangeStd", "BoxContrastPixelL2",
    "GaussianBlurforRing", "GaussianBlurforCenter", "GaussianBlurforSurround", "WhiteNoiseBackground",
    "NatImgBackground", "NatImgBackgroundHighNorm", "set_mei_source", "opacity_of", "dataset_images",
]
