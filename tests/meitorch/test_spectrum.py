"""Each blur and precondition option changes the spatial-frequency spectrum the way it should."""

import pytest
import torch

from mei.meitorch.analyze import high_frequency_fraction, radial_power_spectrum
from mei.meitorch.augment import FourierPrecondition
from mei.meitorch.denoisers import BilateralDenoiser, GaussianDenoiser, TVDenoiser
from mei.meitorch.mei import MEI

from .helpers import linear_operation

SHAPE = (1, 24, 24)


def noise(seed=0, n=4):
    return torch.randn(n, *SHAPE, generator=torch.Generator().manual_seed(seed))


def test_white_noise_has_a_flat_spectrum_and_a_constant_image_none():
    freqs, power = radial_power_spectrum(noise(n=64))
    assert freqs[0] == 0 and len(freqs) == 13
    assert power[1:].std() / power[1:].mean() < 0.15
    assert high_frequency_fraction(torch.ones(1, *SHAPE)) == 0.0


@pytest.mark.parametrize("weak, strong", [
    (GaussianDenoiser(kernel_size=5, sigma=0.5), GaussianDenoiser(kernel_size=5, sigma=1.5)),
    (TVDenoiser(regularization_scaler=0.05, lr=0.1, num_iters=5),
     TVDenoiser(regularization_scaler=0.2, lr=0.1, num_iters=10)),
    (BilateralDenoiser(kernel_size=5, sigma_color=0.3, sigma_spatial=1.0),
     BilateralDenoiser(kernel_size=5, sigma_color=3.0, sigma_spatial=1.0)),
])
def test_each_denoiser_removes_high_frequencies_more_when_stronger(weak, strong):
    x = noise()
    before = high_frequency_fraction(x)
    after_weak, after_strong = high_frequency_fraction(weak(x, 0)), high_frequency_fraction(strong(x, 0))
    assert after_strong < after_weak < before
    assert strong(x, 0).shape == x.shape


def test_denoisers_keep_a_constant_image_and_off_values_change_nothing():
    flat = torch.full((2, *SHAPE), 0.7)
    for denoiser in (GaussianDenoiser(3, 1.0), TVDenoiser(), BilateralDenoiser()):
        assert torch.allclose(denoiser(flat, 0), flat, atol=1e-6)
    x = noise()
    assert torch.equal(GaussianDenoiser(3, 0.0)(x, 0), x) and torch.equal(TVDenoiser(num_iters=0)(x, 0), x)


def test_bilateral_keeps_an_edge_that_a_gaussian_blurs():
    edge = torch.zeros(1, *SHAPE)
    edge[..., 12:] = 1.0
    bilateral = BilateralDenoiser(kernel_size=5, sigma_color=0.1, sigma_spatial=2.0)(edge, 0)
    gaussian = GaussianDenoiser(kernel_size=5, sigma=2.0)(edge, 0)
    assert torch.allclose(bilateral, edge, atol=1e-6)
    assert (gaussian - edge).abs().max() > 0.2


def test_precondition_falloff_lowers_high_frequencies_of_the_gradient_more_when_stronger():
    grad = noise()[None]
    fractions = [high_frequency_fraction(FourierPrecondition(p)(grad, 0)[0]) for p in (0, 0.3, 1.0)]
    assert fractions[0] == high_frequency_fraction(grad[0])
    assert fractions[0] > fractions[1] > fractions[2]


def test_precond_and_blur_in_a_run_shape_the_mei_spectrum():
    w = noise(5, n=1)[0]
    mei = MEI(linear_operation(w), shape=SHAPE)
    base = dict(iter_n=5, bias=0, scale=0, optimizer="sgd", optimizer_params=dict(lr=0.1))
    plain = high_frequency_fraction(mei.generate_pixel_mei(base, seed=0).mei)
    assert plain == pytest.approx(high_frequency_fraction(w[None]), rel=1e-4)  # MEI = 0.5 w
    precond = high_frequency_fraction(mei.generate_pixel_mei({**base, "precond": 0.5}, seed=0).mei)
    assert precond < 0.6 * plain
    for blur, params in (("gaussian", dict(sigma=1.0)), ("tv", dict(regularization_scaler=0.1)),
                         ("bilateral", dict(sigma_color=1.0))):
        blurred = mei.generate_pixel_mei({**base, "blur": blur, "blur_params": params}, seed=0).mei
        assert high_frequency_fraction(blurred) < 0.8 * plain, blur
