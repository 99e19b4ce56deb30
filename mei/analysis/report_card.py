"""The MEI report card: is an MEI right, strong, shared by the models and robust?

Each metric is a plain function on tensors and modules (usable without a database), and
:class:`~mei.pipeline.report_card_table.ReportCardTemplate` computes them all per MEI in the pipeline.

* :func:`rf_correlation` — correlation of the MEI with a known receptive field; with a basis of several
  filters (a complex cell's quadrature pair) the best correlation over every filter in their span, i.e.
  over phase (demo only, where the truth is known);
* :func:`activation_ratio` — the MEI's activation relative to the best natural image (Walker et al. 2019);
* :func:`transfer` — the same ratio for other models (held-out ensemble members);
* :func:`jitter_robustness` — the mean activation under small shifts relative to the unshifted activation;
* :func:`frequency_spectrum` / :func:`peak_frequency` — the MEI's radially averaged power spectrum;
* :func:`tuning_panel` — the neuron's in-silico tuning (:mod:`mei.analysis.tuning`): preferred orientation and
  spatial frequency, orientation selectivity, phase invariance, and the curves to draw.

The metrics need only torch and numpy (the spectra are in :mod:`mei.analysis.spectra`); the table template,
:class:`mei.pipeline.report_card_table.ReportCardTemplate`, needs DataJoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..transforms import shift
from .spectra import as_image, frequency_spectrum, peak_frequency
from .tuning import grating_tuning

Objective = Callable[[Tensor], Tensor]


def rf_correlation(mei: Tensor, rf: Tensor) -> float:
    """Correlation of ``mei`` with a receptive field, or the best over the span of several filters.

    Args:
        mei (Tensor): one image ``(h, w)`` (leading singleton dimensions are dropped).
        rf (Tensor): one filter ``(h, w)`` — the signed Pearson correlation is returned — or a basis
            ``(k, h, w)`` (e.g. the quadrature pair of a complex cell) — the largest correlation of ``mei``
            with any image in their span (for a quadrature pair: the best phase), which is never negative.
            All-zero filters in a basis are ignored.

    Returns:
        float: in ``[-1, 1]``.
    """
    x = as_image(mei).flatten()
    x = x - x.mean()
    basis = torch.as_tensor(rf, dtype=torch.float64)
    basis = basis.reshape(-1, x.numel()) if basis.dim() > 2 else basis.reshape(1, -1)
    basis = basis - basis.mean(dim=1, keepdim=True)
    basis = basis[basis.norm(dim=1) > 0]
    if len(basis) == 0 or x.norm() == 0:
        return 0.0
    if len(basis) == 1:
        return float(x @ basis[0] / (x.norm() * basis[0].norm()))
    # Orthonormalize the span; the best correlation is the norm of the projection of the unit MEI.
    q, _ = torch.linalg.qr(basis.T)
    return float((q.T @ (x / x.norm())).norm())


@torch.no_grad()
def _responses(objective: Objective, images: Tensor, batch_size: int = 512) -> Tensor:
    return torch.cat([objective(images[i:i + batch_size]).reshape(-1) for i in range(0, len(images), batch_size)])


def activation_ratio(objective: Objective, mei: Tensor, images: Tensor, batch_size: int = 512,
                     natural: Tensor | None = None) -> dict[str, float]:
    """The MEI's activation relative to the best natural image (Walker et al. 2019).

    Args:
        objective (Callable): one value per image, e.g. a model constrained to one neuron.
        mei (Tensor): the MEI, with the model's input shape ``(1, ...)``.
        images (Tensor): natural images ``(n, ...)`` of the same shape.
        batch_size (int, optional): images per forward pass. Default: 512.
        natural (Tensor, optional): the objective's values for ``images`` if already computed. Default: none.

    Returns:
        dict: ``activation`` (of the MEI), ``best_natural`` (largest over the images), ``best_index`` and
        ``ratio = activation / best_natural``.
    """
    responses = _responses(objective, images, batch_size) if natural is None else natural.reshape(-1)
    best_index = int(responses.argmax())
    best = float(responses[best_index])
    activation = float(_responses(objective, mei.reshape(1, *images.shape[1:]).to(images.dtype)))
    return {"activation": activation, "best_natural": best, "best_index": best_index,
            "ratio": activation / best if best != 0 else float("nan")}


def transfer(objectives: Sequence[Objective], mei: Tensor, images: Tensor,
             natural: Sequence[Tensor | None] | None = None) -> list[float]:
    """:func:`activation_ratio` of ``mei`` for each of ``objectives`` (e.g. held-out ensemble members).

    ``natural`` optionally gives each objective's values for ``images``, in the same order.
    """
    given: list[Tensor | None] = list(natural) if natural is not None else [None] * len(objectives)
    return [activation_ratio(objective, mei, images, natural=values)["ratio"]
            for objective, values in zip(objectives, given, strict=True)]


@torch.no_grad()
def jitter_robustness(objective: Objective, mei: Tensor, max_shift: int = 2) -> float:
    """Mean activation over all circular shifts up to ``max_shift`` pixels (both axes), over the unshifted one.

    Args:
        objective (Callable): one value per image.
        mei (Tensor): the MEI ``(1, ..., h, w)``.
        max_shift (int, optional): largest shift in pixels. Default: 2.

    Returns:
        float: 1 for an objective that does not care where the MEI is; less the more it does.
    """
    offsets = range(-max_shift, max_shift + 1)
    shifts = torch.tensor([[dy, dx] for dy in offsets for dx in offsets])
    batch = shift(mei.expand(len(shifts), *mei.shape[1:]), shifts, dims=(-2, -1))
    activation = float(objective(mei).reshape(-1)[0])
    return float(objective(batch).mean()) / activation if activation != 0 else float("nan")


def report_card(objective: Objective, mei: Tensor, images: Tensor, others: Sequence[Objective] = (),
                rf: Tensor | None = None, max_shift: int = 2,
                natural: Sequence[Tensor] | None = None) -> dict[str, Any]:
    """Every metric of the report card for one MEI.

    Args:
        objective (Callable): the objective the MEI was made for.
        mei (Tensor): the MEI ``(1, ...)``.
        images (Tensor): natural images to compare with.
        others (Sequence[Callable], optional): further objectives for :func:`transfer`. Default: none.
        rf (Tensor, optional): the true receptive field (or a basis), where known. Default: none.
        max_shift (int, optional): for :func:`jitter_robustness`. Default: 2.
        natural (Sequence[Tensor], optional): the values of ``objective`` and then of each of ``others``
            for ``images``, if already computed. Default: computed here.

    Returns:
        dict: ``activation``, ``best_natural``, ``best_index``, ``activation_ratio``, ``transfer``
        (mean over ``others`` or ``None``), ``transfer_ratios``, ``jitter_robustness``, ``peak_frequency``,
        ``spectrum`` (``{"frequencies": [...], "power": [...]}``), ``rf_correlation`` (or ``None``).
    """
    given: list[Tensor | None] = list(natural) if natural is not None else [None] * (1 + len(others))
    ratio = activation_ratio(objective, mei, images, natural=given[0])
    ratios = transfer(others, mei, images, natural=given[1:])
    frequencies, power = frequency_spectrum(mei)
    return {
        "activation": ratio["activation"], "best_natural": ratio["best_natural"], "best_index": ratio["best_index"],
        "activation_ratio": ratio["ratio"],
        "transfer": float(np.mean(ratios)) if ratios else None, "transfer_ratios": ratios,
        "jitter_robustness": jitter_robustness(objective, mei, max_shift),
        "peak_frequency": peak_frequency(mei),
        "spectrum": {"frequencies": frequencies.tolist(), "power": power.tolist()},
        "rf_correlation": rf_correlation(mei, rf) if rf is not None else None,
    }


def tuning_panel(model: torch.nn.Module, unit: int, height: int, width: int, channels: int = 1,
                 **grating_kwargs: Any) -> dict[str, Any]:
    """The tuning panel of one neuron's report card: :meth:`mei.analysis.tuning.GratingTuning.neuron` for output
    ``unit`` of ``model`` (full-field gratings over orientation x spatial frequency x phase), with the sampled
    ``orientations``, ``spatial_frequencies`` and ``phases`` added so the curves can be drawn.

    ``grating_kwargs`` go to :func:`mei.analysis.tuning.grating_tuning` (``orientations``, ``contrast``, ...).
    """
    tuning = grating_tuning(model, height, width, channels=channels, units=[int(unit)], **grating_kwargs)
    return {**tuning.neuron(0), "orientations": tuning.orientations,
            "spatial_frequencies": tuning.spatial_frequencies, "phases": tuning.phases}
