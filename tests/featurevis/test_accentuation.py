"""Feature accentuation on a linear feature: closed-form answers for the bound and for the penalty."""

import pytest
import torch

from mei.featurevis import accentuate
from mei.transforms import Jitter, RandomAffine
from tests.featurevis.models import ChannelMeanFeature, LinearFeature

SHAPE = (3, 8, 8)


def seed_image():
    return torch.rand((1, *SHAPE), generator=torch.Generator().manual_seed(1))


def cosine(a, b):
    return float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))


def linear_run(layer, **kwargs):
    model = LinearFeature(SHAPE)
    image = seed_image()
    out = accentuate(model, image, "readout:0", layer=layer, param="pixel", squash="none", decorrelate=False,
                     optimizer=torch.optim.SGD, **kwargs)
    return model, image, out


def test_with_a_bound_in_pixel_space_the_image_moves_along_the_feature_direction_and_stays_within_it():
    model, image, out = linear_run("input", penalty=0.0, bound=0.05, steps=40, lr=0.05)
    feature = (model.hidden.weight.T @ model.readout.weight[0]).reshape(1, *SHAPE)  # d readout / d image
    delta = out.images - image
    assert cosine(delta, feature) > 0.999
    assert float(out.distance.max()) <= 0.05 * (1 + 1e-5)  # at every step
    assert float(out.distance[-1]) == pytest.approx(0.05, rel=1e-3)  # the optimum lies on the bound
    assert out.history[-1, 0] > out.history[0, 0]


def test_with_a_bound_in_a_layer_the_image_moves_along_the_feature_direction_and_the_layer_stays_within_it():
    model, image, out = linear_run("hidden", penalty=0.0, bound=0.1, steps=40, lr=0.5)
    feature = (model.hidden.weight.T @ model.readout.weight[0]).reshape(1, *SHAPE)
    assert cosine(out.images - image, feature) > 0.999
    assert float(out.distance.max()) <= 0.1 * (1 + 1e-5)
    assert float(out.distance[-1]) == pytest.approx(0.1, rel=1e-3)
    moved = model.hidden(out.images.flatten(1)) - model.hidden(image.flatten(1))
    assert float(moved.pow(2).mean().sqrt()) == pytest.approx(float(out.distance[-1]), rel=1e-5)


def test_the_penalty_in_a_layer_lands_on_its_closed_form_optimum():
    # maximize v . u - penalty * mean(u^2) over the layer's m units u = A d: u* = m v / (2 penalty)
    model, image, out = linear_run("hidden", penalty=4.0, steps=150, lr=2.0)
    moved = model.hidden(out.images.flatten(1)) - model.hidden(image.flatten(1))
    m = moved.shape[1]
    torch.testing.assert_close(moved[0], m * model.readout.weight[0] / (2 * 4.0), atol=2e-3, rtol=2e-3)


def test_the_penalty_alone_lands_on_its_closed_form_optimum():
    # maximize w . d - penalty * mean(d^2) over the n pixels of the image: d* = n w / (2 penalty)
    model, image, out = linear_run("input", penalty=2.0, steps=80, lr=60.0)
    feature = (model.hidden.weight.T @ model.readout.weight[0]).reshape(1, *SHAPE)
    n = feature.numel()
    torch.testing.assert_close(out.images - image, n * feature / (2 * 2.0), atol=1e-3, rtol=1e-3)


def test_accentuation_starts_from_the_seed_image_with_the_default_chain():
    model = LinearFeature(SHAPE)
    image = seed_image().clamp(0.05, 0.95)
    out = accentuate(model, image, "readout:0", layer="hidden", steps=1, lr=1e-6)
    torch.testing.assert_close(out.images, image, atol=1e-3, rtol=0)


def test_bad_arguments_are_refused():
    model = LinearFeature(SHAPE)
    with pytest.raises(ValueError, match="bound > 0"):
        accentuate(model, seed_image(), "readout:0", layer="hidden", bound=0)
    with pytest.raises(KeyError, match="no module named 'nope'"):
        accentuate(model, seed_image(), "readout:0", layer="nope")


def invariant_run(layer, **kwargs):
    model = ChannelMeanFeature(SHAPE[0])
    image = seed_image()
    out = accentuate(model, image, "readout:0", layer=layer, param="pixel", squash="none", decorrelate=False,
                     optimizer=torch.optim.SGD, transforms=[Jitter(3)], views=3, **kwargs)
    return model, image, out


def test_with_transforms_the_penalty_alone_still_lands_on_its_closed_form_optimum():
    # the feature and the pixel distance are invariant under the circular jitter only if the seed image is
    # jittered with the image: then maximize w . d - penalty * mean(d^2) gives d* = n w / (2 penalty) as before
    model, image, out = invariant_run("input", penalty=2.0, steps=80, lr=60.0)
    channels, height, width = SHAPE
    feature = (model.readout.weight[0] / (height * width)).view(1, channels, 1, 1).expand(1, *SHAPE)
    torch.testing.assert_close(out.images - image, feature.numel() * feature / (2 * 2.0), atol=1e-3, rtol=1e-3)
    assert out.history.shape == (80, 1) and out.distance.shape == (80, 1)


def test_with_transforms_and_views_the_bound_in_a_layer_is_respected_and_reached_along_the_feature():
    model, image, out = invariant_run("hidden", penalty=0.0, bound=0.1, steps=40, lr=5.0)
    channels, height, width = SHAPE
    feature = model.readout.weight[0].view(1, channels, 1, 1).expand(1, *SHAPE)
    assert cosine(out.images - image, feature) > 0.999
    assert float(out.distance.max()) <= 0.1 * (1 + 1e-5)  # at every step
    assert float(out.distance[-1]) == pytest.approx(0.1, rel=1e-3)
    assert out.history[-1, 0] > out.history[0, 0]


def test_transforms_take_effect_and_a_seeded_run_is_reproducible():
    model, image = LinearFeature(SHAPE), seed_image()

    def run(**kwargs):
        return accentuate(model, image, "readout:0", layer="hidden", penalty=1.0, steps=6, lr=0.05, **kwargs)

    still = run()
    moved = run(transforms=[RandomAffine(0.9, 1.1, 10.0, max_shift=2)], views=2, seed=4)
    again = run(transforms=[RandomAffine(0.9, 1.1, 10.0, max_shift=2)], views=2, seed=4)
    other = run(transforms=[RandomAffine(0.9, 1.1, 10.0, max_shift=2)], views=2, seed=5)
    assert torch.equal(moved.images, again.images) and torch.equal(moved.history, again.history)
    assert (moved.images - still.images).abs().max() > 1e-4 and (moved.images - other.images).abs().max() > 1e-4
