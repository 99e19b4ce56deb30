"""Analysis of generated MEIs: spatial-frequency spectra, similarity between MEIs, and meitorch's responses of an
operation to masked, jittered and shifted MEIs.

Functions take image batches ``(N, C, H, W)`` (or anything whose last two dimensions are space);
:class:`Analyze` wraps a set of MEIs (tensors or :class:`~mei.meitorch.result.MEIResult` objects), and its
static methods are meitorch's (``Analyze.jittered_responses(process, operation, 2)``, …). An operation takes a
batch ``(N, C, H, W)`` and returns the activation (a tensor, or meitorch's dict of losses: its ``activation``,
else minus its ``objective``); a response is its mean over the batch, a float.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import product
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..analysis.spectra import high_frequency_fraction, radial_power_spectrum
from ..engine.schedule import value_at
from .diversity import pairwise_distances
from .linearmei import activation_tensor
from .tools.base_transforms import roll, spatial_frequency
from .tools.masks import mask_image

Operation = Callable[[Tensor], Any]


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


def _batch(image: Any) -> Tensor:
    """An image ``(H, W)``, ``(C, H, W)`` or batch ``(N, C, H, W)`` (tensor or array) as a float batch."""
    batch = torch.as_tensor(np.asarray(image) if isinstance(image, np.ndarray) else image).detach().float()
    while batch.dim() < 4:
        batch = batch[None]
    return batch


def response(operation: Operation, image: Any, device: str | torch.device = "cpu") -> float:
    """The operation's mean activation on ``image`` (an image or a batch), without gradient."""
    with torch.no_grad():
        return float(activation_tensor(operation(_batch(image).to(device))).mean())


def _bias(process: Any) -> float:
    return float(value_at(process.config.get("bias", 0.0), 0))


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

    # --------------------------------------------------------------------------- meitorch's static methods

    @staticmethod
    def best_match(process: Any, operation: Operation, dataloader: Any, mask: str | None = None,
                   **mask_params: Any) -> tuple[float, Tensor]:
        """The image of ``dataloader.dataset`` (``(image, label)`` pairs) that drives the operation most, each
        masked first (:func:`~mei.meitorch.tools.masks.mask_image` with ``mask``, background the process's
        ``bias``). Returns ``(activation, the unmasked image without its channel dimension)``."""
        dataset = dataloader.dataset
        values = [response(operation, mask_image(torch.as_tensor(image), mask, _bias(process), **mask_params),
                           process.device) for image, _ in dataset]
        if not values:
            raise ValueError("the dataloader's dataset is empty")
        best = int(np.argmax(values))
        return values[best], torch.as_tensor(dataset[best][0]).squeeze(0)

    @staticmethod
    def masked(process: Any, mask: str | None, **mask_params: Any) -> Any:
        """The process's MEI(s) masked (:func:`~mei.meitorch.tools.masks.mask_image`, background its ``bias``)."""
        return mask_image(process.mei, mask, _bias(process), **mask_params)

    @staticmethod
    def masked_responses_process(process: Any, operation: Operation, mask: str | None = "gaussian",
                                 **mask_params: Any) -> tuple[float, Any]:
        """The operation's response to the masked MEI(s) and the masked image (meitorch misspells the
        argument ``operatiom``)."""
        _, masked_values, masked_images = Analyze.masked_responses(
            [process.mei], operation, mask, _bias(process), process.device, **mask_params)
        return masked_values[0], masked_images[0]

    @staticmethod
    def jittered_responses(process: Any, operation: Operation, jitter_size: int) -> tuple[Tensor, list[Tensor]]:
        """Responses to the MEI(s) shifted circularly by ``-jitter_size .. jitter_size`` pixels along the height
        and the width: ``(activations (2j+1, 2j+1), the shifted images)``, row = vertical shift."""
        shifts = range(-int(jitter_size), int(jitter_size) + 1)
        values = torch.empty(len(shifts), len(shifts))
        shifted = []
        for (iy, dy), (ix, dx) in product(enumerate(shifts), enumerate(shifts)):
            image = roll(roll(process.mei, dy, -2), dx, -1)
            shifted.append(image)
            values[iy, ix] = response(operation, image, process.device)
        return values, shifted

    @staticmethod
    def shifted_response(process: Any, operation: Operation, x_shift: int, y_shift: int) -> tuple[float, Tensor]:
        """The response to the MEI(s) shifted circularly by ``x_shift`` pixels along the width and ``y_shift``
        along the height, and the shifted image."""
        image = roll(roll(process.mei, x_shift, -1), y_shift, -2)
        return response(operation, image, process.device), image

    @staticmethod
    def masked_responses(images: Iterable[Any], operation: Operation, mask: str | None = "gaussian",
                         bias: float = 0, device: str | torch.device = "cpu",
                         **mask_params: Any) -> tuple[list[float], list[float], list[Any]]:
        """For each image: the response to it, the response to it masked (``mask`` as in
        :func:`~mei.meitorch.tools.masks.mask_image`, background ``bias``), and the masked image."""
        originals, masked_values, masked_images = [], [], []
        for image in images:
            originals.append(response(operation, image, device))
            masked = mask_image(image, mask, bias, operation=operation, device=device, **mask_params)
            masked_images.append(masked)
            masked_values.append(response(operation, masked, device))
        return originals, masked_values, masked_images

    @staticmethod
    def compute_spatial_frequency(img: Any) -> tuple[Tensor, Tensor, Tensor]:
        """The magnitude of the image's centred 2-D Fourier transform (per channel for ``(C, H, W)``) with the
        frequencies of its columns and rows: ``(freq_cols, freq_rows, magnitude)`` (no plot; meitorch shows one)."""
        return spatial_frequency(img)


__all__ = ["Analyze", "radial_power_spectrum", "high_frequency_fraction", "similarity_matrix", "response"]
