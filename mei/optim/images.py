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
from typing import Any, Literal, cast

import torch
from torch import Tensor, nn

from ..engine import rng
from ..engine.component import check_choice, check_number, component
from ..engine.kernels import filter_spectrum, radial_frequency
from ..engine.module_component import ModuleComponent
from .transforms import I1I2I3_MATRIX, KLT_MATRIX, ToRGB, symmetric_pad

SizeLike = int | Sequence[int]



def _size(size: SizeLike | None, init: Tensor | None = None) -> tuple[int, int]:
    """``(height, width)`` from ``size``, or from ``init``'s last two dimensions when ``size`` is ``None``."""
    if size is None:
        if init is None:
            raise ValueError("give the image size, or an init image to take it from")
        size = tuple(init.shape[-2:])
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    return int(height), int(width)


def _init_batch(init: Tensor | None, batch: int, channels: int, size: tuple[int, int]) -> Tensor | None:
    if init is None:
        return None
    init = init.detach().float().as_subclass(Tensor)
    if init.dim() == 3:
        init = init.unsqueeze(0)
    if init.dim() != 4 or init.shape[1] != channels or tuple(init.shape[-2:]) != size:
        raise ValueError(f"init must be (images, {channels}, {size[0]}, {size[1]}), got {tuple(init.shape)}")
    if batch != 1 and init.shape[0] != batch:
        if init.shape[0] != 1:
            raise ValueError(f"init holds {init.shape[0]} images but batch is {batch}")
        init = init.expand(batch, -1, -1, -1)
    return init.clone()


_KEEPS_IMAGE = frozenset(["clone", "detach", "to", "cpu", "cuda", "contiguous", "requires_grad_", "__getitem__",
                          "float", "double", "half"])


