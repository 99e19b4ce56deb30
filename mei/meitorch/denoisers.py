"""The ``blur`` key: denoisers applied to the images after each step (``gaussian``, ``tv``, ``bilateral``).

Each denoiser is called as ``denoiser(images, i_iter) -> images`` on a batch whose last two dimensions are
space; every hyperparameter may be a schedule. All three lower the high spatial frequencies of an image:
the Gaussian everywhere, total variation and the bilateral filter mostly away from edges.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..optimization import MEI, optimize
from ..stoppers import NumIterations
from .tools.schedules import value_at


def _as_planes(x: Tensor) -> Tensor:
    """``x`` reshaped to ``(planes, 1, H, W)``."""
    return x.reshape(-1, 1, *x.shape[-2:])


def _pad(planes: Tensor, radius: int) -> Tensor:
    h, w = planes.shape[-2:]
    mode = "reflect" if radius < min(h, w) else "replicate"
    return F.pad(planes, (radius, radius, radius, radius), mode=mode)


def gaussian_kernel(kernel_size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A normalized 1-D Gaussian of ``kernel_size`` taps (``sigma`` = 0 gives the identity kernel)."""
    t = torch.arange(kernel_size, dtype=dtype, device=device) - (kernel_size - 1) / 2
    if sigma <= 0:
        return (t.abs() == t.abs().min()).to(dtype) / (t.abs() == t.abs().min()).sum()
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    return kernel / kernel.sum()


class GaussianDenoiser:
    """Separable Gaussian blur with ``kernel_size`` taps of standard deviation ``sigma`` pixels.

    Args:
        kernel_size (int | Schedule): taps per dimension (an odd number keeps the image centred). Default: 3.
        sigma (float | Schedule): standard deviation in pixels; 0 leaves the image unchanged. Default: 1.
    """

    def __init__(self, kernel_size: int = 3, sigma: float = 1.0) -> None:
        self.kernel_size, self.sigma = kernel_size, sigma

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        size, sigma = int(round(value_at(self.kernel_size, i_iter))), float(value_at(self.sigma, i_iter))
        if size <= 1 or sigma <= 0:
            return x
        kernel = gaussian_kernel(size, sigma, x.dtype, x.device)
        planes = _pad(_as_planes(x), size // 2)
        planes = F.conv2d(planes, kernel.view(1, 1, 1, -1))
        planes = F.conv2d(planes, kernel.view(1, 1, -1, 1))
        h, w = x.shape[-2:]
        return planes[..., :h, :w].reshape(x.shape)

    def __repr__(self) -> str:
        return f"GaussianDenoiser(kernel_size={self.kernel_size!r}, sigma={self.sigma!r})"


def total_variation(x: Tensor) -> Tensor:
    """Anisotropic total variation ``sum |dx| + |dy|`` of each image (first dimension)."""
    dy = torch.diff(x, dim=-2).abs().reshape(x.shape[0], -1).sum(1)
    dx = torch.diff(x, dim=-1).abs().reshape(x.shape[0], -1).sum(1)
    return dx + dy


class TVDenoiser:
    """Total-variation denoising: ``num_iters`` gradient steps (rate ``lr``) on
    ``0.5 * ||y - x||^2 + regularization_scaler * TV(y)``, starting at ``y = x``.

    The steps run on the package's engine (:class:`mei.optimization.MEI` with SGD), not on a loop of their own.

    Args:
        regularization_scaler (float | Schedule): weight of the total variation. Default: 0.1.
        lr (float | Schedule): step size. Default: 0.1.
        num_iters (int | Schedule): steps per call; 0 leaves the image unchanged. Default: 5.
    """

    def __init__(self, regularization_scaler: float = 0.1, lr: float = 0.1, num_iters: int = 5) -> None:
        self.regularization_scaler, self.lr, self.num_iters = regularization_scaler, lr, num_iters

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        weight, lr = float(value_at(self.regularization_scaler, i_iter)), float(value_at(self.lr, i_iter))
        n_steps = int(round(value_at(self.num_iters, i_iter)))
        if n_steps < 1 or weight == 0 or lr == 0:
            return x
        target = x.detach().reshape(-1, *x.shape[-2:])

        def denoising_objective(y: Tensor) -> Tensor:
            fidelity = 0.5 * (y - target).pow(2).reshape(y.shape[0], -1).sum(1)
            return -(fidelity + weight * total_variation(y))

        with torch.enable_grad():
            engine = MEI(denoising_objective, target, lambda p: torch.optim.SGD(p, lr=lr))
            _, y = optimize(engine, NumIterations(n_steps))
        return y.reshape(x.shape)

    def __repr__(self) -> str:
        return (f"TVDenoiser(regularization_scaler={self.regularization_scaler!r}, lr={self.lr!r}, "
                f"num_iters={self.num_iters!r})")


class BilateralDenoiser:
    """Bilateral filter: each pixel becomes the average of its ``kernel_size`` x ``kernel_size`` neighbours,
    weighted by ``exp(-d^2 / (2 sigma_spatial^2)) * exp(-(I_q - I_p)^2 / (2 sigma_color^2))``.

    Large ``sigma_color`` makes it a Gaussian blur; small ``sigma_color`` keeps edges.

    Args:
        kernel_size (int | Schedule): neighbourhood width. Default: 3.
        sigma_color (float | Schedule): intensity scale, > 0. Default: 1.
        sigma_spatial (float | Schedule): distance scale in pixels, > 0. Default: 1.
    """

    def __init__(self, kernel_size: int = 3, sigma_color: float = 1.0, sigma_spatial: float = 1.0) -> None:
        self.kernel_size, self.sigma_color, self.sigma_spatial = kernel_size, sigma_color, sigma_spatial

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        size = int(round(value_at(self.kernel_size, i_iter)))
        if size <= 1:
            return x
        sigma_color = float(value_at(self.sigma_color, i_iter))
        sigma_spatial = float(value_at(self.sigma_spatial, i_iter))
        planes = _as_planes(x)
        n, h, w = planes.shape[0], *planes.shape[-2:]
        r = size // 2
        patches = F.unfold(_pad(planes, r), size).view(n, size * size, h + 2 * r - size + 1, w + 2 * r - size + 1)
        patches = patches[..., :h, :w].reshape(n, size * size, h * w)
        offsets = torch.arange(size, dtype=x.dtype, device=x.device) - (size - 1) / 2
        d2 = (offsets[:, None] ** 2 + offsets[None, :] ** 2).reshape(1, -1, 1)
        centre = planes.reshape(n, 1, -1)
        weights = torch.exp(-d2 / (2 * sigma_spatial**2) - (patches - centre) ** 2 / (2 * sigma_color**2))
        out = (weights * patches).sum(1) / weights.sum(1)
        return out.reshape(x.shape)

    def __repr__(self) -> str:
        return (f"BilateralDenoiser(kernel_size={self.kernel_size!r}, sigma_color={self.sigma_color!r}, "
                f"sigma_spatial={self.sigma_spatial!r})")


DENOISERS = {"gaussian": GaussianDenoiser, "tv": TVDenoiser, "bilateral": BilateralDenoiser}


def make_denoiser(name: str | None, params: dict) -> GaussianDenoiser | TVDenoiser | BilateralDenoiser | None:
    """The denoiser for the ``blur`` / ``blur_params`` keys (``None`` when ``blur`` is None)."""
    return None if name is None else DENOISERS[name](**params)
