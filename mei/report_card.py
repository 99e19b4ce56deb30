"""The MEI report card: is an MEI right, strong, shared by the models and robust?

Each metric is a plain function on tensors and modules (usable without a database), and
:class:`ReportCardTemplate` computes them all per MEI in the pipeline.

* :func:`rf_correlation` — correlation of the MEI with a known receptive field; with a basis of several
  filters (a complex cell's quadrature pair) the best correlation over every filter in their span, i.e.
  over phase (demo only, where the truth is known);
* :func:`activation_ratio` — the MEI's activation relative to the best natural image (Walker et al. 2019);
* :func:`transfer` — the same ratio for other models (held-out ensemble members);
* :func:`jitter_robustness` — the mean activation under small shifts relative to the unshifted activation;
* :func:`frequency_spectrum` / :func:`peak_frequency` — the MEI's radially averaged power spectrum.

The metrics need only torch and numpy; :class:`ReportCardTemplate` (in :mod:`mei.report_card_table`,
re-exported here) needs DataJoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .transforms import shift

Objective = Callable[[Tensor], Tensor]


def _image(x: Tensor | np.ndarray) -> Tensor:
    """A 2-D float tensor from an MEI of shape ``(h, w)``, ``(1, h, w)`` or ``(1, 1, h, w)``."""
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x, dtype=torch.float64)
    while x.dim() > 2 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 2:
        raise ValueError(f"expected one grayscale image (h, w), got shape {tuple(x.shape)}")
    return x


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
    x = _image(mei).flatten()
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
             natural: Sequence[Tensor] | None = None) -> list[float]:
    """:func:`activation_ratio` of ``mei`` for each of ``objectives`` (e.g. held-out ensemble members).

    ``natural`` optionally gives each objective's values for ``images``, in the same order.
    """
    natural = list(natural) if natural is not None else [None] * len(objectives)
    return [activation_ratio(objective, mei, images, natural=values)["ratio"]
            for objective, values in zip(objectives, natural)]


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


def _power_2d(mei: Tensor, pad_to: int) -> tuple[Tensor, Tensor]:
    """Power spectrum of the zero-mean image, zero-padded to ``pad_to`` x ``pad_to``; and each bin's radius."""
    x = _image(mei)
    size = max(pad_to, *x.shape)
    power = torch.fft.fft2(x - x.mean(), s=(size, size)).abs() ** 2
    frequencies = torch.fft.fftfreq(size, dtype=torch.float64)
    radius = torch.sqrt(frequencies[None, :] ** 2 + frequencies[:, None] ** 2)
    return power, radius


def frequency_spectrum(mei: Tensor, n_bins: int = 32, pad_to: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of one image.

    Args:
        mei (Tensor): one image ``(h, w)`` (leading singleton dimensions are dropped).
        n_bins (int, optional): frequency bins between 0 and 0.5 cycles/pixel. Default: 32.
        pad_to (int, optional): the image is zero-padded to this size before the FFT, for a finely sampled
            spectrum. Default: 128.

    Returns:
        tuple: ``(frequencies, power)``: bin centres in cycles/pixel and the mean power in each bin
        (normalized to sum to 1).
    """
    power, radius = _power_2d(mei, pad_to)
    power, radius = power.flatten(), radius.flatten()
    edges = torch.linspace(0, 0.5, n_bins + 1, dtype=torch.float64)
    inside = radius <= 0.5
    index = torch.bucketize(radius[inside], edges[1:-1])
    total = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, power[inside])
    count = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, torch.ones_like(radius[inside]))
    mean = total / count.clamp_min(1)
    mean = mean / mean.sum() if mean.sum() > 0 else mean
    return ((edges[1:] + edges[:-1]) / 2).numpy(), mean.numpy()


def peak_frequency(mei: Tensor, pad_to: int = 128) -> float:
    """The spatial frequency (cycles/pixel) of the strongest component of the MEI's 2-D power spectrum.

    The 2-D maximum, not the peak of the radial average: for an oriented pattern such as a Gabor, averaging
    over rings favours low frequencies. Zero-padding to ``pad_to`` samples the spectrum finely. Default: 128.
    """
    power, radius = _power_2d(mei, pad_to)
    return float(radius.flatten()[int(power.flatten().argmax())])


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
    natural = list(natural) if natural is not None else [None] * (1 + len(others))
    ratio = activation_ratio(objective, mei, images, natural=natural[0])
    ratios = transfer(others, mei, images, natural=natural[1:])
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


def __getattr__(name: str) -> Any:
    # The table template needs DataJoint (the ``pipeline`` extra); the metrics above do not.
    if name in ("ReportCardTemplate", "loader_images"):
        from . import report_card_table

        return getattr(report_card_table, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
