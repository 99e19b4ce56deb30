"""Parametric stimuli for in-silico tuning: static gratings and Gabors, drifting gratings, moving bars, the chirp.

Conventions (the same as :func:`mei.demo.population.gabor`): images are ``(height, width)`` tensors with mean
gray 0; ``orientation`` is the angle of the carrier's wave vector in degrees (0: the luminance varies along x,
i.e. vertical stripes), ``direction`` the angle a pattern moves towards (degrees, 0-360, y pointing down the
rows), ``spatial_frequency`` in cycles per pixel, ``phase`` in degrees measured at ``centre`` (default: the
image centre), ``contrast`` the peak amplitude, ``size`` the diameter of a circular aperture in pixels
(``None``: full field). Movies are ``(frames, height, width)``; :func:`batch` stacks stimuli into a model input.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor


def _column(value: Any) -> Tensor:
    """A parameter as a ``(n, 1, 1)`` float tensor (a number is ``n = 1``)."""
    return torch.as_tensor(value, dtype=torch.float32).reshape(-1, 1, 1)


def _coordinates(height: int, width: int, orientation: Any,
                 centre: Any = None) -> tuple[Tensor, Tensor, Tensor]:
    """``(u, v, r)`` ``(n, height, width)``: positions along and across each wave vector, distance from the centre.

    ``orientation`` is a number or ``(n,)`` degrees; ``centre`` ``(x, y)`` or ``(n, 2)`` pixels.
    """
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be >= 1, got {height} x {width}")
    centres = torch.tensor([[(width - 1) / 2, (height - 1) / 2]]) if centre is None else torch.as_tensor(
        centre, dtype=torch.float32).reshape(-1, 2)
    y = torch.arange(height, dtype=torch.float32)[None, :, None] - centres[:, 1, None, None]
    x = torch.arange(width, dtype=torch.float32)[None, None, :] - centres[:, 0, None, None]
    theta = torch.deg2rad(_column(orientation))
    u = x * torch.cos(theta) + y * torch.sin(theta)
    v = -x * torch.sin(theta) + y * torch.cos(theta)
    return u, v, (x**2 + y**2).sqrt()


def _aperture(r: Tensor, size: Any) -> Tensor | float:
    if size is None:
        return 1.0
    diameter = _column(size)
    if bool((diameter <= 0).any()):
        raise ValueError(f"size must be > 0 (an aperture diameter in pixels) or None, got {size}")
    return (r <= diameter / 2).float()


def gratings(height: int, width: int, orientation: Any, spatial_frequency: Any, phase: Any = 0.0,
             contrast: Any = 1.0, size: Any = None, centre: Any = None) -> Tensor:
    """Many gratings at once, ``(n, height, width)``: each parameter a number or ``(n,)`` values (``centre``
    ``(x, y)`` or ``(n, 2)``), broadcast against each other; see :func:`grating`."""
    frequency = _column(spatial_frequency)
    if bool((frequency < 0).any()):
        raise ValueError(f"spatial_frequency must be >= 0 cycles/pixel, got {spatial_frequency}")
    u, _, r = _coordinates(height, width, orientation, centre)
    wave = torch.cos(2 * math.pi * frequency * u + torch.deg2rad(_column(phase)))
    return _column(contrast) * wave * _aperture(r, size)


def grating(height: int, width: int, orientation: float, spatial_frequency: float, phase: float = 0.0,
            contrast: float = 1.0, size: float | None = None, centre: Sequence[float] | None = None) -> Tensor:
    """A sinusoidal grating ``contrast * cos(2 pi f u + phase)`` ``(height, width)``, optionally in a circular
    aperture of diameter ``size``."""
    return gratings(height, width, orientation, spatial_frequency, phase, contrast, size, centre)[0]


def gabor_patch(height: int, width: int, orientation: float, spatial_frequency: float, phase: float = 0.0,
                contrast: float = 1.0, sigma: float | None = None, centre: Sequence[float] | None = None) -> Tensor:
    """A grating under a Gaussian envelope of width ``sigma`` pixels (default ``0.45 / spatial_frequency``)."""
    if spatial_frequency <= 0:
        raise ValueError(f"spatial_frequency must be > 0 cycles/pixel, got {spatial_frequency}")
    sigma = 0.45 / spatial_frequency if sigma is None else float(sigma)
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0 pixels, got {sigma}")
    _, _, r = _coordinates(height, width, orientation, centre)
    return grating(height, width, orientation, spatial_frequency, phase, contrast, None, centre) * torch.exp(
        -(r[0] ** 2) / (2 * sigma**2))


def drifting_grating(frames: int, height: int, width: int, direction: float, spatial_frequency: float,
                     temporal_frequency: float, phase: float = 0.0, contrast: float = 1.0,
                     size: float | None = None, centre: Sequence[float] | None = None) -> Tensor:
    """A grating moving towards ``direction`` at ``temporal_frequency`` cycles per frame: ``(frames, h, w)``."""
    _check_frames(frames)
    phases = phase - 360.0 * temporal_frequency * torch.arange(int(frames), dtype=torch.float32)
    return gratings(height, width, direction, spatial_frequency, phases, contrast, size, centre)


def moving_bar(frames: int, height: int, width: int, direction: float, bar_width: float = 4.0,
               contrast: float = 1.0, length: float | None = None, centre: Sequence[float] | None = None) -> Tensor:
    """A bright bar (dark for negative ``contrast``), perpendicular to ``direction``, crossing the image
    through ``centre`` towards ``direction`` at constant speed over ``frames``: ``(frames, h, w)``.

    ``length`` limits the bar's extent along itself (default: infinite).
    """
    _check_frames(frames)
    if bar_width <= 0:
        raise ValueError(f"bar_width must be > 0 pixels, got {bar_width}")
    u, v, _ = _coordinates(height, width, direction, centre)
    u, v = u[0], v[0]
    extent = float(u.abs().max()) + bar_width
    positions = torch.linspace(-extent, extent, frames)
    along = 1.0 if length is None else (v.abs() <= length / 2).float()
    return torch.stack([contrast * ((u - p).abs() <= bar_width / 2).float() * along for p in positions])


def chirp(frame_rate: float = 30.0, step: float = 3.0, gray: float = 2.0, sweep: float = 8.0,
          start_frequency: float = 0.5, stop_frequency: float = 8.0, modulation: float = 8.0,
          modulation_frequency: float = 2.0, contrast: float = 1.0) -> Tensor:
    """The full-field chirp of retina experiments (Baden et al. 2016), one intensity per frame ``(frames,)``.

    Gray, a light step (``step`` s ON then ``step`` s OFF), gray, a frequency sweep from ``start_frequency``
    to ``stop_frequency`` Hz over ``sweep`` s, gray, a sinusoid at ``modulation_frequency`` Hz whose amplitude
    rises from 0 to ``contrast`` over ``modulation`` s, gray (``gray`` s each). Durations in seconds.
    """
    if frame_rate <= 0:
        raise ValueError(f"frame_rate must be > 0 frames per second, got {frame_rate}")

    def seconds(duration: float) -> Tensor:
        return torch.arange(max(0, round(duration * frame_rate)), dtype=torch.float32) / frame_rate

    blank = torch.zeros(len(seconds(gray)))
    on, off = torch.full((len(seconds(step)),), contrast), torch.full((len(seconds(step)),), -contrast)
    t = seconds(sweep)
    rate = (stop_frequency - start_frequency) / max(sweep, 1e-9)
    swept = contrast * torch.sin(2 * math.pi * (start_frequency * t + rate * t**2 / 2))
    t = seconds(modulation)
    modulated = contrast * (t / max(modulation, 1e-9)) * torch.sin(2 * math.pi * modulation_frequency * t)
    return torch.cat([blank, on, off, blank, swept, blank, modulated, blank])


def full_field(trace: Tensor, height: int, width: int) -> Tensor:
    """A ``(frames,)`` intensity trace (e.g. :func:`chirp`) as a uniform movie ``(frames, height, width)``."""
    return torch.as_tensor(trace, dtype=torch.float32)[:, None, None].expand(-1, height, width).clone()


def _check_frames(frames: int) -> None:
    if int(frames) < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")


def parameter_grid(**axes: Iterable[Any]) -> list[dict[str, Any]]:
    """Every combination of the given parameter values, last axis fastest: ``[{name: value, ...}, ...]``."""
    names = list(axes)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(list(axes[n]) for n in names))]


def batch(generator: Callable[..., Tensor], grid: Sequence[Mapping[str, Any]], channels: int = 1,
          **fixed: Any) -> Tensor:
    """``generator(**fixed, **params)`` for every ``params`` of ``grid``, as a model input ``(n, channels, ...)``.

    Example: ``batch(grating, parameter_grid(orientation=range(0, 180, 15), phase=[0, 90]), height=36,
    width=64, spatial_frequency=0.1)`` -> ``(24, 1, 36, 64)``.
    """
    if not grid:
        raise ValueError("the parameter grid is empty")
    stimuli = torch.stack([generator(**fixed, **params) for params in grid])
    return stimuli[:, None].expand(-1, channels, *stimuli.shape[1:]).clone()


__all__ = ["gratings", "grating", "gabor_patch", "drifting_grating", "moving_bar", "chirp", "full_field",
           "parameter_grid",
           "batch"]
