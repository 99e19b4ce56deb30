"""Transforms for transformation robustness, torch ops only.

Every transform is an ``nn.Module`` whose ``forward(x, i_iter=0)`` works both captum-style (``t(x)``) and as an
engine transform (``t(x, i_iter)``), so each is a pipeline component by dotted path, e.g.
``{"path": "mei.optim.transforms.TransformationRobustness", "kwargs": {}}``. Random choices are drawn per
image from the engine's seeded streams (:mod:`mei.engine.rng`): runs are reproducible and a batch of K images
sees what K single-image runs would.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Distribution

from ..engine import rng
from ..engine.component import check_bool, check_choice, check_number, check_numbers, component
from ..engine.errors import HyperparameterError
from ..engine.kernels import _centred_theta, edge_padding, resample
from ..engine.module_component import ModuleComponent

PADDING_MODES: tuple[str, ...] = ("reflection", "border", "zeros")
"""How :class:`RandomAffine` fills what the resampling uncovers (``grid_sample``'s ``padding_mode``)."""
PAD_MODES: tuple[str, ...] = ("constant", "reflect", "replicate", "circular")
"""The fills of :class:`Pad` (``torch.nn.functional.pad``'s modes)."""


#: Square-root colour correlation of ImageNet (the Karhunen-Loeve basis published with lucid).
KLT_MATRIX = [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]]
#: Ohta's I1I2I3 colour space (rows map RGB to I1, I2, I3), as captum's ``ToRGB.i1i2i3_transform()``.
I1I2I3_MATRIX = [[1 / 3, 1 / 3, 1 / 3], [1 / 2, 0.0, -1 / 2], [-1 / 4, 1 / 2, -1 / 4]]


class ToRGB(nn.Module):
    """Colour recorrelation (captum's): each pixel's channel vector ``c`` becomes ``M c`` (``inverse=True``:
    ``M^-1 c``), between an image parameterization and its squash.

    Args:
        transform (str or Tensor, optional): ``"klt"`` (ImageNet colour correlation, columns normalized to
            norm <= 1), ``"i1i2i3"`` (Ohta's matrix, applied as it is, as in captum), or any square ``(C, C)``
            matrix for C-channel images. Default: ``"klt"``.

    Takes ``(C, H, W)`` or ``(N, C, H, W)``; an extra last channel (alpha) passes through unchanged. The matrix is
    the buffer ``matrix`` (also readable as captum's ``transform``).
    """

    matrix: Tensor  # a registered buffer

    @staticmethod
    def klt_transform() -> Tensor:
        """The ImageNet KLT matrix, scaled so that its largest column norm is 1."""
        matrix = torch.tensor(KLT_MATRIX)
        return matrix / torch.linalg.vector_norm(matrix, dim=0).max()

    @staticmethod
    def i1i2i3_transform() -> Tensor:
        """Ohta's I1I2I3 matrix."""
        return torch.tensor(I1I2I3_MATRIX)

    def __init__(self, transform: str | Tensor | Sequence[Sequence[float]] = "klt") -> None:
        super().__init__()
        if isinstance(transform, str):
            if transform == "klt":
                matrix = self.klt_transform()
            elif transform == "i1i2i3":
                matrix = self.i1i2i3_transform()
            else:
                raise ValueError(f"transform must be 'klt', 'i1i2i3' or a square matrix, got {transform!r}")
        else:
            matrix = torch.as_tensor(transform, dtype=torch.float32)
        if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"the colour matrix must be square, got shape {tuple(matrix.shape)}")
        self.register_buffer("matrix", matrix)

    @property
    def transform(self) -> Tensor:
        """The colour matrix (captum's name for it)."""
        return self.matrix

    def forward(self, x: Tensor, inverse: bool = False) -> Tensor:
        if x.dim() == 3:
            return self.forward(x.unsqueeze(0), inverse)[0]
        n = self.matrix.shape[0]
        if x.dim() != 4 or x.shape[1] not in (n, n + 1):
            raise ValueError(f"ToRGB with a {n}x{n} matrix takes (N, {n}, H, W) images (or {n + 1} channels with "
                             f"alpha), got shape {tuple(x.shape)}")
        matrix = torch.linalg.inv(self.matrix) if inverse else self.matrix
        colour = torch.einsum("ij,nj...->ni...", matrix.to(x.dtype), x[:, :n])
        return torch.cat([colour, x[:, n:]], dim=1) if x.shape[1] > n else colour


def _as_module(transform: Any, key: str) -> Any:
    if isinstance(transform, Mapping):
        from ..engine.resolve import build_component

        return build_component(transform, key)
    return transform


def _pick(values: Sequence[float], n_images: int) -> Tensor:
    """One entry of ``values`` per image (float64 CPU tensor)."""
    if not values:
        raise ValueError("cannot pick from an empty list")
    table = torch.tensor([float(v) for v in values], dtype=torch.float64)
    return table[rng.randint(0, len(values), n_images)]


