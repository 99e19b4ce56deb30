"""Small models whose preferred patterns are known in closed form."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

PERIOD = 6.0
ORIENTATIONS = 4


def grating(size: int, angle: float, phase: float = 0.0, period: float = PERIOD) -> Tensor:
    """A sinusoidal grating ``(size, size)`` whose stripes run at ``angle`` (radians), unit RMS."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    y, x = torch.meshgrid(r, r, indexing="ij")
    wave = torch.cos(2 * math.pi * (x * math.cos(angle) + y * math.sin(angle)) / period + phase)
    return (wave / wave.pow(2).mean().sqrt()).float()


def best_phase_correlation(image: Tensor, angle: float, period: float = PERIOD) -> float:
    """Correlation of a grey image with the grating of ``angle`` at its best phase (quadrature pair)."""
    grey = image.mean(dim=0).double()
    grey = grey - grey.mean()
    size = grey.shape[-1]
    cos, sin = grating(size, angle, 0.0, period).double(), grating(size, angle, math.pi / 2, period).double()
    norm = grey.norm() * cos.norm()
    return float(((grey * cos).sum() ** 2 + (grey * sin).sum() ** 2).sqrt() / norm)


class GratingNet(nn.Module):
    """One conv layer whose filters are luminance gratings at ``ORIENTATIONS`` orientations, then a ReLU."""

    def __init__(self, kernel: int = 13) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, ORIENTATIONS, kernel, padding=kernel // 2, bias=False)
        filters = torch.stack([grating(kernel, math.pi * k / ORIENTATIONS) for k in range(ORIENTATIONS)])
        with torch.no_grad():
            self.conv.weight.copy_(filters[:, None].expand(-1, 3, -1, -1) / (3 * kernel))
        self.relu = nn.ReLU()
        self.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.conv(x - 0.5))


class LinearFeature(nn.Module):
    """``x -> A x`` (layer ``"hidden"``) ``-> v . (A x)`` (layer ``"readout"``): a linear feature of a linear layer."""

    def __init__(self, shape: tuple[int, ...] = (3, 8, 8), hidden: int = 16, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        n = math.prod(shape)
        self.flatten = nn.Flatten()
        self.hidden = nn.Linear(n, hidden, bias=False)
        self.readout = nn.Linear(hidden, 1, bias=False)
        with torch.no_grad():
            self.hidden.weight.copy_(torch.randn(hidden, n, generator=generator) / math.sqrt(n))
            self.readout.weight.copy_(torch.randn(1, hidden, generator=generator))
        self.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        return self.readout(self.hidden(self.flatten(x)))


class ChannelMeanFeature(nn.Module):
    """``x -> `` each channel's spatial mean (layer ``"hidden"``) ``-> v . means`` (layer ``"readout"``): a linear
    feature invariant under circular shifts of the image."""

    def __init__(self, channels: int = 3, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.hidden = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.readout = nn.Linear(channels, 1, bias=False)
        with torch.no_grad():
            self.readout.weight.copy_(torch.randn(1, channels, generator=generator))
        self.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        return self.readout(self.hidden(x))
