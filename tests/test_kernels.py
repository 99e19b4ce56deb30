"""The signal kernels of mei.engine.kernels against closed forms, and every front end calling them."""

import math

import pytest
import torch

from mei import postprocessing, preconditioners, regularizers, transforms
from mei.analysis import spectra
from mei.demo import population
from mei.engine import kernels, rng
from mei.meitorch import analyze, augment, denoisers
from mei.optim import images as optim_images
from mei.optim import loss as optim_loss
from mei.optim import postprocessing as optim_postprocessing
from mei.optim import transforms as optim_transforms

# ------------------------------------------------------------------------------------------------ Gaussian blur


def test_gaussian_kernel_is_the_normalized_gaussian():
    kernel = kernels.gaussian_kernel1d(1.5, truncate=2.0)  # radius ceil(3) = 3: 7 taps
    t = torch.arange(-3, 4, dtype=torch.float64)
    expected = torch.exp(-(t**2) / (2 * 1.5**2))
    torch.testing.assert_close(kernel.double(), expected / expected.sum(), rtol=1e-6, atol=1e-7)
    assert kernels.gaussian_radius(0.1) == 1 and kernels.gaussian_radius(1.0, 3.0) == 3


def test_gaussian_kernel_of_an_even_size_is_centred_between_two_taps():
    kernel = kernels.gaussian_kernel1d(1.0, size=4)  # taps at -1.5, -0.5, 0.5, 1.5
    expected = torch.exp(-0.5 * torch.tensor([-1.5, -0.5, 0.5, 1.5]) ** 2)
    torch.testing.assert_close(kernel, expected / expected.sum())
    assert torch.equal(kernels.gaussian_kernel1d(0.0, size=3), torch.tensor([0.0, 1.0, 0.0]))
    assert torch.equal(kernels.gaussian_kernel1d(0.0, size=4), torch.tensor([0.0, 0.5, 0.5, 0.0]))


def test_blur_of_a_delta_is_the_normalized_gaussian():
    x = torch.zeros(1, 1, 21, 21)
    x[0, 0, 10, 10] = 1.0
    out = kernels.gaussian_blur(x, 1.2, truncate=4.0)  # radius 5: the kernel never reaches the border
    y, x_ = torch.meshgrid(torch.arange(21.0) - 10, torch.arange(21.0) - 10, indexing="ij")
    gauss = torch.exp(-(y**2 + x_**2) / (2 * 1.2**2)) * ((y.abs() <= 5) & (x_.abs() <= 5))
    torch.testing.assert_close(out[0, 0], gauss / gauss.sum(), rtol=1e-5, atol=1e-7)
    assert out.sum().item() == pytest.approx(1.0, abs=1e-6)


def test_blur_keeps_constants_and_only_touches_the_given_dims():
    assert torch.allclose(kernels.gaussian_blur(torch.full((2, 3, 6, 7), 2.5), 2.0), torch.full((2, 3, 6, 7), 2.5))
    pulse = torch.zeros(1, 1, 11, 2, 2)
    pulse[:, :, 5] = 1.0
    out = kernels.gaussian_blur(pulse, 1.0, dims=(2,), truncate=3.0)
    torch.testing.assert_close(out[0, 0, 2:9, 0, 0], kernels.gaussian_kernel1d(1.0, truncate=3.0))
    assert torch.equal(out[0, 0, :, 0, 0], out[0, 0, :, 1, 1])
    x = torch.randn(2, 3)
    assert kernels.gaussian_blur(x, 0.0) is x


def test_reflect_padding_falls_back_to_replicate_on_small_dimensions():
    assert kernels.edge_padding("reflect", 3, (5, 4)) == "reflect"
    assert kernels.edge_padding("reflect", 4, (5, 4)) == "replicate"
    assert kernels.edge_padding("circular", 9, (5, 4)) == "circular"
    x = torch.randn(1, 1, 3, 3)
    replicate = kernels.gaussian_blur(x, 2.0, padding="replicate")
    assert torch.equal(kernels.gaussian_blur(x, 2.0, padding="reflect"), replicate)
    with pytest.raises(ValueError, match="circular"):
        kernels.gaussian_blur(x, 2.0, padding="circular")


# ------------------------------------------------------------------------------------------------ resampling


def ramp(height=6, width=8):
    return torch.arange(width, dtype=torch.float32).repeat(1, 1, height, 1)


