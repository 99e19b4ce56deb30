"""The ``diverse`` key: a reward for distance between the samples of one step (Cadena et al. 2018 style).

``diversity(images)`` is, per sample, its distance to the nearest other sample (``minimum`` linkage) or its
mean distance to the others (``average``), averaged over the samples. As a regularization of the engine
(a penalty subtracted from the evaluation) it enters as ``-div_weight * diversity``.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from ..engine.component import Component, check_choice
from .tools.schedules import Schedule, check_schedulable, value_at

METRICS = ("euclidean", "cosine", "correlation")
LINKAGES = ("minimum", "average")


def pairwise_distances(images: Tensor, metric: str = "euclidean") -> Tensor:
    """``(N, N)`` distances between the flattened images: Euclidean, ``1 - cosine`` or ``1 - Pearson r``."""
    flat = images.reshape(images.shape[0], -1)
    if metric == "euclidean":
        squared = (flat[:, None, :] - flat[None, :, :]).pow(2).sum(-1)
        return torch.sqrt(squared + 1e-12)
    if metric == "correlation":
        flat = flat - flat.mean(dim=1, keepdim=True)
    elif metric != "cosine":
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    unit = flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return 1 - unit @ unit.T


def diversity(images: Tensor, metric: str = "euclidean", linkage: str = "minimum") -> Tensor:
    """Mean over samples of the nearest (``minimum``) or mean (``average``) distance to the other samples."""
    n = images.shape[0]
    if n < 2:
        raise ValueError(f"diversity needs at least 2 samples, got {n}")
    distances = pairwise_distances(images, metric)
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=images.device)
    if linkage == "minimum":
        return distances.masked_fill(~off_diagonal, float("inf")).min(dim=1).values.mean()
    if linkage == "average":
        return distances[off_diagonal].mean()
    raise ValueError(f"linkage must be one of {LINKAGES}, got {linkage!r}")


class _ImageSource(Protocol):
    """Where :class:`DiversityReward` reads the step's samples (e.g. :class:`mei.meitorch.runner.SamplePipeline`)."""

    @property
    def last_images(self) -> Tensor | None: ...


class DiversityReward(Component):
    """The engine regularization ``-div_weight * diversity(samples)`` over the samples of the current step.

    Args:
        source: an object whose ``last_images`` holds the step's samples before augmentation (jitter and
            zoom would otherwise count as diversity).
        div_metric (str, optional): euclidean, cosine or correlation. Default: euclidean.
        div_linkage (str, optional): minimum or average. Default: minimum.
        div_weight (float | Schedule, optional): Default: 1.
    """

    def __init__(self, source: _ImageSource, div_metric: str = "euclidean", div_linkage: str = "minimum",
                 div_weight: float | Schedule = 1.0) -> None:
        self.source = source
        self.div_metric = check_choice("div_metric", div_metric, METRICS)
        self.div_linkage = check_choice("div_linkage", div_linkage, LINKAGES)
        self.div_weight = check_schedulable("div_weight", div_weight)
        self.last: Tensor | None = None

    def __call__(self, transformed: Tensor, i_iter: int) -> Tensor:
        images = self.source.last_images
        assert images is not None  # the step's transform (the source) ran before its regularization
        self.last = diversity(images, self.div_metric, self.div_linkage)
        return -value_at(self.div_weight, i_iter) * self.last

    def __repr__(self) -> str:
        return (f"DiversityReward(div_metric={self.div_metric!r}, div_linkage={self.div_linkage!r}, "
                f"div_weight={self.div_weight!r})")
