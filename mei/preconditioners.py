"""Preconditioners reshape the gradient before the optimizer step: ``precondition(grad, i_iter) -> grad``.

Both act on the last two (spatial) dimensions of each image and channel independently.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .engine.component import Component, check_choice, check_dim, check_number, component
from .engine.kernels import edge_padding, filter_spectrum, gaussian_blur, gaussian_radius, radial_frequency
from .engine.kernels import gaussian_kernel1d as gaussian_kernel1d  # its old path, kept


def blur2d(x: Tensor, sigma: float, truncate: float = 4.0, padding: str = "reflect") -> Tensor:
    """Separable Gaussian blur of the last two dimensions of ``x`` (width first), the size kept.

    :func:`mei.engine.kernels.gaussian_blur` along ``(-1, -2)``; ``"reflect"`` padding becomes ``"replicate"``
    where the kernel radius reaches the height or the width.
    """
    return gaussian_blur(x, sigma, (-1, -2), truncate=truncate, padding=padding)


@component("precondition")
class GaussianBlur(Component):
    """Blur the gradient with a Gaussian of ``sigma`` pixels.

    Args:
        sigma (float): standard deviation in pixels, >= 0 (0 = no blur: what a schedule may anneal to; a config
            that gives a constant 0 is refused as a mistake, leave the precondition out instead).
        truncate (float, optional): kernel radius in sigmas. Default: 4.
        padding (str, optional): ``"reflect"``, ``"replicate"`` or ``"circular"``. Default: ``"reflect"``.
    """

    _repr_fields = ("sigma", "truncate", "padding")

    def __init__(self, sigma: float, truncate: float = 4.0, padding: str = "reflect") -> None:
        self.sigma = check_number("sigma", sigma, minimum=0, maximum=1000)
        self.truncate = check_number("truncate", truncate, minimum=0.5, maximum=100)
        self.padding = _check_padding(padding)

    @property
    def does_nothing(self) -> str:
        """The argument that makes this blur leave the gradient as it is (``""`` if none): refused in a config."""
        return "sigma" if self.sigma == 0 else ""

    def __call__(self, grad: Tensor, i_iter: int) -> Tensor:
        return blur2d(grad, self.sigma, self.truncate, self.padding)


def fourier_filter(height: int, width: int, factor: float, device: torch.device | str = "cpu") -> Tensor:
    """Radial low-pass ``1 / max(1, r^(2*factor))`` over integer frequencies ``r``, normalized to mean 1."""
    r2 = radial_frequency(height, width, unit="cycles/image", onesided=True, squared=True)
    filt = 1.0 / torch.clamp(r2 ** factor, min=1.0)
    return (filt / filt.mean()).to(device)


@component("precondition")
class FourierSmoothing(Component):
    """Scale each spatial frequency ``r`` of the gradient by ``1 / max(1, r^(2*factor))`` (mean gain 1).

    ``factor = 0`` leaves the gradient unchanged; larger factors favour low frequencies.

    Args:
        factor (float): fall-off exponent, >= 0.
    """

    _repr_fields = ("factor",)

    def __init__(self, factor: float) -> None:
        self.factor = check_number("factor", factor, minimum=0, maximum=10)
        self._cache: dict[tuple, Tensor] = {}

    def __call__(self, grad: Tensor, i_iter: int) -> Tensor:
        h, w = grad.shape[-2:]
        key = (h, w, grad.device, grad.dtype)
        if key not in self._cache:
            self._cache[key] = fourier_filter(h, w, self.factor, grad.device).to(grad.dtype)
        return filter_spectrum(grad, self._cache[key])


# ------------------------------------------------------------------------------------ any rank: time as well as space

def blur1d(x: Tensor, sigma: float, dim: int, truncate: float = 4.0, padding: str = "reflect") -> Tensor:
    """Gaussian blur of ``x`` along one dimension ``dim`` (every other entry filtered independently).

    :func:`mei.engine.kernels.gaussian_blur` along ``(dim,)``; ``"reflect"`` padding becomes ``"replicate"``
    where the kernel radius reaches the dimension's size, ``"circular"`` needs a radius <= that size.
    """
    return gaussian_blur(x, sigma, (dim,), truncate=truncate, padding=padding)


def _check_padding(padding: str) -> str:
    return check_choice("padding", padding, ("reflect", "replicate", "circular"),
                        expected="'reflect', 'replicate' or 'circular'")


def blur_matrix(size: int, sigma: float, truncate: float = 4.0, padding: str = "reflect",
                dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Tensor:
    """The ``(size, size)`` matrix ``M`` with ``blur1d(x, sigma, dim=-1, ...) == x @ M``.

    The padded Gaussian convolution is linear, so one small matrix product does it: a single kernel on a
    GPU instead of a pad, a convolution and two copies.
    """
    return blur1d(torch.eye(size, dtype=dtype, device=device), sigma, -1, truncate, padding)


class _BlurMatrices:
    """Blur along one dimension by a cached :func:`blur_matrix` (one per size, sigma, padding, dtype, device)."""

    def __init__(self) -> None:
        self._cache: dict[tuple, Tensor] = {}

    def __call__(self, x: Tensor, dim: int, sigma: float, truncate: float, padding: str) -> Tensor:
        if sigma <= 0:
            return x
        key = (x.shape[dim], sigma, truncate, padding, x.dtype, x.device)
        if key not in self._cache:
            self._cache[key] = blur_matrix(x.shape[dim], sigma, truncate, padding, x.dtype, x.device)
        return torch.matmul(x.movedim(dim, -1), self._cache[key]).movedim(-1, dim)


@component("precondition")
class TemporalGaussianBlur(Component):
    """Low-pass the gradient along time with a Gaussian of ``sigma`` frames.

    Args:
        sigma (float): standard deviation in frames, >= 0 (0 = no blur; a constant 0 in a config is refused).
        dim (int, optional): the time dimension. Default: 2 (``(N, C, T, H, W)``).
        truncate (float, optional): kernel radius in sigmas. Default: 4.
        padding (str, optional): ``"reflect"``, ``"replicate"`` or ``"circular"``. Default: ``"reflect"``.
    """

    time_dim_field = "dim"  # the input must have a time dimension there (checked before a run)
    _repr_fields = ("sigma", "dim", "truncate", "padding")

    def __init__(self, sigma: float, dim: int = 2, truncate: float = 4.0, padding: str = "reflect") -> None:
        self.sigma = check_number("sigma", sigma, minimum=0, maximum=1000)
        self.dim = check_dim("dim", dim)
        self.truncate = check_number("truncate", truncate, minimum=0.5, maximum=100)
        self.padding = _check_padding(padding)
        self._blur = _BlurMatrices()

    @property
    def does_nothing(self) -> str:
        """The argument that makes this blur leave the gradient as it is (``""`` if none): refused in a config."""
        return "sigma" if self.sigma == 0 else ""

    def __call__(self, grad: Tensor, i_iter: int) -> Tensor:
        return self._blur(grad, self.dim, self.sigma, self.truncate, self.padding)


@component("precondition")
class SpatioTemporalGaussianBlur(Component):
    """Low-pass the gradient in space (last two dims, ``sigma`` pixels) and in time (``sigma_time`` frames).

    The spatial part equals :class:`GaussianBlur` (including its switch from reflect to replicate padding
    when the kernel radius reaches the height or the width); each dimension is one cached matrix product.

    Args:
        sigma (float): spatial standard deviation in pixels (0 = none).
        sigma_time (float): temporal standard deviation in frames (0 = none; both constant 0 in a config is
            refused).
        time_dim (int, optional): the time dimension. Default: 2.
        truncate (float, optional): kernel radius in sigmas. Default: 4.
        padding (str, optional): ``"reflect"``, ``"replicate"`` or ``"circular"``. Default: ``"reflect"``.
    """

    time_dim_field = "time_dim"  # the input must have a time dimension there (checked before a run)
    _repr_fields = ("sigma", "sigma_time", "time_dim", "truncate", "padding")

    def __init__(self, sigma: float, sigma_time: float, time_dim: int = 2, truncate: float = 4.0,
                 padding: str = "reflect") -> None:
        self.sigma = check_number("sigma", sigma, minimum=0, maximum=1000)
        self.sigma_time = check_number("sigma_time", sigma_time, minimum=0, maximum=1000)
        self.time_dim = check_dim("time_dim", time_dim)
        self.truncate = check_number("truncate", truncate, minimum=0.5, maximum=100)
        self.padding = _check_padding(padding)
        self._time = (TemporalGaussianBlur(sigma_time, time_dim, truncate, padding) if self.sigma_time > 0
                      else None)
        self._blur = _BlurMatrices()

    @property
    def does_nothing(self) -> str:
        """The argument that makes this blur leave the gradient as it is (``""`` if none): refused in a config."""
        return "sigma_time" if self.sigma == 0 and self.sigma_time == 0 else ""

    def __call__(self, grad: Tensor, i_iter: int) -> Tensor:
        padding = self.padding
        if self.sigma > 0:
            padding = edge_padding(padding, gaussian_radius(self.sigma, self.truncate), grad.shape[-2:])
        space = self._blur(self._blur(grad, -1, self.sigma, self.truncate, padding), -2, self.sigma,
                           self.truncate, padding)
        return self._time(space, i_iter) if self._time is not None else space


# Preconditioners share the ``(x, i_iter) -> x`` signature of transforms, so one Compose chains either kind:
# {"path": "mei.preconditioners.Compose", "kwargs": {"transforms": [spec, spec]}}.
from .transforms import Compose as Compose  # noqa: E402 - re-exported: the path is a component
