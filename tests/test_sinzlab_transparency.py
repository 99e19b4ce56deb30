"""sinzlab/mei's transparent MEIs, ring / centre / surround MEIs, background ops and BoxContrastPixelL2."""

from __future__ import annotations

import pytest
import torch

from mei.engine import rng
from mei.engine.errors import ConfigError
from mei.legacy import ops
from mei.methods import TransparentMEI, gradient_ascent, split_sinzlab_keys
from mei.optimization import MEI

BASE = {
    "device": "cpu", "shape": [1, 1, 4, 4],
    "initial": {"path": "mei.initial.RandomNormal"},
    "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": 0.1}},
    "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": 200}},
}


class PixelSum(torch.nn.Module):
    def forward(self, x):
        return x.flatten(1).sum(1)


def disc(radius: float, size: int = 9) -> torch.Tensor:
    """A transparent MEI (1 image, 1 channel + opacity) whose opacity is 1 inside ``radius`` of the centre."""
    yy, xx = torch.meshgrid(torch.arange(size) - size // 2, torch.arange(size) - size // 2, indexing="ij")
    mei = torch.zeros(1, 2, size, size)
    mei[0, 1] = ((yy**2 + xx**2).float() <= radius**2).float()
    return mei


def test_blend_is_image_times_opacity_over_the_weighted_background():
    background = torch.tensor([[2.0, -2.0], [4.0, 0.0]])
    transparent = TransparentMEI(lambda x, i: background, weight=0.5)
    x = torch.tensor([[[[1.0, 1.0], [3.0, -1.0]], [[0.0, 1.0], [0.25, 0.5]]]])  # image channel, opacity
    expected = torch.tensor([[[[1.0, 1.0], [0.75 + 1.5, -0.5]]]])  # image * a + 0.5 * bg * (1 - a)
    assert torch.equal(transparent.blend(x, 0), expected)
    assert torch.equal(transparent.initial(torch.zeros(2, 3, 2, 2))[:, 3], torch.full((2, 2, 2), 0.5))
    assert transparent.loss_weight(x, 0).item() == pytest.approx(1 - 0.4375 * 0.5)


def test_a_transparent_mei_becomes_opaque_and_bright_when_only_its_pixels_count():
    config = {**BASE, "transparency": True, "transparency_weight": 0.0,
              "postprocessing": {"path": "mei.legacy.ops.ClipRange", "kwargs": {"x_min": 0, "x_max": 1}}}
    mei, score, _ = gradient_ascent(None, PixelSum(), config, seed=0)
    assert mei.shape == (1, 2, 4, 4)  # the opacity channel is returned with the image
    assert torch.equal(mei[0, 0], torch.ones(4, 4)) and torch.equal(mei[0, 1], torch.ones(4, 4))
    assert score == 16.0  # sum of image * opacity at the optimum


def test_the_opacity_stays_in_0_1_and_the_score_is_the_response_to_the_blended_mei():
    image = torch.linspace(-1, 1, 16).reshape(1, 4, 4)
    config = {**BASE, "transparency": True, "transparency_weight": 0.5,
              "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": 30}},
              "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": 1.0}},
              "background": {"path": "mei.legacy.ops.NatImgBackground", "kwargs": {"images": image.tolist()}},
              "regularization": {"path": "mei.legacy.ops.RegTransparency", "kwargs": {"weight": 0.1}},
              "objectives": [{"path": "mei.objectives.EvaluationObjective", "kwargs": {"interval": 1}}]}
    mei, score, output = gradient_ascent(None, PixelSum(), config, seed=4)
    alpha = mei[0, 1]
    assert alpha.min() >= 0 and alpha.max() <= 1 and bool(((alpha == 0) | (alpha == 1)).any())  # clipped
    blended = mei[0, 0] * alpha + 0.5 * image[0] * (1 - alpha)
    assert score == pytest.approx(float(blended.sum()), rel=1e-5)
    assert len(output["mei.objectives.EvaluationObjective"]["values"]) == 30


def test_loss_weight_scales_the_step():
    x = torch.zeros(1, 3)
    mei = MEI(lambda v: v.sum(1), x, lambda params: torch.optim.SGD(params, lr=0.1),
              loss_weight=lambda v, i: torch.tensor(2.0))
    mei.step()
    assert torch.allclose(mei.current_input, torch.full((1, 3), 0.2))


