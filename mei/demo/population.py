"""A synthetic V1 population whose receptive fields are known: the ground truth of the demo.

Three cell types, all drawn from one seed:

* ``simple``: a Gabor filter followed by a softplus (a linear-nonlinear cell);
* ``complex``: an energy-model cell, the summed squares of a quadrature pair of Gabors, then a softplus;
* ``dog``: a centre-surround cell, a difference of Gaussians (ON or OFF centre), then a softplus.

With ``typed=True`` (the demo's population) the cells of each kind form functional types
(:data:`DEMO_TYPES`) that share their tuning and differ in position, as the cells of a retinal type do: the
ground truth of the most discriminative stimuli (:mod:`mei.analysis.mds`).

Stimuli are grayscale images with a 1/f amplitude spectrum (natural-image-like), standardized per image to
zero mean and unit standard deviation, so every image has the same L2 norm ``sqrt(height * width)``.
Responses are Poisson spike counts drawn around the cells' rates.

Every filter is scaled so that its drive over natural images has unit standard deviation; the rate is then
``gain * softplus(slope * drive + offset)``. Under a norm constraint the most exciting input of a simple or
centre-surround cell is its filter, and of a complex cell any phase of its quadrature pair: that is what the
MEIs are scored against (:mod:`mei.analysis.report_card`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..engine.kernels import radial_frequency

KINDS = ("simple", "complex", "dog")


def _grid(height: int, width: int) -> tuple[Tensor, Tensor]:
    ys = torch.arange(height, dtype=torch.float32)
    xs = torch.arange(width, dtype=torch.float32)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return grid_y, grid_x


def gabor(height: int, width: int, x0: float, y0: float, theta: float, wavelength: float, phase: float,
          sigma: float, aspect: float = 1.0) -> Tensor:
    """A zero-mean, unit-norm Gabor filter of shape ``(height, width)``.

    Args:
        height, width (int): image size in pixels.
        x0, y0 (float): centre in pixels (column, row).
        theta (float): orientation of the carrier's wave vector, radians.
        wavelength (float): carrier wavelength in pixels.
        phase (float): carrier phase, radians (0: even, pi/2: odd).
        sigma (float): Gaussian envelope width in pixels along the wave vector.
        aspect (float, optional): envelope width across / along the wave vector. Default: 1.
    """
    y, x = _grid(height, width)
    u = (x - x0) * math.cos(theta) + (y - y0) * math.sin(theta)
    v = -(x - x0) * math.sin(theta) + (y - y0) * math.cos(theta)
    envelope = torch.exp(-(u**2 + (v / aspect) ** 2) / (2 * sigma**2))
    return _unit(envelope * torch.cos(2 * math.pi * u / wavelength + phase))


def dog(height: int, width: int, x0: float, y0: float, sigma_center: float, sigma_surround: float,
        sign: float = 1.0) -> Tensor:
    """A zero-mean, unit-norm difference of Gaussians (``sign`` +1: ON centre, -1: OFF centre).

    The surround is weighted so the filter integrates to zero (no response to uniform light).
    """
    y, x = _grid(height, width)
    r2 = (x - x0) ** 2 + (y - y0) ** 2
    center = torch.exp(-r2 / (2 * sigma_center**2))
    surround = torch.exp(-r2 / (2 * sigma_surround**2))
    return _unit(sign * (center / center.sum() - surround / surround.sum()))


def _unit(filt: Tensor) -> Tensor:
    filt = filt - filt.mean()
    return filt / filt.norm()


def natural_images(n: int, height: int, width: int, seed: int, exponent: float = 1.0) -> Tensor:
    """``n`` images ``(n, 1, height, width)`` with amplitude spectrum ``1/f**exponent``, each standardized.

    Args:
        n (int): number of images.
        height, width (int): image size.
        seed (int): seed of the white noise that is shaped.
        exponent (float, optional): 1 gives the 1/f amplitude (1/f^2 power) spectrum of natural scenes.
            Default: 1.
    """
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, 1, height, width, generator=generator)
    radius = radial_frequency(height, width)
    radius[0, 0] = 1.0  # the mean is removed below anyway
    shaped = torch.fft.ifft2(torch.fft.fft2(noise) / radius**exponent).real
    shaped = shaped - shaped.mean(dim=(-2, -1), keepdim=True)
    return shaped / shaped.std(dim=(-2, -1), keepdim=True)


@dataclass
class Population:
    """Known model neurons. ``filters[i, 1]`` is the quadrature partner of a complex cell, zero otherwise.

    Attributes:
        filters (Tensor): ``(n, 2, height, width)``, unit-norm receptive fields.
        kinds (list[str]): the cell type of each neuron, one of :data:`KINDS`.
        params (list[dict]): the parameters each filter was drawn with.
        scale (Tensor): ``(n,)`` drive scale (unit drive std over natural images).
        gain, slope, offset (Tensor): ``(n,)`` output nonlinearity ``gain * softplus(slope * drive + offset)``.
        types (list[str]): the functional cell type of each neuron (the kind, unless the population was drawn
            by :func:`make_typed_population`).
    """

    filters: Tensor
    kinds: list[str]
    params: list[dict] = field(default_factory=list)
    scale: Tensor | None = None
    gain: Tensor | None = None
    slope: Tensor | None = None
    offset: Tensor | None = None
    types: list[str] = field(default_factory=list)

    @property
    def n_neurons(self) -> int:
        return self.filters.shape[0]

    @property
    def image_shape(self) -> tuple[int, int]:
        height, width = self.filters.shape[-2:]
        return int(height), int(width)

    def drive(self, images: Tensor) -> Tensor:
        """The linear drive ``(images, neurons)``; the energy (root of summed squares) for complex cells."""
        flat = images.reshape(images.shape[0], -1)
        projections = flat @ self.filters.reshape(-1, flat.shape[1]).T  # (images, 2 * neurons)
        projections = projections.reshape(images.shape[0], self.n_neurons, 2)
        complex_cells = torch.tensor([kind == "complex" for kind in self.kinds])
        energy = projections.pow(2).sum(-1).sqrt()
        drive = torch.where(complex_cells, energy, projections[..., 0])
        return drive * self.scale if self.scale is not None else drive

    def rates(self, images: Tensor) -> Tensor:
        """Mean spike counts ``(images, neurons)`` for ``images`` ``(n, 1, height, width)``."""
        if self.gain is None or self.slope is None or self.offset is None:
            raise ValueError("the population's output nonlinearity (gain, slope, offset) is not set")
        return self.gain * torch.nn.functional.softplus(self.slope * self.drive(images) + self.offset)

    def responses(self, images: Tensor, seed: int) -> Tensor:
        """Poisson spike counts around :meth:`rates`, drawn from ``seed``."""
        generator = torch.Generator().manual_seed(seed)
        return torch.poisson(self.rates(images), generator=generator)


def _draw_params(kind: str, height: int, width: int, generator: torch.Generator) -> dict:
    def uniform(low: float, high: float) -> float:
        return float(low + (high - low) * torch.rand((), generator=generator))

    margin = 9.0
    params = {"x0": uniform(margin, width - 1 - margin), "y0": uniform(margin, height - 1 - margin)}
    if kind == "dog":
        sigma = uniform(1.6, 2.4)
        return {**params, "sigma_center": sigma, "sigma_surround": 2.5 * sigma,
                "sign": 1.0 if torch.rand((), generator=generator) < 0.5 else -1.0}
    wavelength = uniform(7.0, 11.0)
    return {**params, "theta": uniform(0.0, math.pi), "wavelength": wavelength,
            "phase": uniform(0.0, 2 * math.pi), "sigma": 0.45 * wavelength, "aspect": uniform(1.0, 1.5)}


def _filters_for(kind: str, params: dict, height: int, width: int) -> Tensor:
    if kind == "dog":
        return torch.stack([dog(height, width, **params), torch.zeros(height, width)])
    first = gabor(height, width, **params)
    if kind == "simple":
        return torch.stack([first, torch.zeros(height, width)])
    return torch.stack([first, gabor(height, width, **{**params, "phase": params["phase"] + math.pi / 2})])


def cell_kinds(n_neurons: int, fraction_complex: float = 0.25, fraction_dog: float = 0.15) -> list[str]:
    """Cell types for ``n_neurons``: simple cells first, then complex, then centre-surround."""
    n_complex = round(n_neurons * fraction_complex)
    n_dog = round(n_neurons * fraction_dog)
    return ["simple"] * (n_neurons - n_complex - n_dog) + ["complex"] * n_complex + ["dog"] * n_dog


DEMO_TYPES: dict[str, dict] = {
    "simple-0": {"kind": "simple", "theta": 0.0, "phase": 0.0, "wavelength": 8.0},
    "simple-60": {"kind": "simple", "theta": math.pi / 3, "phase": 0.0, "wavelength": 10.0},
    "simple-120": {"kind": "simple", "theta": 2 * math.pi / 3, "phase": 0.0, "wavelength": 9.0},
    "complex-30": {"kind": "complex", "theta": math.pi / 6, "phase": 0.0, "wavelength": 9.0},
    "complex-105": {"kind": "complex", "theta": 7 * math.pi / 12, "phase": 0.0, "wavelength": 8.0},
    "dog-on": {"kind": "dog", "sign": 1.0},
    "dog-off": {"kind": "dog", "sign": -1.0},
}
"""The functional cell types of ``make_population(typed=True)`` (the demo's population): three simple-cell and
two complex-cell orientations, ON and OFF centre-surround cells."""


def make_population(n_neurons: int = 48, height: int = 36, width: int = 64, seed: int = 0,
                    mean_rate: float = 2.0, calibration_images: int = 2000, typed: bool = False) -> Population:
    """Draw a population of known V1 neurons.

    Args:
        n_neurons (int, optional): number of neurons (>= 3 gives every kind). Default: 48.
        height, width (int, optional): image size. Default: 36 x 64.
        seed (int, optional): seeds every parameter. Default: 0.
        mean_rate (float, optional): average spike count per image over natural images. Default: 2.
        calibration_images (int, optional): natural images used to scale each drive. Default: 2000.
        typed (bool, optional): the cells of a kind form functional types (:data:`DEMO_TYPES`, dealt in turn to
            the kind's cells) whose members share orientation (within 3 degrees), wavelength (within 3 %), phase
            and centre sign, as the cells of a retinal type do; positions, envelopes and centre sizes are drawn
            as without types (the same positions). ``population.types`` names each cell's type. Default: False
            (every cell's tuning drawn at random; its type is its kind).
    """
    if n_neurons < 1:
        raise ValueError(f"n_neurons must be >= 1, got {n_neurons}")
    generator = torch.Generator().manual_seed(seed)
    kinds = cell_kinds(n_neurons)
    params = [_draw_params(kind, height, width, generator) for kind in kinds]
    if not typed:
        return _calibrated(kinds, params, height, width, seed, mean_rate, calibration_images)
    wobble = torch.Generator().manual_seed(seed + 104729)
    names = []
    for kind in KINDS:
        kind_types = [name for name, spec in DEMO_TYPES.items() if spec["kind"] == kind]
        for i, n in enumerate([n for n, k in enumerate(kinds) if k == kind]):
            names.append((n, kind_types[i % len(kind_types)]))
            _take_type(params[n], DEMO_TYPES[names[-1][1]], wobble, 1.5)
    types = [name for _, name in sorted(names)]
    return _calibrated(kinds, params, height, width, seed, mean_rate, calibration_images, types=types)


def _take_type(drawn: dict, spec: dict, generator: torch.Generator, jitter: float) -> None:
    """Give the drawn parameters a type's tuning: its values, orientation within ``2 * jitter`` degrees and
    wavelength within ``2 * jitter`` percent (the envelope follows the wavelength)."""
    drawn.update({k: v for k, v in spec.items() if k in drawn})
    if "theta" in drawn:
        wobble = (torch.rand(2, generator=generator) * 2 - 1) * 2 * jitter
        drawn["theta"] += math.radians(float(wobble[0]))
        drawn["wavelength"] *= 1 + float(wobble[1]) / 100
        drawn["sigma"] = 0.45 * drawn["wavelength"]


def _calibrated(kinds: list[str], params: list[dict], height: int, width: int, seed: int, mean_rate: float,
                calibration_images: int, types: list[str] | None = None) -> Population:
    """The population of these cells, with drive scale and output nonlinearity set from natural images."""
    n_neurons = len(kinds)
    filters = torch.stack([_filters_for(kind, p, height, width) for kind, p in zip(kinds, params, strict=True)])
    population = Population(filters=filters, kinds=kinds, params=params, types=types or list(kinds))
    calibration = natural_images(calibration_images, height, width, seed=seed + 7919)
    drive = population.drive(calibration)
    # Unit drive std over natural images; complex cells are centred by their mean energy instead.
    population.scale = 1.0 / drive.std(dim=0)
    centred = torch.tensor([kind == "complex" for kind in kinds]) * (drive.mean(0) * population.scale)
    population.slope = torch.full((n_neurons,), 1.5)
    population.offset = -1.0 - population.slope * centred
    base = torch.nn.functional.softplus(population.slope * population.drive(calibration) + population.offset)
    population.gain = mean_rate / base.mean(dim=0)
    return population


TYPES: dict[str, dict] = {
    "simple-0": {"kind": "simple", "theta": 0.0, "phase": 0.0, "wavelength": 8.0},
    "simple-90": {"kind": "simple", "theta": math.pi / 2, "phase": 0.0, "wavelength": 10.0},
    "complex-45": {"kind": "complex", "theta": math.pi / 4, "phase": 0.0, "wavelength": 9.0},
    "dog-on": {"kind": "dog", "sign": 1.0},
    "dog-off": {"kind": "dog", "sign": -1.0},
}
"""The functional cell types of :func:`make_typed_population`: a kind and the tuning its members share."""


def make_typed_population(n_per_type: int = 8, types: dict[str, dict] | None = None, height: int = 36,
                          width: int = 64, seed: int = 0, jitter: float = 1.5, mean_rate: float = 2.0,
                          calibration_images: int = 2000) -> Population:
    """A population of known *functional cell types*: members of a type share their tuning, up to jitter.

    As in a retina or in a model whose readouts are centred (Burg et al. 2024), every receptive field sits
    near the image centre (within ``jitter`` pixels); members of a type share kind, orientation, centre
    sign and wavelength (orientations within ``2 * jitter`` degrees and wavelengths within ``2 * jitter``
    percent of the type's); the envelope's aspect is drawn as :func:`make_population` does.
    ``population.types`` names each neuron's type: the ground truth of the most discriminative stimuli
    (:mod:`mei.analysis.mds`).

    Args:
        n_per_type (int, optional): neurons per type. Default: 8.
        types (dict, optional): type name -> ``{"kind": ..., "theta": ..., "phase": ..., "sign": ...}``.
            Default: :data:`TYPES` (two simple-cell orientations, a complex type, ON and OFF centre-surround).
        height, width, seed, mean_rate, calibration_images: as in :func:`make_population`.
        jitter (float, optional): spread of the centres in pixels. Default: 1.5.
    """
    types = dict(TYPES if types is None else types)
    if n_per_type < 1 or not types:
        raise ValueError(f"need at least one type and n_per_type >= 1, got {len(types)} types, {n_per_type}")
    generator = torch.Generator().manual_seed(seed)
    names, kinds, params = [], [], []
    for name, spec in types.items():
        spec = dict(spec)
        kind = spec.pop("kind")
        if kind not in KINDS:
            raise ValueError(f"type {name!r}: kind must be one of {KINDS}, got {kind!r}")
        for _ in range(n_per_type):
            drawn = _draw_params(kind, height, width, generator)
            offset = (torch.rand(2, generator=generator) * 2 - 1) * jitter
            drawn.update(x0=(width - 1) / 2 + float(offset[0]), y0=(height - 1) / 2 + float(offset[1]))
            _take_type(drawn, spec, generator, jitter)
            names.append(name)
            kinds.append(kind)
            params.append(drawn)
    return _calibrated(kinds, params, height, width, seed, mean_rate, calibration_images, types=names)


class PopulationModel(torch.nn.Module):
    """A :class:`Population` as a model: images ``(b, 1, h, w)`` -> rates ``(b, neurons)`` (the ground truth)."""

    def __init__(self, population: Population) -> None:
        super().__init__()
        self.population = population

    def forward(self, x: Tensor, **_: object) -> Tensor:
        return self.population.rates(x)
