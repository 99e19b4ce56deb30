"""Per-step components built from the config: the augmentation before the model (``scaler``, ``jitter``,
``train_norm``) and the Fourier preconditioning of the gradient (``precond``).

Each takes ``(tensor, i_iter)`` like every engine component and reads scheduled values for that step.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..preconditioners import fourier_filter
from ..transforms import Jitter
from .tools.schedules import value_at


def zoom(images: Tensor, factor: float) -> Tensor:
    """Zoom a batch ``(N, C, H, W)`` about its centre by ``factor`` (> 1 zooms in), size kept, edges reflected."""
    n = images.shape[0]
    theta = torch.zeros(n, 2, 3, dtype=images.dtype, device=images.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / factor
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def rescale_norm(images: Tensor, norm: float) -> Tensor:
    """Each image (first dimension) rescaled to L2 norm ``norm``."""
    norms = images.reshape(images.shape[0], -1).norm(dim=1).clamp_min(1e-12)
    return images * (norm / norms).view(-1, *([1] * (images.dim() - 1)))


class Augmentation:
    """``scaler`` zoom, then ``jitter`` shift, then ``train_norm`` rescaling; any of them may be None/off.

    Args:
        scaler (float | Schedule | None): zoom factor (None or 1: none).
        jitter (int | Schedule | None): largest shift in pixels along height and width (None or 0: none).
        train_norm (float | Schedule | None): L2 norm of each image seen by the model (None: unchanged).
    """

    def __init__(self, scaler: Any = None, jitter: Any = None, train_norm: Any = None) -> None:
        self.scaler, self.jitter, self.train_norm = scaler, jitter, train_norm

    def __call__(self, images: Tensor, i_iter: int) -> Tensor:
        factor = value_at(self.scaler, i_iter)
        if factor is not None and factor != 1:
            images = zoom(images, float(factor))
        shift = value_at(self.jitter, i_iter)
        if shift:
            images = Jitter(int(round(shift)))(images, i_iter)
        norm = value_at(self.train_norm, i_iter)
        if norm is not None:
            images = rescale_norm(images, float(norm))
        return images

    def __repr__(self) -> str:
        return f"Augmentation(scaler={self.scaler!r}, jitter={self.jitter!r}, train_norm={self.train_norm!r})"


class FourierPrecondition:
    """Scale each spatial frequency ``r`` of the gradient by ``1 / max(1, r^(2*precond))`` (mean gain 1),
    the filter of :class:`mei.preconditioners.FourierSmoothing`, with a scheduled exponent.

    Args:
        precond (float | Schedule | None): fall-off exponent; None or 0 leaves the gradient unchanged.
    """

    def __init__(self, precond: Any = None) -> None:
        self.precond = precond
        self._cached: tuple[Any, Tensor] | None = None

    def __call__(self, grad: Tensor, i_iter: int) -> Tensor:
        factor = value_at(self.precond, i_iter)
        if not factor:
            return grad
        h, w = grad.shape[-2:]
        key = (float(factor), h, w, grad.device, grad.dtype)
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, fourier_filter(h, w, float(factor), grad.device).to(grad.dtype))
        return torch.fft.irfft2(torch.fft.rfft2(grad) * self._cached[1], s=(h, w))

    def __repr__(self) -> str:
        return f"FourierPrecondition({self.precond!r})"