def test_transparency_keys_are_checked_and_ignored_without_transparency():
    extra, rest = split_sinzlab_keys({**BASE, "transparency": False, "transparency_weight": 0.3})
    assert extra == {"transparency": False, "transparency_weight": 0.3} and "transparency" not in rest
    mei, _, _ = gradient_ascent(None, PixelSum(), {**BASE, "transparency": False, "transparency_weight": 0.3}, 1)
    assert mei.shape == (1, 1, 4, 4)
    with pytest.raises(ConfigError, match="background.kwargs.std"):
        split_sinzlab_keys({**BASE, "background": {"path": "mei.legacy.ops.WhiteNoiseBackground",
                                                   "kwargs": {"mean": 0, "std": -1}}})


def test_ring_centre_and_surround_blur_only_inside_their_masks():
    inner, outer = disc(1.5), disc(3.5)
    ones = torch.ones(1, 1, 9, 9)  # a blurred constant stays constant: the result is the mask itself
    ring = ops.GaussianBlurforRing(1.0, meis={"inner": inner, "outer": outer})(ones, 1)
    expected = outer[0, 1] - inner[0, 1]
    assert torch.allclose(ring[0, 0], expected, atol=1e-6)
    assert ring[0, 0, 4, 4] == 0 and ring[0, 0, 0, 0] == 0 and ring[0, 0, 4, 7] == pytest.approx(1.0)
    centre = ops.GaussianBlurforCenter(1.0, meis={"inner": inner})(ones, 1)
    surround = ops.GaussianBlurforSurround(1.0, meis={"inner": inner})(ones, 1)
    assert torch.allclose(centre[0, 0], inner[0, 1], atol=1e-6)
    assert torch.allclose(surround[0, 0], 1 - inner[0, 1], atol=1e-6)


def test_ring_ops_read_earlier_meis_from_the_registered_source(tmp_path):
    files = {"h_in": tmp_path / "inner.pth", "h_out": tmp_path / "outer.pth"}
    torch.save(disc(1.5), files["h_in"])
    torch.save(disc(3.5), files["h_out"])
    asked = []

    def source(restriction):
        asked.append(restriction)
        return str(files[restriction["ensemble_hash"]])

    key = {"src_method_fn": "mei.methods.gradient_ascent", "inner_ensemble_hash": "h_in",
           "outer_ensemble_hash": "h_out", "inner_method_hash": "m_in", "outer_method_hash": "m_out", "unit_id": 7}
    op = ops.GaussianBlurforRing(1.0, key=key, mask_thres_for_ring=0.5)
    with pytest.raises(ValueError, match="set_mei_source"):
        op(torch.ones(1, 1, 9, 9), 1)
    ops.set_mei_source(source)
    try:
        ring = op(torch.ones(1, 1, 9, 9), 1)
    finally:
        ops.set_mei_source(None)
    assert torch.allclose(ring[0, 0], disc(3.5)[0, 1] - disc(1.5)[0, 1], atol=1e-6)
    assert asked == [{"method_fn": "mei.methods.gradient_ascent", "ensemble_hash": "h_in", "method_hash": "m_in",
                      "unit_id": 7},
                     {"method_fn": "mei.methods.gradient_ascent", "ensemble_hash": "h_out", "method_hash": "m_out",
                      "unit_id": 7}]
    with pytest.raises(ValueError, match="needs the MEI table's key"):
        ops.GaussianBlurforCenter(1.0)(torch.ones(1, 1, 9, 9), 1)


def test_box_contrast_pixel_l2_equals_its_formula_on_a_hand_made_image():
    x = torch.tensor([[[[3.0, 0.0], [-2.0, 1.0]]]])
    penalty = ops.BoxContrastPixelL2(weight=0.1, upper=2.0, lower=-1.5, p=2, l2_weight=1, l1_weight=0.5)(x, 0)
    # outside [-1.5, 2]: (3 - 2)^2 + (-1.5 + 2)^2 = 1.25; Laplace (zero padded) = [[14, -4], [-12, 6]]:
    # mean of squares 98, halved 49; L1 = 6
    assert penalty.item() == pytest.approx(0.1 * 1.25 + 49.0 + 0.5 * 6.0)
    assert ops.BoxContrastPixelL2()(torch.zeros(1, 1, 3, 3), 0).item() == 0.0


