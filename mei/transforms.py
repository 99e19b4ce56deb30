"""Transforms applied to the input before the model sees it: ``transform(x, i_iter) -> x``.

Gradients flow through them. Random ones draw per image from the engine's seeded streams (:mod:`mei.engine.rng`).
Spatial transforms act on the last two dimensions, so images ``(N, C, H, W)`` and videos
``(N, C, T, H, W)`` both work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .engine import rng
from .engine.component import Component, check_choice, check_dim, check_number, component
from .engine.errors import HyperparameterError
from .engine.kernels import resample


def shift(x: Tensor, shifts: Tensor, dims: Sequence[int]) -> Tensor:
    """Circularly shift each image ``k`` of ``x`` by ``shifts[k, j]`` along ``dims[j]`` (differentiable)."""
    n_images = x.shape[0]
    for j, dim in enumerate(dims):
        dim = dim % x.dim()
        size = x.shape[dim]
        index = (torch.arange(size, device=x.device)[None, :] - shifts[:, j, None].to(x.device)) % size
        view = [1] * x.dim()
        view[0], view[dim] = n_images, size
        x = torch.gather(x, dim, index.view(view).expand_as(x))
    return x


@component("transform")
class Identity(Component):
    """Returns the input unchanged."""

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        return x


@component("transform")
class Jitter(Component):
    """Random circular shift of each image by up to ``max_shift`` along each of ``dims``.

    Args:
        max_shift (int | list[int]): largest shift (per dimension if a list).
        dims (list[int], optional): dimensions to shift. Default: ``[-2, -1]`` (height, width).
    """

    _repr_fields = ("max_shift", "dims")

    def __init__(self, max_shift: int | Sequence[int], dims: Sequence[int] = (-2, -1)) -> None:
        self.dims = [check_dim("dims", d) for d in dims]
        shifts = [max_shift] * len(self.dims) if isinstance(max_shift, (int, float)) else list(max_shift)
        if len(shifts) != len(self.dims):
            raise HyperparameterError("max_shift",
                                      f"has {len(shifts)} entries for {len(self.dims)} dims, got {max_shift!r}")
        self.max_shift = [check_number("max_shift", s, minimum=0, maximum=10**6, integer=True) for s in shifts]

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        if not any(self.max_shift):
            return x
        n_images = x.shape[0]
        shifts = torch.stack(
            [rng.randint(-s, s + 1, n_images) for s in self.max_shift], dim=1
        )
        return shift(x, shifts, self.dims)


@component("transform")
class RandomCrop(Component):
    """Crop a random ``height`` x ``width`` window of each image and resize it back to full size.

    Args:
        height (int): crop height in pixels.
        width (int): crop width in pixels.
    """

    _repr_fields = ("height", "width")

    def __init__(self, height: int, width: int) -> None:
        self.height = check_number("height", height, minimum=1, maximum=10**6, integer=True)
        self.width = check_number("width", width, minimum=1, maximum=10**6, integer=True)

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        h, w = x.shape[-2:]
        if self.height > h or self.width > w:
            raise ValueError(f"crop {self.height}x{self.width} is larger than the input {h}x{w}")
        tops = rng.randint(0, h - self.height + 1, x.shape[0])
        lefts = rng.randint(0, w - self.width + 1, x.shape[0])
        windows = [(float(t), float(l_), self.height, self.width) for t, l_ in zip(tops, lefts, strict=True)]
        return resample(x, window=windows)


@component("transform")
class RandomScale(Component):
    """Zoom each image about its centre by a random factor in ``[min_scale, max_scale]`` (size kept).

    A factor > 1 zooms in; edges are reflected when zooming out.

    Args:
        min_scale (float): smallest factor, > 0.
        max_scale (float): largest factor, >= min_scale.
    """

    _repr_fields = ("min_scale", "max_scale")

    def __init__(self, min_scale: float, max_scale: float) -> None:
        self.min_scale = check_number("min_scale", min_scale, minimum=0, strict_minimum=True, maximum=100)
        self.max_scale = check_number("max_scale", max_scale, minimum=self.min_scale, maximum=100)

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        h, w = x.shape[-2:]
        factors = self.min_scale + (self.max_scale - self.min_scale) * rng.rand((x.shape[0], 1))[:, 0]
        windows = [((h - h / f) / 2, (w - w / f) / 2, h / f, w / f) for f in factors.tolist()]
        return resample(x, window=windows)


@component("transform")
class RandomAffine(Component):
    """Zoom, rotate and shift each image by random amounts in one batched resampling (size kept): the
    robustness transforms of feature visualization (lucent's scale, rotate and jitter) as one kernel call.

    Each image draws a zoom factor uniformly from ``[min_scale, max_scale]``, an angle from
    ``[-max_degrees, max_degrees]`` and a shift from ``[-max_shift, max_shift]`` pixels per axis.

    Args:
        min_scale (float, optional): smallest zoom, > 0. Default: 0.9.
        max_scale (float, optional): largest zoom, >= min_scale. Default: 1.1.
        max_degrees (float, optional): largest rotation in degrees, >= 0. Default: 10.
        max_shift (float, optional): largest shift in pixels, >= 0. Default: 0.
        padding (str, optional): samples outside the image: ``"reflection"``, ``"border"`` or ``"zeros"``.
            Default: ``"reflection"``.
    """

    _repr_fields = ("min_scale", "max_scale", "max_degrees", "max_shift", "padding")

    def __init__(self, min_scale: float = 0.9, max_scale: float = 1.1, max_degrees: float = 10.0,
                 max_shift: float = 0.0, padding: str = "reflection") -> None:
        self.min_scale = check_number("min_scale", min_scale, minimum=0, strict_minimum=True, maximum=100)
        self.max_scale = check_number("max_scale", max_scale, minimum=self.min_scale, maximum=100)
        self.max_degrees = check_number("max_degrees", max_degrees, minimum=0, maximum=360)
        self.max_shift = check_number("max_shift", max_shift, minimum=0, maximum=10**6)
        self.padding = check_choice("padding", padding, ("reflection", "border", "zeros"))

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        draws = rng.rand((x.shape[0], 4)).to(x.device, torch.float64)
        scale = self.min_scale + (self.max_scale - self.min_scale) * draws[:, 0]
        degrees = self.max_degrees * (2 * draws[:, 1] - 1)
        shift = self.max_shift * (2 * draws[:, 2:] - 1) if self.max_shift else None
        return resample(x, scale, degrees, padding_mode=self.padding, shift=shift)


@component("transform")
class GaussianNoise(Component):
    """Add independent Gaussian noise of standard deviation ``std`` to every value (a robustness transform).

    Args:
        std (float): noise level, >= 0.
    """

    _repr_fields = ("std",)

    def __init__(self, std: float) -> None:
        self.std = check_number("std", std, minimum=0, maximum=10**6)

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        if not self.std:
            return x
        return x + self.std * rng.randn(x.shape).to(x.device, x.dtype)


@component("transform", "precondition", "postprocessing")
class Compose(Component):
    """Apply several transforms in order, each given as a component spec.

    Args:
        transforms (list[dict]): ``[{"path": ..., "kwargs": {...}}, ...]``, resolved like any component.
    """

    _repr_fields = ("transforms",)
    _arguments_as_given = ("transforms",)

    def __init__(self, transforms: Sequence[Mapping[str, Any]]) -> None:
        from .engine.resolve import build_component

        if not isinstance(transforms, (list, tuple)):
            raise HyperparameterError("transforms",
                                      f"must be a list of component specs, got {type(transforms).__name__}")
        self.transforms = [build_component(spec, f"transforms[{i}]") for i, spec in enumerate(transforms)]

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        for transform in self.transforms:
            x = transform(x, i_iter)
        return x


@component("transform")
class Views(Component):
    """Several random views of every image per step: the batch is tiled ``n_views`` times and ``transforms``
    (random crops, jitter, …) act on all views at once, so the model sees every view in one batched forward.

    The output holds ``n_views * K`` images for ``K`` input images, view-major (row ``v * K + k`` is view ``v``
    of image ``k``). The engine (:class:`mei.optimization.MEI`) sees that the transformed batch is a multiple
    of the input and averages the objective and the regularization over the views, so each step ascends the
    mean objective of the ``n_views`` views (as Horama and MACO do with several crops). Each image's views draw
    from that image's own seeded stream (:func:`mei.engine.rng.views`): a batched run and a run per image agree.

    Args:
        n_views (int): views per image per step, >= 1.
        transforms (list, optional): applied to the tiled batch in order: component specs (as for
            :class:`Compose`) or, from Python, callables ``(x, i_iter) -> x``. Default: none (``n_views``
            identical copies).
    """

    _repr_fields = ("n_views", "transforms")
    _arguments_as_given = ("transforms",)

    def __init__(self, n_views: int, transforms: Sequence[Mapping[str, Any]] = ()) -> None:
        self.n_views = check_number("n_views", n_views, minimum=1, maximum=10**4, integer=True)
        if not isinstance(transforms, (list, tuple)):
            raise HyperparameterError("transforms", f"must be a list, got {type(transforms).__name__}")
        if all(callable(t) and not isinstance(t, Mapping) for t in transforms):
            chain = list(transforms)
        else:
            chain = Compose(transforms).transforms
        self.transforms = chain or None

    def _apply(self, x: Tensor, i_iter: int) -> Tensor:
        for transform in self.transforms or ():
            x = transform(x, i_iter)
        return x

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        if self.n_views == 1 and self.transforms is None:
            return x
        tiled = x.repeat(self.n_views, *([1] * (x.dim() - 1))) if self.n_views > 1 else x
        if self.transforms is None:
            return tiled
        with rng.views(self.n_views):
            return self._apply(tiled, i_iter)


# ------------------------------------------------------------------------------------ any rank: time as well as space

PADDINGS = ("circular", "replicate", "constant")


def shift_padded(x: Tensor, shifts: Tensor, dim: int, padding: str = "replicate", value: float = 0.0) -> Tensor:
    """Shift each image ``k`` of ``x`` by ``shifts[k]`` along ``dim``, filling the vacated entries (differentiable).

    A positive shift moves content towards higher indices (``out[t] = x[t - s]``), as :func:`shift` does.

    Args:
        x (Tensor): input, first dimension = images.
        shifts (Tensor): one integer shift per image.
        dim (int): dimension to shift (not 0).
        padding (str, optional): ``"circular"`` wraps around, ``"replicate"`` repeats the edge entry,
            ``"constant"`` fills with ``value``. Default: ``"replicate"``.
        value (float, optional): fill value of ``"constant"`` padding. Default: 0.
    """
    dim = dim % x.dim()
    if dim == 0:
        raise ValueError("dimension 0 holds the images and cannot be shifted")
    if padding == "circular":
        return shift(x, shifts.view(-1, 1), [dim])
    size = x.shape[dim]
    source = torch.arange(size, device=x.device)[None, :] - shifts.view(-1, 1).to(x.device)
    view = [1] * x.dim()
    view[0], view[dim] = x.shape[0], size
    index = source.clamp(0, size - 1).view(view).expand_as(x)
    out = torch.gather(x, dim, index)
    if padding == "constant":
        inside = ((source >= 0) & (source < size)).view(view)
        out = torch.where(inside, out, torch.full((), float(value), dtype=x.dtype, device=x.device))
    return out


@component("transform")
class TemporalJitter(Component):
    """Random shift of each video by up to ``max_shift`` frames along its time dimension.

    Unlike :class:`Jitter` (which wraps around) the vacated frames are filled by ``padding``, so the start of
    a movie does not reappear at its end.

    Args:
        max_shift (int): largest shift in frames, >= 0.
        dim (int, optional): the time dimension. Default: 2 (``(N, C, T, H, W)``).
        padding (str, optional): ``"replicate"``, ``"constant"`` or ``"circular"``. Default: ``"replicate"``.
        value (float, optional): fill value of ``"constant"`` padding. Default: 0.
    """

    time_dim_field = "dim"  # the input must have a time dimension there (checked before a run)
    _repr_fields = ("max_shift", "dim", "padding", "value")

    def __init__(self, max_shift: int, dim: int = 2, padding: str = "replicate", value: float = 0.0) -> None:
        self.max_shift = check_number("max_shift", max_shift, minimum=0, maximum=10**6, integer=True)
        self.dim = check_dim("dim", dim)
        self.padding = check_choice("padding", padding, PADDINGS)
        self.value = check_number("value", value)

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        if not self.max_shift:
            return x
        shifts = rng.randint(-self.max_shift, self.max_shift + 1, x.shape[0])
        return shift_padded(x, shifts, self.dim, self.padding, self.value)


@component("transform")
class SpatioTemporalJitter(Component):
    """Random shift in time (padded, see :class:`TemporalJitter`) and in space (circular, see :class:`Jitter`).

    Args:
        max_shift_time (int): largest shift in frames.
        max_shift_space (int | list[int]): largest shift in pixels (height, width).
        time_dim (int, optional): the time dimension. Default: 2.
        padding (str, optional): padding in time. Default: ``"replicate"``.
    """

    time_dim_field = "time_dim"  # the input must have a time dimension there (checked before a run)
    _repr_fields = ("max_shift_time", "max_shift_space", "time_dim", "padding")

    def __init__(self, max_shift_time: int, max_shift_space: int | Sequence[int], time_dim: int = 2,
                 padding: str = "replicate") -> None:
        self._time = TemporalJitter(max_shift_time, dim=time_dim, padding=padding)
        self._space = Jitter(max_shift_space, dims=(-2, -1))
        self.max_shift_time, self.time_dim, self.padding = self._time.max_shift, self._time.dim, padding
        self.max_shift_space = self._space.max_shift

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        return self._space(self._time(x, i_iter), i_iter)
