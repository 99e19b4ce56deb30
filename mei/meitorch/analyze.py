"""Analysis of generated MEIs: spatial-frequency spectra and similarity between MEIs.

Functions take image batches ``(N, C, H, W)`` (or anything whose last two dimensions are space);
:class:`Analyze` wraps a set of MEIs (tensors or :class:`~mei.meitorch.result.MEIResult` objects).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .diversity import pairwise_distances


def radial_power_spectrum(images: Tensor) -> tuple[Tensor, Tensor]:
    """Mean power at each integer radial frequency ``r`` (cycles per image), DC included at ``r = 0``.

    Returns:
        tuple: ``(frequencies, power)``, both 1-D, frequencies ``0 .. min(H, W) // 2``.
    """
    images = images.detach().float().cpu()
    h, w = images.shape[-2:]
    power = torch.fft.fft2(images).abs().pow(2).reshape(-1, h, w).mean(0)
    fy = torch.minimum(torch.arange(h), h - torch.arange(h)).float()
    fx = torch.minimum(torch.arange(w), w - torch.arange(w)).float()
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2).round().long()
    n_bins = min(h, w) // 2 + 1
    keep = radius < n_bins
    totals = torch.zeros(n_bins).index_add_(0, radius[keep], power[keep])
    counts = torch.zeros(n_bins).index_add_(0, radius[keep], torch.ones_like(power[keep]))
    return torch.arange(n_bins).float(), totals / counts.clamp_min(1)


def high_frequency_fraction(images: Tensor, cutoff: float = 0.5) -> float:
    """Share of the non-DC power at radial frequencies above ``cutoff`` times the Nyquist radius."""
    images = images.detach().float().cpu()
    h, w = images.shape[-2:]
    power = torch.fft.fft2(images - images.mean(dim=(-2, -1), keepdim=True)).abs().pow(2).reshape(-1, h, w).sum(0)
    fy = torch.minimum(torch.arange(h), h - torch.arange(h)).float() / (h / 2)
    fx = torch.minimum(torch.arange(w), w - torch.arange(w)).float() / (w / 2)
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    return float(power[radius > cutoff].sum() / power.sum().clamp_min(1e-30))


def similarity_matrix(images: Tensor, metric: str = "correlation") -> Tensor:
    """``(N, N)`` similarity of the flattened images: Pearson r (``correlation``), cosine similarity
    (``cosine``), or the negative Euclidean distance (``euclidean``)."""
    distances = pairwise_distances(images.detach().float().cpu(), metric)
    return -distances if metric == "euclidean" else 1 - distances


def _images_of(item: Any) -> Tensor:
    images = item.mei if hasattr(item, "mei") else item
    if not isinstance(images, Tensor):
        raise TypeError(f"expected a tensor of images or an MEIResult, got {type(item).__name__}")
    return images.detach().float().cpu().reshape(-1, *images.shape[-3:]) if images.dim() >= 3 else images


class Analyze:
    """Spectra and similarities of several MEIs at once.

    Args:
        *meis (Tensor | MEIResult): image batches or results; their images are pooled in the given order.
    """

    def __init__(self, *meis: Any) -> None:
        if not meis:
            raise ValueError("Analyze needs at least one MEI")
        self.images = torch.cat([_images_of(m) for m in meis])

    def spectrum(self) -> tuple[Tensor, Tensor]:
        """:func:`radial_power_spectrum` of all images together."""
        return radial_power_spectrum(self.images)

    def high_frequency_fraction(self, cutoff: float = 0.5) -> float:
        """:func:`high_frequency_fraction` of all images together."""
        return high_frequency_fraction(self.images, cutoff)

    def similarity(self, metric: str = "correlation") -> Tensor:
        """:func:`similarity_matrix` between the images."""
        return similarity_matrix(self.images, metric)

    def plot_similarity(self, metric: str = "correlation", save_path: str | None = None, show: bool = False) -> Any:
        """Heat map of :meth:`similarity`; returns the matplotlib figure."""
        from .plots import finish, pyplot

        plt = pyplot()
        fig, ax = plt.subplots(figsize=(4, 3.5))
        shown = ax.imshow(self.similarity(metric).numpy(), cmap="viridis")
        fig.colorbar(shown, ax=ax, label=metric)
        ax.set(xlabel="MEI", ylabel="MEI", title=f"similarity ({metric})")
        for axis in (ax.xaxis, ax.yaxis):
            axis.get_major_locator().set_params(integer=True)
        return finish(fig, save_path, show)

    def plot_spectrum(self, save_path: str | None = None, show: bool = False) -> Any:
        """Radial power spectrum on log-log axes; returns the matplotlib figure."""
        from .plots import plot_spectrum

        return plot_spectrum(self.images, save_path, show)


__all__ = ["Analyze", "radial_power_spectrum", "high_frequency_fraction", "similarity_matrix"]