class ImageTensor(torch.Tensor):
    """A tensor of images ``(N, C, H, W)`` in [0, 1] that can :meth:`open` a file, :meth:`show` and
    :meth:`export` itself.

    Only copies and moves (``clone``, ``detach``, ``to``, indexing …) stay ``ImageTensor``; anything computed
    from it (``x.mean()``, ``x * 2``, a model's activations) is a plain tensor, so ``f"{x.mean():.2f}"`` works.
    """

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        result = super().__torch_function__(func, types, args, kwargs or {})
        if getattr(func, "__name__", "") in _KEEPS_IMAGE:
            return result
        return _plain(result)

    @classmethod
    def open(cls, path: str | os.PathLike, scale: float = 255.0, mode: str = "RGB") -> ImageTensor:
        """Read an image file (PNG, JPEG, … through Pillow) as a ``(C, H, W)`` float32 image, as captum does.

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
        tensor = torch.from_numpy(pixels.copy()).permute(2, 0, 1) / float(scale)
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


def _plain(value: Any) -> Any:
    if isinstance(value, ImageTensor):
        return value.as_subclass(Tensor)
    if isinstance(value, (tuple, list)):
        return type(value)(_plain(v) for v in value)
    return value


class InputParameterization(nn.Module):
    """captum's base of every input parameterization: an ``nn.Module`` whose ``forward()`` returns the input.

    :class:`~mei.optim.optimization.InputOptimization` optimizes any subclass: one with a ``param`` tensor and
    ``render(param)`` (every :class:`ImageParameterization` here) directly, any other through all its trainable
    parameters at once (``torch.func.functional_call``).
    """

    def forward(self) -> Tensor:
        raise NotImplementedError


class ImageParameterization(InputParameterization):
    """Base: ``param`` (an ``nn.Parameter``, images first) and ``render(param) -> (N, C, H, W)``.

    A parameterization built without ``init`` starts from random numbers; ``optimize(..., seed=s)`` redraws
    that start from the seeded streams (:meth:`redraw_start`) until the parameterization has been optimized
    once, so that a seeded run is reproducible however the module was built.
    """

    param: nn.Parameter
    _random_start: bool = False

    def render(self, param: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self) -> Tensor:
        return self.render(self.param)

    def _draw_start(self) -> Tensor:
        """A fresh random start for ``param`` (drawn through :mod:`mei.engine.rng`, image by image)."""
        return 0.01 * rng.randn(self.param.shape)

    def redraw_start(self) -> bool:
        """Redraw a random start that was never optimized; returns whether it did."""
        if not self._random_start:
            return False
        with torch.no_grad():
            self.param.copy_(self._draw_start().to(self.param))
        return True

    def mark_optimized(self) -> None:
        """The start is an optimization result now: :meth:`redraw_start` leaves it alone."""
        self._random_start = False


class PixelImage(ImageParameterization):
    """The pixels themselves.

    Args:
        size (int or tuple[int, int]): height and width.
        channels (int, optional): Default: 3.
        batch (int, optional): number of images. Default: 1.
        init (Tensor, optional): starting image(s) ``(C, H, W)`` or ``(N, C, H, W)``. Default: ``0.01 * N(0,1)``.
    """

    def __init__(self, size: SizeLike | None = None, channels: int = 3, batch: int = 1,
                 init: Tensor | None = None) -> None:
        super().__init__()
        self.size = _size(size, init)
        start = _init_batch(init, batch, channels, self.size)
        self._random_start = start is None
        if start is None:
            start = 0.01 * rng.randn((batch, channels, *self.size))
        self.param = nn.Parameter(start)

    def render(self, param: Tensor) -> Tensor:
        return param

    @property
    def image(self) -> nn.Parameter:
        """The pixels (captum's name for ``param``)."""
        return self.param


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

    def __init__(self, size: SizeLike | None = None, channels: int = 3, batch: int = 1,
                 init: Tensor | None = None, decay_power: float = 1.0) -> None:
        super().__init__()
        self.size = _size(size, init)
        self.register_buffer("scale", spectrum_scale(*self.size, decay_power))
        start = _init_batch(init, batch, channels, self.size)
        self._random_start = start is None
        if start is None:
            coefficients = 0.01 * rng.randn((batch, channels, *self.scale.shape, 2))
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

    def __init__(self, size: SizeLike | None = None, channels: int = 3, batch: int = 1,
                 init: Tensor | None = None, power: float = 0.1,
                 scale_list: Sequence[int] = (1, 2, 4, 8, 16, 32)) -> None:
        super().__init__()
        self.size = _size(size, init)
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
        self._random_start = start is None
        if start is None:
            values = 0.01 * rng.randn((batch, sum(sizes)))
        else:
            batch = start.shape[0]
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
        size (int or tuple[int, int], optional): height and width. Default: ``(224, 224)``, or ``init``'s size.
        channels (int, optional): Default: 3.
        batch (int, optional): number of images. Default: 1 (or ``init``'s number of images).
        init (Tensor, optional): starting image(s), ``(C, H, W)`` or ``(N, C, H, W)``, given to the
            parameterization as they are (after undoing the recorrelation, see ``decorrelate_init``); the squash
            is not inverted, as in captum. Default: a random grey-ish image.
        parameterization (class or instance, optional): :class:`FFTImage`, :class:`PixelImage`,
            :class:`LaplacianImage` or a compatible class (built with ``size``, ``channels``, ``batch``, ``init``),
            or an instance (e.g. a :class:`SharedImage`), used as it is. Default: :class:`FFTImage`.
        squash_func (str or Callable, optional): ``"sigmoid"``, ``"clamp"``, ``"none"`` or a function.
            Default: None, captum's: ``torch.sigmoid``, or :meth:`_clamp_image` when ``init`` is given (so
            an ``init`` in [0, 1] is rendered as it is).
        decorrelation_module (nn.Module, optional): colour recorrelation; ``None`` to skip. Default:
            ``ToRGB("klt")`` for 3 or 4 channels, none otherwise.
        decorrelate_init (bool, optional): undo the recorrelation on ``init`` (so the module renders it).
            Default: True.
    """

    def __init__(self, size: SizeLike | None = None, channels: int = 3, batch: int = 1, init: Tensor | None = None,
                 parameterization: type[ImageParameterization] | InputParameterization = FFTImage,
                 squash_func: str | Callable[[Tensor], Tensor] | None = None,
                 decorrelation_module: nn.Module | None | Literal["default"] = "default",
                 decorrelate_init: bool = True) -> None:
        super().__init__()
        if decorrelation_module == "default":
            decorrelation_module = ToRGB("klt") if channels in (3, 4) else None
        self.decorrelate = decorrelation_module
        if squash_func is None:
            squash_func = self._clamp_image if init is not None else torch.sigmoid
        self.squash_func = _squash(squash_func)[0]
        if isinstance(parameterization, nn.Module):
            if init is not None or size is not None or batch != 1:
                raise ValueError("size, batch and init belong to the parameterization instance given; "
                                 "pass them to its constructor")
            self.parameterization = parameterization
            return
        if size is None and init is None:
            size = (224, 224)
        size = _size(size, init)
        start = _init_batch(init, batch, channels, size)
        if start is not None and self.decorrelate is not None and decorrelate_init:
            start = self.decorrelate(start, inverse=True)
        self.parameterization = parameterization(size=size, channels=channels, batch=batch, init=start)

    def _clamp_image(self, x: Tensor) -> Tensor:
        """captum's squash when ``init`` is given: clamp into [0, 1]."""
        return _clamp01(x)

    @property
    def param(self) -> nn.Parameter:  # type: ignore[override]
        return self.parameterization.param  # type: ignore[return-value]

    def render(self, param: Tensor) -> Tensor:
        image = self.parameterization.render(param)  # type: ignore[operator]
        return self._finish(image)

    def _finish(self, image: Tensor) -> Tensor:
        if self.decorrelate is not None:
            image = self.decorrelate(image)
        return self.squash_func(image)

    def forward(self) -> ImageTensor:
        if not hasattr(self.parameterization, "render"):
            return self._finish(self.parameterization()).as_subclass(ImageTensor)
        return self.render(self.param).as_subclass(ImageTensor)

    def redraw_start(self) -> bool:
        redraw = getattr(self.parameterization, "redraw_start", None)
        return bool(redraw()) if redraw is not None else False

    def mark_optimized(self) -> None:
        mark = getattr(self.parameterization, "mark_optimized", None)
        if mark is not None:
            mark()


class SimpleTensorParameterization(ImageParameterization):
    """A fixed tensor as a parameterization (captum's): ``forward()`` returns ``tensor`` as it is, whether or not
    it requires grad (no ``nn.Parameter`` wrapping, any shape). With :class:`StackImage` it lets some images of
    a batch be optimized and others stay fixed.

    Args:
        tensor (Tensor): the tensor returned.
    """

    def __init__(self, tensor: Tensor | None = None) -> None:
        super().__init__()
        if not isinstance(tensor, Tensor):
            raise TypeError(f"SimpleTensorParameterization needs a tensor, got {type(tensor).__name__}")
        self.tensor = tensor

    def forward(self) -> Tensor:
        return self.tensor


class StackImage(ImageParameterization):
    """Several ``(N, C, H, W)`` parameterizations (or fixed tensors) stacked along ``dim`` (captum's).

    Args:
        parameterizations (list of InputParameterization or Tensor): the parts; tensors are wrapped in
            :class:`SimpleTensorParameterization`. All parts must render the same shape.
        dim (int, optional): the dimension to concatenate on. Default: 0 (the batch).
        output_device (torch.device, optional): move every part's output there. Default: none (all on one device).
    """

    def __init__(self, parameterizations: Sequence[InputParameterization | Tensor], dim: int = 0,
                 output_device: torch.device | str | None = None) -> None:
        super().__init__()
        if not isinstance(parameterizations, (list, tuple)) or not parameterizations:
            raise ValueError("StackImage needs a non-empty list of parameterizations")
        parts = [SimpleTensorParameterization(p) if isinstance(p, Tensor) else p for p in parameterizations]
        if not all(isinstance(p, nn.Module) for p in parts):
            raise TypeError("StackImage's parts must be parameterizations (nn.Module) or tensors")
        self.parameterizations = nn.ModuleList(parts)
        self.dim = int(dim)
        self.output_device = None if output_device is None else torch.device(output_device)

    def forward(self) -> Tensor:
        outputs = []
        for part in self.parameterizations:
            image = _plain(part())
            outputs.append(image if self.output_device is None else image.to(self.output_device))
        if any(o.dim() != 4 or o.shape != outputs[0].shape for o in outputs):
            raise ValueError(f"StackImage's parts render different shapes: {[tuple(o.shape) for o in outputs]}")
        return torch.cat(outputs, dim=self.dim)


class SharedImage(ImageParameterization):
    """Share parameters across the batch for spatial alignment (captum's; Mordvintsev et al. 2018): low-resolution
    tensors of ``shapes``, resized (bilinear, trilinear across channels and images) to the parameterization's
    output and added to every image, optionally shifted by ``offset``.

    Args:
        shapes (tuple of int, or tuple of tuples): the shared tensors' shapes, 2 to 4 numbers each (missing
            leading dimensions are 1); each starts from ``N(0, 1)``.
        parameterization (InputParameterization): the per-image parameterization, e.g. ``FFTImage(...)``.
        offset (int, tuple, or tuple of tuples, optional): shift of every shared tensor along (batch, channels,
            height, width), with symmetric padding (one number: all four; one tuple: right-aligned). Default: none.
    """

    def __init__(self, shapes: Sequence[int] | Sequence[Sequence[int]] | None = None,
                 parameterization: InputParameterization | None = None,
                 offset: int | Sequence[int] | Sequence[Sequence[int]] | None = None) -> None:
        super().__init__()
        if shapes is None or parameterization is None:
            raise ValueError("SharedImage needs shapes and a parameterization")
        shape_list: list[list[int]] = ([[int(v) for v in cast(Sequence[int], shapes)]] if isinstance(shapes[0], int)
                                       else [[int(v) for v in s] for s in cast(Sequence[Sequence[int]], shapes)])
        shared = []
        for shape in shape_list:
            if not 2 <= len(shape) <= 4:
                raise ValueError(f"each shared shape has 2 to 4 dimensions, got {shape}")
            shared.append(SimpleTensorParameterization(nn.Parameter(torch.randn([1] * (4 - len(shape)) + shape))))
        self.shared_init = nn.ModuleList(shared)
        self.parameterization = parameterization
        self.offset = None if offset is None else _offsets(offset, len(shared))

    def forward(self) -> Tensor:
        image = _plain(self.parameterization())
        shared = [_resize_4d(tensor(), tuple(image.shape)) for tensor in self.shared_init]
        if self.offset is not None:
            shared = [_shift(x, offset) for x, offset in zip(shared, self.offset, strict=True)]
        return image + torch.cat(shared, 0).sum(0, keepdim=True)


def _offsets(offset: int | Sequence[int] | Sequence[Sequence[int]], n: int) -> list[list[int]]:
    if isinstance(offset, int):
        return [[offset] * 4 for _ in range(n)]
    if all(isinstance(o, int) for o in offset):
        if not 1 <= len(offset) <= 4:
            raise ValueError(f"an offset has 1 to 4 numbers, got {offset!r}")
        return [[0] * (4 - len(offset)) + [int(o) for o in cast(Sequence[int], offset)] for _ in range(n)]
    rows = [[int(v) for v in o] for o in cast(Sequence[Sequence[int]], offset)]
    if len(rows) != n or any(len(r) != 4 for r in rows):
        raise ValueError(f"give one (batch, channels, height, width) offset per shared shape ({n}), got {offset!r}")
    return rows


def _resize_4d(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """``x`` resized to ``shape`` ``(N, C, H, W)``: bilinear over height and width, linear over channels and
    images (trilinear on a 5-d view) where those differ."""
    batch, channels, height, width = shape
    if x.shape[1] == channels:
        x = nn.functional.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    else:
        x = nn.functional.interpolate(x[None], size=(channels, height, width), mode="trilinear",
                                      align_corners=False)[0]
    if x.shape[0] != batch:
        x = x.permute(1, 0, 2, 3)
        x = nn.functional.interpolate(x[None], size=(batch, height, width), mode="trilinear", align_corners=False)[0]
        x = x.permute(1, 0, 2, 3)
    return x


def _shift(x: Tensor, offset: Sequence[int]) -> Tensor:
    """Roll ``x`` by ``offset`` along its four dimensions after symmetric (mirror) padding, size kept."""
    size = x.shape
    x = symmetric_pad(x, [(abs(int(o)), abs(int(o))) for o in offset])
    for dim, o in enumerate(offset):
        x = torch.roll(x, shifts=int(o), dims=dim)
    return x[: size[0], : size[1], : size[2], : size[3]]


@component("transform", "parameterization")
class RenderImage(ModuleComponent):
    """The :class:`NaturalImage` chain ``x -> image`` on an image-shaped ``x`` for pipeline configs, as the
    ``parameterization`` (the score and the stored MEI are then the rendered image) or as a transform.

    ``{"path": "mei.optim.images.RenderImage", "kwargs": {...}}`` in a config's ``parameterization`` slot makes
    the engine optimize ``x`` and score and store ``RenderImage(x)``; in ``transform`` (its older use) the
    score and the MEI are of ``x`` itself.

    Args:
        parameterization (str, optional): ``"fft"`` (x is filtered by :func:`spectral_filter`) or ``"pixel"``.
            Default: ``"fft"``.
        decorrelate (str, matrix or None, optional): ``"klt"`` (as :class:`ToRGB`), ``"i1i2i3"`` (the inverse
            of Ohta's matrix, I1I2I3 back to RGB: what this component has always meant; ``ToRGB("i1i2i3")`` applies
            Ohta's matrix itself, as captum does), a square colour matrix as
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
        if decorrelate == "i1i2i3":  # the stored meaning: Ohta's space back to RGB (ToRGB("i1i2i3") is captum's)
            decorrelate = torch.linalg.inv(torch.tensor(I1I2I3_MATRIX, dtype=torch.float64)).float().tolist()
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
    "ImageTensor", "InputParameterization", "ImageParameterization", "PixelImage", "FFTImage", "LaplacianImage",
    "SimpleTensorParameterization", "SharedImage", "StackImage", "ToRGB", "NaturalImage", "RenderImage",
    "spectrum_scale", "spectral_filter", "KLT_MATRIX", "I1I2I3_MATRIX",
]
