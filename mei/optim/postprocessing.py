"""Yosinski et al. (2015) regularizers as engine postprocessing, ``(x, i_iter) -> x`` after every step.

* :class:`L2Decay` shrinks the image: ``x * (1 - theta_decay)``.
* :class:`PeriodicBlur` blurs it with a Gaussian of ``width`` pixels every ``every`` steps.
* :class:`NormCrop` zeroes the pixels whose norm across channels is below the ``percentile``-th percentile.
* :class:`ContributionCrop` zeroes the pixels whose contribution ``|sum_c x * grad|`` is below the
  percentile. The engine hands postprocessing only the image, so the gradient is read off the step itself:
  ``x_after - x_before`` is ``lr * grad`` for plain gradient ascent (the optimizer's direction otherwise), and
  a constant factor does not move a percentile. The component remembers the image it returned last
  (:meth:`ContributionCrop.start` sets the first one; without it step 0 is left alone).
* :class:`YosinskiRegularization` applies all four in that order, the contribution measured on the raw step.

Percentiles are taken per image, so a batch of K images is K separate runs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..engine.component import Component, check_number, component
from ..engine.kernels import gaussian_blur


def _zero_below_percentile(x: Tensor, score: Tensor, percentile: float) -> Tensor:
    """Zero every pixel (all channels) of each image whose ``score`` (N, H, W) is below its percentile."""
    if percentile <= 0:
        return x
    flat = score.reshape(score.shape[0], -1)
    threshold = torch.quantile(flat.float(), percentile / 100.0, dim=1).to(flat.dtype)
    keep = (flat >= threshold[:, None]).reshape(score.shape).unsqueeze(1)
    return x * keep.to(x.dtype)


@component("postprocessing")
class L2Decay(Component):
    """``x * (1 - theta_decay)`` every step.

    Args:
        theta_decay (float, optional): fraction removed per step, in [0, 1]. Default: 0.1.
    """

    _repr_fields = ("theta_decay",)

    def __init__(self, theta_decay: float = 0.1) -> None:
        self.theta_decay = check_number("theta_decay", theta_decay, minimum=0, maximum=1)

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        return x * (1.0 - self.theta_decay)


@component("postprocessing")
class PeriodicBlur(Component):
    """Gaussian blur of ``width`` pixels (standard deviation) after steps ``every - 1``, ``2 every - 1``, ...

    Args:
        every (int, optional): steps between blurs. Default: 4.
        width (float, optional): standard deviation in pixels. Default: 1.
    """

    _repr_fields = ("every", "width")

    def __init__(self, every: int = 4, width: float = 1.0) -> None:
        self.every = check_number("every", every, minimum=1, maximum=10**9, integer=True)
        self.width = check_number("width", width, minimum=0, maximum=1000)

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        return gaussian_blur(x, self.width) if (i_iter + 1) % self.every == 0 else x


@component("postprocessing")
class NormCrop(Component):
    """Zero the pixels whose L2 norm across channels is below the ``percentile``-th percentile of the image.

    Args:
        percentile (float, optional): in [0, 100]. Default: 30.
    """

    _repr_fields = ("percentile",)

    def __init__(self, percentile: float = 30.0) -> None:
        self.percentile = check_number("percentile", percentile, minimum=0, maximum=100)

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        return _zero_below_percentile(x, torch.linalg.vector_norm(x, dim=1), self.percentile)


@component("postprocessing")
class ContributionCrop(Component):
    """Zero the pixels whose contribution ``|sum_c x_before * (x - x_before)|`` is below the percentile.

    Args:
        percentile (float, optional): in [0, 100]. Default: 30.
    """

    _repr_fields = ("percentile",)
    _state_attributes = ("_last", "_last_step")

    def __init__(self, percentile: float = 30.0) -> None:
        self.percentile = check_number("percentile", percentile, minimum=0, maximum=100)
        self._last: Tensor | None = None
        self._last_step = -2

    def start(self, x: Tensor, i_iter: int = -1) -> None:
        """Remember ``x`` as the image after step ``i_iter`` (default: before the first step)."""
        self._last, self._last_step = x.detach().clone(), i_iter

    def crop(self, x: Tensor, before: Tensor, step: Tensor) -> Tensor:
        """Zero the low-contribution pixels of ``x`` given the image ``before`` the step and the ``step``."""
        return _zero_below_percentile(x, (before * step).sum(dim=1).abs(), self.percentile)

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        before = self._before(x, i_iter)
        out = x if before is None else self.crop(x, before, x - before)
        self.start(out, i_iter)
        return out

    def _before(self, x: Tensor, i_iter: int) -> Tensor | None:
        """The remembered image before this step (forgotten once read), if it has ``x``'s shape."""
        last, self._last = self._last, None
        if last is None or last.shape != x.shape or self._last_step != i_iter - 1:
            return None
        return last.to(x.device)


@component("postprocessing")
class YosinskiRegularization(Component):
    """L2 decay, periodic blur, norm crop and contribution crop in one postprocessing step; each is off when
    its parameter is ``None``.

    Args:
        theta_decay (float, optional): see :class:`L2Decay`. Default: None.
        blur_every (int, optional): see :class:`PeriodicBlur`. Default: None.
        blur_width (float, optional): see :class:`PeriodicBlur`. Default: 1.
        norm_percentile (float, optional): see :class:`NormCrop`. Default: None.
        contribution_percentile (float, optional): see :class:`ContributionCrop`. Default: None.
    """

    _repr_fields = ("theta_decay", "blur_every", "blur_width", "norm_percentile", "contribution_percentile")

    def __init__(self, theta_decay: float | None = None, blur_every: int | None = None, blur_width: float = 1.0,
                 norm_percentile: float | None = None, contribution_percentile: float | None = None) -> None:
        self.theta_decay, self.blur_every, self.blur_width = theta_decay, blur_every, blur_width
        self.norm_percentile, self.contribution_percentile = norm_percentile, contribution_percentile
        self.steps = [
            L2Decay(theta_decay) if theta_decay is not None else None,
            PeriodicBlur(blur_every, blur_width) if blur_every is not None else None,
            NormCrop(norm_percentile) if norm_percentile is not None else None,
        ]
        self.contribution = ContributionCrop(contribution_percentile) if contribution_percentile is not None else None

    def start(self, x: Tensor) -> None:
        """Remember the image before the first step (for the contribution crop)."""
        if self.contribution is not None:
            self.contribution.start(x)

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        before = self.contribution._before(x, i_iter) if self.contribution is not None else None
        step = None if before is None else x - before
        for regularizer in self.steps:
            if regularizer is not None:
                x = regularizer(x, i_iter)
        if self.contribution is not None:
            if before is not None and step is not None:  # step is None exactly when before is
                x = self.contribution.crop(x, before, step)
            self.contribution.start(x, i_iter)
        return x


__all__ = ["L2Decay", "PeriodicBlur", "NormCrop", "ContributionCrop", "YosinskiRegularization"]
