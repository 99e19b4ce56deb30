"""Report-card metrics on hand-built cases whose answers are known."""

import math

import numpy as np
import pytest
import torch

from mei.analysis.report_card import (
    activation_ratio,
    frequency_spectrum,
    jitter_robustness,
    peak_frequency,
    report_card,
    rf_correlation,
    transfer,
)
from mei.demo.population import dog, gabor

H, W = 24, 32
GABOR = dict(x0=16.0, y0=12.0, theta=0.4, wavelength=8.0, sigma=3.6)


def test_an_mei_equal_to_its_rf_has_correlation_one_and_the_negative_minus_one():
    rf = gabor(H, W, phase=0.0, **GABOR)
    assert rf_correlation(rf, rf) == pytest.approx(1.0, abs=1e-9)
    assert rf_correlation((3 * rf + 0.5)[None, None], rf) == pytest.approx(1.0, abs=1e-9)  # scale, offset, dims
    assert rf_correlation(-rf, rf) == pytest.approx(-1.0, abs=1e-9)


def test_phase_shifted_gabor_against_a_simple_and_a_complex_cell():
    shifted = gabor(H, W, phase=math.pi / 3, **GABOR)
    even, odd = gabor(H, W, phase=0.0, **GABOR), gabor(H, W, phase=math.pi / 2, **GABOR)
    # a simple cell: the correlation falls with the phase difference, about cos(60 deg) = 0.5
    assert rf_correlation(shifted, even) == pytest.approx(0.5, abs=0.03)
    # a complex cell (its quadrature pair): any phase is a perfect match
    pair = torch.stack([even, odd])
    for phase in (0.0, 1.0, math.pi / 3, 2.5, math.pi):
        assert rf_correlation(gabor(H, W, phase=phase, **GABOR), pair) == pytest.approx(1.0, abs=1e-3)
    # a zero second filter (a simple cell stored as a pair) counts as a single filter: the sign matters again
    assert rf_correlation(-even, torch.stack([even, torch.zeros(H, W)])) == pytest.approx(-1.0, abs=1e-9)


def test_dog_profile_and_an_unrelated_image():
    centre_surround = dog(H, W, 16.0, 12.0, 2.0, 5.0)
    assert rf_correlation(centre_surround, centre_surround) == pytest.approx(1.0, abs=1e-9)
    assert rf_correlation(dog(H, W, 16.0, 12.0, 2.0, 5.0, sign=-1.0), centre_surround) == pytest.approx(-1, abs=1e-9)
    noise = torch.randn(H, W, generator=torch.Generator().manual_seed(0))
    assert abs(rf_correlation(noise, centre_surround)) < 0.2


def linear_cell(rf: torch.Tensor):
    return lambda x: (x.flatten(1) @ rf.flatten()).reshape(-1)


def test_activation_ratio_and_transfer_with_a_linear_cell():
    rf = gabor(H, W, phase=0.0, **GABOR)
    images = torch.stack([0.5 * rf, 0.25 * rf, -rf, torch.zeros(H, W)])[:, None]
    result = activation_ratio(linear_cell(rf), (2 * rf)[None, None], images)
    assert result == {"activation": pytest.approx(2.0), "best_natural": pytest.approx(0.5), "best_index": 0,
                      "ratio": pytest.approx(4.0)}
    ratios = transfer([linear_cell(rf), linear_cell(-rf)], (2 * rf)[None, None], images)
    assert ratios == [pytest.approx(4.0), pytest.approx(-2.0)]  # -rf's best natural image is -rf (value 1)


def test_jitter_robustness_known_values():
    rf = gabor(H, W, phase=0.0, **GABOR)[None, None]
    energy = lambda x: x.pow(2).sum(dim=(1, 2, 3))  # noqa: E731 - does not care where the image is
    assert jitter_robustness(energy, rf, max_shift=2) == pytest.approx(1.0, abs=1e-6)
    cell = linear_cell(rf[0, 0])
    expected = np.mean([float(cell(torch.roll(rf, (dy, dx), (-2, -1)))) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    assert jitter_robustness(cell, rf, max_shift=1) == pytest.approx(expected / float(cell(rf)), rel=1e-5)
    assert jitter_robustness(cell, rf, max_shift=1) < 1.0


def test_spectrum_of_a_grating_peaks_at_its_frequency():
    x = torch.arange(64, dtype=torch.float64)
    grating = torch.cos(2 * math.pi * x / 8.0)[None, :].expand(64, 64)
    frequencies, power = frequency_spectrum(grating)
    assert power.sum() == pytest.approx(1.0)
    assert peak_frequency(grating) == pytest.approx(1 / 8, abs=1e-9)  # 128-point FFT: 1/8 is a sample
    assert frequencies[np.argmax(power)] == pytest.approx(1 / 8, abs=0.5 / 32)  # within a bin of the average


def test_peak_frequency_of_gabors_follows_their_wavelength():
    for wavelength in (6.0, 8.0, 11.0):
        g = gabor(36, 64, x0=32.0, y0=18.0, theta=0.9, wavelength=wavelength, phase=0.3, sigma=0.45 * wavelength)
        assert peak_frequency(g) == pytest.approx(1 / wavelength, rel=0.1)


def test_report_card_collects_every_metric():
    rf = gabor(H, W, phase=0.0, **GABOR)
    images = torch.stack([0.5 * rf, -rf])[:, None]
    card = report_card(linear_cell(rf), rf[None, None], images, others=[linear_cell(rf)], rf=rf)
    assert card["rf_correlation"] == pytest.approx(1.0)
    assert card["activation_ratio"] == pytest.approx(2.0) and card["transfer"] == pytest.approx(2.0)
    assert card["peak_frequency"] == pytest.approx(1 / 8, abs=0.05)
    assert report_card(linear_cell(rf), rf[None, None], images)["rf_correlation"] is None
