"""Tiny spatio-temporal models with known optima, built in the tests (no downloads)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SHAPE = (1, 2, 8, 9, 9)  # (images, channels, time, height, width)


def gabor_movie(shape: tuple[int, ...] = SHAPE[1:], frequency: float = 0.5, speed: float = 0.6,
                phase: float = 0.0) -> Tensor:
    """A drifting Gabor ``(C, T, H, W)`` under a temporal envelope, channel ``c`` scaled by ``(-1)^c (c+1)``."""
    c, t, h, w = shape
    tt = torch.arange(t, dtype=torch.float32)[:, None, None]
    yy = torch.arange(h, dtype=torch.float32)[None, :, None] - (h - 1) / 2
    xx = torch.arange(w, dtype=torch.float32)[None, None, :] - (w - 1) / 2
    envelope = torch.exp(-(xx**2 + yy**2) / (2 * (h / 4) ** 2)) * torch.exp(-((tt - t / 2) ** 2) / (2 * (t / 3) ** 2))
    carrier = torch.cos(frequency * (xx - speed * tt) * 2 + phase)
    frames = envelope * carrier
    return torch.stack([frames * (-1) ** i * (1 + 0.5 * i) for i in range(c)])


class LinearFilterModel(nn.Module):
    """Units ``u`` with spatio-temporal filters ``filters[u]`` ``(C, Tk, H, W)``, applied as a valid convolution
    in time: output ``(images, units, T - Tk + 1)``. With ``Tk = T`` each unit answers ``<filter_u, x>`` in one bin.
    """

    def __init__(self, filters: Tensor) -> None:
        super().__init__()
        self.register_buffer("filters", filters.clone())

    def forward(self, x: Tensor) -> Tensor:
        return F.conv3d(x, self.filters).flatten(2)


class TwoSessionModel(nn.Module):
    """A shared core with one linear readout per session, chosen by the ``data_key`` forward keyword."""

    def __init__(self, filters: Mapping[str, Tensor]) -> None:
        super().__init__()
        self.readouts = nn.ModuleDict({key: LinearFilterModel(f) for key, f in filters.items()})

    def forward(self, x: Tensor, data_key: str | None = None) -> Tensor:
        if data_key is None:
            raise TypeError("a multi-session model needs data_key")
        return self.readouts[data_key](x)


def session_filters(seed: int = 0) -> dict[str, Tensor]:
    """Two sessions with three units each; unit ``u`` of session ``s`` has its own Gabor movie."""
    out = {}
    for s, key in enumerate(["session-a", "session-b"]):
        out[key] = torch.stack([
            gabor_movie(frequency=0.4 + 0.25 * u, speed=0.5 - s, phase=0.7 * u + 2.1 * s) for u in range(3)
        ])
    return out


class TinyConvNet(nn.Module):
    """A two-layer 3-D CNN used for the inner-neuron objective."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.core = nn.Sequential(nn.Conv3d(2, 4, 3, padding=1), nn.ELU(), nn.Conv3d(4, 3, 3, padding=1))
        self.readout = nn.Linear(3, 5)

    def forward(self, x: Tensor) -> Tensor:
        features = self.core(x).mean(dim=(-2, -1))  # (N, 3, T)
        return self.readout(features.transpose(1, 2)).transpose(1, 2)  # (N, 5, T)
