"""Gabor patches at meitorch's path (``meitorch.objective.gabor``): :func:`create_gabor`, the grid of
:func:`create_gabor_loader`, and the default grid and bounds of :class:`~mei.meitorch.linearmei.LinearMEI`.

A Gabor here is a sinusoid of ``wavelength`` pixels starting at ``phase`` degrees, rotated counterclockwise by
``orientation`` degrees (0: horizontal stripes, 90: vertical), under a Gaussian envelope of ``sigma`` pixels,
shifted by ``dy`` / ``dx`` (fractions of the height / width; positive moves down / right), as meitorch draws it.
meitorch builds it by rotating a padded image with spline interpolation; here it is computed in closed form on
the pixel grid (the same picture without interpolation error), in torch, many at once (:func:`gabors`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ..tools.base_transforms import fit_gain_offset

#: The order of a Gabor's parameters in :func:`gabors` and in ``default_gabor_limits``.
PARAMETERS = ("phase", "wavelength", "orientation", "sigma", "dy", "dx")

#: meitorch's default grid of :meth:`LinearMEI.best_gabor` (``height``/``width`` are set to the image's).
default_gabor_ranges: dict[str, Any] = dict(
    height=[32], width=[32],
    phase=[0, 90, 180, 270],
    wavelength=[4, 7, 10, 15, 20],
    orientation=torch.linspace(0, 180, 9)[:-1].tolist(),
    sigma=[2, 3, 5, 7, 9],
    dy=torch.linspace(-0.3, 0.3, 7).tolist(),
    dx=torch.linspace(-0.3, 0.3, 13).tolist(),
)

#: meitorch's bounds of :meth:`LinearMEI.optimal_gabor`, one ``(low, high)`` per entry of :data:`PARAMETERS`.
default_gabor_limits: list[tuple[float, float]] = [
    (0, 360), (4, 20), (0, 180), (2, 9), (-0.35, 0.35), (-0.35, 0.35),
]


def gabors(params: Tensor, height: int, width: int, quantize: bool = True) -> Tensor:
    """Gabor patches ``(N, height, width)`` for ``params`` ``(N, 6)`` in the order of :data:`PARAMETERS`.

    Differentiable in ``params`` (except the translation when ``quantize``). With ``quantize`` the shift is
    ``int(dy * height)`` pixels, as meitorch's; without it the shift is continuous.
    """
    params = params.to(torch.float64)
    phase, wavelength, orientation, sigma, dy, dx = (params[:, k, None, None] for k in range(6))
    shift_y, shift_x = dy * height, dx * width
    if quantize:
        shift_y, shift_x = torch.trunc(shift_y), torch.trunc(shift_x)
    pad = max(height, width)
    rows = torch.arange(height, dtype=torch.float64)[None, :, None] - shift_y - (height - 1) / 2
    cols = torch.arange(width, dtype=torch.float64)[None, None, :] - shift_x - (width - 1) / 2
    theta = torch.deg2rad(orientation)
    along = rows * torch.cos(theta) + cols * torch.sin(theta)  # the unrotated sinusoid's row, from the centre
    degrees = phase + 360.0 / wavelength * (along + (height + 2 * pad - 1) / 2)
    envelope = torch.exp(-(rows ** 2 + cols ** 2) / (2 * sigma ** 2))
    return (torch.sin(torch.deg2rad(degrees)) * envelope).to(torch.float32)


def match_stats(image: Tensor, mean: float, contrast: float, low: float = -1, high: float = 1) -> Tensor:
    """``image`` (any shape) with mean ``mean`` and standard deviation ``contrast`` after clipping to
    ``[low, high]`` (:func:`~mei.meitorch.tools.base_transforms.fit_gain_offset`; the largest reachable
    contrast if ``contrast`` is out of reach), differentiable in ``image``.

    The gain and offset are found without gradient; the gradient flows through the image's own normalization
    ``(image - mean(image)) / std(image)``, so the adjusted image's statistics stay fixed while its pattern
    changes (the search of :meth:`~mei.meitorch.linearmei.LinearMEI.optimal_gabor` needs that).
    """
    delta = image - image.mean()
    spread = delta.std(unbiased=False)
    size = float(spread.detach())
    if size < 1e-12:
        return torch.full_like(image, float(mean)).clamp(low, high)
    flat = delta.detach().to(torch.float64).reshape(-1)
    gain, offset, _ = fit_gain_offset(flat, torch.ones_like(flat), float(mean), float(contrast), low, high)
    return (float(mean) + offset + gain * size * delta / spread).clamp(low, high)


def create_gabor(height: int = 36, width: int = 64, phase: float = 0, wavelength: float = 10,
                 orientation: float = 0, sigma: float = 5, dy: float = 0, dx: float = 0,
                 target_mean: float | None = None, target_contrast: float | None = None,
                 img_min: float = -1, img_max: float = 1) -> Tensor:
    """One Gabor patch ``(height, width)``, float32 (a tensor; meitorch returns a NumPy array).

    Args:
        height, width (int): size in pixels.
        phase (float): where the sinusoid starts, in degrees.
        wavelength (float): period of the sinusoid in pixels (1 / spatial frequency), > 0.
        orientation (float): counterclockwise rotation in degrees (0 is horizontal).
        sigma (float): standard deviation of the Gaussian envelope in pixels, > 0.
        dy, dx (float): translation as a fraction of the height / width, in ``[-1, 1]``.
        target_mean, target_contrast (float, optional): give both to set the mean and the standard deviation
            of the image clipped to ``[img_min, img_max]`` (:func:`match_stats`). Default: unchanged.

    Raises:
        ValueError: a translation outside ``[-1, 1]``, a non-positive wavelength or sigma, or only one of
            ``target_mean`` / ``target_contrast``.
    """
    if abs(dx) > 1 or abs(dy) > 1:
        raise ValueError("Please express translations as factors of the height/width, i.e. a number in [-1, 1]")
    if wavelength <= 0 or sigma <= 0:
        raise ValueError(f"wavelength and sigma must be > 0, got wavelength={wavelength}, sigma={sigma}")
    if (target_mean is None) != (target_contrast is None):
        raise ValueError("If you want to adjust the mean or contrast, you must specify both.")
    params = torch.tensor([[phase, wavelength, orientation, sigma, dy, dx]], dtype=torch.float64)
    image = gabors(params, int(height), int(width))[0]
    if target_mean is not None and target_contrast is not None:
        image = match_stats(image, float(target_mean), float(target_contrast), img_min, img_max)
    return image


def grid(param_ranges: Mapping[str, Sequence[Any]]) -> Iterator[dict[str, Any]]:
    """Every combination of ``param_ranges`` (keys of :func:`create_gabor`), in meitorch's order."""
    keys = list(param_ranges)
    for values in itertools.product(*(list(param_ranges[k]) for k in keys)):
        yield dict(zip(keys, values, strict=True))


def grid_size(param_ranges: Mapping[str, Sequence[Any]]) -> int:
    """The number of Gabors in the grid."""
    return math.prod(len(list(v)) for v in param_ranges.values())


def create_gabor_loader(param_ranges: Mapping[str, Sequence[Any]], load_path: str | None = None,
                        save_path: str | None = None) -> list[dict[str, Any]]:
    """The grid of Gabors: ``[{"image": (H, W) tensor, "params": {name: value}}, ...]``, one per combination.

    ``load_path`` reads a grid saved with ``save_path`` (``torch.save``; read back with ``weights_only=True``,
    never unpickling code; meitorch pickles). The default grid of :class:`LinearMEI` holds 72,800 Gabors;
    :meth:`LinearMEI.best_gabor` evaluates a grid chunk by chunk without building this list.
    """
    if load_path is not None:
        return list(torch.load(load_path, weights_only=True))
    loader = [{"image": create_gabor(**params), "params": params} for params in grid(param_ranges)]
    if save_path is not None:
        torch.save(loader, save_path)
    return loader


__all__ = ["create_gabor", "create_gabor_loader", "gabors", "default_gabor_ranges", "default_gabor_limits",
           "PARAMETERS", "grid", "grid_size"]
