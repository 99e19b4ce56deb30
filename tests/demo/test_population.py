"""The synthetic population: filters, images and responses are what their docstrings say."""

import math

import pytest
import torch

from mei.demo.population import DEMO_TYPES, cell_kinds, dog, gabor, make_population, natural_images


def test_gabor_is_unit_norm_zero_mean_and_centred():
    g = gabor(31, 41, x0=20.0, y0=15.0, theta=0.0, wavelength=8.0, phase=0.0, sigma=3.0)
    assert g.norm().item() == pytest.approx(1.0, abs=1e-6)
    assert g.mean().item() == pytest.approx(0.0, abs=1e-7)
    assert divmod(int(g.argmax()), 41) == (15, 20)  # an even Gabor peaks at its centre


def test_gabor_quadrature_pair_is_orthogonal():
    kwargs = dict(x0=20.0, y0=15.0, theta=0.7, wavelength=8.0, sigma=3.6)
    even, odd = gabor(31, 41, phase=0.3, **kwargs), gabor(31, 41, phase=0.3 + math.pi / 2, **kwargs)
    assert float((even * odd).sum()) == pytest.approx(0.0, abs=0.02)


def test_dog_centre_sign():
    on, off = dog(21, 21, 10.0, 10.0, 1.5, 3.75, sign=1.0), dog(21, 21, 10.0, 10.0, 1.5, 3.75, sign=-1.0)
    assert on[10, 10] > 0 > off[10, 10]
    assert torch.allclose(on, -off)
    assert on.sum().item() == pytest.approx(0.0, abs=1e-5)


def test_natural_images_are_standardized_with_falling_spectrum():
    images = natural_images(64, 32, 32, seed=3)
    assert images.shape == (64, 1, 32, 32)
    assert torch.allclose(images.mean(dim=(-2, -1)), torch.zeros(64, 1), atol=1e-5)
    assert torch.allclose(images.std(dim=(-2, -1)), torch.ones(64, 1), atol=1e-5)
    power = torch.fft.fft2(images).abs().pow(2).mean(dim=(0, 1))
    assert power[1, 0] > 20 * power[8, 0]  # 1/f amplitude: power at f=1 vs f=8 differs by 64 in theory
    assert torch.equal(images, natural_images(64, 32, 32, seed=3))


def test_population_types_seed_and_calibration():
    population = make_population(10, 24, 32, seed=5, calibration_images=400)
    assert population.kinds == cell_kinds(10) == ["simple"] * 6 + ["complex"] * 2 + ["dog"] * 2
    assert population.filters.shape == (10, 2, 24, 32)
    assert torch.count_nonzero(population.filters[:, 1].flatten(1).norm(dim=1)) == 2  # complex cells only
    again = make_population(10, 24, 32, seed=5, calibration_images=400)
    assert torch.equal(population.filters, again.filters) and torch.equal(population.gain, again.gain)
    rates = population.rates(natural_images(400, 24, 32, seed=5 + 7919))
    assert torch.allclose(rates.mean(0), torch.full((10,), 2.0), rtol=1e-4)  # mean_rate on calibration images


def test_simple_cell_prefers_its_filter_and_complex_cell_ignores_phase():
    population = make_population(10, 24, 32, seed=5, calibration_images=400)
    simple, complex_ = 0, 6
    rf = population.filters[simple, 0]
    shifted = torch.roll(rf, shifts=3, dims=1)
    rates = population.rates(torch.stack([rf, -rf, shifted])[:, None] * 4)[:, simple]
    assert rates[0] > rates[2] > rates[1]
    pair = population.filters[complex_]
    phases = torch.linspace(0, 2 * math.pi, 7)
    stimuli = torch.stack([math.cos(p) * pair[0] + math.sin(p) * pair[1] for p in phases])[:, None] * 4
    responses = population.rates(stimuli)[:, complex_]
    assert torch.allclose(responses, responses[0].expand(7), rtol=0.01)  # the pair is nearly orthogonal


def test_responses_are_poisson_counts_from_a_seed():
    population = make_population(4, 16, 16, seed=1, calibration_images=200)
    images = natural_images(50, 16, 16, seed=2)
    counts = population.responses(images, seed=9)
    assert torch.equal(counts, counts.round()) and counts.min() >= 0
    assert torch.equal(counts, population.responses(images, seed=9))


def test_a_typed_population_shares_tuning_within_a_type_at_the_untyped_positions():
    typed = make_population(12, 24, 32, seed=5, calibration_images=200, typed=True)
    untyped = make_population(12, 24, 32, seed=5, calibration_images=200)
    assert typed.kinds == untyped.kinds and untyped.types == untyped.kinds
    # the kind's cells dealt in turn to its types: 7 simple (3 types), 3 complex (2), 2 centre-surround (2)
    assert typed.types == ["simple-0", "simple-60", "simple-120"] * 2 + ["simple-0", "complex-30", "complex-105",
                                                                         "complex-30", "dog-on", "dog-off"]
    for mine, theirs in zip(typed.params, untyped.params, strict=True):
        assert (mine["x0"], mine["y0"]) == (theirs["x0"], theirs["y0"])
    for name in set(typed.types):
        spec = DEMO_TYPES[name]
        members = [p for p, t in zip(typed.params, typed.types, strict=True) if t == name]
        for params in members:
            if "theta" in spec:
                assert abs(math.degrees(params["theta"] - spec["theta"])) <= 3.0
                assert params["wavelength"] == pytest.approx(spec["wavelength"], rel=0.03)
                assert params["phase"] == spec["phase"]
            else:
                assert params["sign"] == spec["sign"]
