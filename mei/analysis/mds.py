"""Most discriminative stimuli (MDS): functional clusters of neurons and one stimulus per cluster.

The procedure of Burg et al. (ICLR 2024, "Most discriminative stimuli for functional cell type clustering"),
an expectation-maximization-like loop:

1. start from the neurons' MEIs and cluster the neurons (:func:`initial_clusters`: k-means on each neuron's
   normalized responses to all the MEIs, or on the MEIs' pixels; or assignments you give);
2. *M step*: optimize one stimulus per cluster with the cluster-vs-other-clusters contrastive objective
   (:class:`~mei.targets.clusters.ClusterContrastiveObjective`, a log-softmax over the clusters' mean
   responses with a temperature, 1.6 by default) — all clusters as one batch, one forward per step
   (:func:`mei.batched.run_chunk`);
3. *E step*: reassign every neuron to the cluster whose stimulus drives it most; clusters left without
   neurons are dropped;
4. repeat 2-3 until no assignment changes (or ``max_iterations``).

Works for images and movies (a ``reducer`` over time for video models) and for one model or an
:class:`~mei.modules.EnsembleModel` (``{"batch": {"fuse_ensemble": true}}`` runs its members as one vmapped model).
Cluster quality against known types: :func:`adjusted_rand_index`.

Neurons of one type sit at different places in the visual field. The paper's models compare them at one place:
openretina centres every neuron's readout (its ``Center`` sets all Gaussian readout means to one point) before
optimizing stimuli. ``align="meis"`` does the same for any model: each cluster's stimulus lives in a frame
centred on the image, and every neuron is shown it moved (by whole pixels, zero filled) onto its own receptive
field, the centroid of its MEI (:func:`~mei.analysis.tuning.rf_centres`); :class:`AlignedUnits` makes that one
forward of ``clusters x neurons`` images. A model (or every member of an ensemble) with a method
``aligned(offsets, units)`` that returns its aligned form (its readouts moved back by the offsets, as openretina
centres them) is used instead: one image per stimulus (:meth:`mei.demo.models.DemoModel.aligned`).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..batched.fusion import FusedEnsembleModel
from ..batched.run import run_chunk
from ..engine.options import BatchOptions
from ..engine.resolve import build_components
from ..methods import evaluation_mode, get_device
from ..modules import EnsembleModel
from ..reducers import Reducer
from ..targets.clusters import ClusterContrastiveObjective
from ..targets.contrastive import UnitResponses
from .tuning import rf_centres


@dataclasses.dataclass
class MDSResult:
    """The outcome of :func:`most_discriminative_stimuli`.

    Attributes:
        stimuli (Tensor): ``(clusters, ...)`` one most discriminative stimulus per final cluster.
        assignments (Tensor): ``(neurons,)`` the final cluster of each neuron (``0 .. clusters - 1``).
        responses (Tensor): ``(clusters, neurons)`` each neuron's (normalized) response to each stimulus.
        scale (Tensor): ``(neurons,)`` the normalization of each neuron (its response to its own MEI, or 1).
        history (list[dict]): one entry per iteration: ``iteration``, ``n_clusters``, ``assignments``
            (before the E step), ``new_assignments``, ``n_changed``, ``scores`` (the objective per stimulus).
        initial_assignments (Tensor): the clustering the loop started from.
        converged (bool): whether the assignments stopped changing within ``max_iterations``.
        offsets (Tensor | None): ``(neurons, 2)`` whole-pixel ``(dx, dy)`` by which each neuron was shown the
            stimuli (from the image centre onto its receptive field), ``None`` without alignment; the
            ``stimuli`` are then centred on the image.
    """

    stimuli: Tensor
    assignments: Tensor
    responses: Tensor
    scale: Tensor
    history: list[dict[str, Any]]
    initial_assignments: Tensor
    converged: bool
    offsets: Tensor | None = None

    @property
    def n_clusters(self) -> int:
        return int(self.stimuli.shape[0])

    def cluster_means(self) -> Tensor:
        """``(stimuli, clusters)``: the mean (normalized) response of each cluster's members to each stimulus."""
        return torch.stack([self.responses[:, self.assignments == k].mean(1) for k in range(self.n_clusters)], 1)

    def own_versus_other(self) -> Tensor:
        """``(clusters,)``: the members' mean response to their own stimulus minus the largest mean to another's."""
        return self._margin(0)

    def stimulus_selectivity(self) -> Tensor:
        """``(clusters,)``: each stimulus's mean response over its own members minus its largest mean over the
        members of another cluster (positive: it drives its cluster more than any other cluster)."""
        return self._margin(1)

    def _margin(self, dim: int) -> Tensor:
        means = self.cluster_means()
        others = means.masked_fill(torch.eye(self.n_clusters, dtype=torch.bool), float("-inf"))
        return means.diagonal() - others.max(dim).values