def test_zoom_by_one_is_the_identity_and_by_two_halves_a_ramp_about_the_centre():
    x = torch.randn(2, 3, 7, 9)
    torch.testing.assert_close(kernels.resample(x, 1.0), x, rtol=0, atol=1e-5)
    out = kernels.resample(ramp(), 2.0)
    centre = (8 - 1) / 2
    expected = centre + (torch.arange(8.0) - centre) / 2
    torch.testing.assert_close(out[0, 0], expected.expand(6, 8), rtol=0, atol=1e-5)


def test_rotation_by_90_degrees_turns_a_square_image():
    x = torch.randn(1, 1, 6, 6)
    torch.testing.assert_close(kernels.resample(x, degrees=90.0), torch.rot90(x, 1, (-2, -1)), rtol=0, atol=1e-5)


def test_a_window_is_stretched_over_the_whole_image():
    x = torch.randn(2, 2, 5, 7)
    full = [(0.0, 0.0, 5, 7)] * 2
    torch.testing.assert_close(kernels.resample(x, window=full), x, rtol=0, atol=1e-5)
    left_half = kernels.resample(ramp(4, 8), window=[(0.0, 0.0, 4, 4)])  # columns 0..3 stretched to 8
    expected = (torch.arange(8.0) + 0.5) / 2 - 0.5
    torch.testing.assert_close(left_half[0, 0, 0, 1:], expected[1:], rtol=0, atol=1e-5)
    assert left_half[0, 0, 0, 0] == pytest.approx(0.0, abs=1e-5)  # -0.25 lies within the edge pixel: column 0


# ------------------------------------------------------------------------------------------------ frequencies


def test_radial_frequency_at_known_bins():
    r = kernels.radial_frequency(8, 6, unit="cycles/image")
    assert r.shape == (8, 6)
    assert r[0, 0] == 0 and r[1, 0] == 1 and r[7, 0] == 1 and r[0, 5] == 1
    assert r[4, 3] == 5  # the Nyquist row and column: 3-4-5
    pixel = kernels.radial_frequency(8, 6)
    assert pixel[4, 3].item() == pytest.approx(math.sqrt(0.5**2 + 0.5**2))
    assert pixel[2, 0].item() == pytest.approx(0.25)
    assert kernels.radial_frequency(8, 6, unit="nyquist")[4, 3].item() == pytest.approx(math.sqrt(2))
    half = kernels.radial_frequency(8, 6, unit="cycles/image", onesided=True, squared=True)
    assert half.shape == (8, 4) and half[4, 3] == 25 and half[7, 1] == 2
    with pytest.raises(ValueError, match="unit"):
        kernels.radial_frequency(4, 4, unit="hertz")


def test_filtering_the_spectrum_by_one_is_the_identity_and_by_the_dc_bin_the_mean():
    x = torch.randn(2, 3, 6, 8)
    torch.testing.assert_close(kernels.filter_spectrum(x, torch.ones(6, 5)), x, rtol=0, atol=1e-5)
    dc = torch.zeros(6, 5)
    dc[0, 0] = 1.0
    torch.testing.assert_close(kernels.filter_spectrum(x, dc, norm="ortho"),
                               x.mean(dim=(-2, -1), keepdim=True).expand_as(x), rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------------------ statistics


def test_total_variation_of_a_step_image():
    step = torch.zeros(2, 1, 4, 5)
    step[0, :, :, 2:] = 1.0  # image 0: a vertical edge, 4 rows jump by 1
    step[1, :, 1:, :] = 3.0  # image 1: a horizontal edge, 5 columns jump by 3
    assert kernels.total_variation(step).tolist() == [4.0, 15.0]
    assert kernels.total_variation(step, per_image=False).item() == 19.0
    assert kernels.total_variation(step, dims=(-1,)).tolist() == [4.0, 0.0]
    iso = kernels.total_variation(step[:1], isotropic=True, eps=0.0)  # 3 x 4 pixels have both differences
    assert iso.item() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="two dims"):
        kernels.total_variation(step, dims=(-1,), isotropic=True)


def test_rescaling_gives_each_image_the_norm():
    x = torch.randn(3, 2, 5, 4)
    out = kernels.rescale_norm(x, 7.5)
    torch.testing.assert_close(torch.linalg.vector_norm(out.reshape(3, -1), dim=1), torch.full((3,), 7.5))
    torch.testing.assert_close(out / out.reshape(3, -1).norm(dim=1).view(3, 1, 1, 1),
                               x / x.reshape(3, -1).norm(dim=1).view(3, 1, 1, 1))  # direction kept
    assert torch.equal(kernels.rescale_norm(torch.zeros(1, 4), 2.0), torch.zeros(1, 4))


