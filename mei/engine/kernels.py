"""The signal kernels every layer uses, each written once: Gaussian blur, bilinear resampling (zoom, rotation,
crop windows), radial spatial-frequency grids and spectral filtering, total variation, and L2 rescaling.

Pure torch functions of tensors; components and front ends call them (``mei.preconditioners.blur2d``,
``mei.meitorch.augment.zoom``, ``mei.optim.images.spectrum_scale``, ... are thin wrappers or re-exports).
Spatial kernels act on the last two dimensions (height, width) unless they take ``dims``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor

PADDINGS = ("reflect", "replicate", "circular")
FREQUENCY_UNITS = ("cycles/pixel", "cycles/image", "nyquist")


# ------------------------------------------------------------------------------------------------ padding

def edge_padding(padding: str, radius: int, sizes: Iterable[int]) -> str:
    """The padding mode to use for a border of ``radius`` entries on dimensions of the given ``sizes``.

    ``"reflect"`` needs ``radius < size``; where the radius reaches the smallest size it becomes
    ``"replicate"``. Every other mode is returned unchanged.

    Args:
        padding (str): the requested mode (``"reflect"``, ``"replicate"``, ``"circular"``, ``"constant"``).
        radius (int): entries padded on each side.
        sizes (iterable of int): sizes of the padded dimensions.
    """
    if padding == "reflect" and radius >= min(sizes):
        return "replicate"
    return padding


# ------------------------------------------------------------------------------------------------ Gaussian blur

def gaussian_radius(sigma: float, truncate: float = 4.0) -> int:
    """Radius ``max(1, ceil(truncate * sigma))`` of a Gaussian kernel of ``sigma`` cut at ``truncate`` sigmas."""
    return max(1, math.ceil(truncate * sigma))


def gaussian_kernel1d(sigma: float, truncate: float = 4.0, dtype: torch.dtype = torch.float32,
                      device: torch.device | str = "cpu", *, size: int | None = None) -> Tensor:
    """A normalized (sum 1) 1-D Gaussian of standard deviation ``sigma`` (in samples).

    Args:
        sigma (float): standard deviation; ``sigma <= 0`` gives the delta (the identity kernel).
        truncate (float, optional): radius in sigmas, ``2 * gaussian_radius(sigma, truncate) + 1`` taps
            (ignored when ``size`` is given). Default: 4.
        dtype (torch.dtype, optional): Default: float32.
        device (torch.device or str, optional): Default: ``"cpu"``.
        size (int, optional): the number of taps instead, centred at ``(size - 1) / 2`` (an even size puts
            the centre between two taps). Default: None.
    """
    if size is None:
        size = 2 * gaussian_radius(sigma, truncate) + 1
    if size < 1:
        raise ValueError(f"a Gaussian kernel needs at least one tap, got size={size}")
    t = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    if sigma <= 0:
        centre = t.abs() == t.abs().min()
        return centre.to(dtype) / centre.sum()
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    return kernel / kernel.sum()


def _convolve_along(x: Tensor, kernel: Tensor, dim: int, padding: str, planes: bool) -> Tensor:
    """``x`` convolved with the 1-D ``kernel`` along ``dim`` (same size), the border padded by ``padding``.

    With ``planes`` (``dim`` one of the last two) as ``(planes, 1, H, W)`` images, else as the rows of a
    ``(rows, 1, size)`` signal.
    """
    dim = dim % x.dim()
    taps = kernel.numel()
    before, after = taps // 2, taps - 1 - taps // 2
    size = x.shape[dim]
    if padding == "circular" and before > size:
        raise ValueError(f"circular padding needs a kernel radius ({before}) <= the dimension's size ({size})")
    if planes:
        images = x.reshape(-1, 1, *x.shape[-2:])
        if dim == x.dim() - 1:
            images = F.conv2d(F.pad(images, (before, after, 0, 0), mode=padding), kernel.view(1, 1, 1, -1))
        else:
            images = F.conv2d(F.pad(images, (0, 0, before, after), mode=padding), kernel.view(1, 1, -1, 1))
        return images.reshape(x.shape)
    moved = x.movedim(dim, -1)
    rows = F.conv1d(F.pad(moved.reshape(-1, 1, size), (before, after), mode=padding), kernel.view(1, 1, -1))
    return rows.reshape(moved.shape).movedim(-1, dim)


def gaussian_blur(x: Tensor, sigma: float, dims: Sequence[int] = (-1, -2), *, truncate: float = 4.0,
                  size: int | None = None, padding: str = "reflect") -> Tensor:
    """Separable Gaussian blur of ``x`` along each of ``dims`` (in that order), the size kept.

    Args:
        x (Tensor): any shape; the other dimensions are filtered independently.
        sigma (float): standard deviation in samples; ``sigma <= 0`` returns ``x`` itself.
        dims (sequence of int, optional): the dimensions to blur, in order. Default: ``(-1, -2)``
            (width, then height).
        truncate (float, optional): kernel radius in sigmas (see :func:`gaussian_kernel1d`). Default: 4.
        size (int, optional): number of taps instead of ``truncate``; with an even size the kernel's centre
            lies between two taps, so the result is shifted by half a sample. Default: None.
        padding (str, optional): ``"reflect"``, ``"replicate"`` or ``"circular"``; ``"reflect"`` becomes
            ``"replicate"`` where the kernel radius reaches the smallest blurred dimension
            (:func:`edge_padding`); ``"circular"`` needs a radius <= each size. Default: ``"reflect"``.

    A blur of the last two dimensions convolves ``(planes, 1, H, W)`` images, any other blur each dimension's
    rows in turn (the two give the same values up to float rounding).
    """
    if sigma <= 0:
        return x
    kernel = gaussian_kernel1d(sigma, truncate, x.dtype, x.device, size=size)
    mode = edge_padding(padding, kernel.numel() // 2, [x.shape[d] for d in dims])
    planes = x.dim() >= 2 and sorted(d % x.dim() for d in dims) == [x.dim() - 2, x.dim() - 1]
    for dim in dims:
        x = _convolve_along(x, kernel, dim, mode, planes)
    return x


# ------------------------------------------------------------------------------------------------ resampling

def _centred_theta(x: Tensor, scale: Tensor, degrees: Tensor) -> Tensor:
    """``(N, 2, 3)`` affine maps of :func:`F.affine_grid`: zoom by ``scale`` and rotate by ``degrees`` about the
    centre, in pixel units (rigid on non-square images); computed in float64, returned in ``x``'s dtype."""
    height, width = x.shape[-2:]
    angle = degrees.to(torch.float64) * math.pi / 180
    cos, sin = torch.cos(angle) / scale.double(), torch.sin(angle) / scale.double()
    zero = torch.zeros_like(cos)
    return torch.stack([
        torch.stack([cos, -sin * height / width, zero], dim=1),
        torch.stack([sin * width / height, cos, zero], dim=1),
    ], dim=1).to(x.device, x.dtype)


