"""Contrastive, group and inner-neuron objectives: exact values, and what their MEIs do to the units."""

import math

import pytest
import torch
from torch import nn

from mei.methods import gradient_ascent
from mei.modules import ConstrainedOutputModel
from mei.reducers import MeanOverTime
from mei.targets.contrastive import ContrastiveObjective, GroupObjective, UnitResponses
from mei.targets.layers import LayerObjective, capture
from mei.targets.video import correlation, video_config

from .models import SHAPE, LinearFilterModel, TinyConvNet, session_filters

FILTERS = session_filters()["session-a"]  # unit 1 overlaps strongly with units 0 and 2 (correlation 0.65)


class Fixed(nn.Module):
    """A "model" that returns a fixed response tensor whatever the input (times the input's mean + 1)."""

    def __init__(self, response):
        super().__init__()
        self.response = response

    def forward(self, x):
        return self.response * (1 + 0 * x.mean())


def test_contrastive_values_difference_temperature_ratio():
    response = torch.tensor([[3.0, 1.0, 2.0, 6.0]])
    model = Fixed(response)
    x = torch.zeros(1, 1)
    assert ContrastiveObjective(model, 0)(x).item() == pytest.approx(3 - 3)
    assert ContrastiveObjective(model, 0, others=[1, 2])(x).item() == pytest.approx(1.5)
    assert ContrastiveObjective(model, 0, others=[1, 2], weight=2)(x).item() == pytest.approx(0.0)
    assert ContrastiveObjective(model, 3, others=[1, 2], ratio=True, eps=0)(x).item() == pytest.approx(4.0)
    soft = ContrastiveObjective(model, 0, others=[1, 3], temperature=0.5)(x).item()
    assert soft == pytest.approx(3 - 0.5 * math.log((math.exp(2) + math.exp(12)) / 2))
    hot = ContrastiveObjective(model, 0, others=[1, 3], temperature=1e4)(x).item()
    cold = ContrastiveObjective(model, 0, others=[1, 3], temperature=1e-3)(x).item()
    assert hot == pytest.approx(3 - 3.5, abs=1e-3) and cold == pytest.approx(3 - 6, abs=1e-2)  # mean .. max


def test_contrastive_and_group_validation_and_layouts():
    with pytest.raises(ValueError, match="must not contain the unit"):
        ContrastiveObjective(Fixed(None), 1, others=[1, 2])
    with pytest.raises(ValueError, match="either a temperature or ratio"):
        ContrastiveObjective(Fixed(None), 1, temperature=1.0, ratio=True)
    with pytest.raises(ValueError, match="2 weights given for 3 units"):
        GroupObjective(Fixed(None), [0, 1, 2], weights=[1, 1])
    with pytest.raises(ValueError, match="unit_dim 0"):
        UnitResponses(Fixed(None), unit_dim=0)
    over_time = torch.arange(24.0).view(1, 4, 6)  # (images, time, units) layout
    group = GroupObjective(Fixed(over_time), [1, 4], weights=[1.0, -1.0], reducer=MeanOverTime(), unit_dim=-1)
    assert group(torch.zeros(1, 1)).item() == pytest.approx(over_time[0, :, 1].mean() - over_time[0, :, 4].mean())
    with pytest.raises(ValueError, match="give a reducer"):
        GroupObjective(Fixed(over_time), [1], unit_dim=-1)(torch.zeros(1, 1))


def responses_of(mei):
    return LinearFilterModel(FILTERS)(mei).mean(dim=-1)[0]  # (units,)


def contrast_of(mei, unit=1):
    r = responses_of(mei)
    others = torch.cat([r[:unit], r[unit + 1:]])
    return (r[unit] - others.mean()).item()


def test_a_contrastive_mei_drives_its_unit_relative_to_the_others_more_than_the_plain_mei():
    config = video_config(shape=list(SHAPE), steps=40, lr=0.5, norm=5.0)
    model = LinearFilterModel(FILTERS)
    plain, _, _ = gradient_ascent(None, ConstrainedOutputModel(model, 1, target_fn=MeanOverTime()), config, 2)
    contrastive, _, _ = gradient_ascent(None, ContrastiveObjective(model, 1, reducer=MeanOverTime()), config, 2)
    assert responses_of(plain)[1] > responses_of(contrastive)[1]  # the plain MEI drives the unit most ...
    assert contrast_of(contrastive) > 1.5 * contrast_of(plain)  # ... but the contrastive one drives it apart
    direction = FILTERS[1] - FILTERS[[0, 2]].mean(dim=0)  # the known optimum of a linear contrast
    assert correlation(contrastive, direction) >= 0.99
    small_steps = video_config(shape=list(SHAPE), steps=200, lr=0.05, norm=5.0)  # the soft maximum needs them
    softmax, _, _ = gradient_ascent(
        None, ContrastiveObjective(model, 1, temperature=2.0, reducer=MeanOverTime()), small_steps, 2)

    def margin(mei):  # the unit's response above the strongest other
        r = responses_of(mei)
        return (r[1] - r[[0, 2]].max()).item()

    assert margin(softmax) > margin(contrastive) > margin(plain) + 5


def test_a_group_mei_drives_the_set_and_equals_the_mean_filter_for_linear_units():
    config = video_config(shape=list(SHAPE), steps=40, lr=0.5, norm=5.0)
    group, _, _ = gradient_ascent(None, GroupObjective(LinearFilterModel(FILTERS), [0, 2], reducer=MeanOverTime()),
                                  config, 4)
    assert correlation(group, FILTERS[[0, 2]].mean(dim=0)) >= 0.99
    r = responses_of(group)
    assert r[0] > 0 and r[2] > 0


def test_layer_objective_picks_the_named_activation_and_removes_its_hook():
    net = TinyConvNet()
    x = torch.randn(2, *SHAPE[1:])
    inner = net.core[0](x)  # (2, 4, T, H, W)
    assert torch.allclose(LayerObjective(net, "core.0", channel=2)(x), inner[:, 2].flatten(1).mean(1), atol=1e-6)
    point = LayerObjective(net, "core.0", channel=1, position=[3, 4, 5])(x)
    assert torch.allclose(point, inner[:, 1, 3, 4, 5], atol=1e-6)
    assert torch.allclose(LayerObjective(net, "core.0")(x), inner.flatten(1).mean(1), atol=1e-6)
    assert all(not m._forward_hooks for m in net.modules())
    assert torch.equal(capture(net, "core.1", x), torch.nn.functional.elu(inner))
    with pytest.raises(ValueError, match="no module named .core.9."):
        LayerObjective(net, "core.9")(x)
    assert all(not m._forward_hooks for m in net.modules())


def test_an_inner_neuron_mei_raises_that_neurons_activation():
    net = TinyConvNet()
    objective = LayerObjective(net, "core.2", channel=1, position=[4])
    config = video_config(shape=list(SHAPE), steps=20, lr=0.5, norm=5.0)
    mei, score, _ = gradient_ascent(None, objective, config, 5)
    with torch.no_grad():
        noise = torch.randn(8, *SHAPE[1:])
        noise = noise / noise.flatten(1).norm(dim=1).view(-1, 1, 1, 1, 1) * 5.0
        assert score > objective(noise).max().item()
