"""Cluster objectives: one stimulus per cluster of neurons, all clusters in one batch and one forward.

:class:`ClusterContrastiveObjective` is the objective of the most discriminative stimuli (Burg et al., ICLR 2024,
"Most discriminative stimuli for functional cell type clustering"): image ``k`` of the batch is scored by how much
more it drives the neurons of cluster ``k`` than the neurons of every other cluster, as a log-softmax over the
clusters' mean responses with a temperature. The loop that alternates it with reassigning neurons is
:func:`mei.analysis.mds.most_discriminative_stimuli`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..engine.component import check_number
from ..reducers import Reducer
from .contrastive import UnitResponses


def membership(assignments: Sequence[int] | Tensor, n_clusters: int | None = None) -> Tensor:
    """The ``(neurons, clusters)`` averaging matrix of ``assignments``: column ``k`` is ``1/|k|`` on cluster ``k``.

    Args:
        assignments (list[int] | Tensor): the cluster (``0 .. n_clusters - 1``) of each neuron.
        n_clusters (int, optional): number of clusters. Default: ``max(assignments) + 1``.

    Raises:
        ValueError: an assignment is negative or out of range, or a cluster has no neuron.
    """
    labels = torch.as_tensor(assignments, dtype=torch.long).reshape(-1)
    if labels.numel() == 0:
        raise ValueError("assignments must name the cluster of at least one neuron")
    if int(labels.min()) < 0:
        raise ValueError(f"assignments must be >= 0, got {int(labels.min())}")
    k = int(labels.max()) + 1 if n_clusters is None else int(n_clusters)
    if int(labels.max()) >= k:
        raise ValueError(f"assignment {int(labels.max())} is out of range for {k} clusters")
    one_hot = torch.nn.functional.one_hot(labels, k).float()
    sizes = one_hot.sum(0)
    if bool((sizes == 0).any()):
        empty = [int(i) for i in torch.nonzero(sizes == 0).flatten()]
        raise ValueError(f"cluster(s) {empty} have no neuron")
    return one_hot / sizes


class ClusterContrastiveObjective(nn.Module):
    """Image ``k`` scored by cluster ``k``'s mean response against all clusters' means (one forward for all).

    With ``m_j`` the mean (optionally normalized) response of the neurons of cluster ``j`` to image ``k`` and
    ``t`` the temperature, the value of image ``k`` is the log-softmax of the cluster means,

    ``m_k / t - log(sum_j exp(m_j / t)) + log(K)``,

    as in Burg et al. (2024) and openretina's ``ContrastiveNeuronObjective`` (the ``+ log K`` makes a stimulus
    that drives every cluster equally score 0; the maximum is ``log K``). A low temperature makes the objective
    care about the strongest competitor, a high one about the mean of the competitors.

    Args:
        model (nn.Module): the model (output ``(images, neurons, ...)``).
        assignments (list[int] | Tensor): the cluster of each neuron (of ``units`` if given).
        temperature (float, optional): > 0. Default: 1.6 (the paper's and openretina's value).
        scale (Tensor, optional): ``(neurons,)`` divisor of each neuron's response (so that neurons of
            different response ranges weigh alike). Default: none.
        units (list[int], optional): the model's output units that the assignments refer to. Default: all.
        reducer, forward_kwargs, unit_dim: as in :class:`~mei.targets.contrastive.UnitResponses` (a reducer
            over time for video models).
    """

    weights: Tensor
    inverse_scale: Tensor
    images: Tensor

    def __init__(self, model: nn.Module, assignments: Sequence[int] | Tensor, temperature: float = 1.6,
                 scale: Tensor | None = None, units: Sequence[int] | None = None,
                 reducer: Reducer | Mapping[str, Any] | None = None,
                 forward_kwargs: Mapping[str, Any] | None = None, unit_dim: int = 1) -> None:
        super().__init__()
        self.temperature = check_number("temperature", temperature, minimum=0, strict_minimum=True)
        weights = membership(assignments)
        self.n_clusters = weights.shape[1]
        if self.n_clusters < 2:
            raise ValueError("a contrastive cluster objective needs at least 2 clusters")
        self.register_buffer("weights", weights, persistent=False)
        inverse = torch.ones(weights.shape[0]) if scale is None else 1.0 / torch.as_tensor(scale, dtype=torch.float32)
        if inverse.shape != (weights.shape[0],) or not bool(torch.isfinite(inverse).all()):
            raise ValueError(f"scale must hold one finite, non-zero value per neuron ({weights.shape[0]})")
        self.register_buffer("inverse_scale", inverse.reshape(-1), persistent=False)
        self.register_buffer("images", torch.arange(self.n_clusters), persistent=False)
        self.responses = UnitResponses(model, units, reducer, forward_kwargs, unit_dim)

    def cluster_means(self, x: Tensor) -> Tensor:
        """The clusters' mean normalized responses ``(images, clusters)`` to ``x``."""
        responses = self.responses(x)
        if responses.shape[1] != self.weights.shape[0]:
            raise ValueError(f"the model answers with {responses.shape[1]} units for {self.weights.shape[0]} "
                             "assignments")
        return (responses * self.inverse_scale.to(responses.dtype)) @ self.weights.to(responses.dtype)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[0] != self.n_clusters:
            raise ValueError(f"the input holds {x.shape[0]} images for {self.n_clusters} clusters")
        scaled = self.cluster_means(x) / self.temperature
        return scaled[self.images, self.images] - torch.logsumexp(scaled, dim=1) + math.log(self.n_clusters)

    def extra_repr(self) -> str:
        return f"clusters={self.n_clusters}, neurons={self.weights.shape[0]}, temperature={self.temperature}"


__all__ = ["membership", "ClusterContrastiveObjective"]