@component("transform")
class RandomSpatialJitter(ModuleComponent):
    """Shift each image by a random whole number of pixels in ``[-translate, translate]`` along height and
    width; the uncovered border is filled by reflection, the size is kept.

    Args:
        translate (int): largest shift in pixels.
    """

    def __init__(self, translate: int) -> None:
        super().__init__()
        self.translate = check_number("translate", translate, minimum=0, integer=True)
        self.pad_range = 2 * self.translate  # captum's attributes
        self.pad = nn.ReflectionPad2d(self.translate)

    def _padded(self, x: Tensor) -> Tensor:
        t = self.translate
        return F.pad(x, (t, t, t, t), mode=edge_padding("reflect", t, tuple(x.shape[-2:])))

    def translate_tensor(self, x: Tensor, insets: Tensor | Sequence[int]) -> Tensor:
        """captum's helper: the window of the reflected-padded batch that starts ``insets = (top, left)`` pixels
        in (``0`` moves the content ``translate`` pixels down/right, ``2 * translate`` as far up/left)."""
        top, left = (int(v) for v in insets)
        height, width = x.shape[-2:]
        return self._padded(x)[..., top:top + height, left:left + width]

    def forward(self, x: Tensor, i_iter: int = 0) -> Tensor:
        if self.translate == 0:
            return x
        height, width = x.shape[-2:]
        padded = self._padded(x)
        offsets = rng.randint(0, self.pad_range + 1, x.shape[0], (2,)).tolist()
        return torch.stack([padded[k, ..., dy:dy + height, dx:dx + width] for k, (dy, dx) in enumerate(offsets)])


def affine(x: Tensor, scale: Tensor, degrees: Tensor, padding_mode: str = "reflection") -> Tensor:
    """Zoom each image by ``scale[k]`` (> 1 enlarges) and rotate it by ``degrees[k]`` about its centre.

    Works in pixel units, so non-square images are rotated rigidly; bilinear, size kept:
    :func:`mei.engine.kernels.resample`.
    """
    return resample(x, scale, degrees, padding_mode=padding_mode)


@component("transform")
class RandomAffine(ModuleComponent):
    """Zoom each image by a factor picked from ``scale`` and rotate it by an angle picked from ``degrees``
    about its centre, in one resampling (size kept).

    Args:
        scale (list[float], optional): factors to pick from (> 1 enlarges). Default: ``[1.0]``.
        degrees (list[float], optional): angles in degrees to pick from. Default: ``[0.0]``.
        padding_mode (str, optional): ``"reflection"``, ``"border"`` or ``"zeros"``. Default: ``"reflection"``.
    """

    def __init__(self, scale: Sequence[float] = (1.0,), degrees: Sequence[float] = (0.0,),
                 padding_mode: str = "reflection") -> None:
        super().__init__()
        self.scale = [float(s) for s in check_numbers("scale", scale, minimum=0, strict_minimum=True,
                                                      expected="a non-empty list of positive factors")]
        self.degrees = [float(d) for d in check_numbers("degrees", degrees, expected="a non-empty list of angles")]
        self.padding_mode = check_choice("padding_mode", padding_mode, PADDING_MODES,
                                         expected="'reflection', 'border' or 'zeros'")

    def forward(self, x: Tensor, i_iter: int = 0) -> Tensor:
        factors = _pick(self.scale, x.shape[0])
        angles = _pick(self.degrees, x.shape[0])
        return affine(x, factors, angles, self.padding_mode)


def _batch_pick(values: Sequence[float] | Distribution, n_images: int) -> float:
    """One value for the whole batch (captum picks one per call): from the first image's random stream."""
    generator = rng.generators(n_images)[0]
    if isinstance(values, Distribution):
        if generator is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
                return float(values.sample())
        return float(values.sample())
    return float(values[int(torch.randint(0, len(values), (1,), generator=generator))])