# ------------------------------------------------------------------------------------------------ the front ends


def test_compatibility_names_are_the_kernels():
    assert augment.rescale_norm is kernels.rescale_norm
    assert preconditioners.gaussian_kernel1d is kernels.gaussian_kernel1d
    assert analyze.radial_power_spectrum is spectra.radial_power_spectrum
    assert analyze.high_frequency_fraction is spectra.high_frequency_fraction


x4 = torch.randn(2, 3, 8, 8)
CALLERS = [
    ("blur2d", preconditioners, "gaussian_blur", lambda: preconditioners.blur2d(x4, 1.0)),
    ("blur1d", preconditioners, "gaussian_blur", lambda: preconditioners.blur1d(x4, 1.0, dim=1)),
    ("GaussianBlur", preconditioners, "gaussian_blur", lambda: preconditioners.GaussianBlur(1.0)(x4, 0)),
    ("fourier_filter", preconditioners, "radial_frequency", lambda: preconditioners.fourier_filter(8, 8, 0.5)),
    ("FourierSmoothing", preconditioners, "filter_spectrum", lambda: preconditioners.FourierSmoothing(0.5)(x4, 0)),
    ("PeriodicBlur", optim_postprocessing, "gaussian_blur", lambda: optim_postprocessing.PeriodicBlur(1)(x4, 0)),
    ("GaussianDenoiser", denoisers, "gaussian_blur", lambda: denoisers.GaussianDenoiser(3, 1.0)(x4, 0)),
    ("gaussian_kernel", denoisers, "gaussian_kernel1d",
     lambda: denoisers.gaussian_kernel(3, 1.0, torch.float32, torch.device("cpu"))),
    ("denoisers.total_variation", kernels, "total_variation", lambda: denoisers.total_variation(x4)),
    ("TotalVariation", regularizers, "total_variation", lambda: regularizers.TotalVariation()(x4, 0)),
    ("optim TotalVariation", optim_loss, "total_variation",
     lambda: optim_loss.TotalVariation("layer").compute({"layer": x4})),
    ("ChangeNorm", postprocessing, "rescale_norm", lambda: postprocessing.ChangeNorm(2.0)(x4, 0)),
    ("zoom", augment, "resample", lambda: augment.zoom(x4, 1.5)),
    ("FourierPrecondition", augment, "filter_spectrum", lambda: augment.FourierPrecondition(0.5)(x4, 0)),
    ("affine", optim_transforms, "resample", lambda: optim_transforms.affine(x4, torch.ones(2), torch.zeros(2))),
    ("RandomCrop", transforms, "resample", lambda: transforms.RandomCrop(6, 6)(x4, 0)),
    ("RandomScale", transforms, "resample", lambda: transforms.RandomScale(0.8, 1.2)(x4, 0)),
    ("spectrum_scale", optim_images, "radial_frequency", lambda: optim_images.spectrum_scale(8, 8)),
    ("spectral_filter", optim_images, "filter_spectrum", lambda: optim_images.spectral_filter(x4)),
    ("frequency_spectrum", spectra, "radial_frequency", lambda: spectra.frequency_spectrum(x4[0, 0], 8, 16)),
    ("radial_power_spectrum", spectra, "radial_frequency", lambda: analyze.radial_power_spectrum(x4)),
    ("high_frequency_fraction", spectra, "radial_frequency", lambda: analyze.high_frequency_fraction(x4)),
    ("natural_images", population, "radial_frequency", lambda: population.natural_images(1, 8, 8, 0)),
]


@pytest.mark.parametrize(("name", "module", "kernel", "call"), CALLERS, ids=[c[0] for c in CALLERS])
def test_each_front_end_calls_the_kernel(name, module, kernel, call, monkeypatch):
    original, calls = getattr(module, kernel), []

    def spy(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, kernel, spy)
    with rng.seeded([0, 1]):
        call()
    assert calls, f"{name} does not call {kernel}"


def test_front_ends_give_the_kernels_values():
    x = torch.randn(2, 3, 9, 8)
    assert torch.equal(preconditioners.blur2d(x, 1.3), kernels.gaussian_blur(x, 1.3))
    assert torch.equal(augment.zoom(x, 1.4), kernels.resample(x, 1.4))
    assert torch.equal(postprocessing.ChangeNorm(2.0)(x, 0), kernels.rescale_norm(x, 2.0))
    assert torch.equal(denoisers.total_variation(x), kernels.total_variation(x))
    assert torch.equal(regularizers.TotalVariation(0.5)(x, 0), 0.5 * kernels.total_variation(x, per_image=False))
