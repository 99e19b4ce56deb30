"""Per-step components built from the config: the augmentation before the model (``scaler``, ``jitter``,
``train_norm``) and the Fourier preconditioning of the gradient (``precond``).

Each takes ``(tensor, i_iter)`` like every engine component and reads scheduled values for that step.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ..engine.component import Component
from ..engine.kernels import filter_spectrum, resample, rescale_norm
from ..preconditioners import fourier_filter
from ..transforms import Jitter
from .tools.schedules import check_schedulable, value_at


def zoom(images: Tensor, factor: float) -> Tensor:
    """Zoom a batch ``(N, C, H, W)`` about its centre by ``factor`` (> 1 zooms in), size kept, edges reflected:
    :func:`mei.engine.kernels.resample`."""
    return resample(images, scale=factor)


class Augmentation(Component):
    """``scaler`` zoom, then ``jitter`` shift, then ``train_norm`` rescaling; any of them may be None/off.

    Args:
        scaler (float | Schedule | None): zoom factor (None or 1: none).
        jitter (int | Schedule | None): largest shift in pixels along height and width (None or 0: none).
        train_norm (float | Schedule | None): L2 norm of each image seen by the model (None: unchanged).
    """

    def __init__(self, scaler: Any = None, jitter: Any = None, train_norm: Any = None) -> None:
        self.scaler = check_schedulable("scaler", scaler, minimum=0, strict_minimum=True, optional=True)
        self.jitter = check_schedulable("jitter", jitter, minimum=0, integer=True, optional=True)
        self.train_norm = check_schedulable("train_norm", train_norm, minimum=0, strict_minimum=True, optional=True)

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


class FourierPrecondition(Component):
    """Scale each spatial frequency ``r`` of the gradient by ``1 / max(1, r^(2*precond))`` (mean gain 1),
    the filter of :class:`mei.preconditioners.FourierSmoothing`, with a scheduled exponent.

    Args:
        precond (float | Schedule | None): fall-off exponent; None or 0 leaves the gradient unchanged.
    """

    def __init__(self, precond: Any = None) -> None:
        self.precond = check_schedulable("precond", precond, minimum=0, optional=True)
        self._cached: tuple[Any, Tensor] | None = None

    def __call__(self, grad: Tensor, i_iter: int) -> Tensor:
        factor = value_at(self.precond, i_iter)
        if not factor:
            return grad
        h, w = grad.shape[-2:]
        key = (float(factor), h, w, grad.device, grad.dtype)
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, fourier_filter(h, w, float(factor), grad.device).to(grad.dtype))
        return filter_spectrum(grad, self._cached[1])
