"""In-silico tuning: parametric stimuli (:mod:`mei.analysis.stimuli`) shown to a model, and the classical
tuning measures computed from its responses.

* :func:`grating_tuning` — full-field gratings over orientation x spatial frequency x phase, for every neuron
  in one pass; :meth:`GratingTuning.summary` gives each neuron's preferred orientation (vector average over
  doubled angles), orientation selectivity index, preferred spatial frequency (log-parabolic peak), and the
  phase invariance index and F1/F0 ratio that separate complex from simple cells;
* :func:`size_tuning` — gratings of growing aperture at each neuron's receptive-field centre
  (:func:`rf_centres`), with the surround suppression index; :func:`contrast_tuning` — contrast-response curves;
* :func:`direction_tuning` — drifting gratings or moving bars for video models, with the direction
  selectivity index; :func:`chirp_responses` — a video model's answer to the full-field chirp.

The indices are plain functions on tuning curves: :func:`preferred_angle`, :func:`selectivity_index`,
:func:`peak`, :func:`phase_invariance`, :func:`f1_f0`, :func:`surround_suppression`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..methods import evaluation_mode
from ..reducers import Reducer
from ..targets.contrastive import UnitResponses
from . import stimuli as stim


@torch.no_grad()
def model_responses(model: nn.Module, inputs: Tensor, *, batch_size: int = 256, units: Sequence[int] | None = None,
                    reducer: Reducer | Mapping[str, Any] | None = None, forward_kwargs: Mapping[str, Any] | None = None,
                    unit_dim: int = 1, device: str | torch.device = "cpu") -> Tensor:
    """The model's responses ``(inputs, neurons)`` on the CPU, ``batch_size`` inputs per forward.

    ``units``, ``reducer`` (over time, for video models), ``forward_kwargs`` and ``unit_dim`` are as in
    :class:`~mei.targets.contrastive.UnitResponses`.
    """
    responses = UnitResponses(model, units, reducer, forward_kwargs, unit_dim)
    with evaluation_mode(responses):
        responses.to(device)
        return torch.cat([responses(inputs[i:i + batch_size].to(device)).float().cpu()
                          for i in range(0, len(inputs), batch_size)])


def preferred_angle(angles: Sequence[float], curve: Sequence[float], period: float = 180.0) -> float:
    """The preferred angle (degrees in ``[0, period)``) of a tuning curve: the direction of the vector sum of
    the baseline-subtracted responses on the circle of ``period`` (180: orientation, 360: direction)."""
    a = np.radians(np.asarray(angles, dtype=float)) * 360.0 / period
    r = np.asarray(curve, dtype=float)
    r = r - r.min()
    if not r.any():
        return float("nan")
    angle = math.degrees(math.atan2(float((r * np.sin(a)).sum()), float((r * np.cos(a)).sum())))
    return float((angle * period / 360.0) % period)


def _circular_value(angles: Sequence[float], curve: Sequence[float], at: float, period: float) -> float:
    a = np.asarray(angles, dtype=float) % period
    order = np.argsort(a)
    a, r = a[order], np.asarray(curve, dtype=float)[order]
    return float(np.interp(at % period, np.r_[a, a[0] + period], np.r_[r, r[0]], period=period))


def selectivity_index(angles: Sequence[float], curve: Sequence[float], preferred: float, offset: float,
                      period: float) -> float:
    """``(R(pref) - R(pref + offset)) / (R(pref) + R(pref + offset))``, responses interpolated on the circle.

    Orientation selectivity: ``offset=90, period=180``; direction selectivity: ``offset=180, period=360``.
    """
    best = _circular_value(angles, curve, preferred, period)
    other = _circular_value(angles, curve, preferred + offset, period)
    return (best - other) / (best + other) if best + other != 0 else float("nan")


def peak(values: Sequence[float], curve: Sequence[float], log: bool = True) -> float:
    """The stimulus value at the curve's maximum, refined by a parabola through the best sample and its
    neighbours (on a log axis if ``log``); the best sample itself at the ends of the range."""
    x = np.log(np.asarray(values, dtype=float)) if log else np.asarray(values, dtype=float)
    r = np.asarray(curve, dtype=float)
    i = int(np.argmax(r))
    best = x[i]
    if 0 < i < len(r) - 1:
        denominator = r[i - 1] - 2 * r[i] + r[i + 1]
        if denominator < 0:
            # vertex of the parabola through three points (unequal spacing)
            x0, x1, x2 = x[i - 1:i + 2]
            y0, y1, y2 = r[i - 1:i + 2]
            numerator = (x1 - x0) ** 2 * (y1 - y2) - (x1 - x2) ** 2 * (y1 - y0)
            denom = (x1 - x0) * (y1 - y2) - (x1 - x2) * (y1 - y0)
            best = x1 - 0.5 * numerator / denom if denom != 0 else x1
    return float(np.exp(best) if log else best)


def phase_invariance(curve: Sequence[float]) -> float:
    """``1 - (max - min) / (max + min)`` of a response over the phases of a grating: 1 for a response that
    ignores phase (a complex cell), towards 0 for one that is silenced at some phase (a simple cell)."""
    r = np.asarray(curve, dtype=float)
    top, bottom = float(r.max()), float(r.min())
    return 1.0 - (top - bottom) / (top + bottom) if top + bottom != 0 else float("nan")


def f1_f0(curve: Sequence[float]) -> float:
    """The modulation ratio F1/F0 of a response over equally spaced phases of one cycle (simple cells > 1)."""
    r = np.asarray(curve, dtype=float)
    f0 = float(r.mean())
    f1 = 2 * float(abs(np.fft.rfft(r)[1])) / len(r)
    return f1 / f0 if f0 != 0 else float("nan")


def surround_suppression(curve: Sequence[float]) -> float:
    """``(max - R(largest size)) / max`` of a size-tuning curve: 0 without surround suppression."""
    r = np.asarray(curve, dtype=float)
    top = float(r.max())
    return (top - float(r[-1])) / top if top != 0 else float("nan")


@dataclasses.dataclass
class GratingTuning:
    """Responses to full-field gratings, ``responses[o, f, p, n]`` for orientation ``o``, spatial frequency
    ``f``, phase ``p`` and neuron ``n`` (angles in degrees, frequencies in cycles/pixel)."""

    orientations: list[float]
    spatial_frequencies: list[float]
    phases: list[float]
    responses: Tensor

    def neuron(self, n: int) -> dict[str, Any]:
        """Neuron ``n``'s curves and indices: ``preferred_orientation``, ``orientation_selectivity``,
        ``preferred_spatial_frequency``, ``phase_invariance``, ``f1_f0`` and the three curves (mean over phase
        for orientation and frequency, at the best sampled frequency and orientation)."""
        r = self.responses[..., n].double()
        mean = r.mean(2)  # (orientations, frequencies)
        o, f = np.unravel_index(int(mean.argmax()), tuple(mean.shape))
        orientation_curve, frequency_curve = mean[:, f].tolist(), mean[o, :].tolist()
        phase_curve = r[o, f].tolist()
        preferred = preferred_angle(self.orientations, orientation_curve, 180.0)
        return {
            "preferred_orientation": preferred,
            "orientation_selectivity": selectivity_index(self.orientations, orientation_curve, preferred, 90, 180),
            "preferred_spatial_frequency": peak(self.spatial_frequencies, frequency_curve, log=True),
            "phase_invariance": phase_invariance(phase_curve), "f1_f0": f1_f0(phase_curve),
            "orientation_curve": orientation_curve, "frequency_curve": frequency_curve, "phase_curve": phase_curve,
        }

    def summary(self) -> list[dict[str, Any]]:
        """:meth:`neuron` for every neuron."""
        return [self.neuron(n) for n in range(self.responses.shape[-1])]


def grating_tuning(model: nn.Module, height: int, width: int, *, orientations: Sequence[float] | None = None,
                   spatial_frequencies: Sequence[float] | None = None, phases: Sequence[float] | None = None,
                   contrast: float = 1.0, channels: int = 1, **response_kwargs: Any) -> GratingTuning:
    """Every neuron's responses to full-field gratings over orientation x spatial frequency x phase.

    Args:
        model (nn.Module): an image model, ``(images, channels, height, width) -> (images, neurons)``.
        height, width (int): the input size.
        orientations (list[float], optional): degrees. Default: 0 to 172.5 in steps of 7.5.
        spatial_frequencies (list[float], optional): cycles/pixel. Default: 24 log-spaced from 0.03 to 0.3.
        phases (list[float], optional): degrees, equally spaced over a cycle. Default: 8 (0, 45, ..., 315).
        contrast (float, optional): peak amplitude of the gratings. Default: 1.
        channels (int, optional): input channels (the same grating in each). Default: 1.
        **response_kwargs: passed on to :func:`model_responses` (``batch_size``, ``device``, ``units`` ...).
    """
    orientations = [float(a) for a in (np.arange(24) * 7.5 if orientations is None else orientations)]
    frequencies = [float(f) for f in (np.geomspace(0.03, 0.3, 24) if spatial_frequencies is None
                                      else spatial_frequencies)]
    phases = [float(p) for p in (np.arange(8) * 45.0 if phases is None else phases)]
    grid = stim.parameter_grid(orientation=orientations, spatial_frequency=frequencies, phase=phases)
    responses = torch.cat([model_responses(model, _grating_inputs(height, width, part, channels, contrast=contrast),
                                           **response_kwargs) for part in _parts(grid)])
    return GratingTuning(orientations, frequencies, phases,
                         responses.reshape(len(orientations), len(frequencies), len(phases), -1))


def _parts(grid: list[dict[str, Any]], size: int = 1024) -> list[list[dict[str, Any]]]:
    return [grid[i:i + size] for i in range(0, len(grid), size)]


def _grating_inputs(height: int, width: int, grid: Sequence[Mapping[str, Any]], channels: int,
                    **fixed: Any) -> Tensor:
    """:func:`mei.analysis.stimuli.gratings` for every parameter set of ``grid`` (and ``fixed``): ``(n, c, h, w)``."""
    columns = {name: [params[name] for params in grid] for name in grid[0]}
    columns = {name: values for name, values in columns.items() if any(v is not None for v in values)}
    images = stim.gratings(height, width, **fixed, **columns)
    return images[:, None].expand(-1, channels, -1, -1).clone()


def rf_centres(meis: Tensor) -> Tensor:
    """``(neurons, 2)`` receptive-field centres ``(x, y)`` in pixels: the centroid of each MEI's squared
    deviation from its mean (summed over channels and frames)."""
    x = torch.as_tensor(meis, dtype=torch.float64)
    energy = (x - x.mean(dim=(-2, -1), keepdim=True)).pow(2)
    energy = energy.reshape(len(x), -1, *x.shape[-2:]).sum(1)
    height, width = energy.shape[-2:]
    total = energy.sum(dim=(-2, -1)).clamp_min(1e-30)
    ys, xs = torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64)
    return torch.stack([(energy.sum(-2) * xs).sum(-1) / total, (energy.sum(-1) * ys).sum(-1) / total], 1).float()


def size_tuning(model: nn.Module, height: int, width: int, centres: Tensor, orientations: Sequence[float],
                spatial_frequencies: Sequence[float], *, sizes: Sequence[float] | None = None,
                phases: Sequence[float] | None = None, contrast: float = 1.0, channels: int = 1,
                units: Sequence[int] | None = None, **response_kwargs: Any) -> dict[str, Any]:
    """Each neuron's response to gratings (its own orientation and frequency) in apertures of growing size.

    Args:
        centres (Tensor): ``(neurons, 2)`` aperture centres ``(x, y)`` (e.g. :func:`rf_centres`).
        orientations, spatial_frequencies (list[float]): per neuron (e.g. from :meth:`GratingTuning.neuron`).
        sizes (list[float], optional): aperture diameters, pixels. Default: 12 from 2 to the image diagonal.
        phases (list[float], optional): the response at a size is the maximum over these. Default: 8 phases.
        units (list[int], optional): the model's output unit of each centre. Default: unit ``i`` for centre ``i``.
        contrast, channels, **response_kwargs: as in :func:`grating_tuning`.

    Returns:
        dict: ``sizes``, ``curves`` ``(neurons, sizes)``, ``preferred_size`` and ``surround_suppression``
        (lists, one per neuron).
    """
    n = len(centres)
    if not len(orientations) == len(spatial_frequencies) == n:
        raise ValueError(f"need one orientation and spatial frequency per centre ({n}), got "
                         f"{len(orientations)} and {len(spatial_frequencies)}")
    sizes = [float(s) for s in (np.geomspace(2.0, math.hypot(height, width), 12) if sizes is None else sizes)]
    phases = [float(p) for p in (np.arange(8) * 45.0 if phases is None else phases)]
    curves = _own_curves(model, height, width, stim.parameter_grid(size=sizes, phase=phases), len(phases),
                         [{"orientation": float(orientations[i]), "spatial_frequency": float(spatial_frequencies[i]),
                           "centre": [float(c) for c in centres[i]], "contrast": contrast} for i in range(n)],
                         channels, units, response_kwargs)
    return {"sizes": sizes, "curves": curves,
            "preferred_size": [sizes[int(c.argmax())] for c in curves],
            "surround_suppression": [surround_suppression(c.tolist()) for c in curves]}


def _own_curves(model: nn.Module, height: int, width: int, grid: list[dict[str, Any]], n_phases: int,
                per_neuron: list[dict[str, Any]], channels: int, units: Sequence[int] | None,
                response_kwargs: Mapping[str, Any]) -> Tensor:
    """``(neurons, len(grid) // n_phases)``: each neuron's response (its own unit, the maximum over the last
    ``n_phases`` entries of each group) to gratings ``grid`` with its own parameters ``per_neuron``."""
    n = len(per_neuron)
    chosen = [int(u) for u in units] if units is not None else list(range(n))
    per_part = max(1, 1024 // len(grid))  # neurons whose stimuli go through the model together
    parts: list[Tensor] = []
    for start in range(0, n, per_part):
        part = range(start, min(n, start + per_part))
        rows = [{**per_neuron[i], **params} for i in part for params in grid]
        inputs = _grating_inputs(height, width, rows, channels)
        response = model_responses(model, inputs, units=[chosen[i] for i in part], **response_kwargs)
        response = response.reshape(len(part), len(grid), len(part)).diagonal(dim1=0, dim2=2).T  # own unit
        parts.append(response.reshape(len(part), -1, n_phases).max(2).values)
    return torch.cat(parts)


def contrast_tuning(model: nn.Module, height: int, width: int, orientations: Sequence[float],
                    spatial_frequencies: Sequence[float], *, contrasts: Sequence[float] | None = None,
                    phases: Sequence[float] | None = None, size: float | None = None,
                    centres: Tensor | None = None, channels: int = 1, units: Sequence[int] | None = None,
                    **response_kwargs: Any) -> dict[str, Any]:
    """Each neuron's response to its own grating (orientation, frequency) over contrast, maximum over phase.

    Args:
        orientations, spatial_frequencies (list[float]): per neuron.
        contrasts (list[float], optional): peak amplitudes. Default: 10 from 0.05 to 2, log-spaced.
        size (float, optional): aperture diameter (then ``centres`` per neuron). Default: full field.
        phases, channels, units, **response_kwargs: as in :func:`size_tuning`.

    Returns:
        dict: ``contrasts``, ``curves`` ``(neurons, contrasts)`` and ``c50``: per neuron the lowest sampled
        contrast at which the response rises half-way from its lowest to its highest value.
    """
    n = len(orientations)
    if len(spatial_frequencies) != n or (centres is not None and len(centres) != n):
        raise ValueError(f"need one spatial frequency (and centre) per orientation ({n})")
    if size is not None and centres is None:
        raise ValueError("an aperture (size) needs the neurons' centres")
    contrasts = [float(c) for c in (np.geomspace(0.05, 2.0, 10) if contrasts is None else contrasts)]
    phases = [float(p) for p in (np.arange(8) * 45.0 if phases is None else phases)]
    own = [{"orientation": float(orientations[i]), "spatial_frequency": float(spatial_frequencies[i]), "size": size,
            **({"centre": [float(c) for c in centres[i]]} if centres is not None else {})} for i in range(n)]
    curves = _own_curves(model, height, width, stim.parameter_grid(contrast=contrasts, phase=phases), len(phases),
                         own, channels, units, response_kwargs)
    half = [float(c.min() + (c.max() - c.min()) / 2) for c in curves]
    return {"contrasts": contrasts, "curves": curves,
            "c50": [contrasts[int(torch.nonzero(c >= h)[0])] for c, h in zip(curves, half, strict=True)]}


def direction_tuning(model: nn.Module, frames: int, height: int, width: int, *,
                     directions: Sequence[float] | None = None, stimulus: str = "grating",
                     spatial_frequency: float = 0.1, temporal_frequency: float = 0.1, bar_width: float = 4.0,
                     contrast: float = 1.0, channels: int = 1, time_dim: int = 2,
                     **response_kwargs: Any) -> dict[str, Any]:
    """A video model's responses to drifting gratings (``stimulus="grating"``) or moving bars (``"bar"``).

    Movies are ``(directions, channels, frames, height, width)`` (``time_dim`` 2); give the model's
    ``reducer`` over time in ``response_kwargs`` when it answers per frame.

    Returns:
        dict: ``directions``, ``responses`` ``(directions, neurons)``, ``preferred_direction`` and
        ``direction_selectivity`` (lists, one per neuron).
    """
    directions = [float(d) for d in (np.arange(12) * 30.0 if directions is None else directions)]
    if stimulus == "grating":
        movies = stim.batch(stim.drifting_grating, stim.parameter_grid(direction=directions), channels,
                            frames=frames, height=height, width=width, spatial_frequency=spatial_frequency,
                            temporal_frequency=temporal_frequency, contrast=contrast)
    elif stimulus == "bar":
        movies = stim.batch(stim.moving_bar, stim.parameter_grid(direction=directions), channels, frames=frames,
                            height=height, width=width, bar_width=bar_width, contrast=contrast)
    else:
        raise ValueError(f"stimulus must be 'grating' or 'bar', got {stimulus!r}")
    if time_dim != 2:
        movies = movies.movedim(2, time_dim)
    responses = model_responses(model, movies, **response_kwargs)
    preferred = [preferred_angle(directions, responses[:, n].tolist(), 360.0) for n in range(responses.shape[1])]
    return {"directions": directions, "responses": responses, "preferred_direction": preferred,
            "direction_selectivity": [selectivity_index(directions, responses[:, n].tolist(), p, 180, 360)
                                      for n, p in enumerate(preferred)]}


@torch.no_grad()
def chirp_responses(model: nn.Module, height: int, width: int, *, frame_rate: float = 30.0, channels: int = 1,
                    forward_kwargs: Mapping[str, Any] | None = None, unit_dim: int = 1,
                    device: str | torch.device = "cpu", **chirp_kwargs: Any) -> tuple[Tensor, Tensor]:
    """The full-field chirp (:func:`mei.analysis.stimuli.chirp`) and a video model's answer to it.

    Returns:
        tuple: ``(trace, responses)``: the chirp's intensity per frame ``(frames,)`` and the model's output
        with the neurons first, ``(neurons, ...)`` (e.g. ``(neurons, time)`` for a model answering per frame).
    """
    trace = stim.chirp(frame_rate, **chirp_kwargs)
    movie = stim.full_field(trace, height, width)[None, None].expand(1, channels, -1, -1, -1)
    with evaluation_mode(model):
        model.to(device)
        output = model(movie.to(device), **dict(forward_kwargs or {}))
    return trace, output.movedim(unit_dim, 1)[0].float().cpu()


__all__ = ["model_responses", "preferred_angle", "selectivity_index", "peak", "phase_invariance", "f1_f0",
           "surround_suppression", "GratingTuning", "grating_tuning", "rf_centres", "size_tuning", "contrast_tuning",
           "direction_tuning", "chirp_responses"]