def test_gaussian_blur_mei_only_leaves_the_opacity_channel():
    x = torch.rand(1, 2, 8, 8)
    blurred = ops.GaussianBlur(1.0, mei_only=True)(x, 1)
    assert torch.equal(blurred[:, 1], x[:, 1]) and torch.equal(blurred[:, :1], ops.GaussianBlur(1.0)(x[:, :1], 1))


def test_white_noise_background_is_seeded_and_peaks_at_2_12_times_strength():
    op = ops.WhiteNoiseBackground(mean=0.5, std=2.0, shape=[6, 5], strength=0.5)
    with rng.seeded([3]):
        first = op(torch.zeros(1), 0)
    with rng.seeded([3]):
        again = op(torch.zeros(1), 0)
    assert first.shape == (6, 5) and torch.equal(first, again)
    assert first.abs().max().item() == pytest.approx(1.06)


def test_natural_image_backgrounds_draw_dataset_images_at_the_given_norm(allow_tests_modules):
    background = ops.NatImgBackground("tests.test_sinzlab_transparency.images_dataset", "somewhere", norm=1.5,
                                      dataset_name="s1")
    with rng.seeded([0]):
        image = background(torch.zeros(1), 0)
    assert image.shape == (3, 4) and torch.linalg.vector_norm(image).item() == pytest.approx(1.5)
    assert len(background.images) == 5  # train (2 batches of 2) + test (1); no validation tier
    with pytest.raises(ValueError, match="needs a dataset function"):
        ops.NatImgBackground()(torch.zeros(1), 0)
    growing = ops.NatImgBackgroundHighNorm(images=background.images, start_norm=1.0, end_norm=3.0)
    assert torch.linalg.vector_norm(growing(torch.zeros(1), 500)).item() == pytest.approx(2.0)


def images_dataset(paths, **config):
    """A dataset builder: sessions of (image, response) batches; ``paths`` is handed through."""
    assert paths == "somewhere" and config["normalize"] is True
    batch = (torch.arange(24.0).reshape(2, 1, 3, 4) + 1, torch.zeros(2, 1))
    return {"train": {"s1": [batch, batch]}, "test": {"s1": [(batch[0][:1], batch[1][:1])]}}


def test_a_ring_mei_is_zero_outside_its_ring_when_the_method_table_gives_the_key(tmp_path):
    from mei import mixins
    from mei.pipeline.generation import validate_method

    torch.save(disc(1.5), tmp_path / "inner.pth")
    torch.save(disc(3.5), tmp_path / "outer.pth")
    ring = {"path": "mei.legacy.ops.GaussianBlurforRing", "kwargs": {"sigma": 0.5, "key": None}}
    config = {**BASE, "shape": [1, 1, 9, 9], "precondition": ring, "postprocessing": ring,
              "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": 5}}}
    validate_method("mei.methods.gradient_ascent", config)  # the key is filled in when the MEI is made
    key = {"src_method_fn": "mei.methods.gradient_ascent", "inner_ensemble_hash": "inner",
           "outer_ensemble_hash": "outer", "inner_method_hash": "m", "outer_method_hash": "m", "unit_id": 7}
    mixins.MEIMethodMixin().insert_key_in_ops(method_config=config, key=key)
    assert config["precondition"]["kwargs"]["key"] == key and config["postprocessing"]["kwargs"]["key"] == key
    ops.set_mei_source(lambda restriction: str(tmp_path / f"{restriction['ensemble_hash']}.pth"))
    try:
        mei, score, _ = gradient_ascent(None, PixelSum(), config, seed=2)
    finally:
        ops.set_mei_source(None)
    ring_mask = (disc(3.5)[0, 1] - disc(1.5)[0, 1]).bool()
    assert torch.equal(mei[0, 0][~ring_mask], torch.zeros(int((~ring_mask).sum())))  # inner disc and outside
    assert bool((mei[0, 0][ring_mask] != 0).all()) and score == pytest.approx(float(mei.sum()), rel=1e-5)