@component("transform")
class RandomScale(ModuleComponent):
    """captum's ``RandomScale``: resize the whole batch by one factor picked from ``scale`` (or drawn from a
    distribution) with ``F.interpolate``, so the image size changes (``scale=[0.5]`` turns 8x8 into 4x4).

    The size-keeping zoom that this path named before is the engine's :class:`mei.transforms.RandomScale`
    (a factor range) or :class:`RandomAffine` here (``scale=[...]``, a list to pick from).

    Args:
        scale (list[float], 1-d Tensor or torch.distributions.Distribution): factors to pick from, or a
            distribution to sample one from.
        mode (str, optional): ``"bilinear"``, ``"nearest"``, ``"area"`` or ``"bicubic"``. Default: ``"bilinear"``.
        align_corners (bool, optional): as for ``F.interpolate`` (None for ``"nearest"`` and ``"area"``).
            Default: False.
        recompute_scale_factor (bool, optional): as for ``F.interpolate``. Default: False.
        antialias (bool, optional): as for ``F.interpolate`` (bilinear and bicubic). Default: False.
    """

    _arguments_as_given = ("scale", "align_corners")

    def __init__(self, scale: Sequence[float] | Tensor | Distribution, mode: str = "bilinear",
                 align_corners: bool | None = False, recompute_scale_factor: bool = False,
                 antialias: bool = False) -> None:
        super().__init__()
        factors = _factors(scale)
        self._is_distribution = isinstance(factors, Distribution)
        self.scale_distribution = factors if isinstance(factors, Distribution) else None
        self.scale: list[float] = [] if isinstance(factors, Distribution) else factors
        self.mode = check_choice("mode", mode, ("bilinear", "nearest", "area", "bicubic"))
        self.align_corners = align_corners if mode not in ("nearest", "area") else None
        self.recompute_scale_factor = check_bool("recompute_scale_factor", recompute_scale_factor)
        self.antialias = check_bool("antialias", antialias)
        self._has_antialias = True  # the pinned torch's F.interpolate always takes antialias

    def _scale_tensor(self, x: Tensor, scale: float) -> Tensor:
        """The batch ``x`` resized by ``scale`` (captum's helper)."""
        return F.interpolate(x, scale_factor=float(scale), mode=self.mode, align_corners=self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor, antialias=self.antialias)

    def forward(self, x: Tensor, i_iter: int = 0) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"RandomScale takes (N, C, H, W) images, got shape {tuple(x.shape)}")
        pool = self.scale_distribution if self.scale_distribution is not None else self.scale
        return self._scale_tensor(x, _batch_pick(pool, x.shape[0]))


def _factors(values: Any) -> list[float] | Distribution:
    if isinstance(values, Distribution):
        if values.batch_shape != torch.Size([]):
            raise ValueError("a distribution of factors must draw one number at a time (batch_shape ())")
        return values
    if isinstance(values, Tensor):
        if values.dim() != 1:
            raise ValueError(f"a tensor of values must be 1-d, got shape {tuple(values.shape)}")
        values = values.tolist()
    return [float(v) for v in check_numbers("scale", list(values), expected="a non-empty list of numbers")]


GRID_MODES: tuple[str, ...] = ("bilinear", "nearest", "bicubic")
"""The interpolations of :class:`RandomRotation` and :class:`RandomScaleAffine` (``grid_sample``'s ``mode``)."""


def _values_or_distribution(name: str, values: Any) -> tuple[list[float], Distribution | None]:
    """captum's ``scale``/``degrees`` argument: numbers (a sequence or 1-d tensor) or a distribution."""
    if isinstance(values, Distribution):
        if values.batch_shape != torch.Size([]):
            raise ValueError(f"{name}: a distribution must draw one number at a time (batch_shape ())")
        return [], values
    if isinstance(values, Tensor):
        if values.dim() != 1:
            raise ValueError(f"{name}: a tensor of values must be 1-d, got shape {tuple(values.shape)}")
        values = values.tolist()
    return [float(v) for v in check_numbers(name, list(values), expected="a non-empty list of numbers")], None


def _draw(values: list[float], distribution: Distribution | None, n_images: int) -> Tensor:
    """One value per image (float64 CPU): picked from ``values`` or sampled from ``distribution``, each image
    from its own seeded stream."""
    if distribution is None:
        return _pick(values, n_images)

    def sample(generator: torch.Generator | None) -> Tensor:
        if generator is None:
            return torch.as_tensor(distribution.sample(), dtype=torch.float64)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
            return torch.as_tensor(distribution.sample(), dtype=torch.float64)

    return rng.per_image(n_images, sample).reshape(n_images)


class _GridTransform(ModuleComponent):
    """Base of captum's resampling transforms: one value per image (from a list or a distribution), turned into
    a ``(2, 3)`` matrix of :func:`F.affine_grid` by :meth:`_matrices`; ``grid_sample`` keeps the size."""

    _value_name = ""

    def __init__(self, values: Any, mode: str = "bilinear", padding_mode: str = "zeros",
                 align_corners: bool = False) -> None:
        super().__init__()
        listed, distribution = _values_or_distribution(self._value_name, values)
        setattr(self, self._value_name, listed)
        setattr(self, self._value_name + "_distribution", distribution)
        self._is_distribution = distribution is not None
        self.mode = check_choice("mode", mode, GRID_MODES)
        self.padding_mode = check_choice("padding_mode", padding_mode, PADDING_MODES,
                                         expected="'zeros', 'border' or 'reflection'")
        self.align_corners = check_bool("align_corners", align_corners)

    def _matrices(self, x: Tensor, values: Tensor) -> Tensor:
        raise NotImplementedError

    def _same_for_all(self, x: Tensor, value: float) -> Tensor:
        """Every image of ``x`` resampled with the one ``value`` (captum's ``_rotate_tensor``/``_scale_tensor``)."""
        return self._sample(x, torch.full((x.shape[0],), float(value), dtype=torch.float64))

    def _sample(self, x: Tensor, values: Tensor) -> Tensor:
        grid = F.affine_grid(self._matrices(x, values), list(x.shape), align_corners=self.align_corners)
        return F.grid_sample(x, grid, mode=self.mode, padding_mode=self.padding_mode,
                             align_corners=self.align_corners)

    def forward(self, x: Tensor, i_iter: int = 0) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"{type(self).__name__} takes (N, C, H, W) images, got shape {tuple(x.shape)}")
        values = _draw(getattr(self, self._value_name), getattr(self, self._value_name + "_distribution"),
                       x.shape[0])
        return self._sample(x, values)


