"""MACO: magnitude-constrained feature visualization (Fel et al. 2023, "Unlocking feature visualization for deeper
networks with magnitude constrained optimization").

The image is the inverse FFT of a spectrum whose **magnitude is fixed** to a natural-image spectrum and whose
**phase** is the only thing optimized, so every image the optimization visits has natural second-order
statistics. The magnitude is estimated from images the caller gives (:func:`natural_magnitude`) or is a
1/f power law (:func:`power_law_magnitude`, the shipped default: no data file, nothing downloaded). The
transparency (attribution) map of MACO is the gradient magnitude of the objective with respect to the image,
accumulated over the steps (:attr:`MACOImage.transparency`).

The phase is kept Hermitian-consistent (antisymmetric on the self-conjugate columns of the one-sided
spectrum), so the real image's spectrum has *exactly* the prescribed magnitude at every step — not a
projection after the fact.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..engine import rng
from ..engine.component import check_bool, check_choice, check_number, component
from ..engine.errors import HyperparameterError
from ..engine.kernels import radial_frequency
from ..engine.module_component import ModuleComponent
from ..optim.images import SQUASH, ImageParameterization, ToRGB

__all__ = ["MACOImage", "MACO", "natural_magnitude", "power_law_magnitude", "hermitian_phase", "rfft_weights",
           "prescribed_magnitude", "maco_render"]


def rfft_weights(width: int) -> Tensor:
    """How often each column of a one-sided (rfft) spectrum of ``width`` counts in the full spectrum (1 or 2)."""
    weights = torch.full((width // 2 + 1,), 2.0)
    weights[0] = 1.0
    if width % 2 == 0:
        weights[-1] = 1.0
    return weights


def _self_conjugate_columns(width: int) -> list[int]:
    return [0, width // 2] if width % 2 == 0 else [0]


def _normalize(magnitude: Tensor, width: int, std: float) -> Tensor:
    """Symmetrize the self-conjugate columns, zero the DC term, and scale to a spatial std of ``std``."""
    magnitude = magnitude.detach().double().clone()
    height = magnitude.shape[-2]
    mirror = (-torch.arange(height)) % height
    for column in _self_conjugate_columns(width):
        magnitude[..., column] = (magnitude[..., column] + magnitude[..., mirror, column]) / 2
    magnitude[..., 0, 0] = 0.0
    energy = (magnitude.pow(2) * rfft_weights(width).double()).sum(dim=(-2, -1), keepdim=True)
    if bool((energy <= 0).any()):
        raise ValueError("the magnitude spectrum is zero apart from the mean: nothing to render")
    return (magnitude * (std * math.sqrt(height * width) / energy.sqrt())).float()


def power_law_magnitude(height: int, width: int, channels: int = 3, decay_power: float = 1.0) -> Tensor:
    """A 1/f^decay_power magnitude spectrum ``(channels, height, width // 2 + 1)`` (one-sided, DC = 0).

    Natural images have an amplitude spectrum close to 1/f (Field 1987); this is MACO's default magnitude.
    """
    if decay_power < 0:
        raise ValueError(f"decay_power must be >= 0, got {decay_power}")
    frequency = radial_frequency(height, width, onesided=True).clamp_min(1.0 / max(height, width))
    magnitude = frequency.double() ** (-float(decay_power))
    return magnitude.expand(int(channels), -1, -1).float().clone()


def natural_magnitude(images: Tensor, size: tuple[int, int] | None = None,
                      colour: Callable[..., Tensor] | None = None) -> Tensor:
    """The mean magnitude spectrum of ``images`` ``(N, C, H, W)``: ``(C, H', W' // 2 + 1)`` (orthonormal FFT).

    Args:
        images (Tensor): natural images (any range; each image's channel means are removed).
        size (tuple[int, int], optional): resize the images to this ``(H', W')`` first. Default: their size.
        colour (Callable, optional): a colour recorrelation such as :class:`~mei.optim.images.ToRGB`; the images
            are decorrelated with ``colour(images, inverse=True)`` first, so that the spectrum is the one of the
            image MACO optimizes before recorrelating its colours. Default: none.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    images = images.detach().float()
    if size is not None and tuple(images.shape[-2:]) != tuple(size):
        images = F.interpolate(images, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    if colour is not None:
        images = colour(images, inverse=True)
    images = images - images.mean(dim=(-2, -1), keepdim=True)
    return torch.fft.rfft2(images, norm="ortho").abs().mean(dim=0)


def hermitian_phase(phase: Tensor, width: int) -> Tensor:
    """``phase`` made antisymmetric (``phi(-k) = -phi(k)``) on the self-conjugate columns of a one-sided
    spectrum of ``width``: with a symmetric magnitude, the spectrum is then exactly that of a real image."""
    height = phase.shape[-2]
    mirror = (-torch.arange(height, device=phase.device)) % height
    antisymmetric = (phase - phase.index_select(-2, mirror)) / 2
    columns = torch.zeros(phase.shape[-1], dtype=torch.bool, device=phase.device)
    columns[_self_conjugate_columns(width)] = True
    return torch.where(columns, antisymmetric, phase)


def prescribed_magnitude(magnitude: Tensor, width: int, std: float = 1.0) -> Tensor:
    """``magnitude`` as MACO holds it: symmetric on the self-conjugate columns, DC zero, scaled to a spatial
    standard deviation of ``std`` per channel (Parseval)."""
    return _normalize(magnitude, width, float(std))


def maco_render(phase: Tensor, magnitude: Tensor, size: tuple[int, int], decorrelate: nn.Module | None,
                squash: str) -> Tensor:
    """Images from phases ``(N, C, H, W // 2 + 1)`` and a prescribed magnitude: inverse FFT of the
    Hermitian-consistent spectrum, colour recorrelation (if any), squash."""
    phase = hermitian_phase(phase, size[1])
    spectrum = torch.polar(magnitude.to(phase.dtype).expand_as(phase), phase)
    image = torch.fft.irfft2(spectrum, s=size, norm="ortho")
    if decorrelate is not None:
        image = decorrelate(image)
    return SQUASH[squash][0](image)


class MACOImage(ImageParameterization):
    """Magnitude-constrained image: ``param`` is the Fourier **phase** ``(batch, C, H, W // 2 + 1)``; the
    magnitude is a fixed buffer. ``render`` = inverse FFT, colour recorrelation, squash (as
    :class:`~mei.optim.images.NaturalImage`).

    Args:
        size (int or tuple[int, int]): height and width.
        channels (int, optional): Default: 3.
        batch (int, optional): number of images. Default: 1.
        magnitude (Tensor, optional): the magnitude spectrum ``(C, H, W // 2 + 1)`` (or ``(H, W // 2 + 1)``
            for all channels). Default: estimated from ``images``, else :func:`power_law_magnitude`.
        images (Tensor, optional): natural images ``(N, C, h, w)`` to estimate the magnitude from
            (:func:`natural_magnitude`, resized to ``size``, colour-decorrelated like the render). Default: none.
        decay_power (float, optional): exponent of the default 1/f magnitude. Default: 1.
        std (float, optional): spatial standard deviation of each channel before recorrelation (the magnitude
            is scaled to it; by Parseval it stays so at every step). Default: 1.
        decorrelate (bool, optional): recorrelate colours with ``ToRGB("klt")`` (3 or 4 channels). Default: True.
        squash (str, optional): ``"sigmoid"``, ``"clamp"`` or ``"none"``. Default: ``"sigmoid"``.

    Attributes:
        magnitude (Tensor): the prescribed magnitude actually used: symmetric on the self-conjugate columns, DC
            zero (the mean is the squash's), scaled to ``std``. ``rfft2(spatial(param), norm="ortho").abs()``
            equals it for every phase.
        transparency (Tensor): ``(batch, C, H, W)`` accumulated ``|d objective / d image|`` of every backward
            through :meth:`render` (MACO's attribution map); :meth:`reset_transparency` clears it.
    """

    magnitude: Tensor
    transparency: Tensor

    def __init__(self, size: int | tuple[int, int], channels: int = 3, batch: int = 1,
                 magnitude: Tensor | None = None, images: Tensor | None = None, decay_power: float = 1.0,
                 std: float = 1.0, decorrelate: bool = True, squash: str = "sigmoid") -> None:
        super().__init__()
        height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if height < 2 or width < 2 or channels < 1 or batch < 1:
            raise ValueError(f"MACOImage needs size >= 2, channels >= 1 and batch >= 1, got size={size!r}, "
                             f"channels={channels}, batch={batch}")
        if squash not in SQUASH:
            raise ValueError(f"squash must be one of {sorted(SQUASH)}, got {squash!r}")
        self.size = (height, width)
        self.decorrelate = ToRGB("klt") if decorrelate and channels in (3, 4) else None
        self.squash_name = squash
        spectrum_shape = (channels, height, width // 2 + 1)
        if magnitude is None:
            magnitude = (natural_magnitude(images, self.size, self.decorrelate) if images is not None
                         else power_law_magnitude(height, width, channels, decay_power))
        magnitude = torch.as_tensor(magnitude, dtype=torch.float32)
        if magnitude.dim() == 2:
            magnitude = magnitude.expand(channels, -1, -1)
        if tuple(magnitude.shape) != spectrum_shape:
            raise ValueError(f"magnitude must be {spectrum_shape} for a {height}x{width} image with {channels} "
                             f"channels, got {tuple(magnitude.shape)}")
        if bool((magnitude < 0).any()) or not bool(torch.isfinite(magnitude).all()):
            raise ValueError("magnitude must be finite and >= 0")
        self.register_buffer("magnitude", prescribed_magnitude(magnitude, width, std))
        self.register_buffer("transparency", torch.zeros(batch, channels, height, width))
        phase = math.pi * (2 * rng.rand((batch, *spectrum_shape)) - 1)
        self.param = nn.Parameter(phase)

    def spectrum(self, param: Tensor) -> Tensor:
        """The complex one-sided spectrum: the fixed magnitude with the (Hermitian-consistent) phase ``param``."""
        phase = hermitian_phase(param, self.size[1])
        return torch.polar(self.magnitude.to(phase.dtype).expand_as(phase), phase)

    def spatial(self, param: Tensor) -> Tensor:
        """The image before colour recorrelation and squash; its spectrum's magnitude is :attr:`magnitude`."""
        return maco_render(param, self.magnitude, self.size, None, "none")

    def render(self, param: Tensor) -> Tensor:
        image = maco_render(param, self.magnitude, self.size, self.decorrelate, self.squash_name)
        if image.requires_grad and image.shape == self.transparency.shape:
            image.register_hook(self._accumulate)
        return image

    def _accumulate(self, grad: Tensor) -> None:
        self.transparency.add_(grad.detach().abs().to(self.transparency.device))

    def reset_transparency(self) -> None:
        """Set the accumulated transparency map back to zero."""
        self.transparency.zero_()

    def extra_repr(self) -> str:
        return f"size={self.size}, channels={self.magnitude.shape[0]}, batch={self.param.shape[0]}"


@component("parameterization")
class MACO(ModuleComponent):
    """MACO as the engine's parameterization, for method configs
    (``"parameterization": {"path": "mei.featurevis.maco.MACO", "kwargs": {...}}``).

    The tensor the engine optimizes is the Fourier phase ``(N, C, H, W // 2 + 1)`` of images ``(N, C, H, W)``
    (:meth:`parameter_shape` tells the engine; start it with ``mei.initial.RandomUniform(-3.1416, 3.1416)``, as
    MACO does); the magnitude is fixed. ``forward(phase)`` renders the images as :class:`MACOImage` does, so the
    engine's final score and the stored MEI are of the rendered image.

    Args:
        decay_power (float, optional): exponent of the default 1/f magnitude (:func:`power_law_magnitude`).
            Default: 1.
        std (float, optional): spatial standard deviation of each channel before recorrelation. Default: 1.
        decorrelate (bool, optional): recorrelate colours with ``ToRGB("klt")`` (3 or 4 channels). Default: True.
        squash (str, optional): ``"sigmoid"``, ``"clamp"`` or ``"none"``. Default: ``"sigmoid"``.
        magnitude (list, optional): the magnitude spectrum as nested lists ``(C, H, W // 2 + 1)`` or
            ``(H, W // 2 + 1)`` (e.g. ``natural_magnitude(images).tolist()``). Default: the 1/f law.

    Attributes:
        magnitude (Tensor): the prescribed magnitude (as :attr:`MACOImage.magnitude`), set by
            :meth:`parameter_shape` for the image size.
    """

    magnitude: Tensor

    def __init__(self, decay_power: float = 1.0, std: float = 1.0, decorrelate: bool = True,
                 squash: str = "sigmoid", magnitude: list | None = None) -> None:
        super().__init__()
        self.decay_power = check_number("decay_power", decay_power, minimum=0)
        self.std = check_number("std", std, minimum=0, strict_minimum=True)
        self.decorrelate = check_bool("decorrelate", decorrelate)
        self.squash = check_choice("squash", squash, tuple(SQUASH))
        given = None if magnitude is None else torch.as_tensor(magnitude, dtype=torch.float32)
        if given is not None and (given.dim() not in (2, 3) or bool((given < 0).any())
                                  or not bool(torch.isfinite(given).all())):
            raise HyperparameterError("magnitude", "must be (C, H, W // 2 + 1) or (H, W // 2 + 1) finite values "
                                                   f">= 0, got shape {tuple(given.shape)}")
        self.given = given
        self.size: tuple[int, int] | None = None
        self.colour: nn.Module | None = None
        self.register_buffer("magnitude", torch.zeros(0))

    def parameter_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The phase's shape for images of ``shape`` ``(N, C, H, W)``; sets the magnitude for that size."""
        if len(shape) != 4 or shape[-1] < 2 or shape[-2] < 2:
            raise ValueError(f"MACO renders images (N, C, H, W) of at least 2 x 2, got shape {tuple(shape)}")
        n, channels, height, width = (int(s) for s in shape)
        spectrum_shape = (channels, height, width // 2 + 1)
        if self.given is None:
            magnitude = power_law_magnitude(height, width, channels, self.decay_power)
        else:
            magnitude = self.given.expand(channels, -1, -1) if self.given.dim() == 2 else self.given
            if tuple(magnitude.shape) != spectrum_shape:
                raise ValueError(f"magnitude must be {spectrum_shape} for images of shape {tuple(shape)}, got "
                                 f"{tuple(self.given.shape)}")
        self.size = (height, width)
        self.colour = ToRGB("klt") if self.decorrelate and channels in (3, 4) else None
        self.magnitude = prescribed_magnitude(magnitude, width, self.std).to(self.magnitude.device)
        return (n, *spectrum_shape)

    def forward(self, phase: Tensor) -> Tensor:
        if self.size is None:
            raise RuntimeError("MACO does not know the image size yet: call parameter_shape(image_shape) first "
                               "(the engine does)")
        return maco_render(phase, self.magnitude, self.size, self.colour, self.squash)
