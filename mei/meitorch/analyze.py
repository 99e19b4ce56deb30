"""Analysis of generated MEIs: spatial-frequency spectra and similarity between MEIs.

Functions take image batches ``(N, C, H, W)`` (or anything whose last two dimensions are space);
:class:`Analyze` wraps a set of MEIs (tensors or :class:`~mei.meitorch.result.MEIResult` objects).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..analysis.spectra import high_frequency_fraction, radial_power_spectrum
from .diversity import pairwise_distances


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
