"""Initial guesses: ``initial(shape) -> tensor`` (on the CPU; the engine moves it to the device).

The package's initials take the shape either way, ``initial(shape)`` or sinzlab/mei's ``initial(*shape)``;
:func:`create_initial` calls any initial with the convention it declares (a subclass of sinzlab's
:class:`InitialGuessCreator`, or a ``__call__(self, *shape)``, gets the sizes one by one).

Random initials draw image by image from the engine's seeded streams (:mod:`mei.engine.rng`), so a batch of K
images starts exactly where K separate runs with the same seeds would.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from .engine import rng
from .engine.component import Component, check_number, component
from .engine.errors import HyperparameterError


class InitialGuessCreator(abc.ABC):
    """sinzlab/mei's interface of initial guesses: ``__call__(*shape) -> Tensor``.

    Subclass it (as sinzlab/mei's docs say) and the engine calls your initial with the sizes one by one,
    ``initial(1, 1, 32, 32)``.
    """

    @abc.abstractmethod
    def __call__(self, *shape: int) -> Tensor:
        """An initial guess of ``shape``."""


def _shape_of(args: tuple[Any, ...]) -> tuple[int, ...]:
    """The shape from ``initial(shape)`` or ``initial(*shape)``."""
    if len(args) == 1 and isinstance(args[0], (Sequence, torch.Size)) and not isinstance(args[0], str):
        return tuple(args[0])
    return tuple(args)


def takes_sizes(initial: Callable[..., Any]) -> bool:
    """Whether ``initial`` is called ``initial(*shape)`` (sinzlab/mei's convention) rather than ``initial(shape)``."""
    if isinstance(initial, InitialGuessCreator) and not isinstance(initial, Component):
        return True
    if isinstance(initial, Component):
        return False
    try:
        parameters = inspect.signature(initial).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters)


def create_initial(initial: Callable[..., Tensor], shape: Sequence[int]) -> Tensor:
    """Call ``initial`` for ``shape`` with the convention it takes (see :func:`takes_sizes`)."""
    shape = tuple(int(s) for s in shape)
    return initial(*shape) if takes_sizes(initial) else initial(shape)


def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise ValueError(f"an input shape is (images, ...) with positive sizes, got {shape}")
    return shape


@component("initial")
class RandomNormal(Component, InitialGuessCreator):
    """Gaussian noise, ``mean + std * N(0, 1)``.

    Args:
        mean (float, optional): Default: 0.
        std (float, optional): Default: 1.
    """

    _repr_fields: tuple[str, ...] = ("mean", "std")

    def __init__(self, mean: float = 0.0, std: float = 1.0) -> None:
        self.mean = check_number("mean", mean)
        self.std = check_number("std", std, minimum=0)

    @staticmethod
    def _create_random_tensor(*shape: int) -> Tensor:
        """Standard-normal noise of ``shape`` from the engine's seeded streams (sinzlab/mei's hook name)."""
        return rng.randn(shape)

    def __call__(self, *shape: Any) -> Tensor:
        noise = self._create_random_tensor(*_check_shape(_shape_of(shape)))
        return noise if (self.std, self.mean) == (1, 0) else noise * self.std + self.mean

    def __repr__(self) -> str:
        if type(self) is RandomNormal and (self.mean, self.std) == (0, 1):
            return "RandomNormal()"  # as sinzlab/mei writes its (parameterless) RandomNormal
        return super().__repr__()


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

    def __call__(self, *shape: Any) -> Tensor:
        shape = _check_shape(_shape_of(shape))
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

    def __call__(self, *shape: Any) -> Tensor:
        out = super().__call__(*shape)
        out[:, self.null_channel] = self.null_value
        return out


@component("initial")
class RandomUniform(Component, InitialGuessCreator):
    """Uniform noise in ``[low, high)`` (e.g. a random Fourier phase in ``[-pi, pi)`` for MACO), from the engine's
    seeded streams.

    Args:
        low (float, optional): Default: 0.
        high (float, optional): Default: 1.
    """

    _repr_fields = ("low", "high")

    def __init__(self, low: float = 0.0, high: float = 1.0) -> None:
        self.low = check_number("low", low)
        self.high = check_number("high", high)
        if not self.high > self.low:
            raise HyperparameterError("high", f"must be greater than low ({low}), got {high}")

    def __call__(self, *shape: Any) -> Tensor:
        return self.low + (self.high - self.low) * rng.rand(_check_shape(_shape_of(shape)))


@component("initial")
class Constant(Component, InitialGuessCreator):
    """Every entry equal to ``value`` (e.g. a grey image).

    Args:
        value (float, optional): Default: 0.
    """

    _repr_fields = ("value",)

    def __init__(self, value: float = 0.0) -> None:
        self.value = check_number("value", value)

    def __call__(self, *shape: Any) -> Tensor:
        return torch.full(_check_shape(_shape_of(shape)), float(self.value))
