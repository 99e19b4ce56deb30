"""CPPN image parameterization (lucent's ``param.cppn``; Mordvintsev et al. 2018, "Differentiable image
parameterizations"): the image is the output of a small network of 1x1 layers applied to each pixel's
coordinates ``(x, y, r)``, and the network's weights are what is optimized.

All weights of one image are packed into one row of ``param`` ``(batch, n_weights)`` so that the engine
optimizes one tensor, and the batch renders in one batched matrix product per layer.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..engine import rng
from ..optim.images import ImageParameterization

__all__ = ["CPPNImage", "composite_activation"]


def composite_activation(x: Tensor) -> Tensor:
    """lucent's CPPN activation: ``atan(x)`` and ``atan(x)^2``, each roughly unit-variance (channels doubled)."""
    x = torch.atan(x)
    return torch.cat([x / 0.67, x * x / 0.6], dim=1)


class CPPNImage(ImageParameterization):
    """A compositional pattern-producing network per image, ``num_layers`` hidden 1x1 layers.

    Args:
        size (int or tuple[int, int]): height and width.
        channels (int, optional): output channels. Default: 3.
        batch (int, optional): number of images. Default: 1.
        num_hidden_channels (int, optional): width of the hidden layers. Default: 24.
        num_layers (int, optional): hidden layers. Default: 8.

    Initialization as lucent's: weights normal with std ``sqrt(1 / fan_in)``, biases zero, output layer zero
    (so every image starts uniform grey, ``sigmoid(0) = 0.5``). lucent optimizes it with Adam at lr 5e-3.
    """

    coordinates: Tensor

    def __init__(self, size: int | tuple[int, int], channels: int = 3, batch: int = 1,
                 num_hidden_channels: int = 24, num_layers: int = 8) -> None:
        super().__init__()
        height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if min(height, width, channels, batch, num_hidden_channels, num_layers) < 1:
            raise ValueError("CPPNImage needs positive size, channels, batch, num_hidden_channels and num_layers")
        self.size = (height, width)
        r = 3.0 ** 0.5
        ys = torch.linspace(-r, r, height)
        xs = torch.linspace(-r, r, width)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        self.register_buffer("coordinates", torch.stack([grid_x, grid_y, (grid_x**2 + grid_y**2).sqrt()]))
        fan_ins = [3] + [2 * num_hidden_channels] * num_layers
        fan_outs = [num_hidden_channels] * num_layers + [channels]
        self.shapes = list(zip(fan_outs, fan_ins, strict=True))
        self.sizes = [n for out, fan_in in self.shapes for n in (out * fan_in, out)]
        parts = []
        for index, (out, fan_in) in enumerate(self.shapes):
            last = index == len(self.shapes) - 1
            weight = torch.zeros(batch, out * fan_in) if last else rng.randn((batch, out * fan_in)) * math.sqrt(
                1.0 / fan_in)
            parts += [weight, torch.zeros(batch, out)]
        self.param = torch.nn.Parameter(torch.cat(parts, dim=1))

    def render(self, param: Tensor) -> Tensor:
        batch = param.shape[0]
        h = self.coordinates.to(param.dtype).expand(batch, -1, -1, -1)
        chunks = param.split(self.sizes, dim=1)
        for index, (out, fan_in) in enumerate(self.shapes):
            weight = chunks[2 * index].reshape(batch, out, fan_in)
            bias = chunks[2 * index + 1].reshape(batch, out, 1, 1)
            h = torch.einsum("boi,bihw->bohw", weight, h) + bias
            if index < len(self.shapes) - 1:
                h = composite_activation(h)
        return torch.sigmoid(h)

    def extra_repr(self) -> str:
        return f"size={self.size}, layers={len(self.shapes) - 1}, batch={self.param.shape[0]}"
