"""Image parameterizations as ``nn.Module``: the tensor being optimized, and how it becomes an image.

Each parameterization holds one parameter ``param`` (first dimension = images) and a differentiable
``render(param) -> image``; calling the module renders its own parameter. The engine optimizes a copy of
``param`` and :class:`~mei.optim.optimization.InputOptimization` writes the result back, so ``image()``
shows the final picture. The chain follows captum.optim and lucid:

    parameters (pixel, 1/f-scaled spectrum or Laplacian pyramid) -> colour recorrelation (:class:`ToRGB`)
        -> squash -> image

Any number of channels and any spatial size work; :class:`ToRGB` takes any square colour matrix.
:class:`RenderImage` is the same chain as an engine transform ``(x, i_iter) -> image`` for pipeline configs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from ..engine.component import check_choice, check_number, component
from ..engine.kernels import filter_spectrum, radial_frequency
from ..engine.module_component import ModuleComponent

SizeLike = int | Sequence[int]

#: Square-root colour correlation of ImageNet (the Karhunen-Loeve basis published with lucid).
KLT_MATRIX = [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]]
#: Ohta's I1I2I3 colour space (rows map RGB to I1, I2, I3).
I1I2I3_MATRIX = [[1 / 3, 1 / 3, 1 / 3], [1 / 2, 0.0, -1 / 2], [-1 / 4, 1 / 2, -1 / 4]]


def _size(size: SizeLike) -> tuple[int, int]:
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    return int(height), int(width)


def _init_batch(init: Tensor | None, batch: int, channels: int, size: tuple[int, int]) -> Tensor | None:
    if init is None:
        return None
    init = init.detach().float()
    if init.dim() == 3:
        init = init.unsqueeze(0).expand(batch, -1, -1, -1)
    if init.dim() != 4 or init.shape[1] != channels or tuple(init.shape[-2:]) != size:
        raise ValueError(f"init must be (images, {channels}, {size[0]}, {size[1]}), got {tuple(init.shape)}")
    return init.clone()


class ImageTensor(torch.Tensor):
    """A tensor of images ``(N, C, H, W)`` in [0, 1] that can :meth:`open` a file, :meth:`show` and
    :meth:`export` itself."""

    @classmethod
    def open(cls, path: str | os.PathLike, scale: float = 255.0, mode: str = "RGB") -> ImageTensor:
        """Read an image file (PNG, JPEG, … through Pillow) as a ``(1, C, H, W)`` float32 image.

        Args:
            path (str or PathLike): a local file; nothing is downloaded, so URLs are refused.
            scale (float, optional): the pixel values are divided by it. Default: 255 (8-bit files -> [0, 1]).
            mode (str, optional): Pillow mode to convert to first: ``"RGB"``, ``"RGBA"``, ``"L"`` (grey) ….
                Default: ``"RGB"``.
        """
        import numpy as np
        from PIL import Image

        if "://" in str(path):
            raise ValueError(f"ImageTensor.open reads local files only (mei downloads nothing), got {str(path)!r}")
        with Image.open(path) as picture:
            pixels = np.asarray(picture.convert(mode), dtype=np.float32)
        if pixels.ndim == 2:
            pixels = pixels[..., None]
        tensor = torch.from_numpy(pixels.copy()).permute(2, 0, 1).unsqueeze(0) / float(scale)
        return tensor.as_subclass(cls)

    def show(self, figsize: tuple[float, float] | None = None, images_per_row: int | None = None,
             scale: float = 1.0) -> None:
        """Plot the images with matplotlib (see :func:`mei.optim.visualize.show`)."""
        from .visualize import show

        show(self.as_subclass(Tensor), figsize=figsize, images_per_row=images_per_row, scale=scale)

    def export(self, filename: str, images_per_row: int | None = None) -> None:
        """Write the images as one PNG grid (see :func:`mei.optim.visualize.save_image`)."""
        from .visualize import save_image

        save_image(self.as_subclass(Tensor), filename, images_per_row=images_per_row)


class ImageParameterization(nn.Module):
    """Base: ``param`` (an ``nn.Parameter``, images first) and ``render(param) -> (N, C, H, W)``."""

    param: nn.Parameter

    def render(self, param: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self) -> Tensor:
        return self.render(self.param)


class PixelImage(ImageParameterization):
    """The pixels themselves.

    Args:
        size (int or tuple[int, int]): height and width.
        channels (int, optional): Default: 3.
        batch (int, optional): number of images. Default: 1.
        init (Tensor, optional): starting image(s) ``(C, H, W)`` or ``(N, C, H, W)``. Default: ``0.01 * N(0,1)``.
    """

    def __init__(self, size: SizeLike, channels: int = 3, batch: int = 1, init: Tensor | None = None) -> None:
        super().__init__()
        self.size = _size(size)
        start = _init_batch(init, batch, channels, self.size)
        if start is None:
            start = 0.01 * torch.randn(batch, channels, *self.size)
        self.param = nn.Parameter(start)

    def render(self, param: Tensor) -> Tensor:
        return param


def spectrum_scale(height: int, width: int, decay_power: float = 1.0) -> Tensor:
    """``1 / max(f, 1/max(H, W))^decay_power`` over the rfft2 frequencies ``f``, normalized to RMS 1.

    Multiplying white spectral coefficients by it gives noise with a natural-image-like 1/f spectrum.
    """
    frequency = radial_frequency(height, width, onesided=True).clamp_min(1.0 / max(height, width))
    scale = frequency ** (-float(decay_power))
    return scale / scale.pow(2).mean().sqrt()


class FFTImage(ImageParameterization):
    """Spectral parameterization: ``param`` holds rfft2 coefficients (real and imaginary parts), scaled
    by 1/f (:func:`spectrum_scale`) before the inverse FFT, so gradient steps favour low frequencies.

    Args:
        size (int or tuple[int, int]): height and width.
        channels (int, optional): Default: 3.
        batch (int, optional): number of images. Default: 1.
        init (Tensor, optional): starting image(s) ``(C, H, W)`` or ``(N, C, H, W)``; rendered back exactly.
            Default: coefficients ``0.01 * N(0, 1)``.
        decay_power (float, optional): exponent of the 1/f scaling (0 = white). Default: 1.
    """

    scale: Tensor  # a registered buffer

    def __init__(self, size: SizeLike, channels: int = 3, batch: int = 1, init: Tensor | None = None,
                 decay_power: float = 1.0) -> None:
        super().__init__()
        self.size = _size(size)
        self.register_buffer("scale", spectrum_scale(*self.size, decay_power))
        start = _init_batch(init, batch, channels, self.size)
        if start is None:
            coefficients = 0.01 * torch.randn(batch, channels, *self.scale.shape, 2)
        else:
            coefficients = torch.view_as_real(torch.fft.rfft2(start, norm="ortho") / self.scale)
        self.param = nn.Parameter(coefficients.contiguous())

    def render(self, param: Tensor) -> Tensor:
        spectrum = torch.view_as_complex(param.contiguous()) * self.scale
        return torch.fft.irfft2(spectrum, s=self.size, norm="ortho")


class LaplacianImage(ImageParameterization):
    """Laplacian-pyramid parameterization: the image is a weighted sum of levels at several resolutions.

    Level ``s`` holds ``ceil(H / s) x ceil(W / s)`` values per channel, is upsampled bilinearly to ``H x W`` and
    weighted by ``s ** power``; the levels are packed into one ``param`` of shape ``(batch, n_values)``. A
    coarse value moves a whole ``s x s`` patch, so gradient steps favour smooth, large-scale structure (the
    pyramid counterpart of :class:`FFTImage`'s 1/f scaling).

    Args:
        size (int or tuple[int, int]): height and width.
        channels (int, optional): Default: 3.
        batch (int, optional): number of images. Default: 1.
        init (Tensor, optional): starting image(s) ``(C, H, W)`` or ``(N, C, H, W)``, put in the full-resolution
            level (the others start at zero), so it renders back exactly. Default: every level ``0.01 * N(0, 1)``.
        power (float, optional): level ``s`` is weighted by ``s ** power`` (0: all equal). Default: 0.1.
        scale_list (list[int], optional): the levels' downsampling factors; must include 1.
            Default: ``(1, 2, 4, 8, 16, 32)``.
    """

    def __init__(self, size: SizeLike, channels: int = 3, batch: int = 1, init: Tensor | None = None,
                 power: float = 0.1, scale_list: Sequence[int] = (1, 2, 4, 8, 16, 32)) -> None:
        super().__init__()
        self.size = _size(size)
        scales = list(scale_list)
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in scales):
            raise ValueError(f"scale_list must hold positive ints, got {scales!r}")
        if 1 not in scales or len(set(scales)) != len(scales):
            raise ValueError(f"scale_list must include 1 and each factor once, got {list(scale_list)!r}")
        height, width = self.size
        self.channels, self.scales, self.power = int(channels), scales, float(power)
        self.level_shapes = [(self.channels, -(-height // s), -(-width // s)) for s in scales]
        sizes = [c * h * w for c, h, w in self.level_shapes]
        start = _init_batch(init, batch, channels, self.size)
        if start is None:
            values = 0.01 * torch.randn(batch, sum(sizes))
        else:
            levels = [start.reshape(batch, -1) if s == 1 else torch.zeros(batch, n)
                      for s, n in zip(scales, sizes, strict=True)]
            values = torch.cat(levels, dim=1)
        self.sizes = sizes
        self.param = nn.Parameter(values)

    def render(self, param: Tensor) -> Tensor:
        image = None
        for scale, shape, level in zip(self.scales, self.level_shapes, param.split(self.sizes, dim=1), strict=True):
            level = level.reshape(param.shape[0], *shape)
            if scale != 1:
                level = nn.functional.interpolate(level, size=self.size, mode="bilinear", align_corners=False)
                level = level * scale**self.power
            image = level if image is None else image + level
        assert image is not None  # scale_list holds at least the factor 1
        return image


def spectral_filter(x: Tensor, decay_power: float = 1.0) -> Tensor:
    """``x`` (..., H, W) filtered by :func:`spectrum_scale`: the FFT parameterization for image-shaped tensors
    (an orthonormal FFT of white ``x`` is white, so this is :class:`FFTImage` up to a rotation)."""
    height, width = x.shape[-2:]
    scale = spectrum_scale(height, width, decay_power).to(x.device, x.dtype)
    return filter_spectrum(x, scale, norm="ortho")


class ToRGB(nn.Module):
    """Colour recorrelation: each pixel's channel vector ``c`` becomes ``M c`` (``inverse=True``: ``M^-1 c``).

    Args:
        transform (str or Tensor, optional): ``"klt"`` (ImageNet colour correlation, columns normalized to
            norm <= 1), ``"i1i2i3"`` (Ohta's colour space back to RGB), or any square ``(C, C)`` matrix
            for C-channel images. Default: ``"klt"``.

    An extra last channel (alpha) passes through unchanged.
    """

    matrix: Tensor  # a registered buffer

    def __init__(self, transform: str | Tensor | Sequence[Sequence[float]] = "klt") -> None:
        super().__init__()
        if isinstance(transform, str):
            if transform == "klt":
                matrix = torch.tensor(KLT_MATRIX)
                matrix = matrix / torch.linalg.vector_norm(matrix, dim=0).max()
            elif transform == "i1i2i3":
                matrix = torch.linalg.inv(torch.tensor(I1I2I3_MATRIX, dtype=torch.float64)).float()
            else:
                raise ValueError(f"transform must be 'klt', 'i1i2i3' or a square matrix, got {transform!r}")
        else:
            matrix = torch.as_tensor(transform, dtype=torch.float32)
        if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"the colour matrix must be square, got shape {tuple(matrix.shape)}")
        self.register_buffer("matrix", matrix)

    def forward(self, x: Tensor, inverse: bool = False) -> Tensor:
        n = self.matrix.shape[0]
        if x.shape[1] not in (n, n + 1):
            raise ValueError(f"ToRGB with a {n}x{n} matrix takes {n} (or {n + 1} with alpha) channels, "
                             f"got {x.shape[1]}")
        matrix = torch.linalg.inv(self.matrix) if inverse else self.matrix
        colour = torch.einsum("ij,nj...->ni...", matrix.to(x.dtype), x[:, :n])
        return torch.cat([colour, x[:, n:]], dim=1) if x.shape[1] > n else colour


def _clamp01(x: Tensor) -> Tensor:
    return x.clamp(0.0, 1.0)


def _identity(x: Tensor) -> Tensor:
    return x


SQUASH: dict[str, tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]] = {
    "sigmoid": (torch.sigmoid, lambda y: torch.logit(y.clamp(1e-4, 1 - 1e-4))),
    "clamp": (_clamp01, _clamp01),
    "none": (_identity, _identity),
}


def _squash(squash_func: str | Callable[[Tensor], Tensor]) -> tuple[Callable, Callable | None]:
    if callable(squash_func):
        inverse = {forward: inv for forward, inv in SQUASH.values()}.get(squash_func)
        return squash_func, inverse
    if squash_func not in SQUASH:
        raise ValueError(f"squash_func must be one of {sorted(SQUASH)} or a callable, got {squash_func!r}")
    return SQUASH[squash_func]


class NaturalImage(ImageParameterization):
    """The default rendering chain: a parameterization, colour recorrelation, then a squash into [0, 1].

    Args:
        size (int or tuple[int, int], optional): height and width. Default: ``(224, 224)``.
        channels (int, optional): Default: 3.
        batch (int, optional): number of images. Default: 1.
        init (Tensor, optional): starting image(s) in [0, 1], ``(C, H, W)`` or ``(N, C, H, W)``; the chain is
            inverted so that the module renders them. Default: a random grey-ish image.
        parameterization (type, optional): :class:`FFTImage`, :class:`PixelImage`, :class:`LaplacianImage` or
            a compatible class.
            Default: :class:`FFTImage`.
        squash_func (str or Callable, optional): ``"sigmoid"``, ``"clamp"``, ``"none"`` or a function.
            Default: ``"sigmoid"``.
        decorrelation_module (nn.Module, optional): colour recorrelation; ``None`` to skip. Default:
            ``ToRGB("klt")`` for 3 or 4 channels, none otherwise.
    """

    def __init__(self, size: SizeLike = (224, 224), channels: int = 3, batch: int = 1, init: Tensor | None = None,
                 parameterization: type[ImageParameterization] = FFTImage,
                 squash_func: str | Callable[[Tensor], Tensor] = "sigmoid",
                 decorrelation_module: nn.Module | None | Literal["default"] = "default") -> None:
        super().__init__()
        if decorrelation_module == "default":
            decorrelation_module = ToRGB("klt") if channels in (3, 4) else None
        self.decorrelate = decorrelation_module
        self.squash_func, inverse_squash = _squash(squash_func)
        start = _init_batch(init, batch, channels, _size(size))
        if start is not None:
            if inverse_squash is None:
                raise ValueError("init needs an invertible squash_func ('sigmoid', 'clamp' or 'none')")
            start = inverse_squash(start)
            if self.decorrelate is not None:
                start = self.decorrelate(start, inverse=True)
        self.parameterization = parameterization(size=size, channels=channels, batch=batch, init=start)

    @property
    def param(self) -> nn.Parameter:  # type: ignore[override]
        return self.parameterization.param

    def render(self, param: Tensor) -> Tensor:
        image = self.parameterization.render(param)
        if self.decorrelate is not None:
            image = self.decorrelate(image)
        return self.squash_func(image)

    def forward(self) -> ImageTensor:
        return self.render(self.param).as_subclass(ImageTensor)


@component("transform")
class RenderImage(ModuleComponent):
    """The :class:`NaturalImage` chain as an engine transform ``(x, i_iter) -> image`` on an image-shaped ``x``,
    for pipeline configs (``{"path": "mei.optim.images.RenderImage", "kwargs": {...}}``).

    Args:
        parameterization (str, optional): ``"fft"`` (x is filtered by :func:`spectral_filter`) or ``"pixel"``.
            Default: ``"fft"``.
        decorrelate (str, matrix or None, optional): a :class:`ToRGB` transform name, a square colour matrix as
            nested lists (e.g. ``mei.optim.dataset.dataset_klt_matrix(loader).tolist()``: JSON in a method
            config), or ``None``. Default: ``"klt"``.
        squash (str, optional): ``"sigmoid"``, ``"clamp"`` or ``"none"``. Default: ``"sigmoid"``.
        decay_power (float, optional): exponent of the 1/f scaling. Default: 1.
    """

    def __init__(self, parameterization: str = "fft", decorrelate: str | Sequence[Sequence[float]] | None = "klt",
                 squash: str = "sigmoid", decay_power: float = 1.0) -> None:
        super().__init__()
        self.parameterization = check_choice("parameterization", parameterization, ("fft", "pixel"),
                                             expected="'fft' or 'pixel'")
        self.decay_power = float(check_number("decay_power", decay_power))
        self.decorrelate = ToRGB(decorrelate) if decorrelate is not None else None
        self.squash_name = check_choice("squash", squash, tuple(SQUASH))
        self.squash_func = _squash(squash)[0]

    def forward(self, x: Tensor, i_iter: int = 0) -> Tensor:
        if self.parameterization == "fft":
            x = spectral_filter(x, self.decay_power)
        if self.decorrelate is not None:
            x = self.decorrelate(x)
        return self.squash_func(x)


__all__ = [
    "ImageTensor", "ImageParameterization", "PixelImage", "FFTImage", "LaplacianImage", "ToRGB", "NaturalImage",
    "RenderImage",
    "spectrum_scale", "spectral_filter", "KLT_MATRIX", "I1I2I3_MATRIX",
]