def _window_grid(image: Tensor, top: float, left: float, height: float, width: float) -> Tensor:
    """``(1, H, W, 2)`` sampling grid that stretches the window (in pixels) over the whole image."""
    h, w = image.shape[-2:]
    ys = top + (torch.arange(h, dtype=image.dtype, device=image.device) + 0.5) * height / h - 0.5
    xs = left + (torch.arange(w, dtype=image.dtype, device=image.device) + 0.5) * width / w - 0.5
    grid_y, grid_x = torch.meshgrid(2 * (ys + 0.5) / h - 1, 2 * (xs + 0.5) / w - 1, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1)[None]


def _as_per_image(value: Tensor | float, n_images: int) -> Tensor:
    value = torch.as_tensor(value, dtype=torch.float64)
    return value.expand(n_images) if value.dim() == 0 else value


def resample(x: Tensor, scale: Tensor | float = 1.0, degrees: Tensor | float = 0.0, *,
             window: Sequence[Sequence[float]] | None = None, padding_mode: str = "reflection",
             shift: Tensor | None = None) -> Tensor:
    """Bilinear resampling of each image of ``x`` (size kept): a zoom and rotation about the centre, or a window
    stretched over the whole image.

    Args:
        x (Tensor): images ``(N, C, H, W)``; with ``window`` also ``(N, C, ..., H, W)`` (videos).
        scale (Tensor or float, optional): zoom factor, one per image or one for all (> 1 enlarges).
            Default: 1.
        degrees (Tensor or float, optional): rotation in degrees, one per image or one for all. Default: 0.
        window (sequence of (top, left, height, width), optional): one window per image in pixels (fractions
            allowed); each is resampled to the full image (a crop, or a zoom about any point), instead of
            ``scale`` and ``degrees``. Default: None.
        padding_mode (str, optional): where samples fall outside the image: ``"reflection"``, ``"border"``
            or ``"zeros"`` (always ``"reflection"`` for windows). Default: ``"reflection"``.
        shift (Tensor, optional): ``(N, 2)`` translation of each image's content in pixels (down, right), after
            the zoom and rotation; not with ``window``. Default: none.
    """
    if window is not None:
        return torch.stack([_resample_window(image, *box) for image, box in zip(x, window, strict=True)])
    n_images = x.shape[0]
    theta = _centred_theta(x, _as_per_image(scale, n_images), _as_per_image(degrees, n_images))
    if shift is not None:  # content moves by +shift: sample at -shift (normalized units, 2 / size per pixel)
        height, width = x.shape[-2:]
        offset = -2 * shift.to(x.device, x.dtype) / torch.tensor([height, width], dtype=x.dtype, device=x.device)
        theta = torch.cat([theta[..., :2], offset.flip(-1).unsqueeze(-1)], dim=-1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def _resample_window(image: Tensor, top: float, left: float, height: float, width: float) -> Tensor:
    """One image ``(C, ..., H, W)`` with the window (in pixels) resampled to full size, edges reflected."""
    h, w = image.shape[-2:]
    flat = image.reshape(1, -1, h, w)
    grid = _window_grid(image, top, left, height, width)
    out = F.grid_sample(flat, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out.reshape(image.shape)


# ------------------------------------------------------------------------------------------------ frequencies

def frequency_axes(height: int, width: int, *, unit: str = "cycles/pixel", onesided: bool = False,
                   dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """The absolute spatial frequency of each row ``(H, 1)`` and column ``(1, W')`` of a 2-D DFT.

    Args:
        height (int): number of rows.
        width (int): number of columns.
        unit (str, optional): ``"cycles/pixel"`` (``|torch.fft.fftfreq|``, 0 to 0.5), ``"cycles/image"``
            (the integers ``|k|``) or ``"nyquist"`` (``|k| / (n / 2)``, 1 at the Nyquist frequency).
            Default: ``"cycles/pixel"``.
        onesided (bool, optional): columns of ``rfft2`` (``W' = W // 2 + 1``) instead of ``fft2``
            (``W' = W``). Default: False.
        dtype (torch.dtype, optional): Default: float32.
        device (torch.device or str, optional): Default: ``"cpu"``.
    """
    if unit not in FREQUENCY_UNITS:
        raise ValueError(f"unit must be one of {list(FREQUENCY_UNITS)}, got {unit!r}")
    columns = width // 2 + 1 if onesided else width

    def axis(n: int) -> Tensor:
        if unit == "cycles/pixel":
            return torch.fft.fftfreq(n, dtype=dtype, device=device).abs()
        k = torch.minimum(torch.arange(n, device=device), n - torch.arange(n, device=device)).to(dtype)
        return k / (n / 2) if unit == "nyquist" else k

    return axis(height)[:, None], axis(width)[None, :columns]


def radial_frequency(height: int, width: int, *, unit: str = "cycles/pixel", onesided: bool = False,
                     squared: bool = False, dtype: torch.dtype = torch.float32,
                     device: torch.device | str = "cpu") -> Tensor:
    """The radial frequency ``sqrt(fy^2 + fx^2)`` of every bin of a 2-D DFT, ``(H, W')``.

    Args:
        height (int): number of rows.
        width (int): number of columns.
        unit (str, optional): see :func:`frequency_axes`. Default: ``"cycles/pixel"``.
        onesided (bool, optional): the bins of ``rfft2`` instead of ``fft2``. Default: False.
        squared (bool, optional): return ``fy^2 + fx^2`` (no square root). Default: False.
        dtype (torch.dtype, optional): Default: float32.
        device (torch.device or str, optional): Default: ``"cpu"``.
    """
    fy, fx = frequency_axes(height, width, unit=unit, onesided=onesided, dtype=dtype, device=device)
    r2 = fy**2 + fx**2
    return r2 if squared else torch.sqrt(r2)


def filter_spectrum(x: Tensor, gain: Tensor, norm: str = "backward") -> Tensor:
    """``x`` with each bin of its ``rfft2`` over the last two dimensions multiplied by ``gain`` (real, size kept).

    Args:
        x (Tensor): real, ``(..., H, W)``.
        gain (Tensor): ``(H, W // 2 + 1)`` (or broadcastable to the spectrum).
        norm (str, optional): FFT normalization (``"backward"`` or ``"ortho"``, see :func:`torch.fft.rfft2`).
            Default: ``"backward"``.
    """
    height, width = x.shape[-2:]
    return torch.fft.irfft2(torch.fft.rfft2(x, norm=norm) * gain, s=(height, width), norm=norm)


# ------------------------------------------------------------------------------------------------ image statistics

def total_variation(x: Tensor, dims: Sequence[int] = (-2, -1), *, isotropic: bool = False, eps: float = 1e-8,
                    per_image: bool = True) -> Tensor:
    """Total variation: ``sum |x[i+1] - x[i]|`` along each of ``dims`` (anisotropic), or with ``isotropic``
    ``sum sqrt(dy^2 + dx^2 + eps)`` over the pixels where both differences exist (two dims only).

    Args:
        x (Tensor): images first.
        dims (sequence of int, optional): dimensions to difference. Default: ``(-2, -1)``.
        isotropic (bool, optional): Default: False.
        eps (float, optional): keeps the isotropic root differentiable at 0. Default: 1e-8.
        per_image (bool, optional): one value per image ``(N,)``; False: one scalar summed over everything.
            Default: True.
    """
    diffs = [torch.diff(x, dim=d) for d in dims]
    if isotropic:
        if len(diffs) != 2:
            raise ValueError("isotropic total variation needs exactly two dims")
        dy, dx = diffs
        terms = [torch.sqrt(dy[..., :, :-1] ** 2 + dx[..., :-1, :] ** 2 + eps)]
    else:
        terms = [d.abs() for d in diffs]
    if per_image:
        total = sum(t.reshape(x.shape[0], -1).sum(1) for t in terms)
    else:
        total = sum(t.sum() for t in terms)
    # a tensor for any non-empty dims; with none, sum's start value 0, which every caller adds as a zero loss
    return cast(Tensor, total)


def rescale_norm(x: Tensor, norm: float, eps: float = 1e-12) -> Tensor:
    """Each image (first dimension) of ``x`` rescaled to L2 norm ``norm`` (an image of norm below ``eps`` is
    scaled as if its norm were ``eps``).

    Args:
        x (Tensor): images first, any shape.
        norm (float): the target norm.
        eps (float, optional): smallest norm divided by. Default: 1e-12.
    """
    norms = torch.linalg.vector_norm(x.reshape(x.shape[0], -1), dim=1).clamp_min(eps)
    return x * (norm / norms).view(-1, *([1] * (x.dim() - 1)))


LAPLACE_KERNELS: dict[int, tuple[tuple[float, ...], ...]] = {
    3: ((0, -1, 0), (-1, 4, -1), (0, -1, 0)),
    5: ((0, 0, 1, 0, 0), (0, 1, 2, 1, 0), (1, 2, -16, 2, 1), (0, 1, 2, 1, 0), (0, 0, 1, 0, 0)),
    7: ((0, 0, 1, 1, 1, 0, 0), (0, 1, 3, 3, 3, 1, 0), (1, 3, 0, -7, 0, 3, 1), (1, 3, -7, -24, -7, 3, 1),
        (1, 3, 0, -7, 0, 3, 1), (0, 1, 3, 3, 3, 1, 0), (0, 0, 1, 1, 1, 0, 0)),
}
"""The discrete Laplace filter (3 x 3) and Laplacian-of-Gaussian filters (5 x 5, 7 x 7) of neuralpredictors."""


def laplace_filter(x: Tensor, size: int = 3) -> Tensor:
    """Every plane (last two dimensions) of ``x`` convolved with the ``size`` x ``size`` filter of
    :data:`LAPLACE_KERNELS`, zero padded so the size is kept; the shape of ``x`` is kept.

    Raises:
        ValueError: ``size`` is not 3, 5 or 7.
    """
    if size not in LAPLACE_KERNELS:
        raise ValueError(f"size must be one of {sorted(LAPLACE_KERNELS)}, got {size!r}")
    kernel = torch.tensor(LAPLACE_KERNELS[size], dtype=x.dtype, device=x.device)[None, None]
    planes = x.reshape(-1, 1, *x.shape[-2:])
    return F.conv2d(planes, kernel, padding=size // 2).reshape(x.shape)


__all__ = [
    "PADDINGS", "FREQUENCY_UNITS", "edge_padding", "gaussian_radius", "gaussian_kernel1d", "gaussian_blur",
    "resample", "frequency_axes", "radial_frequency", "filter_spectrum", "total_variation", "rescale_norm",
    "LAPLACE_KERNELS", "laplace_filter",
]