@component("transform")
class RandomRotation(_GridTransform):
    """Rotate each image about its centre by an angle picked from ``degrees`` (size kept); what the rotation
    uncovers is filled with zeros, as in captum.

    ``degrees`` may also be a distribution to draw each angle from, and ``padding_mode`` another fill. The
    rotation is rigid in pixels, so non-square images are rotated without shear (captum rotates the normalized
    square; on square images the two are the same).

    Args:
        degrees (list[float], 1-d Tensor or torch.distributions.Distribution): angles in degrees to pick from.
        mode (str, optional): ``"bilinear"``, ``"nearest"`` or ``"bicubic"``. Default: ``"bilinear"``.
        padding_mode (str, optional): ``"zeros"``, ``"reflection"`` or ``"border"``. Default: ``"zeros"``.
        align_corners (bool, optional): as for ``F.grid_sample``. Default: False.
    """

    _value_name, _arguments_as_given = "degrees", ("degrees",)
    degrees: list[float]

    def __init__(self, degrees: Sequence[float] | Tensor | Distribution, mode: str = "bilinear",
                 padding_mode: str = "zeros", align_corners: bool = False) -> None:
        super().__init__(degrees, mode, padding_mode, align_corners)

    _rotate_tensor = _GridTransform._same_for_all

    @staticmethod
    def _get_rot_mat(theta: float, device: torch.device | str, dtype: torch.dtype) -> Tensor:
        """captum's ``(2, 3)`` rotation matrix of ``theta`` degrees (of a square image)."""
        angle = math.radians(float(theta))
        return torch.tensor([[math.cos(angle), -math.sin(angle), 0.0], [math.sin(angle), math.cos(angle), 0.0]],
                            device=device, dtype=dtype)


    def _matrices(self, x: Tensor, values: Tensor) -> Tensor:
        return _centred_theta(x, torch.ones_like(values), values)


class RandomScaleAffine(_GridTransform):
    """captum's ``RandomScaleAffine``: resample each image with the matrix ``[[s, 0, 0], [0, s, 0]]`` for a
    factor ``s`` picked from ``scale`` (or drawn from a distribution), size kept: ``s > 1`` shrinks the content
    (the border filled as ``padding_mode`` says), ``s < 1`` zooms in. (:class:`RandomAffine` takes zoom
    factors, ``> 1`` enlarges; :class:`RandomScale` resizes.)

    Args:
        scale (list[float], 1-d Tensor or torch.distributions.Distribution): factors to pick from.
        mode (str, optional): ``"bilinear"``, ``"nearest"`` or ``"bicubic"``. Default: ``"bilinear"``.
        padding_mode (str, optional): ``"zeros"``, ``"reflection"`` or ``"border"``. Default: ``"zeros"``.
        align_corners (bool, optional): as for ``F.affine_grid`` and ``F.grid_sample``. Default: False.
    """

    _value_name, _arguments_as_given = "scale", ("scale",)
    scale: list[float]

    def __init__(self, scale: Sequence[float] | Tensor | Distribution, mode: str = "bilinear",
                 padding_mode: str = "zeros", align_corners: bool = False) -> None:
        super().__init__(scale, mode, padding_mode, align_corners)

    @staticmethod
    def _get_scale_mat(m: float, device: torch.device | str, dtype: torch.dtype) -> Tensor:
        """captum's ``(2, 3)`` scale matrix of the factor ``m``."""
        return torch.tensor([[float(m), 0.0, 0.0], [0.0, float(m), 0.0]], device=device, dtype=dtype)

    _scale_tensor = _GridTransform._same_for_all

    def _matrices(self, x: Tensor, values: Tensor) -> Tensor:
        return _centred_theta(x, 1 / values, torch.zeros_like(values))


@component("transform")
class Pad(ModuleComponent):
    """Pad height and width by ``padding`` pixels on every side.

    Args:
        padding (int): pixels per side.
        mode (str, optional): ``"constant"``, ``"reflect"`` or ``"replicate"``. Default: ``"constant"``.
        value (float, optional): fill value for ``"constant"``. Default: 0.5 (grey).
    """

    def __init__(self, padding: int, mode: str = "constant", value: float = 0.5) -> None:
        super().__init__()
        self.padding = check_number("padding", padding, minimum=0, integer=True)
        self.mode = check_choice("mode", mode, PAD_MODES)
        self.value = float(check_number("value", value))

    def forward(self, x: Tensor, i_iter: int = 0) -> Tensor:
        p = self.padding
        if self.mode == "constant":
            return F.pad(x, (p, p, p, p), mode="constant", value=self.value)
        return F.pad(x, (p, p, p, p), mode=self.mode)


