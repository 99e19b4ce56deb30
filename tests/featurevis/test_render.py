"""The one-liner render_vis, target strings, and the CPPN parameterization."""

import math

import pytest
import torch
from torch import nn

from mei.featurevis import CPPNImage, TargetObjective, parse_target, render_vis
from mei.featurevis.targets import Term
from tests.featurevis.models import ORIENTATIONS, GratingNet


def test_target_strings_parse_into_weighted_terms():
    assert parse_target("conv2:5") == [Term(1.0, "conv2", 5)]
    assert parse_target("features.3") == [Term(1.0, "features.3")]
    assert parse_target("0:2:center") == [Term(1.0, "0", 2, "center")]
    assert parse_target(" mixed4a:465 - 0.5*mixed4a:470 + 2e-1 * fc:1:3:4") == [
        Term(1.0, "mixed4a", 465), Term(-0.5, "mixed4a", 470), Term(0.2, "fc", 1, (3, 4))]
    for bad in ["", "conv:x", "a:1 b:2", "conv:1:2", "2 * "]:
        with pytest.raises(ValueError, match="target"):
            parse_target(bad)


def test_target_values_are_the_activation_arithmetic_per_image():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    x = torch.rand(2, 3, 8, 8)
    conv = model[0](x)
    with torch.no_grad():
        value = TargetObjective(model, "0:1 - 0.5*0:2:center + 3:2 + 1")(x)
        per_image = TargetObjective(model, ["0:1:0:5", "3"])(torch.cat([x, x]))  # 2 images x 2 views
    expected = (conv[:, 1].mean(dim=(1, 2)) - 0.5 * conv[:, 2, 3, 3] + model(x)[:, 2]
                + model[1](conv).mean(dim=(1, 2, 3)))
    torch.testing.assert_close(value, expected)
    expected = torch.stack([conv[0, 1, 0, 5], model(x)[1].mean()])
    torch.testing.assert_close(per_image, torch.cat([expected, expected]))
    with pytest.raises(KeyError, match="no module named 'conv9'"):
        TargetObjective(model, "conv9:1")


def centre_correlation(image, filters, k, shift=2):
    """Correlation of the grey patch of ``image`` at the centre with filter ``k`` (both mean-removed), at the best
    offset within ``shift`` pixels (the default jitter moves the pattern by up to 2 pixels at this size)."""
    size = filters.shape[-1]
    top = (image.shape[-1] - size) // 2
    grey, kernel = image.mean(dim=0), filters[k, 0] - filters[k, 0].mean()
    best = -1.0
    for dy in range(-shift, shift + 1):
        for dx in range(-shift, shift + 1):
            patch = grey[top + dy:top + dy + size, top + dx:top + dx + size]
            patch = patch - patch.mean()
            best = max(best, float((patch * kernel).sum() / (patch.norm() * kernel.norm())))
    return best


@pytest.mark.slow
def test_the_default_one_liner_finds_the_gratings_of_a_grating_layer():
    model = GratingNet(kernel=9)
    filters = model.conv.weight.detach()
    out = render_vis(model, [f"conv:{k}:center" for k in range(ORIENTATIONS)], size=32, steps=48, progress=False)
    assert out.images.shape == (ORIENTATIONS, 3, 32, 32) and out.history.shape == (48, ORIENTATIONS)
    assert bool((out.history[-1] > out.history[0]).all())
    for k in range(ORIENTATIONS):
        own = centre_correlation(out.images[k], filters, k)
        others = [centre_correlation(out.images[k], filters, j) for j in range(ORIENTATIONS) if j != k]
        assert own > 0.5 and own > max(others) + 0.2, (k, own, others)


def test_render_vis_is_seeded_and_leaves_the_global_rng_alone():
    model = GratingNet(kernel=5)
    state = torch.random.get_rng_state()
    first = render_vis(model, "conv:1", size=12, steps=3, progress=False, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    again = render_vis(model, "conv:1", size=12, steps=3, progress=False, seed=4)
    other = render_vis(model, "conv:1", size=12, steps=3, progress=False, seed=5)
    assert torch.equal(first.images, again.images) and torch.equal(first.history, again.history)
    assert not torch.equal(first.images, other.images)


@pytest.mark.parametrize("param", ["fft", "maco", "pixel", "cppn"])
def test_every_parameterization_raises_the_objective(param):
    model = GratingNet(kernel=5)
    out = render_vis(model, "conv:2:center", param=param, size=16, steps=12, views=2, progress=False)
    assert out.images.shape == (1, 3, 16, 16) and 0 <= out.images.min() and out.images.max() <= 1
    assert out.history[-1, 0] > out.history[0, 0]
    assert (out.transparency is not None) == (param == "maco")


def test_the_cppn_starts_grey_and_renders_one_network_per_image():
    image = CPPNImage((10, 14), batch=3, num_hidden_channels=6, num_layers=3)
    assert image.param.shape == (3, 3 * 6 + 6 + 2 * (12 * 6 + 6) + 12 * 3 + 3)
    torch.testing.assert_close(image(), torch.full((3, 3, 10, 14), 0.5))
    with torch.no_grad():
        image.param.normal_()
        rendered = image()
    single = CPPNImage((10, 14), batch=1, num_hidden_channels=6, num_layers=3)
    with torch.no_grad():
        single.param.copy_(image.param[1:2])
        torch.testing.assert_close(single(), rendered[1:2])


def test_bad_calls_say_what_is_wrong():
    model = GratingNet(kernel=5)
    with pytest.raises(ValueError, match="param must be one of"):
        render_vis(model, "conv:1", param="gan", steps=1, progress=False)
    with pytest.raises(ValueError, match="2 targets for a batch of 3"):
        render_vis(model, ["conv:1", "conv:2"], batch=3, steps=1, progress=False)
    with pytest.raises(IndexError, match="channel 9"):
        render_vis(model, "conv:9", size=8, steps=1, progress=False)
    assert math.isfinite(float(render_vis(model, "conv:1", size=8, steps=1, progress=True).history[0, 0]))
