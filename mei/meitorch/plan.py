"""The set-up of one meitorch generation, before anything runs: the parsed config, the mode's
parameterization (:mod:`mei.meitorch.modes`) and the start it draws.

:mod:`mei.meitorch.runner` runs a generation from it; the result classes built with meitorch's arguments
(``MEI_image(shape, n_samples, **config)``) are the same set-up, not yet run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ..engine import rng
from ..engine.resolve import ConfigError
from .config import parse_config
from .denoisers import make_denoiser
from .modes import ImagePostprocessing, PixelImages, TransformedNoise, VariationalImages


def _parameterization(mode: str, shape: tuple[int, ...], settings: dict[str, Any]) -> Any:
    if mode == "transformation":
        try:
            return TransformedNoise(shape, settings, settings["transform"])
        except TypeError as error:
            raise ConfigError("transform", str(error)) from None
    clip = (settings["bias"], settings["scale"]) if settings["clip"] else None
    post = ImagePostprocessing(make_denoiser(settings["blur"], settings.get("blur_params", {})), settings["norm"], clip)
    return (PixelImages if mode == "pixel" else VariationalImages)(shape, settings, post)


def _n_samples(mode: str, settings: dict[str, Any]) -> int:
    return math.prod(settings["n_samples_per_batch"]) if mode == "variational" else settings["n_samples"]


def prepare(shape: tuple[int, ...], mode: str, config: Mapping[str, Any] | None,
            seed: int) -> tuple[dict[str, Any], Any]:
    """The parsed config of a generation and its mode's parameterization (nothing drawn yet)."""
    settings = parse_config(config or {}, mode, seed)
    if settings["diverse"] and _n_samples(mode, settings) < 2:
        raise ConfigError("diverse", "needs at least 2 samples per step (n_samples or n_samples_per_batch)")
    return settings, _parameterization(mode, shape, settings)


def start(shape: tuple[int, ...], device: torch.device, mode: str, config: Mapping[str, Any] | None,
          seed: int) -> tuple[dict[str, Any], Any, Tensor]:
    """:func:`prepare` and the start of the run :func:`generate` would make: ``(settings, parameterization,
    initial tensor)``, the tensor drawn as the run draws it."""
    settings, parameterization = prepare(shape, mode, config, seed)
    with rng.seeded([seed], devices=[device]):
        initial = parameterization.initial().to(device)
    return settings, parameterization, initial