def center_crop(x: Tensor, size: int | Sequence[int], pixels_from_edges: bool = False, offset_left: bool = False,
                padding_mode: str = "constant", padding_value: float = 0.0) -> Tensor:
    """captum's ``center_crop`` of a ``(C, H, W)`` or ``(N, C, H, W)`` tensor.

    Args:
        x (Tensor): the images.
        size (int or sequence of 1 or 2 ints): the output height and width, or (``pixels_from_edges``) the
            number of pixels to cut away in total along each.
        pixels_from_edges (bool, optional): read ``size`` as the pixels cut away. Default: False.
        offset_left (bool, optional): where the two sides cannot be cut equally, move the window one pixel
            left/up (only without ``pixels_from_edges``). Default: False.
        padding_mode (str, optional): ``"constant"``, ``"reflect"``, ``"replicate"`` or ``"circular"``, where
            ``size`` is larger than the image (the larger half of the padding goes first). Default: ``"constant"``.
        padding_value (float, optional): the fill of ``"constant"`` padding. Default: 0.
    """
    if x.dim() not in (3, 4):
        raise ValueError(f"center_crop takes (C, H, W) or (N, C, H, W), got shape {tuple(x.shape)}")
    size_h, size_w = _pair(size)
    h, w = x.shape[-2:]
    if pixels_from_edges:
        h_crop, w_crop = h - size_h, w - size_w
        top, left = h // 2 - h_crop // 2, w // 2 - w_crop // 2
        return x[..., top:top + h_crop, left:left + w_crop]
    h_end = h - math.ceil((h - size_h) / 2) if h > size_h else size_h
    w_end = w - math.ceil((w - size_w) / 2) if w > size_w else size_w
    if offset_left and (h - size_h) % 2:
        h_end += 1
    if offset_left and (w - size_w) % 2:
        w_end += 1
    if size_h > h or size_w > w:
        padding = [math.ceil((size_w - w) / 2) if size_w > w else 0, math.ceil((size_h - h) / 2) if size_h > h else 0,
                   (size_w - w + 1) // 2 if size_w > w else 0, (size_h - h + 1) // 2 if size_h > h else 0]
        padding = [padding[0], padding[2], padding[1], padding[3]]  # F.pad order: left, right, top, bottom
        if padding_mode == "constant":
            x = F.pad(x, padding, mode="constant", value=padding_value)
        else:
            x = F.pad(x, padding, mode=padding_mode)
    return x[..., h_end - size_h:h_end, w_end - size_w:w_end]


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int) and not isinstance(size, bool):
        return size, size
    values = [int(v) for v in cast(Sequence[int], size)]
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        raise ValueError(f"a crop size has 1 or 2 numbers, got {size!r}")
    return int(values[0]), int(values[1])


def symmetric_pad(x: Tensor, padding: Sequence[Sequence[int]]) -> Tensor:
    """NumPy's ``np.pad(x, padding, mode="symmetric")`` in torch, differentiable: ``padding`` holds one
    ``(before, after)`` pair per dimension; the edge value is repeated (mirror including the edge), and pads
    longer than a dimension keep mirroring."""
    for dim, index in enumerate(_symmetric_indices(x, padding)):
        if index is not None:
            x = x.index_select(dim, index)
    return x


def _symmetric_indices(x: Tensor, padding: Sequence[Sequence[int]]) -> list[Tensor | None]:
    """Per dimension, the source index of every padded position (``None`` where nothing is padded)."""
    if len(padding) != x.dim():
        raise ValueError(f"give one (before, after) pair per dimension ({x.dim()}), got {padding!r}")
    indices: list[Tensor | None] = []
    for dim, (before, after) in enumerate(padding):
        n = x.shape[dim]
        if before == 0 and after == 0:
            indices.append(None)
            continue
        j = torch.arange(-int(before), n + int(after), device=x.device) % (2 * n)
        indices.append(torch.where(j < n, j, 2 * n - 1 - j))
    return indices


