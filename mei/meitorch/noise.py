"""Noise for samples and generators, drawn from the run's seeded stream (:mod:`mei.engine.rng`).

It is drawn on the CPU, so a seed gives the same numbers on every device; on a GPU the copy goes through
pinned memory without blocking the host.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..engine import rng


def draw(shape: tuple[int, ...], device: torch.device, laplace: bool = False) -> Tensor:
    """Standard noise of ``shape`` from the run's seeded stream (Laplace with unit scale if ``laplace``)."""
    if laplace:
        u = rng.per_image(1, lambda g: torch.rand(shape, generator=g))[0] - 0.5
        sample = -u.sign() * torch.log1p(-2 * u.abs().clamp_max(0.5 - 1e-7))
    else:
        sample = rng.per_image(1, lambda g: torch.randn(shape, generator=g))[0]
    if device.type == "cuda":  # drawn on the CPU (same numbers on every device), copied without blocking
        return sample.pin_memory().to(device, non_blocking=True)
    return sample.to(device)
