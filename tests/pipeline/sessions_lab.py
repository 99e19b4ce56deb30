"""A two-session lab for the analysis tables: neurons of two known types recorded in two sessions.

Every neuron is a softplus of one of two oriented gratings in a Gaussian window (type ``A`` at 0 degrees, ``B``
at 90 degrees, 0.2 cycles/pixel): session ``s1`` holds A, A, B and session ``s2`` B, B, A, so a clustering of
all neurons together finds the types across the sessions. The model is fixed (the trainer does not change it).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from .lab import _Recording  # a TensorDataset with neuron ids, as sinzlab datasets have

SIZE = 12
SESSIONS = {"s1": "AAB", "s2": "BBA"}
ORIENTATIONS = {"A": 0.0, "B": 90.0}


def filter_of(kind: str) -> torch.Tensor:
    """The unit-norm ``(SIZE, SIZE)`` receptive field of type ``kind``."""
    ys, xs = torch.meshgrid(torch.arange(SIZE) - (SIZE - 1) / 2, torch.arange(SIZE) - (SIZE - 1) / 2,
                            indexing="ij")
    theta = math.radians(ORIENTATIONS[kind])
    u = xs * math.cos(theta) + ys * math.sin(theta)
    field = torch.exp(-(xs**2 + ys**2) / (2 * 3.0**2)) * torch.cos(2 * math.pi * 0.2 * u)
    return field / field.norm()


def dataset_fn(seed: int) -> dict:
    """Two sessions of random images; neuron ids 0-2 in ``s1`` and 10-12 in ``s2``."""
    generator = torch.Generator().manual_seed(seed)
    loaders = {}
    for index, (data_key, kinds) in enumerate(SESSIONS.items()):
        images = torch.randn(4, 1, SIZE, SIZE, generator=generator)
        recording = _Recording(images, torch.rand(4, len(kinds), generator=generator),
                               list(range(10 * index, 10 * index + len(kinds))))
        loaders[data_key] = DataLoader(recording, batch_size=4)
    return {"train": loaders}


class TwoSessionModel(nn.Module):
    """``softplus(4 <x, field>)`` of each neuron of the session ``data_key`` names."""

    def __init__(self) -> None:
        super().__init__()
        for data_key, kinds in SESSIONS.items():
            self.register_buffer(f"fields_{data_key}", torch.stack([filter_of(kind) for kind in kinds]).flatten(1))
        self.unused = nn.Parameter(torch.zeros(1))  # something for the trainer's state dict

    def forward(self, x: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
        if data_key not in SESSIONS:
            raise KeyError(f"a two-session model needs data_key 's1' or 's2', got {data_key!r}")
        return nn.functional.softplus(4.0 * x.flatten(1) @ getattr(self, f"fields_{data_key}").T)


def model_fn(dataloaders: Any, seed: int, data_info: dict | None = None) -> TwoSessionModel:
    return TwoSessionModel()


def trainer_fn(model: nn.Module, dataloaders: dict, seed: int, uid: Any = None, cb: Any = None) -> tuple:
    return 1.0, {}, model.state_dict()
