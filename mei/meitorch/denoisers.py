"""The ``blur`` key: denoisers applied to the images after each step (``gaussian``, ``tv``, ``bilateral``).

Each denoiser is called as ``denoiser(images, i_iter) -> images`` on a batch whose last two dimensions are
space; every hyperparameter may be a schedule. All three lower the high spatial frequencies of an image:
the Gaussian everywhere, total variation and the bilateral filter mostly away from edges.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..engine import kernels
from ..engine.component import Component
from ..engine.kernels import edge_padding, gaussian_blur, gaussian_kernel1d
from ..optimization import MEI, optimize
from ..stoppers import NumIterations
from .tools.schedules import check_schedulable, value_at


def _as_planes(x: Tensor) -> Tensor:
    """``x`` reshaped to ``(planes, 1, H, W)``."""
    return x.reshape(-1, 1, *x.shape[-2:])


def _pad(planes: Tensor, radius: int) -> Tensor:
    mode = edge_padding("reflect", radius, planes.shape[-2:])
    return F.pad(planes, (radius, radius, radius, radius), mode=mode)


def gaussian_kernel(kernel_size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A normalized 1-D Gaussian of ``kernel_size`` taps (``sigma`` = 0 gives the identity kernel):
    :func:`mei.engine.kernels.gaussian_kernel1d` with ``size=kernel_size``."""
    return gaussian_kernel1d(sigma, dtype=dtype, device=device, size=kernel_size)


class GaussianDenoiser(Component):
    """Separable Gaussian blur with ``kernel_size`` taps of standard deviation ``sigma`` pixels.

    Args:
        kernel_size (int | Schedule): taps per dimension (an odd number keeps the image centred). Default: 3.
        sigma (float | Schedule): standard deviation in pixels; 0 leaves the image unchanged. Default: 1.
    """

    def __init__(self, kernel_size: int = 3, sigma: float = 1.0) -> None:
        self.kernel_size = check_schedulable("kernel_size", kernel_size, minimum=1, integer=True)
        self.sigma = check_schedulable("sigma", sigma, minimum=0)

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        size, sigma = int(round(value_at(self.kernel_size, i_iter))), float(value_at(self.sigma, i_iter))
        if size <= 1 or sigma <= 0:
            return x
        return gaussian_blur(x, sigma, (-1, -2), size=size, padding="reflect")



def total_variation(x: Tensor) -> Tensor:
    """Anisotropic total variation ``sum |dx| + |dy|`` of each image (first dimension):
    :func:`mei.engine.kernels.total_variation`."""
    return kernels.total_variation(x, (-2, -1))


class TVDenoiser(Component):
    """Total-variation denoising: ``num_iters`` gradient steps (rate ``lr``) on
    ``0.5 * ||y - x||^2 + regularization_scaler * TV(y)``, starting at ``y = x``.

    The steps run on the package's engine (:class:`mei.optimization.MEI` with SGD), not on a loop of their own.

    Args:
        regularization_scaler (float | Schedule): weight of the total variation. Default: 0.1.
        lr (float | Schedule): step size. Default: 0.1.
        num_iters (int | Schedule): steps per call; 0 leaves the image unchanged. Default: 5.
    """

    def __init__(self, regularization_scaler: float = 0.1, lr: float = 0.1, num_iters: int = 5) -> None:
        self.regularization_scaler = check_schedulable("regularization_scaler", regularization_scaler, minimum=0)
        self.lr = check_schedulable("lr", lr, minimum=0)
        self.num_iters = check_schedulable("num_iters", num_iters, minimum=0, integer=True)

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



class BilateralDenoiser(Component):
    """Bilateral filter: each pixel becomes the average of its ``kernel_size`` x ``kernel_size`` neighbours,
    weighted by ``exp(-d^2 / (2 sigma_spatial^2)) * exp(-(I_q - I_p)^2 / (2 sigma_color^2))``.

    Large ``sigma_color`` makes it a Gaussian blur; small ``sigma_color`` keeps edges.

    Args:
        kernel_size (int | Schedule): neighbourhood width. Default: 3.
        sigma_color (float | Schedule): intensity scale, > 0. Default: 1.
        sigma_spatial (float | Schedule): distance scale in pixels, > 0. Default: 1.
    """

    def __init__(self, kernel_size: int = 3, sigma_color: float = 1.0, sigma_spatial: float = 1.0) -> None:
        self.kernel_size = check_schedulable("kernel_size", kernel_size, minimum=1, integer=True)
        self.sigma_color = check_schedulable("sigma_color", sigma_color, minimum=0, strict_minimum=True)
        self.sigma_spatial = check_schedulable("sigma_spatial", sigma_spatial, minimum=0, strict_minimum=True)

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



DENOISERS = {"gaussian": GaussianDenoiser, "tv": TVDenoiser, "bilateral": BilateralDenoiser}


def make_denoiser(name: str | None, params: dict) -> GaussianDenoiser | TVDenoiser | BilateralDenoiser | None:
    """The denoiser for the ``blur`` / ``blur_params`` keys (``None`` when ``blur`` is None)."""
    return None if name is None else DENOISERS[name](**params)
