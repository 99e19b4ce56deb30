"""Robustness transforms: exact geometry, per-image seeded randomness, engine and captum call styles."""

import pytest
import torch

from mei.engine import rng
from mei.optim import transforms as T


def _img(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_jitter_is_a_whole_pixel_shift_with_reflected_border():
    x = _img(3, 2, 10, 12)
    with rng.seeded([1, 2, 3]):
        out = T.RandomSpatialJitter(2)(x)
    assert out.shape == x.shape
    for k in range(3):
        padded = torch.nn.functional.pad(x[k:k + 1], (2, 2, 2, 2), mode="reflect")[0]
        matches = [(dy, dx) for dy in range(5) for dx in range(5)
                   if torch.equal(out[k], padded[:, dy:dy + 10, dx:dx + 12])]
        assert len(matches) == 1


def test_affine_identity_and_quarter_turn():
    x = _img(2, 3, 8, 8)
    one, zero = torch.ones(2), torch.zeros(2)
    assert torch.allclose(T.affine(x, one, zero), x, atol=1e-5)
    turned = T.affine(x, one, torch.full((2,), 90.0))
    # +90 degrees turns the picture a quarter counter-clockwise, as torch.rot90 with k=1
    assert torch.allclose(turned, torch.rot90(x, k=1, dims=(-2, -1)), atol=1e-5)


def test_affine_keeps_non_square_images_rigid():
    x = torch.zeros(1, 1, 9, 15)
    x[0, 0, 4, 7] = 1.0  # the centre pixel stays put under any rotation
    out = T.affine(x, torch.ones(1), torch.tensor([33.0]))
    assert out[0, 0, 4, 7] == out.max()


def test_zoom_by_two_magnifies_the_centre():
    x = torch.zeros(1, 1, 8, 8)
    x[..., 3:5, 3:5] = 1.0
    out = T.RandomAffine(scale=[2.0])(x)  # size kept (captum's RandomScale resizes, below)
    # output pixel i samples input position i / 2 + 1.75 (bilinear): the 2x2 block becomes 4x4 with soft edges
    profile = torch.tensor([0.75, 1.0, 1.0, 0.75])
    assert torch.allclose(out[0, 0, 2:6, 2:6], profile[:, None] * profile[None, :], atol=1e-5)
    assert out[..., 0, 0] == 0


def test_random_transforms_are_seeded_per_image():
    # RandomScale draws one factor per batch (a batch shares one size), so it is left out here
    transform = T.TransformationRobustness(scale=None, crop_or_pad_output=True)
    x = _img(3, 3, 32, 32)
    with rng.seeded([5, 6, 7]):
        batched = transform(x, 0)
    with rng.seeded([6]):
        alone = transform(x[1:2], 0)
    with rng.seeded([5, 6, 7]):
        again = transform(x)
    assert batched.shape == x.shape
    assert torch.allclose(batched[1:2], alone, atol=1e-6)
    assert torch.equal(batched, again)
    assert not torch.allclose(batched, x)


def test_random_affine_picks_from_lists():
    x = _img(4, 1, 6, 6)
    with rng.seeded([0, 1, 2, 3]):
        out = T.RandomRotation([0.0])(x)
    assert torch.allclose(out, x, atol=1e-5)
    with pytest.raises(ValueError, match="positive"):
        T.RandomAffine(scale=[0.0])
    with pytest.raises(ValueError, match="padding_mode"):
        T.RandomAffine(padding_mode="wrap")


def test_pad_and_center_crop():
    x = _img(1, 2, 5, 6)
    padded = T.Pad(2, value=0.5)(x)
    assert padded.shape == (1, 2, 9, 10) and padded[0, 0, 0, 0] == 0.5
    assert torch.equal(T.CenterCrop((5, 6))(padded), x)
    assert torch.equal(T.CenterCrop(3)(x), x[..., 1:4, 1:4])
    assert T.CenterCrop((7, 8))(x).shape == (1, 2, 7, 8)


def test_random_choice_gives_each_image_one_candidate():
    x = _img(6, 1, 4, 4)
    flip = T.Chain()  # identity
    with rng.seeded(list(range(6))):
        out = T.RandomChoice([flip, {"path": "mei.optim.transforms.Pad", "kwargs": {"padding": 0}},
                              T.RandomAffine(scale=[2.0])])(x, 1)
    zoomed = T.RandomAffine(scale=[2.0])(x)
    for k in range(6):
        assert torch.equal(out[k], x[k]) or torch.allclose(out[k], zoomed[k])


def test_captum_and_engine_call_styles_agree():
    x = _img(1, 3, 8, 8)
    pad = T.Pad(1)
    assert torch.equal(pad(x), pad(x, 7))


def test_transformation_robustness_crops_back_or_not():
    x = _img(1, 3, 20, 20)
    assert T.TransformationRobustness(crop_or_pad_output=True)(x).shape == x.shape
    grown = T.TransformationRobustness(torch.nn.ConstantPad2d(4, 0.5), scale=None, degrees=None)(x)
    assert grown.shape == (1, 3, 28, 28)  # captum's default keeps the padded size
    with rng.seeded([0]):
        resized = T.TransformationRobustness(scale=[0.5], degrees=None)(_img(1, 3, 30, 30))
    assert resized.shape == (1, 3, 17, 17)  # (30 + 2 * 2) * 0.5


def test_transformation_robustness_has_captums_defaults_and_steps():
    transform = T.TransformationRobustness()
    assert isinstance(transform.padding_transform, torch.nn.ConstantPad2d)
    assert transform.padding_transform.padding == (2, 2, 2, 2) and transform.padding_transform.value == 0.5
    assert [j.translate for j in transform.jitter_transforms] == [4] * 10
    scales = [0.995**n for n in range(-5, 80)] + [0.998**n for n in 2 * list(range(20, 40))]
    assert transform.random_scale.scale == scales
    degrees = [*range(-20, 20), *range(-10, 10), *range(-5, 5), 0, 0, 0, 0, 0]
    assert transform.random_rotation.degrees == [float(d) for d in degrees]
    assert transform.final_jitter.translate == 2 and transform.crop_or_pad_output is False
    assert isinstance(T.TransformationRobustness(translate=3).jitter_transforms, T.RandomSpatialJitter)
    x = _img(1, 3, 12, 12)
    nothing = T.TransformationRobustness(None, None, None, None, None, False)
    assert torch.equal(nothing(x), x)


def test_transforms_as_pipeline_components():
    from mei.engine.resolve import build_component

    transform = build_component({"path": "mei.optim.transforms.TransformationRobustness",
                                 "kwargs": {"padding_transform": {"path": "mei.optim.transforms.Pad",
                                                                  "kwargs": {"padding": 2}},
                                            "translate": 2, "degrees": [-5, 5], "crop_or_pad_output": True}},
                                "transform")
    assert isinstance(transform.padding_transform, T.Pad)
    with rng.seeded([0]):
        assert transform(_img(1, 3, 16, 16), 3).shape == (1, 3, 16, 16)


# ------------------------------------------------------------------------- captum.optim's transforms
def test_center_crop_takes_captums_arguments():
    x = torch.arange(2 * 6 * 7.0).view(1, 2, 6, 7)
    torch.testing.assert_close(T.CenterCrop(3, True)(x), x[..., 2:5, 1:5])  # 3 pixels cut away in total
    torch.testing.assert_close(T.CenterCrop((4, 5))(x), x[..., 1:5, 1:6])
    torch.testing.assert_close(T.CenterCrop((3, 4), offset_left=True)(x), x[..., 2:5, 2:6])
    torch.testing.assert_close(T.center_crop(x, 4), x[..., 1:5, 1:5])
    padded = T.CenterCrop((8, 9), padding_value=0.0)(x)
    torch.testing.assert_close(padded[..., 1:7, 1:8], x)
    assert padded[..., 0, :].abs().sum() == 0
    assert torch.equal(T.CenterCrop((8, 9))(x), padded)  # captum's default fill is 0
    assert T.CenterCrop((8, 9), padding_value=0.5)(x)[0, 0, 0, 0] == 0.5
    assert T.CenterCrop((8, 9), padding_mode="replicate")(x)[0, 0, 0, 0] == x[0, 0, 0, 0]
    with pytest.raises(TypeError, match="value"):
        T.CenterCrop(3, value=1.0)  # the old keyword is gone: a stored config naming it fails loudly


def test_random_rotation_fills_zeros_and_scale_resize_resizes():
    x = torch.ones(1, 1, 9, 9)
    rotated = T.RandomRotation([45.0])(x)
    assert rotated[0, 0, 0, 0] == 0 and rotated[0, 0, 4, 4] == 1
    resized = T.RandomScale([2.0])(x)
    assert resized.shape == (1, 1, 18, 18)
    with rng.seeded([0]):
        sizes = {T.RandomScale([0.5, 1.0, 2.0])(torch.ones(2, 1, 8, 8)).shape[-1] for _ in range(20)}
    assert sizes == {4, 8, 16}
    normal = torch.distributions.Uniform(1.5, 1.6)
    assert T.RandomScale(normal)(torch.ones(1, 1, 10, 10)).shape[-1] == 15
    assert T.RandomScaleAffine([2.0])(x).shape == x.shape


def test_random_scale_is_captums_resize():
    x = torch.arange(64.0).view(1, 1, 8, 8)
    half = T.RandomScale(scale=[0.5])(x)
    assert half.shape == (1, 1, 4, 4)
    assert torch.equal(half, torch.nn.functional.interpolate(x, scale_factor=0.5, mode="bilinear",
                                                              align_corners=False))
    nearest = T.RandomScale(scale=torch.tensor([2.0]), mode="nearest")
    assert nearest.align_corners is None and nearest.scale == [2.0]
    assert torch.equal(nearest(x)[0, 0, :2, :2], torch.zeros(2, 2)) and nearest(x)[0, 0, 15, 15] == 63
    assert T.RandomScale([1, 2])._is_distribution is False and T.RandomScale([1, 2]).scale == [1.0, 2.0]
    assert T.RandomScale([3.0])._scale_tensor(x, 0.25).shape == (1, 1, 2, 2)


def test_symmetric_padding_matches_numpy_and_passes_the_exact_gradient():
    import numpy as np

    x = torch.arange(2 * 3 * 4 * 4.0).view(2, 3, 4, 4).requires_grad_(True)
    padding = [[3, 3], [4, 4], [2, 2], [5, 5]]
    out = T.SymmetricPadding.apply(x, padding)
    torch.testing.assert_close(out, torch.as_tensor(np.pad(x.detach().numpy(), padding, mode="symmetric")))
    out.sum().backward()
    assert x.grad.sum() == out.numel()  # every padded value sends its gradient to the pixel it copies


def test_small_captum_transforms():
    x = torch.rand(2, 4, 3, 3)
    assert torch.equal(T.ScaleInputRange(255)(x), x * 255)
    assert torch.equal(T.RGBToBGR()(x[:, :3]), x[:, [2, 1, 0]])
    assert torch.equal(T.IgnoreAlpha()(x), x[:, :3])
    background = torch.zeros(1, 3, 3, 3)
    torch.testing.assert_close(T.BlendAlpha(background)(x), x[:, 3:4] * x[:, :3])
    with rng.seeded([0, 1]):
        first = T.BlendAlpha()(x)
    with rng.seeded([0, 1]):
        assert torch.equal(T.BlendAlpha()(x), first)
    with pytest.raises(ValueError, match=r"RGBToBGR takes \(N, 3, H, W\)"):
        T.RGBToBGR()(x)


def _gaussian(size, sigma):
    g = torch.exp(-((torch.arange(size, dtype=torch.float64) - (size - 1) / 2) ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def test_gaussian_smoothing_of_a_delta_is_the_normalized_kernel():
    delta = torch.zeros(1, 2, 9, 9)
    delta[..., 4, 4] = 1.0
    smoothed = T.GaussianSmoothing(2, 5, 1.5)(delta)
    expected = torch.outer(_gaussian(5, 1.5), _gaussian(5, 1.5)).float()
    assert smoothed.shape == (1, 2, 5, 5)
    torch.testing.assert_close(smoothed[0, 0], expected, atol=1e-7, rtol=0)
    torch.testing.assert_close(smoothed[0, 1], expected, atol=1e-7, rtol=0)
    line = torch.zeros(1, 1, 7)
    line[..., 3] = 1.0
    torch.testing.assert_close(T.GaussianSmoothing(1, 7, 2.0, dim=1)(line)[0, 0], _gaussian(7, 2.0).float()[3:4],
                               atol=1e-7, rtol=0)
    volume = torch.ones(1, 3, 4, 5, 6)
    torch.testing.assert_close(T.GaussianSmoothing(3, [3, 3, 1], [1.0, 2.0, 1.0], dim=3)(volume),
                               torch.ones(1, 3, 2, 3, 6))  # a constant stays constant: the kernel sums to 1
    with pytest.raises(RuntimeError, match="1, 2 and 3"):
        T.GaussianSmoothing(3, 3, 1.0, dim=4)


def test_nchannels_to_rgb_maps_three_channels_to_themselves_and_keeps_each_pixels_norm():
    one_hot = torch.zeros(1, 3, 2, 3)
    for k in range(3):
        one_hot[0, k, 0, k] = 2.0  # pixel (0, k): only channel k, value 2
    rgb = T.NChannelsToRGB()(one_hot)
    torch.testing.assert_close(rgb, one_hot, atol=2e-4, rtol=0)
    x = torch.rand(2, 6, 5, 5, generator=torch.Generator().manual_seed(0))
    out = T.NChannelsToRGB(warp=True)(x)
    assert out.shape == (2, 3, 5, 5)
    torch.testing.assert_close(out.norm(dim=1), x.norm(dim=1), atol=1e-3, rtol=1e-4)
    signed = torch.zeros(1, 2, 1, 1)
    signed[0, 0] = -1.0  # negative: channel 0's negative part is the third of 2 x 2 hues, 180 degrees (cyan)
    torch.testing.assert_close(T.NChannelsToRGB()(signed)[0, :, 0, 0], torch.tensor([0.0, 0.7071, 0.7071]),
                               atol=1e-3, rtol=0)


def test_random_crop_cuts_a_window_of_the_rolled_image():
    x = torch.arange(2 * 6 * 7.0).view(2, 1, 6, 7)
    crop = T.RandomCrop((3, 4))
    assert crop.crop_size == [3, 4] and T.RandomCrop(5).crop_size == [5, 5]
    with rng.seeded([0, 1]):
        out = crop(x)
    assert out.shape == (2, 1, 3, 4)
    for k in range(2):
        windows = [torch.roll(x[k], (dy, dx), dims=(1, 2))[:, 1:4, 1:5] for dy in range(-2, 2) for dx in range(-2, 2)]
        assert sum(torch.equal(out[k], w) for w in windows) == 1
    with rng.seeded([0, 1]):
        assert torch.equal(crop(x), out)


def test_rotation_and_scale_affine_take_captums_mode_and_distributions():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    quarter = T.RandomRotation([90.0], mode="nearest")(x)
    torch.testing.assert_close(quarter, torch.rot90(x, 1, dims=(2, 3)))
    torch.testing.assert_close(T.RandomRotation._get_rot_mat(90.0, "cpu", torch.float32),
                               torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]), atol=1e-7, rtol=0)
    ones = torch.ones(1, 1, 8, 8)
    shrunk = T.RandomScaleAffine([2.0], mode="nearest")(ones)  # captum's matrix [[2, 0, 0], [0, 2, 0]]: half size
    assert shrunk[0, 0, 2:6, 2:6].eq(1).all() and shrunk.sum() == 16
    assert torch.equal(T.RandomScaleAffine([0.5])(ones), ones)  # zooming in stays inside the image
    uniform = torch.distributions.Uniform(-30.0, 30.0)
    rotate = T.RandomRotation(uniform)
    assert rotate._is_distribution and rotate.degrees == [] and rotate.degrees_distribution is uniform
    batch = torch.rand(3, 1, 9, 9, generator=torch.Generator().manual_seed(0))
    with rng.seeded([5, 6, 7]):
        first = rotate(batch)
    with rng.seeded([5, 6, 7]):
        assert torch.equal(rotate(batch), first)
    with rng.seeded([6]):
        torch.testing.assert_close(rotate(batch[1:2]), first[1:2])  # each image draws its own angle
    with pytest.raises(ValueError, match="mode"):
        T.RandomRotation([1.0], mode="area")


def test_jitter_has_captums_translate_tensor():
    x = torch.arange(25.0).view(1, 1, 5, 5)
    jitter = T.RandomSpatialJitter(2)
    assert jitter.pad_range == 4 and isinstance(jitter.pad, torch.nn.ReflectionPad2d)
    assert torch.equal(jitter.translate_tensor(x, [2, 2]), x)
    moved = jitter.translate_tensor(x, torch.tensor([0, 2]))  # content 2 pixels down
    assert torch.equal(moved[..., 2:, :], x[..., :3, :])


def test_symmetric_padding_is_one_autograd_node():
    x = torch.rand(1, 2, 3, 3, requires_grad=True)
    out = T.SymmetricPadding.apply(x, [[0, 0], [0, 0], [2, 2], [1, 1]])
    assert type(out.grad_fn).__name__ == "SymmetricPaddingBackward"
    out.backward(torch.ones_like(out))
    assert x.grad.sum() == out.numel()
