"""Parameterizations: FFT round trip, 1/f scaling, invertible colour decorrelation, any channels and size."""

import pytest
import torch
from torch import nn

from mei.optim import images


def _img(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("size", [(16, 16), (15, 22), (7, 9)])
def test_fft_image_round_trips_an_image(size):
    start = _img(2, 3, *size)
    fft = images.FFTImage(size, batch=2, init=start)
    assert fft.param.shape == (2, 3, size[0], size[1] // 2 + 1, 2)
    assert torch.allclose(fft(), start, atol=1e-5)


def test_fft_scale_is_one_over_frequency():
    scale = images.spectrum_scale(32, 32)
    assert torch.isclose(scale.pow(2).mean(), torch.tensor(1.0))
    # frequency 1/32 (index 1) has twice the gain of frequency 2/32 (index 2), and DC is capped at 1/32
    assert torch.isclose(scale[0, 1] / scale[0, 2], torch.tensor(2.0))
    assert torch.isclose(scale[0, 0], scale[0, 1])
    flat = images.spectrum_scale(8, 8, decay_power=0)
    assert torch.allclose(flat, torch.ones_like(flat))


def test_fft_gradient_favours_low_frequencies():
    fft = images.FFTImage(32, channels=1)
    grad = torch.autograd.grad(fft().mul(torch.randn(1, 1, 32, 32)).sum(), fft.param)[0]
    step = fft.render(fft.param - grad) - fft()
    power = torch.fft.rfft2(step[0, 0]).abs()
    assert power[:4, :4].mean() > 5 * power[12:17, 12:17].mean()


@pytest.mark.parametrize("transform", ["klt", "i1i2i3"])
def test_decorrelation_is_invertible(transform):
    to_rgb = images.ToRGB(transform)
    x = torch.randn(2, 3, 5, 6)
    assert torch.allclose(to_rgb(to_rgb(x), inverse=True), x, atol=1e-5)
    assert torch.allclose(to_rgb(to_rgb(x, inverse=True)), x, atol=1e-5)
    with_alpha = torch.randn(1, 4, 3, 3)
    out = to_rgb(with_alpha)
    assert torch.equal(out[:, 3], with_alpha[:, 3])


def test_klt_columns_have_norm_at_most_one_and_pixelwise_matrix():
    to_rgb = images.ToRGB("klt")
    assert torch.isclose(torch.linalg.vector_norm(to_rgb.matrix, dim=0).max(), torch.tensor(1.0))
    x = torch.randn(1, 3, 2, 2)
    assert torch.allclose(to_rgb(x)[0, :, 1, 0], to_rgb.matrix @ x[0, :, 1, 0])


def test_i1i2i3_applies_ohtas_matrix_as_captum_does():
    to_rgb = images.ToRGB("i1i2i3")
    rgb = torch.tensor([0.6, 0.3, 0.0]).view(1, 3, 1, 1)
    # rows of Ohta's matrix: I1 = (R + G + B) / 3, I2 = (R - B) / 2, I3 = (2G - R - B) / 4
    torch.testing.assert_close(to_rgb(rgb).flatten(), torch.tensor([0.3, 0.3, 0.0]))
    torch.testing.assert_close(to_rgb.transform, torch.tensor(images.I1I2I3_MATRIX))
    # grey in I1I2I3 (only I1) comes back as grey through the inverse
    grey = to_rgb(torch.tensor([0.4, 0.0, 0.0]).view(1, 3, 1, 1), inverse=True)
    torch.testing.assert_close(grey.flatten(), torch.full((3,), 0.4))
    # a (C, H, W) image works too, and ToRGB is importable from transforms, as in captum
    from mei.optim.transforms import ToRGB
    assert ToRGB is images.ToRGB
    torch.testing.assert_close(to_rgb(rgb[0]), to_rgb(rgb)[0])


def test_any_channel_count_with_own_matrix():
    matrix = torch.tensor([[1.0, 0.5], [0.0, 2.0]])
    to_c = images.ToRGB(matrix)
    x = torch.randn(1, 2, 4, 4)
    assert torch.allclose(to_c(to_c(x), inverse=True), x, atol=1e-6)
    with pytest.raises(ValueError, match=r"takes \(N, 2, H, W\) images \(or 3 channels with alpha\), got shape"):
        to_c(torch.randn(1, 5, 4, 4))
    with pytest.raises(ValueError, match="square"):
        images.ToRGB([[1.0, 2.0]])


@pytest.mark.parametrize("parameterization", [images.FFTImage, images.PixelImage, images.LaplacianImage])
@pytest.mark.parametrize("squash", ["sigmoid", "clamp"])
def test_natural_image_init_is_captums(parameterization, squash):
    start = _img(1, 3, 12, 10) * 0.9 + 0.05
    image = images.NaturalImage((12, 10), init=start, parameterization=parameterization, squash_func=squash)
    out = image()
    assert isinstance(out, images.ImageTensor)
    # the squash is not inverted (captum): the chain renders squash(init)
    assert torch.allclose(out, torch.sigmoid(start) if squash == "sigmoid" else start, atol=1e-4)


def test_natural_image_squash_default_is_captums():
    assert images.NaturalImage((4, 4)).squash_func is torch.sigmoid
    given = images.NaturalImage(init=torch.ones(1, 3, 1, 1))
    assert given.squash_func == given._clamp_image
    assert torch.allclose(given(), torch.ones(1, 3, 1, 1), atol=1e-6)
    sig = images.NaturalImage(init=torch.ones(1, 3, 1, 1), parameterization=images.PixelImage,
                              squash_func=torch.sigmoid)
    assert torch.allclose(sig(), torch.full((1, 3, 1, 1), 0.7310586), atol=1e-6)
    assert torch.equal(given._clamp_image(torch.tensor([-1.0, 0.5, 2.0])), torch.tensor([0.0, 0.5, 1.0]))


def test_natural_image_any_channels_no_decorrelation():
    image = images.NaturalImage((9, 11), channels=5, batch=2)
    assert image.decorrelate is None
    out = image()
    assert out.shape == (2, 5, 9, 11)
    assert ((out > 0) & (out < 1)).all()
    one = images.NaturalImage(6, channels=1, init=torch.full((1, 6, 6), 0.25))
    assert torch.allclose(one(), torch.full((1, 1, 6, 6), 0.25), atol=1e-5)


def test_render_matches_forward_and_is_differentiable():
    image = images.NaturalImage((8, 8))
    param = image.param.detach().clone().requires_grad_(True)
    rendered = image.render(param)
    assert torch.equal(rendered, image().as_subclass(torch.Tensor))
    rendered.sum().backward()
    assert param.grad is not None and param.grad.abs().sum() > 0


def test_render_image_transform_for_pipelines():
    x = torch.randn(2, 3, 8, 8)
    pixel = images.RenderImage(parameterization="pixel", decorrelate=None, squash="sigmoid")
    assert torch.allclose(pixel(x, 0), torch.sigmoid(x))
    fft = images.RenderImage()
    expected = torch.sigmoid(images.ToRGB("klt")(images.spectral_filter(x)))
    assert torch.allclose(fft(x, 3), expected)
    flat = images.spectral_filter(x, decay_power=0)
    assert torch.allclose(flat, x, atol=1e-5)
    with pytest.raises(ValueError, match="'fft' or 'pixel'"):
        images.RenderImage(parameterization="laplacian")


def test_bad_init_shape():
    with pytest.raises(ValueError, match=r"init must be \(images, 3, 8, 8\)"):
        images.PixelImage(8, init=torch.zeros(3, 4, 4))


def test_laplacian_levels_and_weights():
    lap = images.LaplacianImage((6, 5), channels=2, batch=3, scale_list=[1, 2, 4], power=0.5)
    assert lap.param.shape == (3, 2 * (6 * 5 + 3 * 3 + 2 * 2))  # ceil(6/s) x ceil(5/s) per level
    with torch.no_grad():
        lap.param.zero_()
        lap.param[:, 2 * 30:2 * 30 + 9] = 1.0  # the scale-2 level of channel 0, all ones
    image = lap()
    assert image.shape == (3, 2, 6, 5)
    assert torch.allclose(image[:, 0], torch.full((3, 6, 5), 2**0.5))  # constant level, weight 2 ** power
    assert torch.equal(image[:, 1], torch.zeros(3, 6, 5))


def test_laplacian_gradient_favours_low_frequencies_more_than_pixels():
    target = torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(3))

    def low_frequency_share(parameterization):
        grad = torch.autograd.grad(parameterization().mul(target).sum(), parameterization.param)[0]
        step = (parameterization.render(parameterization.param - grad) - parameterization()).detach()
        power = torch.fft.rfft2(step[0, 0]).abs() ** 2
        return float(power[:4, :4].sum() / power.sum())

    pixel_share = low_frequency_share(images.PixelImage(32, channels=1))
    laplacian_share = low_frequency_share(images.LaplacianImage(32, channels=1))
    assert laplacian_share > 10 * pixel_share


@pytest.mark.parametrize("scale_list,message", [
    ([2, 4], "must include 1"), ([1, 2, 2], "each factor once"), ([1, 0], "positive ints"), ([1, 2.0], "positive ints"),
])
def test_laplacian_bad_scales(scale_list, message):
    with pytest.raises(ValueError, match=message):
        images.LaplacianImage(8, scale_list=scale_list)


def test_image_tensor_open_reads_exact_pixels_and_round_trips_export(tmp_path):
    from PIL import Image

    pixels = torch.randint(0, 256, (5, 7, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    Image.fromarray(pixels.numpy()).save(tmp_path / "colour.png")
    opened = images.ImageTensor.open(tmp_path / "colour.png")
    assert isinstance(opened, images.ImageTensor) and opened.shape == (3, 5, 7) and opened.dtype == torch.float32
    torch.testing.assert_close(opened.as_subclass(torch.Tensor), pixels.permute(2, 0, 1).float() / 255)
    raw = images.ImageTensor.open(str(tmp_path / "colour.png"), scale=1.0)
    assert raw.max() == pixels.max().float()
    grey = images.ImageTensor.open(tmp_path / "colour.png", mode="L")
    assert grey.shape == (1, 5, 7)
    opened.export(str(tmp_path / "again.png"))  # 8-bit values survive export and open exactly
    torch.testing.assert_close(images.ImageTensor.open(tmp_path / "again.png"), opened)
    init = images.NaturalImage((5, 7), init=opened)  # an opened picture as a starting image
    torch.testing.assert_close(init().detach().as_subclass(torch.Tensor), opened[None].as_subclass(torch.Tensor),
                               atol=1e-5, rtol=0)


def test_pixel_image_has_captums_image_attribute():
    start = torch.rand(2, 3, 4, 4)
    image = images.PixelImage(init=start)
    assert image.image is image.param and torch.equal(image.image, start) and image.image.requires_grad


def test_image_tensor_open_refuses_urls():
    with pytest.raises(ValueError, match="reads local files only"):
        images.ImageTensor.open("https://example.org/dog.jpg")


# --------------------------------------------------------------------- captum.optim's parameterization API
@pytest.mark.parametrize("parameterization", [images.FFTImage, images.PixelImage, images.LaplacianImage])
def test_size_and_batch_come_from_init(parameterization):
    init = torch.rand(2, 3, 5, 7)
    image = parameterization(init=init)
    assert image.size == (5, 7) and image().shape == (2, 3, 5, 7)
    torch.testing.assert_close(image(), init, atol=1e-5, rtol=0)
    assert parameterization(init=init[0], batch=3)().shape == (3, 3, 5, 7)  # one image, repeated
    with pytest.raises(ValueError, match="init holds 2 images but batch is 3"):
        parameterization(init=init, batch=3)
    with pytest.raises(ValueError, match="give the image size"):
        parameterization()
    natural = images.NaturalImage(init=init)
    torch.testing.assert_close(natural(), init, atol=1e-4, rtol=0)


def test_image_tensor_does_not_leak_into_derived_values():
    image = images.NaturalImage((6, 6))()
    assert type(image) is images.ImageTensor and type(image.detach()) is images.ImageTensor
    assert type(image.mean()) is torch.Tensor and type(image * 2) is torch.Tensor
    assert f"{image.mean():.2f}" == f"{image.as_subclass(torch.Tensor).mean().item():.2f}"
    conv = nn.Conv2d(3, 2, 1)
    assert type(conv(image)) is torch.Tensor
    from mei.optim import collect_activations
    assert type(collect_activations(conv, [conv], image)[conv]) is torch.Tensor


def test_simple_tensor_stack_and_shared_images():
    fixed = torch.rand(1, 3, 4, 4)
    assert images.SimpleTensorParameterization(fixed)() is fixed
    with pytest.raises(TypeError, match="needs a tensor"):
        images.SimpleTensorParameterization([1.0])
    pixel = images.PixelImage(4)
    stacked = images.StackImage([pixel, fixed])
    torch.testing.assert_close(stacked(), torch.cat([pixel(), fixed]))
    with pytest.raises(ValueError, match="render different shapes"):
        images.StackImage([pixel, torch.rand(1, 3, 5, 5)])()
    base = images.PixelImage(4, batch=2, init=torch.zeros(2, 3, 4, 4))
    shared = images.SharedImage((1, 1), base)  # one shared value, added to every pixel of every image
    value = shared.shared_init[0]().item()
    # as in captum, the shared tensor is resized to the whole batch and summed over it: 2 images, twice the value
    torch.testing.assert_close(shared(), torch.full((2, 3, 4, 4), 2 * value))
    assert isinstance(shared, images.InputParameterization) and isinstance(shared, images.ImageParameterization)
    shifted = images.SharedImage((2, 2), base, offset=(1, 1))
    assert shifted().shape == (2, 3, 4, 4)
