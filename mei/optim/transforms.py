"""Transforms for transformation robustness, torch ops only.

Every transform is an ``nn.Module`` whose ``forward(x, i_iter=0)`` works both captum-style (``t(x)``) and as an
engine transform (``t(x, i_iter)``), so each is a pipeline component by dotted path, e.g.
``{"path": "mei.optim.transforms.TransformationRobustness", "kwargs": {}}``. Random choices are drawn per
image from the engine's seeded streams (:mod:`mei.engine.rng`): runs are reproducible and a batch of K images
sees what K single-image runs would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..engine import rng
from ..engine.component import check_bool, check_choice, check_number, check_numbers, component
from ..engine.errors import HyperparameterError
from ..engine.kernels import edge_padding, resample
from ..engine.module_component import ModuleComponent

PADDING_MODES: tuple[str, ...] = ("reflection", "border", "zeros")
"""How :class:`RandomAffine` fills what the resampling uncovers (``grid_sample``'s ``padding_mode``)."""
PAD_MODES: tuple[str, ...] = ("constant", "reflect", "replicate", "circular")
"""The fills of :class:`Pad` (``torch.nn.functional.pad``'s modes)."""


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

    def forward(self, x: Tensor, i_iter: int = 0) -> Tensor:
        t = self.translate
        if t == 0:
            return x
        height, width = x.shape[-2:]
        mode = edge_padding("reflect", t, (height, width))
        padded = F.pad(x, (t, t, t, t), mode=mode)
        offsets = rng.randint(0, 2 * t + 1, x.shape[0], (2,)).tolist()
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


@component("transform")
class RandomScale(RandomAffine):
    """Zoom each image about its centre by a factor picked from ``scale`` (size kept).

    Args:
        scale (list[float]): factors to pick from (> 1 enlarges).
        padding_mode (str, optional): ``"reflection"``, ``"border"`` or ``"zeros"``. Default: ``"reflection"``.
    """

    def __init__(self, scale: Sequence[float], padding_mode: str = "reflection") -> None:
        super().__init__(scale=scale, padding_mode=padding_mode)


@component("transform")
class RandomRotation(RandomAffine):
    """Rotate each image about its centre by an angle picked from ``degrees`` (size kept).

    Args:
        degrees (list[float]): angles in degrees to pick from.
        padding_mode (str, optional): ``"reflection"``, ``"border"`` or ``"zeros"``. Default: ``"reflection"``.
    """

    def __init__(self, degrees: Sequence[float], padding_mode: str = "reflection") -> None:
        super().__init__(degrees=degrees, padding_mode=padding_mode)


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


@component("transform")
class CenterCrop(ModuleComponent):
    """Cut the central ``size`` window out of each image, or pad symmetrically (with ``value``) where the
    image is smaller than ``size``.

    Args:
        size (int or tuple[int, int]): output height and width.
        value (float, optional): fill value where padding is needed. Default: 0.5.
    """

    def __init__(self, size: int | Sequence[int], value: float = 0.5) -> None:
        super().__init__()
        if isinstance(size, int) and not isinstance(size, bool):
            size = (size, size)
        self.size = tuple(check_numbers("size", size, min_length=2, max_length=2, minimum=1, integer=True))
        self.value = float(check_number("value", value))

    def forward(self, x: Tensor, i_iter: int = 0) -> Tensor:
        pads = []
        for have, want in zip(reversed(x.shape[-2:]), reversed(self.size), strict=True):
            extra = want - have
            before = extra // 2 if extra >= 0 else -(-extra // 2)  # the smaller half goes first either way
            pads += [before, extra - before]
        return F.pad(x, pads, mode="constant", value=self.value)  # negative padding crops


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
    """Zoom factors of :class:`TransformationRobustness`: 0.95 to 1.05 in steps of 0.01."""
    return [round(0.95 + 0.01 * i, 2) for i in range(11)]


def default_degrees() -> list[float]:
    """Angles of :class:`TransformationRobustness`: -10 to 10 degrees, small angles more often."""
    return [float(d) for d in [*range(-10, 11), *range(-5, 6), *([0] * 5)]]


@component("transform")
class TransformationRobustness(Chain):
    """The usual robustness stack: pad, jitter, random scale and rotation (one :class:`RandomAffine`), jitter,
    then (optionally) a centre crop back to the input size.

    Args:
        padding (int, optional): constant padding per side before the random transforms. Default: 8.
        pad_value (float, optional): its fill value. Default: 0.5.
        translate (int, optional): first jitter, in pixels. Default: 8.
        scale (list[float], optional): zoom factors to pick from. Default: :func:`default_scales`.
        degrees (list[float], optional): angles to pick from. Default: :func:`default_degrees`.
        final_translate (int, optional): last jitter, in pixels. Default: 4.
        crop_or_pad_output (bool, optional): crop back to the input size, so models with a fixed input size
            work. Default: True.
    """

    def __init__(self, padding: int = 8, pad_value: float = 0.5, translate: int = 8,
                 scale: Sequence[float] | None = None, degrees: Sequence[float] | None = None,
                 final_translate: int = 4, crop_or_pad_output: bool = True) -> None:
        super().__init__(
            Pad(padding, value=pad_value), RandomSpatialJitter(translate),
            RandomAffine(default_scales() if scale is None else scale,
                         default_degrees() if degrees is None else degrees),
            RandomSpatialJitter(final_translate),
        )
        self.padding = check_number("padding", padding, minimum=0, integer=True)
        self.crop_or_pad_output = check_bool("crop_or_pad_output", crop_or_pad_output)

    def forward(self, x: Tensor, i_iter: int = 0) -> Tensor:
        out = super().forward(x, i_iter)
        return CenterCrop(tuple(x.shape[-2:]))(out) if self.crop_or_pad_output else out


__all__ = [
    "RandomSpatialJitter", "RandomAffine", "RandomScale", "RandomRotation", "Pad", "CenterCrop", "Chain",
    "RandomChoice", "TransformationRobustness", "affine", "default_scales", "default_degrees",
]
