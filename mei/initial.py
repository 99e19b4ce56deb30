"""Initial guesses: ``initial(shape) -> tensor`` (on the CPU; the engine moves it to the device).

Random initials draw image by image from the engine's seeded streams (:mod:`mei.engine.rng`), so a batch of K
images starts exactly where K separate runs with the same seeds would.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .engine import rng
from .engine.component import Component, check_number, component


def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise ValueError(f"an input shape is (images, ...) with positive sizes, got {shape}")
    return shape


@component("initial")
class RandomNormal(Component):
    """Gaussian noise, ``mean + std * N(0, 1)``.

    Args:
        mean (float, optional): Default: 0.
        std (float, optional): Default: 1.
    """

    _repr_fields: tuple[str, ...] = ("mean", "std")

    def __init__(self, mean: float = 0.0, std: float = 1.0) -> None:
        self.mean = check_number("mean", mean)
        self.std = check_number("std", std, minimum=0)

    def __call__(self, shape: Sequence[int]) -> Tensor:
        return rng.randn(_check_shape(shape)) * self.std + self.mean


@component("initial")
class RandomNormalSelectedChannels(RandomNormal):
    """Gaussian noise in the ``selected_channels`` (dimension 1); the others hold ``fill_value``.

    Args:
        selected_channels (int | list[int]): channels that get noise.
        fill_value (float, optional): value of the other channels. Default: 0.
        mean, std (float, optional): as in :class:`RandomNormal`.
    """

    _repr_fields = ("selected_channels", "fill_value", "mean", "std")

    def __init__(self, selected_channels: int | Sequence[int], fill_value: float = 0.0,
                 mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__(mean, std)
        channels = [selected_channels] if isinstance(selected_channels, int) else list(selected_channels)
        self.selected_channels = [check_number("selected_channels", c, minimum=0, integer=True) for c in channels]
        self.fill_value = check_number("fill_value", fill_value)

    def __call__(self, shape: Sequence[int]) -> Tensor:
        shape = _check_shape(shape)
        if max(self.selected_channels) >= shape[1]:
            raise ValueError(f"selected_channels {self.selected_channels} out of range for {shape[1]} channels")
        noise = super().__call__(shape)
        out = torch.full(shape, float(self.fill_value))
        out[:, self.selected_channels] = noise[:, self.selected_channels]
        return out


@component("initial")
class RandomNormalNullChannel(RandomNormal):
    """Gaussian noise with one channel set to ``null_value`` (the sinzlab/mei component of that name).

    Args:
        null_channel (int): the channel to fill.
        null_value (float, optional): its value. Default: 0.
    """

    _repr_fields = ("null_channel", "null_value")

    def __init__(self, null_channel: int, null_value: float = 0.0) -> None:
        super().__init__()
        self.null_channel = check_number("null_channel", null_channel, minimum=0, integer=True)
        self.null_value = check_number("null_value", null_value)

    def __call__(self, shape: Sequence[int]) -> Tensor:
        out = super().__call__(shape)
        out[:, self.null_channel] = self.null_value
        return out


@component("initial")
class Constant(Component):
    """Every entry equal to ``value`` (e.g. a grey image).

    Args:
        value (float, optional): Default: 0.
    """

    _repr_fields = ("value",)

    def __init__(self, value: float = 0.0) -> None:
        self.value = check_number("value", value)

    def __call__(self, shape: Sequence[int]) -> Tensor:
        return torch.full(_check_shape(shape), float(self.value))