def kmeans(features: Tensor, n_clusters: int, seed: int = 0, n_init: int = 10, iterations: int = 100) -> Tensor:
    """Labels ``(n,)`` of k-means on ``features`` ``(n, d)``: k-means++ starts, the best of ``n_init`` runs.

    Deterministic for a seed (its own generator; the global RNG is untouched). Empty clusters are reseeded
    with the point farthest from its centre, so every label ``0 .. n_clusters - 1`` is used.
    """
    x = torch.as_tensor(features, dtype=torch.float64).reshape(len(features), -1)
    if not 1 <= n_clusters <= len(x):
        raise ValueError(f"n_clusters must be between 1 and the number of points ({len(x)}), got {n_clusters}")
    if x.shape[1] > len(x):  # the same distances in at most n dimensions: centred, then rotated onto its span
        centred = x - x.mean(0)
        values, vectors = torch.linalg.eigh(centred @ centred.T)
        x = vectors * values.clamp_min(0).sqrt()
    generator = torch.Generator().manual_seed(int(seed))
    best: tuple[float, Tensor] | None = None
    for _ in range(n_init):
        centres = _kmeans_plus_plus(x, n_clusters, generator)
        for _ in range(iterations):
            distances = _distances(x, centres)
            labels = distances.argmin(1)
            for k in range(n_clusters):
                if not bool((labels == k).any()):
                    labels[int(distances.gather(1, labels[:, None]).argmax())] = k
            one_hot = torch.nn.functional.one_hot(labels, n_clusters).to(x.dtype)
            updated = (one_hot.T @ x) / one_hot.sum(0)[:, None]
            if torch.allclose(updated, centres):
                break
            centres = updated
        inertia = float(((x - centres[labels]) ** 2).sum())
        if best is None or inertia < best[0] - 1e-9:
            best = (inertia, labels)
    assert best is not None
    return _canonical(best[1])


def _distances(x: Tensor, centres: Tensor) -> Tensor:
    return (x[:, None] - centres[None]).pow(2).sum(-1).sqrt()


def _kmeans_plus_plus(x: Tensor, n_clusters: int, generator: torch.Generator) -> Tensor:
    centres = [x[int(torch.randint(len(x), (1,), generator=generator))]]
    for _ in range(1, n_clusters):
        d2 = _distances(x, torch.stack(centres)).min(1).values ** 2
        index = int(torch.multinomial(d2 / d2.sum(), 1, generator=generator)) if float(d2.sum()) > 0 else 0
        centres.append(x[index])
    return torch.stack(centres)


def _canonical(labels: Tensor) -> Tensor:
    """Relabel so clusters are numbered ``0, 1, ...`` in order of their first neuron (drops unused labels)."""
    order: dict[int, int] = {}
    for label in labels.tolist():
        order.setdefault(int(label), len(order))
    return torch.tensor([order[int(label)] for label in labels.tolist()], dtype=torch.long)


def mei_features(meis: Tensor) -> Tensor:
    """The features :func:`initial_clusters` clusters: each MEI flattened, centred and scaled to unit norm."""
    flat = torch.as_tensor(meis, dtype=torch.float64).reshape(len(meis), -1)
    flat = flat - flat.mean(1, keepdim=True)
    return flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)


def response_features(responses: Tensor) -> Tensor:
    """Each neuron's responses to every neuron's MEI, over its response to its own: ``(neurons, meis)``; their
    logarithm (floored at 1e-3) where no response is negative (firing rates: fold changes weigh alike at any rate).

    Args:
        responses (Tensor): ``(meis, neurons)``, row ``j`` the responses to MEI ``j`` (MEI ``i`` is neuron ``i``'s).
    """
    r = torch.as_tensor(responses, dtype=torch.float64)
    relative = (r / r.diagonal().abs().clamp_min(1e-12)).T
    return relative.clamp_min(1e-3).log() if bool((r >= 0).all()) else relative


def initial_clusters(meis: Tensor, n_clusters: int, seed: int = 0, responses: Tensor | None = None) -> Tensor:
    """The starting clusters of the MDS loop: k-means on the neurons' normalized responses to all MEIs
    (:func:`response_features`) when ``responses`` ``(meis, neurons)`` are given, else on the (centred,
    unit-norm) MEIs themselves (:func:`mei_features`)."""
    features = response_features(responses) if responses is not None else mei_features(meis)
    return kmeans(features, n_clusters, seed=seed)


