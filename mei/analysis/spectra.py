"""Spatial-frequency content of MEIs: radially averaged power spectra, the peak frequency, the share of power at
high frequencies."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..engine.kernels import radial_frequency


def as_image(x: Tensor | np.ndarray) -> Tensor:
    """A 2-D float tensor from an MEI of shape ``(h, w)``, ``(1, h, w)`` or ``(1, 1, h, w)``."""
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x, dtype=torch.float64)
    while x.dim() > 2 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 2:
        raise ValueError(f"expected one grayscale image (h, w), got shape {tuple(x.shape)}")
    return x


def _power_2d(mei: Tensor, pad_to: int) -> tuple[Tensor, Tensor]:
    """Power spectrum of the zero-mean image, zero-padded to ``pad_to`` x ``pad_to``; and each bin's radius."""
    x = as_image(mei)
    size = max(pad_to, *x.shape)
    power = torch.fft.fft2(x - x.mean(), s=(size, size)).abs() ** 2
    return power, radial_frequency(size, size, dtype=torch.float64)


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


def radial_power_spectrum(images: Tensor) -> tuple[Tensor, Tensor]:
    """Mean power at each integer radial frequency ``r`` (cycles per image), DC included at ``r = 0``.

    Returns:
        tuple: ``(frequencies, power)``, both 1-D, frequencies ``0 .. min(H, W) // 2``.
    """
    images = images.detach().float().cpu()
    h, w = images.shape[-2:]
    power = torch.fft.fft2(images).abs().pow(2).reshape(-1, h, w).mean(0)
    radius = radial_frequency(h, w, unit="cycles/image").round().long()
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
    radius = radial_frequency(h, w, unit="nyquist")
    return float(power[radius > cutoff].sum() / power.sum().clamp_min(1e-30))
