"""Tiny networks built in the tests (no downloads)."""

import torch
from torch import nn


class Small(nn.Module):
    """conv(3->4) relu conv(4->6) relu, global average pool, linear(6->5); named ``features.N``, ``fc``."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.features = nn.Sequential(
                nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
            )
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(6, 5)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


class Target(nn.Module):
    """``-(x - target)^2`` per pixel: its mean is maximal exactly at ``x = target``."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target)

    def forward(self, x):
        return -((x - self.target) ** 2)


class Quadratic(nn.Module):
    """A model whose layer ``score`` outputs ``-(x - target)^2`` (known optimum ``x = target``)."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.score = Target(target)

    def forward(self, x):
        return self.score(x).flatten(1).sum(1)
