"""In-silico tuning (mei.analysis.stimuli, mei.analysis.tuning) against the demo population's ground truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from mei.analysis import stimuli as stim
from mei.analysis import tuning
from mei.demo.population import PopulationModel, make_population


@pytest.fixture(scope="module")
def population():
    return make_population(24, 36, 64, seed=0)


@pytest.fixture(scope="module")
def summary(population):
    return tuning.grating_tuning(PopulationModel(population), 36, 64).summary()


def test_gratings_follow_the_conventions():
    g = stim.grating(9, 9, orientation=0, spatial_frequency=0.25, phase=0)
    assert float(g[4, 4]) == pytest.approx(1.0) and float(g[4, 6]) == pytest.approx(-1.0)  # half a cycle along x
    assert torch.allclose(g[0], g[8])  # orientation 0: constant along y
    assert torch.allclose(stim.grating(9, 9, 90, 0.25).T, g, atol=1e-6)
    spot = stim.grating(9, 9, 0, 0.0, size=3)  # radius 1.5 around the centre: the 3 x 3 block
    assert float(spot.sum()) == 9.0 and float(spot[3:6, 3:6].sum()) == 9.0
    patch = stim.gabor_patch(21, 21, orientation=0, spatial_frequency=0.1, sigma=3.0)
    assert float(patch[10, 10]) == pytest.approx(1.0) and float(patch[10, 0]) == pytest.approx(math.exp(-100 / 18))
    assert torch.allclose(patch[10], stim.grating(21, 21, 0, 0.1)[10] * torch.exp(-(torch.arange(21) - 10.0) ** 2 / 18))
    many = stim.gratings(9, 9, [0, 90], 0.25, phase=[0, 90])
    assert torch.allclose(many[1], stim.grating(9, 9, 90, 0.25, 90))
    with pytest.raises(ValueError, match="size must be > 0"):
        stim.grating(9, 9, 0, 0.1, size=0)
    with pytest.raises(ValueError, match="spatial_frequency must be >= 0"):
        stim.grating(9, 9, 0, -0.1)


def test_movies_move_towards_their_direction():
    drifting = stim.drifting_grating(4, 9, 9, direction=0, spatial_frequency=0.125, temporal_frequency=0.125)
    assert torch.allclose(drifting[1, :, 1:], drifting[0, :, :-1], atol=1e-5)  # one pixel per frame along +x
    bar = stim.moving_bar(10, 20, 20, direction=90, bar_width=2)
    rows = [float((frame.sum(1) * torch.arange(20)).sum() / frame.sum()) for frame in bar if frame.sum() > 0]
    assert rows == sorted(rows) and rows[-1] - rows[0] > 10  # downwards (y grows) over the movie
    trace = stim.chirp(frame_rate=10, step=1, gray=1, sweep=2, modulation=2)
    assert trace.shape == (10 * (1 + 2 + 1 + 2 + 1 + 2 + 1),)
    assert trace[10:20].eq(1).all() and trace[20:30].eq(-1).all() and trace[:10].eq(0).all()
    assert float(trace[-30:-10].abs().max()) <= 1.0 and stim.full_field(trace, 3, 4).shape == (len(trace), 3, 4)


def test_indices_on_known_curves():
    angles = np.arange(0, 180, 15.0)
    curve = 1 + np.cos(np.radians(2 * (angles - 30)))
    assert tuning.preferred_angle(angles, curve) == pytest.approx(30.0)
    assert tuning.selectivity_index(angles, curve, 30.0, 90, 180) == pytest.approx(1.0)
    frequencies = np.geomspace(0.02, 0.4, 15)
    assert tuning.peak(frequencies, -np.log(frequencies / 0.1) ** 2) == pytest.approx(0.1, rel=1e-6)
    assert tuning.phase_invariance([2, 2, 2, 2]) == 1.0 and tuning.phase_invariance([0, 1, 2, 1]) == 0.0
    assert tuning.f1_f0(1 + np.cos(np.arange(8) * np.pi / 4)) == pytest.approx(1.0)
    assert tuning.surround_suppression([1, 4, 2]) == pytest.approx(0.5)


def test_preferred_orientation_and_frequency_of_the_gabor_cells(population, summary):
    gabor = [n for n, kind in enumerate(population.kinds) if kind != "dog"]
    assert len(gabor) >= 15
    for n in gabor:
        truth = math.degrees(population.params[n]["theta"]) % 180
        error = abs(summary[n]["preferred_orientation"] - truth)
        assert min(error, 180 - error) < 10.0, n
        frequency = 1 / population.params[n]["wavelength"]
        assert summary[n]["preferred_spatial_frequency"] == pytest.approx(frequency, rel=0.2), n
        assert summary[n]["orientation_selectivity"] > 0.5


def test_complex_cells_are_more_phase_invariant_than_simple_cells(population, summary):
    simple = [summary[n]["phase_invariance"] for n, k in enumerate(population.kinds) if k == "simple"]
    complex_ = [summary[n]["phase_invariance"] for n, k in enumerate(population.kinds) if k == "complex"]
    assert min(complex_) > max(simple) and min(complex_) > 0.9 and max(simple) < 0.1
    assert all(summary[n]["f1_f0"] > 1 for n, k in enumerate(population.kinds) if k == "simple")


def test_size_tuning_finds_the_surround_of_centre_surround_cells(population, summary):
    model = PopulationModel(population)
    centres = tuning.rf_centres(population.filters[:, 0])
    truth = torch.tensor([[p["x0"], p["y0"]] for p in population.params])
    assert torch.allclose(centres, truth, atol=0.5)
    dog = [n for n, k in enumerate(population.kinds) if k == "dog"]
    gabor = [n for n, k in enumerate(population.kinds) if k != "dog"][:4]
    spots = tuning.size_tuning(model, 36, 64, centres[dog], [0.0] * len(dog), [0.0] * len(dog), units=dog)
    assert min(spots["surround_suppression"]) > 0.5  # a uniform spot: best small, suppressed when large
    assert all(size < 15 for size in spots["preferred_size"])
    patches = tuning.size_tuning(model, 36, 64, centres[gabor], [summary[n]["preferred_orientation"] for n in gabor],
                                 [summary[n]["preferred_spatial_frequency"] for n in gabor], units=gabor)
    assert max(patches["surround_suppression"]) < 0.05  # linear Gabor cells have no surround
    assert patches["curves"].shape == (4, 12)


class Energy(nn.Module):
    """A direction-selective video cell: the energy of a quadrature pair of gratings drifting towards 0 degrees."""

    def __init__(self) -> None:
        super().__init__()
        even = stim.drifting_grating(8, 16, 16, 0, 0.125, 0.125) * torch.exp(-torch.linspace(-2, 2, 16) ** 2)
        odd = stim.drifting_grating(8, 16, 16, 0, 0.125, 0.125, phase=90) * torch.exp(-torch.linspace(-2, 2, 16) ** 2)
        self.register_buffer("pair", torch.stack([even, odd]).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        projections = x.flatten(1) @ self.pair.T
        return projections.pow(2).sum(1, keepdim=True).sqrt()  # (movies, 1 neuron)


def test_direction_tuning_of_a_direction_selective_model():
    result = tuning.direction_tuning(Energy(), 8, 16, 16, spatial_frequency=0.125, temporal_frequency=0.125)
    assert result["responses"].shape == (12, 1)
    assert min(result["preferred_direction"][0], 360 - result["preferred_direction"][0]) < 10
    assert result["direction_selectivity"][0] > 0.8
    bars = tuning.direction_tuning(Energy(), 8, 16, 16, stimulus="bar", bar_width=4)
    assert bars["responses"].shape == (12, 1)
    with pytest.raises(ValueError, match="stimulus must be 'grating' or 'bar'"):
        tuning.direction_tuning(Energy(), 8, 16, 16, stimulus="dots")


class Frames(nn.Module):
    def __init__(self, population) -> None:
        super().__init__()
        self.population = population

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        return self.population.rates(x.movedim(2, 1).reshape(b * t, c, h, w)).reshape(b, t, -1).movedim(1, 2)


def test_chirp_responses_of_a_video_model(population):
    trace, responses = tuning.chirp_responses(Frames(population), 36, 64, frame_rate=5)
    assert responses.shape == (population.n_neurons, len(trace))
    on, off = trace == 1, trace == -1
    # the filters sum to zero, so a uniform field leaves every cell at its resting rate
    assert torch.allclose(responses[:, on].mean(1), responses[:, off].mean(1), rtol=1e-3)


def test_contrast_tuning_rises_with_contrast(population, summary):
    model = PopulationModel(population)
    simple = [n for n, k in enumerate(population.kinds) if k == "simple"][:3]
    result = tuning.contrast_tuning(model, 36, 64, [summary[n]["preferred_orientation"] for n in simple],
                                    [summary[n]["preferred_spatial_frequency"] for n in simple], units=simple)
    assert result["curves"].shape == (3, 10)
    assert bool((result["curves"].diff(dim=1) > 0).all())  # softplus of a growing drive: strictly rising
    assert all(0.05 < c50 <= 2.0 for c50 in result["c50"])
    with pytest.raises(ValueError, match="an aperture \\(size\\) needs the neurons' centres"):
        tuning.contrast_tuning(model, 36, 64, [0.0], [0.1], size=10)


def test_the_report_card_tuning_panel_of_one_neuron(population, summary):
    from mei.analysis.report_card import tuning_panel

    complex_cell = population.kinds.index("complex")
    panel = tuning_panel(PopulationModel(population), complex_cell, 36, 64)
    assert panel["preferred_orientation"] == pytest.approx(summary[complex_cell]["preferred_orientation"], abs=1e-6)
    assert panel["phase_invariance"] > 0.9 and len(panel["orientation_curve"]) == len(panel["orientations"]) == 24