def adjusted_rand_index(labels: Sequence[Any] | Tensor, truth: Sequence[Any] | Tensor) -> float:
    """The adjusted Rand index of two clusterings of the same items (1: identical up to names, ~0: chance)."""
    a = np.unique(np.asarray(labels), return_inverse=True)[1].reshape(-1)
    b = np.unique(np.asarray(truth), return_inverse=True)[1].reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"{a.size} labels for {b.size} true labels")
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1)

    def pairs(counts: np.ndarray) -> float:
        return float((counts * (counts - 1) / 2).sum())

    index, rows, cols, total = pairs(table), pairs(table.sum(1)), pairs(table.sum(0)), pairs(np.array(a.size))
    expected = rows * cols / total if total else 0.0
    maximum = (rows + cols) / 2
    return 1.0 if maximum == expected else (index - expected) / (maximum - expected)


def translate(images: Tensor, offsets: Tensor) -> Tensor:
    """Each image moved by its own whole-pixel offset, zero filled: ``out[i]`` is ``images[i]`` moved by
    ``offsets[i] = (dx, dy)`` (right and down) over its last two dimensions.

    Args:
        images (Tensor): ``(n, ..., height, width)``.
        offsets (Tensor): ``(n, 2)`` integer ``(dx, dy)``.
    """
    offsets = torch.as_tensor(offsets, device=images.device).long().reshape(-1, 2)
    if len(offsets) != len(images):
        raise ValueError(f"{len(offsets)} offsets for {len(images)} images")
    n, (height, width) = len(images), images.shape[-2:]
    flat = images.reshape(n, -1, height, width)
    rows = torch.arange(height, device=images.device)[None] - offsets[:, 1:2]  # source row of each row
    cols = torch.arange(width, device=images.device)[None] - offsets[:, 0:1]
    inside = (((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :])
    moved = flat.gather(2, rows.clamp(0, height - 1)[:, None, :, None].expand(-1, flat.shape[1], -1, width))
    moved = moved.gather(3, cols.clamp(0, width - 1)[:, None, None, :].expand(-1, flat.shape[1], height, -1))
    return (moved * inside[:, None].to(moved.dtype)).reshape(images.shape)


class AlignedUnits(nn.Module):
    """A model whose unit ``j`` answers to the input moved by ``offsets[j]``: every unit sees it on its own
    receptive field. One forward of ``images x units`` moved images; the output is ``(images, units, ...)``
    along ``unit_dim`` like the model's.

    Args:
        model (nn.Module): the model.
        offsets (Tensor): ``(units, 2)`` whole-pixel ``(dx, dy)`` from the frame the inputs are drawn in (their
            centre, say) to each unit's receptive field.
        units (list[int], optional): the model's output unit of each offset. Default: unit ``j`` for offset ``j``.
        unit_dim (int, optional): the model output's dimension of units. Default: 1.
    """

    offsets: Tensor
    units: Tensor

    def __init__(self, model: nn.Module, offsets: Tensor, units: Sequence[int] | None = None,
                 unit_dim: int = 1) -> None:
        super().__init__()
        self.model = model
        offsets = torch.as_tensor(offsets).long().reshape(-1, 2)
        self.register_buffer("offsets", offsets, persistent=False)
        chosen = torch.arange(len(offsets)) if units is None else torch.as_tensor(list(units), dtype=torch.long)
        if chosen.shape != (len(offsets),):
            raise ValueError(f"{len(chosen)} units for {len(offsets)} offsets")
        self.register_buffer("units", chosen, persistent=False)
        self.unit_dim = int(unit_dim)

    def forward(self, x: Tensor, **kwargs: Any) -> Tensor:
        n = len(self.offsets)
        output = self.model(translate(x.repeat_interleave(n, 0), self.offsets.repeat(len(x), 1)), **kwargs)
        output = output.reshape(len(x), n, *output.shape[1:]).index_select(self.unit_dim + 1, self.units)
        return torch.diagonal(output, dim1=1, dim2=self.unit_dim + 1).movedim(-1, self.unit_dim)

    def extra_repr(self) -> str:
        return f"units={len(self.offsets)}, unit_dim={self.unit_dim}"


def _own_alignment(model: nn.Module, offsets: Tensor, units: Sequence[int] | None) -> nn.Module | None:
    """The model's own aligned form, ``model.aligned(offsets, units)`` (e.g. its readouts moved: one image per
    stimulus, not one per neuron), or an ensemble of its members' when they all have one; ``None`` otherwise."""
    own = getattr(model, "aligned", None)
    if callable(own):
        return own(offsets, units)
    members = list(model.members) if isinstance(model, EnsembleModel) else []
    if members and all(callable(getattr(member, "aligned", None)) for member in members):
        return EnsembleModel(*(member.aligned(offsets, units) for member in members))
    return None


def alignment_offsets(centres: Tensor, height: int, width: int) -> Tensor:
    """``(neurons, 2)`` whole-pixel ``(dx, dy)`` from the image centre to each of ``centres`` ``(x, y)``."""
    centre = torch.tensor([(width - 1) / 2, (height - 1) / 2], dtype=torch.float64)
    return (torch.as_tensor(centres, dtype=torch.float64).reshape(-1, 2) - centre).round().long()


@torch.no_grad()
def unit_responses(responses: UnitResponses, stimuli: Tensor, device: torch.device,
                   batch_size: int = 256) -> Tensor:
    """``(stimuli, neurons)`` responses, in batches, on the CPU."""
    with evaluation_mode(responses):
        return torch.cat([responses(stimuli[i:i + batch_size].to(device)).float().cpu()
                          for i in range(0, len(stimuli), batch_size)])


def most_discriminative_stimuli(model: nn.Module, meis: Tensor, n_clusters: int, config: Mapping[str, Any], *,
                                assignments: Sequence[int] | Tensor | None = None, initial: str = "responses",
                                temperature: float = 1.6,
                                max_iterations: int = 10, seed: int = 0, normalize: bool = True,
                                units: Sequence[int] | None = None, reducer: Reducer | Mapping[str, Any] | None = None,
                                forward_kwargs: Mapping[str, Any] | None = None, unit_dim: int = 1,
                                align: str | Tensor | None = None, progress: bool = False) -> MDSResult:
    """Cluster neurons by their most discriminative stimuli (Burg et al. 2024); see the module docstring.

    Args:
        model (nn.Module): the model (or an ensemble), output ``(images, neurons, ...)``.
        meis (Tensor): ``(neurons, ...)`` one MEI per neuron (per unit of ``units``), the model's input shape
            without the leading 1.
        n_clusters (int): number of starting clusters (clusters that lose all neurons are dropped).
        config (dict): a gradient-ascent method config for the stimuli (its ``"batch"`` options apply; the
            clusters always run as one batch).
        assignments (list[int], optional): starting clusters. Default: :func:`initial_clusters`.
        initial (str, optional): what k-means clusters when no ``assignments`` are given: ``"responses"``,
            each neuron's normalized responses to all the MEIs (neurons of a type answer alike), or
            ``"meis"``, the MEI pixels. Default: ``"responses"``.
        temperature (float, optional): of the contrastive objective. Default: 1.6.
        max_iterations (int, optional): most M/E rounds. Default: 10.
        seed (int, optional): cluster ``k``'s stimulus is seeded with ``seed + k``; k-means with ``seed``.
            Default: 0.
        normalize (bool, optional): divide each neuron's response by its response to its own MEI, so every
            neuron weighs alike in its cluster's mean. Default: True.
        units, reducer, forward_kwargs, unit_dim: as in :class:`~mei.targets.clusters.ClusterContrastiveObjective`.
        align (str | Tensor, optional): show every neuron each stimulus on its own receptive field (see the
            module docstring): ``"meis"`` takes the centres from the MEIs (:func:`~mei.analysis.tuning.rf_centres`),
            a ``(neurons, 2)`` tensor gives them ``(x, y)`` in pixels. The MEIs are moved to the image centre for
            the starting clusters and the normalization, and the stimuli are optimized there. Default: none (all
            neurons see the stimuli where they are).
        progress (bool, optional): a progress bar over the iterations. Default: False.
    """
    meis = torch.as_tensor(meis).float()
    max_iterations = int(max_iterations)
    if max_iterations < 1:
        raise ValueError(f"max_iterations must be >= 1, got {max_iterations}")
    components = build_components(config, extra_keys=("batch",))
    options = BatchOptions.from_config(config)
    device = get_device(components.device)
    shape = tuple(components.shape or (1, *meis.shape[1:]))
    offsets, hooked, batch_size = None, None, 256
    if align is not None:
        centres = rf_centres(meis) if isinstance(align, str) and align == "meis" else align
        if isinstance(centres, str):
            raise ValueError(f"align must be 'meis' or a (neurons, 2) tensor of centres, got {align!r}")
        offsets = alignment_offsets(centres, shape[-2], shape[-1])
        if len(offsets) != len(meis):
            raise ValueError(f"{len(offsets)} receptive-field centres for {len(meis)} neurons")
        hooked = _own_alignment(model, offsets, units)
        if hooked is not None:
            model, units = hooked, None
        meis = translate(meis, -offsets)
    if options.fuse_ensemble and isinstance(model, EnsembleModel) and len(model.members) > 1:
        model = FusedEnsembleModel(*model.members, dense=options.fuse_ensemble == "dense")
    if offsets is not None and hooked is None:
        model, units, batch_size = AlignedUnits(model, offsets, units, unit_dim), None, max(1, 256 // len(meis))
    responses = UnitResponses(model, units, reducer, forward_kwargs, unit_dim).to(device)
    own = unit_responses(responses, meis, device, batch_size)
    if own.shape[1] != len(meis):
        raise ValueError(f"{len(meis)} MEIs for a model with {own.shape[1]} units; give one MEI per unit")
    scale = own.diagonal().abs().clamp_min(1e-6) if normalize else torch.ones(len(meis))
    if initial not in ("responses", "meis"):
        raise ValueError(f"initial must be 'responses' or 'meis', got {initial!r}")
    profile = own if initial == "responses" else None
    labels = (initial_clusters(meis, n_clusters, seed, profile) if assignments is None
              else _canonical(torch.as_tensor(assignments, dtype=torch.long).reshape(-1)))
    if len(labels) != len(meis):
        raise ValueError(f"{len(labels)} assignments for {len(meis)} neurons")
    start, history, converged = labels.clone(), [], False
    bar = _bar(max_iterations) if progress else None
    for iteration in range(max_iterations):
        stimuli, scores = _m_step(model, labels, temperature, scale, units, reducer, forward_kwargs, unit_dim,
                                  components, shape, seed, device, options)
        driven = unit_responses(responses, stimuli, device, batch_size) / scale
        new = _canonical(driven.argmax(0))
        kept = sorted(set(driven.argmax(0).tolist()))
        history.append({"iteration": iteration, "n_clusters": int(labels.max()) + 1, "assignments": labels.tolist(),
                        "new_assignments": new.tolist(), "n_changed": _changed(labels, driven.argmax(0)),
                        "scores": scores})
        if bar is not None:
            bar.update(1)
            bar.set_postfix(clusters=len(kept), changed=history[-1]["n_changed"])
        if history[-1]["n_changed"] == 0:
            converged = True
            break
        labels = new
        if int(labels.max()) == 0:  # everything in one cluster: nothing left to contrast
            break
    if bar is not None:
        bar.close()
    if not converged:  # the stimuli and responses belong to the assignments before the last E step
        stimuli, _ = _m_step(model, labels, temperature, scale, units, reducer, forward_kwargs, unit_dim,
                             components, shape, seed, device, options) if int(labels.max()) > 0 else (stimuli, None)
        driven = unit_responses(responses, stimuli, device, batch_size) / scale
    return MDSResult(stimuli=stimuli, assignments=labels, responses=driven, scale=scale, history=history,
                     initial_assignments=start, converged=converged, offsets=offsets)


def _changed(labels: Tensor, winners: Tensor) -> int:
    """Neurons whose most driving stimulus is not their own cluster's."""
    return int((labels != winners).sum())


def _m_step(model: nn.Module, labels: Tensor, temperature: float, scale: Tensor, units: Sequence[int] | None,
            reducer: Any, forward_kwargs: Mapping[str, Any] | None, unit_dim: int, components: Any,
            shape: tuple[int, ...], seed: int, device: torch.device, options: BatchOptions) -> tuple[Tensor, list]:
    """One stimulus per cluster of ``labels``, all clusters in one batched run; and each one's score."""
    objective = ClusterContrastiveObjective(model, labels, temperature, scale, units, reducer, forward_kwargs,
                                            unit_dim)
    n = objective.n_clusters
    results = run_chunk(objective, copy.copy(components), shape, [seed + k for k in range(n)], device, options)
    return torch.cat([mei for mei, _, _, _ in results]), [score for _, score, _, _ in results]


def _bar(total: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="MDS", unit="iteration", leave=False)


__all__ = ["MDSResult", "AlignedUnits", "translate", "alignment_offsets", "kmeans",
           "mei_features", "response_features", "initial_clusters", "adjusted_rand_index",
           "unit_responses", "most_discriminative_stimuli"]
