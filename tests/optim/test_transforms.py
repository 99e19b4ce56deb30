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
    out = T.RandomScale([2.0])(x)
    # output pixel i samples input position i / 2 + 1.75 (bilinear): the 2x2 block becomes 4x4 with soft edges
    profile = torch.tensor([0.75, 1.0, 1.0, 0.75])
    assert torch.allclose(out[0, 0, 2:6, 2:6], profile[:, None] * profile[None, :], atol=1e-5)
    assert out[..., 0, 0] == 0


def test_random_transforms_are_seeded_per_image():
    transform = T.TransformationRobustness()
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
        T.RandomScale([0.0])
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
                              T.RandomScale([2.0])])(x, 1)
    zoomed = T.RandomScale([2.0])(x)
    for k in range(6):
        assert torch.equal(out[k], x[k]) or torch.allclose(out[k], zoomed[k])


def test_captum_and_engine_call_styles_agree():
    x = _img(1, 3, 8, 8)
    pad = T.Pad(1)
    assert torch.equal(pad(x), pad(x, 7))


def test_transformation_robustness_crops_back_or_not():
    x = _img(1, 3, 20, 20)
    assert T.TransformationRobustness()(x).shape == x.shape
    grown = T.TransformationRobustness(padding=4, crop_or_pad_output=False)(x)
    assert grown.shape == (1, 3, 28, 28)


def test_transforms_as_pipeline_components():
    from mei.engine.resolve import build_component

    transform = build_component({"path": "mei.optim.transforms.TransformationRobustness",
                                 "kwargs": {"padding": 2, "translate": 2, "degrees": [-5, 5]}}, "transform")
    with rng.seeded([0]):
        assert transform(_img(1, 3, 16, 16), 3).shape == (1, 3, 16, 16)
