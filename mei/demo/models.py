"""The demo's model of the population: a small convolutional core shared by all neurons, one readout each.

The core is two convolutions with ELU nonlinearities; the readout of each neuron is factorized into a spatial
mask and a vector of feature weights (Klindt et al. 2017); the output nonlinearity ``ELU + 1`` keeps rates
positive, as a Poisson loss needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn


class Core(nn.Module):
    """Two convolutions with ELU: ``(images, 1, h, w) -> (images, channels, h, w)`` (same padding).

    Args:
        channels (int, optional): feature channels. Default: 16.
        kernel_size (int, optional): size of the first (odd) kernel. Default: 13.
        kernel_size2 (int, optional): size of the second (odd) kernel. Default: 3.
    """

    def __init__(self, channels: int = 16, kernel_size: int = 13, kernel_size2: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, kernel_size, padding=kernel_size // 2)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size2, padding=kernel_size2 // 2)
        self.nonlinearity = nn.ELU()

    def forward(self, x: Tensor) -> Tensor:
        return self.nonlinearity(self.conv2(self.nonlinearity(self.conv1(x))))


class FactorizedReadout(nn.Module):
    """One neuron per row: ``sum_{c, y, x} mask[n, y, x] * features[n, c] * core[c, y, x] + bias[n]``.

    Args:
        n_neurons (int): number of neurons.
        channels (int): channels of the core's output.
        height, width (int): spatial size of the core's output.
    """

    def __init__(self, n_neurons: int, channels: int, height: int, width: int) -> None:
        super().__init__()
        self.mask = nn.Parameter(torch.full((n_neurons, height, width), 1.0 / (height * width)))
        self.features = nn.Parameter(torch.randn(n_neurons, channels) / channels**0.5)
        self.bias = nn.Parameter(torch.zeros(n_neurons))

    def forward(self, core: Tensor) -> Tensor:
        pooled = torch.einsum("bcyx,nyx->bnc", core, self.mask)
        return (pooled * self.features).sum(-1) + self.bias

    def regularizer(self) -> Tensor:
        """The L1 penalty that keeps each mask sparse (spatially localized)."""
        return self.mask.abs().sum(dim=(1, 2)).mean() * self.features.abs().sum(dim=1).mean()


class DemoModel(nn.Module):
    """Core + factorized readout + ``ELU + 1``: images ``(b, 1, h, w)`` -> rates ``(b, n_neurons)``.

    Args:
        n_neurons (int): number of neurons.
        height, width (int): image size.
        channels (int, optional): core channels. Default: 16.
        kernel_size (int, optional): first-layer kernel size. Default: 13.
        kernel_size2 (int, optional): second-layer kernel size. Default: 3.
    """

    def __init__(self, n_neurons: int, height: int, width: int, channels: int = 16, kernel_size: int = 13,
                 kernel_size2: int = 3) -> None:
        super().__init__()
        self.core = Core(channels, kernel_size, kernel_size2)
        self.readout = FactorizedReadout(n_neurons, channels, height, width)

    def forward(self, x: Tensor, **_: Any) -> Tensor:
        return nn.functional.elu(self.readout(self.core(x))) + 1.0

    def aligned(self, offsets: Tensor, units: Sequence[int] | None = None) -> DemoModel:
        """A copy whose output ``j`` is neuron ``units[j]`` answering to the input moved by ``offsets[j]``
        (``(dx, dy)`` whole pixels): its readout mask moved back by the offset, as centring a readout does
        (the core is translation-equivariant, so this equals moving the input, up to the image borders). The
        cheap form of :class:`mei.analysis.mds.AlignedUnits`, which the most discriminative stimuli use when a
        model has it: one image per stimulus instead of one per neuron."""
        from ..analysis.mds import translate

        readout = self.readout
        offsets = torch.as_tensor(offsets, device=readout.mask.device).long().reshape(-1, 2)
        chosen = torch.arange(len(offsets)) if units is None else torch.as_tensor(list(units), dtype=torch.long)
        with torch.random.fork_rng(devices=[]):  # its random initial features are overwritten below
            moved = FactorizedReadout(len(chosen), readout.features.shape[1], *readout.mask.shape[1:])
        with torch.no_grad():
            moved.mask.copy_(translate(readout.mask[chosen], -offsets))
            moved.features.copy_(readout.features[chosen])
            moved.bias.copy_(readout.bias[chosen])
        moved.requires_grad_(readout.mask.requires_grad).to(readout.mask.device)
        copy = DemoModel.__new__(DemoModel)
        nn.Module.__init__(copy)
        copy.core, copy.readout = self.core, moved
        return copy.train(self.training)


def build_model(n_neurons: int, height: int, width: int, seed: int, **kwargs: Any) -> DemoModel:
    """A freshly initialized :class:`DemoModel`; ``seed`` fixes its initial weights (the caller's RNG is kept)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DemoModel(n_neurons, height, width, **kwargs)