class SymmetricPadding(torch.autograd.Function):
    """captum's ``SymmetricPadding``: ``SymmetricPadding.apply(x, padding)`` is :func:`symmetric_pad`, one autograd
    node whose gradient is the exact one: a mirrored value sends its gradient back to the pixel it copies
    (captum's backward crops the padding away instead)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, padding: Sequence[Sequence[int]]) -> Tensor:
        indices = _symmetric_indices(x, padding)
        ctx.indices, ctx.sizes = indices, x.shape
        for dim, index in enumerate(indices):
            if index is not None:
                x = x.index_select(dim, index)
        return x

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        grad = grad_output
        for dim, index in reversed(list(enumerate(ctx.indices))):
            if index is not None:
                shape = list(grad.shape)
                shape[dim] = ctx.sizes[dim]
                grad = grad.new_zeros(shape).index_add_(dim, index, grad)
        return grad, None


class ScaleInputRange(nn.Module):
    """Multiply the input by ``multiplier``, for models that expect another range than [0, 1] (captum's).

    Args:
        multiplier (float, optional): Default: 1.
    """

    def __init__(self, multiplier: float = 1.0) -> None:
        super().__init__()
        self.multiplier = float(check_number("multiplier", multiplier))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.multiplier


class RGBToBGR(nn.Module):
    """Swap the red and blue channels of ``(N, 3, H, W)`` images (captum's)."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"RGBToBGR takes (N, 3, H, W) images, got shape {tuple(x.shape)}")
        return x[:, [2, 1, 0]]


class IgnoreAlpha(nn.Module):
    """Drop the alpha channel of ``(N, 4, H, W)`` images (captum's)."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != 4:
            raise ValueError(f"IgnoreAlpha takes (N, 4, H, W) images, got shape {tuple(x.shape)}")
        return x[:, :3]


class BlendAlpha(nn.Module):
    """Blend ``(N, 4, H, W)`` RGBA images onto a background: ``alpha * rgb + (1 - alpha) * background``
    (captum's).

    Args:
        background (Tensor, optional): an image broadcastable to ``(N, 3, H, W)``. Default: a new uniform
            random background every call (drawn per image from the engine's streams).
    """

    def __init__(self, background: Tensor | None = None) -> None:
        super().__init__()
        self.background = background

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != 4:
            raise ValueError(f"BlendAlpha takes (N, 4, H, W) images, got shape {tuple(x.shape)}")
        rgb, alpha = x[:, :3], x[:, 3:4]
        background = self.background if self.background is not None else rng.rand(rgb.shape).to(rgb)
        return alpha * rgb + (1 - alpha) * background


class GaussianSmoothing(nn.Module):
    """captum's ``GaussianSmoothing``: convolve each channel of a 1-, 2- or 3-d signal with a normalized Gaussian
    kernel (a depthwise ``conv1d``/``conv2d``/``conv3d`` without padding, so each side loses ``kernel_size // 2``).

    The kernel is the product over the dimensions of ``exp(-((i - (k - 1) / 2) / sigma)^2 / 2)`` for
    ``i = 0 .. k - 1``, divided by its sum.

    Args:
        channels (int): number of channels of the input (and output).
        kernel_size (int or sequence of int): the kernel's size, one for all dimensions or one per dimension.
        sigma (float or sequence of float): its standard deviation(s) in samples.
        dim (int, optional): 1, 2 or 3 signal dimensions. Default: 2.

    Takes ``(N, channels, *spatial)`` with ``dim`` spatial dimensions; the kernel is the buffer ``weight``,
    shape ``(channels, 1, *kernel_size)``.
    """

    weight: Tensor  # a registered buffer

    def __init__(self, channels: int, kernel_size: int | Sequence[int], sigma: float | Sequence[float],
                 dim: int = 2) -> None:
        super().__init__()
        if dim not in (1, 2, 3):
            raise RuntimeError(f"GaussianSmoothing supports 1, 2 and 3 dimensions, got dim={dim}")
        sizes = [int(kernel_size)] * dim if isinstance(kernel_size, (int, float)) else [int(k) for k in kernel_size]
        sigmas = [float(sigma)] * dim if isinstance(sigma, (int, float)) else [float(v) for v in sigma]
        if len(sizes) != dim or len(sigmas) != dim:
            raise ValueError(f"kernel_size and sigma need one value or {dim}, got {kernel_size!r} and {sigma!r}")
        kernel = torch.ones(())
        for size, std in zip(sizes, sigmas, strict=True):  # captum's arithmetic, so the values agree to the bit
            grid = torch.arange(size, dtype=torch.float32)
            profile = 1 / (std * math.sqrt(2 * math.pi)) * torch.exp(-(((grid - (size - 1) / 2) / std) ** 2) / 2)
            kernel = kernel[..., None] * profile
        kernel = kernel / kernel.sum()
        self.register_buffer("weight", kernel.expand(int(channels), 1, *sizes).contiguous())
        self.groups = int(channels)
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        convolve = (F.conv1d, F.conv2d, F.conv3d)[self.dim - 1]
        return convolve(x, weight=self.weight.to(x.dtype), groups=self.groups)


class NChannelsToRGB(nn.Module):
    """captum's ``NChannelsToRGB``: any number of channels shown as RGB
    (:func:`mei.optim.visualize.nchannels_to_rgb`: one hue per channel, each pixel keeps its norm).

    Args:
        warp (bool, optional): make neighbouring hues easier to tell apart. Default: False.
    """

    def __init__(self, warp: bool = False) -> None:
        super().__init__()
        self.warp = check_bool("warp", warp)

    def forward(self, x: Tensor) -> Tensor:
        from .visualize import nchannels_to_rgb

        return nchannels_to_rgb(x, self.warp)


class RandomCrop(nn.Module):
    """captum's ``RandomCrop``: cut a ``crop_size`` window out of each image at a random place.

    Each image is rolled (circularly) by a random shift in ``[-s, s)`` per axis, ``s = ceil((size - crop) / 2)``,
    and its centre window is kept (:meth:`_center_crop`), so every window lies within the image; the shifts are
    drawn per image from the engine's seeded streams.

    Args:
        crop_size (int or sequence of 1 or 2 ints): output height and width.
    """

    def __init__(self, crop_size: int | Sequence[int]) -> None:
        super().__init__()
        self.crop_size = list(_pair(crop_size))

    def _center_crop(self, x: Tensor) -> Tensor:
        """The centre ``crop_size`` window of ``x`` (the larger half of an odd margin is cut at the top/left)."""
        (height, width), (crop_h, crop_w) = x.shape[-2:], self.crop_size
        if crop_h > height or crop_w > width:
            raise ValueError(f"crop_size {tuple(self.crop_size)} is larger than the image {(height, width)}")
        bottom = height - math.ceil((height - crop_h) / 2)
        right = width - math.ceil((width - crop_w) / 2)
        return x[..., bottom - crop_h:bottom, right - crop_w:right]

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"RandomCrop takes (N, C, H, W) images, got shape {tuple(x.shape)}")
        reach = [math.ceil((x.shape[2] - self.crop_size[0]) / 2), math.ceil((x.shape[3] - self.crop_size[1]) / 2)]
        shifts = rng.per_image(x.shape[0], lambda g: torch.stack(
            [torch.randint(-r, r, (), generator=g) if r > 0 else torch.zeros((), dtype=torch.int64)
             for r in reach])).tolist()
        rolled = torch.stack([torch.roll(image, shift, dims=(1, 2)) for image, shift in zip(x, shifts, strict=True)])
        return self._center_crop(rolled)


@component("transform")
class CenterCrop(ModuleComponent):
    """Cut the central ``size`` window out of each image, or pad symmetrically (with ``padding_value``) where
    the image is smaller than ``size`` (captum's ``CenterCrop``, :func:`center_crop`).

    Args:
        size (int or tuple[int, int]): output height and width (or, with ``pixels_from_edges``, the pixels cut
            away). Default: 0.
        pixels_from_edges (bool, optional): read ``size`` as the number of pixels cut away. Default: False.
        offset_left (bool, optional): an uneven cut moves the window one pixel left/up. Default: False.
        padding_mode (str, optional): ``"constant"``, ``"reflect"``, ``"replicate"`` or ``"circular"``.
            Default: ``"constant"``.
        padding_value (float, optional): fill value where ``"constant"`` padding is needed. Default: 0.0.
    """

    def __init__(self, size: int | Sequence[int] = 0, pixels_from_edges: bool = False, offset_left: bool = False,
                 padding_mode: str = "constant", padding_value: float = 0.0) -> None:
        super().__init__()
        if isinstance(size, int) and not isinstance(size, bool):
            size = (size, size)
        if not isinstance(size, (list, tuple)) or len(size) == 1:
            size = tuple(size) * 2 if isinstance(size, (list, tuple)) else size
        self.size = list(check_numbers("size", size, min_length=2, max_length=2, minimum=0, integer=True))
        self.pixels_from_edges = check_bool("pixels_from_edges", pixels_from_edges)
        self.offset_left = check_bool("offset_left", offset_left)
        self.padding_mode = check_choice("padding_mode", padding_mode, PAD_MODES)
        self.padding_value = float(check_number("padding_value", padding_value))

    def forward(self, x: Tensor, i_iter: int = 0) -> Tensor:
        return center_crop(x, self.size, self.pixels_from_edges, self.offset_left, self.padding_mode,
                           self.padding_value)


@component("transform")
class Chain(ModuleComponent):
    """Apply transforms in order, passing ``i_iter`` on.

    Args:
        *transforms (nn.Module or dict): transforms (or component specs resolved through :mod:`mei.engine.resolve`).
    """

    def __init__(self, *transforms: Any) -> None:
        super().__init__()
        self.transforms = nn.ModuleList(_as_module(t, f"transforms[{i}]") for i, t in enumerate(transforms))

    def forward(self, x: Tensor, i_iter: int = 0) -> Tensor:
        for transform in self.transforms:
            x = transform(x, i_iter)
        return x


@component("transform")
class RandomChoice(ModuleComponent):
    """Give each image one transform picked at random from ``transforms``.

    Every transform runs on the whole batch (so each image's random stream is used the same way whatever the
    others picked) and each image keeps the result of its pick; all must keep the image size.

    Args:
        transforms (list of nn.Module or dict): the candidates (modules or component specs).
    """

    def __init__(self, transforms: Sequence[Any]) -> None:
        super().__init__()
        if not transforms:
            raise HyperparameterError("transforms",
                                      f"must hold at least one transform to pick from, got {transforms!r}")
        self.transforms = nn.ModuleList(_as_module(t, f"transforms[{i}]") for i, t in enumerate(transforms))

    def forward(self, x: Tensor, i_iter: int = 0) -> Tensor:
        picks = rng.randint(0, len(self.transforms), x.shape[0]).to(x.device)
        outputs = torch.stack([t(x, i_iter) for t in self.transforms])
        index = picks.view(1, -1, *([1] * (x.dim() - 1))).expand(1, *outputs.shape[1:])
        return outputs.gather(0, index)[0]


def default_scales() -> list[float]:
    """captum's scale factors of :class:`TransformationRobustness`: ``0.995**n`` for ``n`` in ``-5 .. 79``, then
    ``0.998**n`` for ``n`` in ``20 .. 39`` twice."""
    return [0.995**n for n in range(-5, 80)] + [0.998**n for n in 2 * list(range(20, 40))]


def default_degrees() -> list[float]:
    """captum's angles of :class:`TransformationRobustness`: ``-20 .. 19``, ``-10 .. 9``, ``-5 .. 4`` and five
    zeros, so small angles come more often."""
    return [float(d) for d in [*range(-20, 20), *range(-10, 10), *range(-5, 5), *([0] * 5)]]


#: captum's default ``padding_transform`` of :class:`TransformationRobustness` (it holds no state).
DEFAULT_PADDING = nn.ConstantPad2d(2, value=0.5)
DEFAULT_SCALES, DEFAULT_DEGREES = tuple(default_scales()), tuple(default_degrees())


@component("transform")
class TransformationRobustness(ModuleComponent):
    """captum's robustness stack: pad, jitter (one :class:`RandomSpatialJitter` per ``translate`` entry),
    :class:`RandomScale` (resizes), :class:`RandomRotation`, a final jitter, then optionally a centre crop or
    pad back to the input size. Any step given as None is left out.

    Args:
        padding_transform (nn.Module or component spec, optional): applied first. Default:
            ``nn.ConstantPad2d(2, value=0.5)``.
        translate (int or list[int], optional): the jitters' largest shifts. Default: ``[4] * 10``.
        scale (list[float], 1-d Tensor or Distribution, optional): :class:`RandomScale`'s factors.
            Default: :func:`default_scales`.
        degrees (list[float], 1-d Tensor or Distribution, optional): :class:`RandomRotation`'s angles.
            Default: :func:`default_degrees`.
        final_translate (int, optional): the last jitter's largest shift. Default: 2.
        crop_or_pad_output (bool, optional): crop or pad the output to the input's size (for models with a fixed
            input size). Default: False.
    """

    _arguments_as_given = ("padding_transform",)

    def __init__(self, padding_transform: Any = DEFAULT_PADDING, translate: int | Sequence[int] | None = (4,) * 10,
                 scale: Sequence[float] | Tensor | Distribution | None = DEFAULT_SCALES,
                 degrees: Sequence[float] | Tensor | Distribution | None = DEFAULT_DEGREES,
                 final_translate: int | None = 2, crop_or_pad_output: bool = False) -> None:
        super().__init__()
        self.padding_transform = (None if padding_transform is None
                                  else _as_module(padding_transform, "padding_transform"))
        self.jitter_transforms: nn.Module | None = (
            None if translate is None
            else nn.Sequential(*(RandomSpatialJitter(t) for t in translate)) if isinstance(translate, Sequence)
            else RandomSpatialJitter(translate))
        self.random_scale = None if scale is None else RandomScale(scale)
        self.random_rotation = None if degrees is None else RandomRotation(degrees)
        self.final_jitter = None if final_translate is None else RandomSpatialJitter(final_translate)
        self.crop_or_pad_output = check_bool("crop_or_pad_output", crop_or_pad_output)

    def forward(self, x: Tensor, i_iter: int = 0) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"TransformationRobustness takes (N, C, H, W) images, got shape {tuple(x.shape)}")
        size = tuple(x.shape[-2:])
        for step in (self.padding_transform, self.jitter_transforms, self.random_scale, self.random_rotation,
                     self.final_jitter):
            if step is not None:
                x = step(x)
        return center_crop(x, size) if self.crop_or_pad_output else x


__all__ = [
    "ToRGB", "KLT_MATRIX", "I1I2I3_MATRIX", "RandomScaleAffine", "center_crop", "symmetric_pad",
    "SymmetricPadding", "ScaleInputRange", "RGBToBGR", "IgnoreAlpha", "BlendAlpha", "RandomSpatialJitter",
    "RandomAffine", "RandomScale", "RandomRotation", "Pad", "CenterCrop", "Chain", "RandomChoice",
    "TransformationRobustness", "affine", "default_scales", "default_degrees", "GaussianSmoothing", "NChannelsToRGB",
    "RandomCrop", "GRID_MODES",
]
