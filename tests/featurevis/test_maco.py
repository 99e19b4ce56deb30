"""MACO: the magnitude spectrum is exactly the prescribed one at every step; its estimate and its transparency map."""

import math

import pytest
import torch
from torch import nn

from mei.featurevis import MACOImage, natural_magnitude, power_law_magnitude, render_vis
from mei.featurevis.maco import rfft_weights
from mei.optim.optimization import RenderedMEI
from tests.featurevis.models import GratingNet


@pytest.mark.parametrize("size", [(16, 16), (15, 12), (9, 13)])
def test_the_magnitude_stays_the_prescribed_one_at_every_step(size):
    torch.manual_seed(0)
    image = MACOImage(size, batch=2, decorrelate=False, squash="none")
    model = GratingNet(kernel=5)
    start = image.param.detach().clone()
    mei = RenderedMEI(lambda x: model.conv(x)[:, 1].mean(dim=(1, 2)), image.param.detach(),
                      lambda p: torch.optim.Adam(p, lr=0.3), render=image.render)
    for _ in range(12):
        mei.step()
        spectrum = torch.fft.rfft2(image.render(mei.current_input).double(), norm="ortho")
        torch.testing.assert_close(spectrum.abs(), image.magnitude.double().expand_as(spectrum), atol=1e-5, rtol=1e-5)
    assert (mei.current_input - start).abs().max() > 0.5  # the phase did move


def test_with_colour_and_squash_the_spectral_stage_keeps_the_magnitude_and_the_image_is_in_range():
    image = MACOImage(24, batch=1)
    with torch.no_grad():
        image.param.normal_(0, 3)
        spectrum = torch.fft.rfft2(image.spatial(image.param), norm="ortho")
        rendered = image()
    torch.testing.assert_close(spectrum.abs(), image.magnitude.expand_as(spectrum), atol=1e-5, rtol=1e-5)
    assert rendered.shape == (1, 3, 24, 24) and 0 <= rendered.min() and rendered.max() <= 1


def test_the_magnitude_is_scaled_to_the_requested_spatial_std():
    image = MACOImage((20, 18), std=0.7, decorrelate=False, squash="none")
    with torch.no_grad():
        spatial = image()
    torch.testing.assert_close(spatial.std(dim=(-2, -1), unbiased=False), torch.full((1, 3), 0.7), atol=1e-5, rtol=0)
    torch.testing.assert_close(spatial.mean(dim=(-2, -1)), torch.zeros(1, 3), atol=1e-6, rtol=0)


def test_the_default_magnitude_is_one_over_f():
    magnitude = power_law_magnitude(32, 32, channels=1)[0]
    assert magnitude[0, 4] / magnitude[0, 8] == pytest.approx(2.0)  # frequency 4/32 against 8/32
    assert magnitude[3, 4] == pytest.approx(1 / math.hypot(3 / 32, 4 / 32), rel=1e-5)
    assert power_law_magnitude(32, 32, channels=1, decay_power=2)[0, 0, 4] == pytest.approx(64.0, rel=1e-5)


def test_the_magnitude_estimated_from_images_is_their_mean_spectrum():
    y, x = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    grating = torch.cos(2 * math.pi * (3 * x + 2 * y) / 16)  # 3 cycles across, 2 down
    images = torch.stack([torch.stack([grating, 2 * grating, 0 * grating]), torch.stack([grating, 0 * grating,
                                                                                         grating])]) + 0.5
    magnitude = natural_magnitude(images)
    # an orthonormal FFT puts amplitude 1/2 * sqrt(16 * 16) = 8 on each of the grating's two frequencies
    expected = torch.zeros(3, 16, 9)
    expected[:, 2, 3] = torch.tensor([8.0, 8.0, 4.0])
    torch.testing.assert_close(magnitude, expected, atol=1e-4, rtol=0)
    image = MACOImage(16, images=images, decorrelate=False, squash="none")
    assert int(image.magnitude[0].argmax()) == 2 * 9 + 3  # the prescribed magnitude is the images' spectrum


def test_a_bad_magnitude_is_refused_with_its_shape():
    with pytest.raises(ValueError, match=r"magnitude must be \(3, 8, 5\)"):
        MACOImage(8, magnitude=torch.ones(3, 8, 8))
    with pytest.raises(ValueError, match="zero apart from the mean"):
        MACOImage(8, magnitude=torch.zeros(3, 8, 5))


def test_rfft_weights_count_the_mirrored_columns():
    assert rfft_weights(8).tolist() == [1, 2, 2, 2, 1]
    assert rfft_weights(7).tolist() == [1, 2, 2, 2]


def test_the_transparency_map_is_the_accumulated_gradient_and_zero_outside_the_receptive_field():
    model = nn.Sequential(nn.Conv2d(3, 2, 5, padding=2)).requires_grad_(False)
    out = render_vis(model, "0:1:center", param="maco", size=16, steps=5, views=1, transforms=None,
                     progress=False)
    transparency = out.transparency[0].sum(dim=0)
    inside = torch.zeros(16, 16, dtype=torch.bool)
    inside[6:11, 6:11] = True  # the 5x5 receptive field of the centre unit (8, 8)
    assert transparency[inside].min() > 0
    assert transparency[~inside].abs().max() == 0
    assert out.history.shape == (5, 1)
