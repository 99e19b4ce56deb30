"""Objectives pick exactly the activation they name; compositions are the arithmetic of their parts."""

import operator

import pytest
import torch

from mei.optim import loss as L
from mei.optim.hooks import ModuleOutputs, ObjectiveModel, collect_activations, objective_model

from ._models import Small


@pytest.fixture
def model():
    return Small()


@pytest.fixture
def acts(model):
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    return collect_activations(model, ["features.1", "features.3", "fc"], x)


def test_collect_activations_one_forward_every_layer(model):
    calls = []
    model.register_forward_pre_hook(lambda m, a: calls.append(1))
    x = torch.randn(2, 3, 8, 8)
    acts = collect_activations(model, [model.features[1], "features.3", "fc"], x)
    assert len(calls) == 1
    assert torch.equal(acts["features.3"], model.features(x))
    assert torch.equal(acts[model.features[3]], acts["features.3"])
    assert torch.equal(acts["fc"], model(x))
    assert torch.equal(acts["features.1"], torch.relu(model.features[0](x)))
    # hooks are gone afterwards
    assert not any(m._forward_hooks for m in model.modules())


def test_hooks_removed_when_forward_fails(model):
    with pytest.raises(RuntimeError):
        collect_activations(model, ["features.3"], torch.randn(1, 5, 8, 8))  # wrong channel count
    assert not any(m._forward_hooks for m in model.modules())


def test_unknown_name_lists_modules(model):
    with pytest.raises(KeyError, match="no module named 'features.9'.*features.0"):
        collect_activations(model, ["features.9"], torch.randn(1, 3, 8, 8))


def test_each_objective_picks_its_activation(acts):
    a3 = acts["features.3"]
    assert torch.allclose(L.ChannelActivation("features.3", 2)(acts), a3[:, 2].mean(dim=(1, 2)))
    assert torch.allclose(L.NeuronActivation("features.3", 5)(acts), a3[:, 5, 4, 4])
    assert torch.allclose(L.NeuronActivation("features.3", 1, x=1, y=6)(acts), a3[:, 1, 6, 1])
    assert torch.allclose(L.LayerActivation("features.1")(acts), acts["features.1"].mean(dim=(1, 2, 3)))
    assert torch.allclose(L.DeepDream("features.3")(acts), (a3**2).mean(dim=(1, 2, 3)))
    assert torch.allclose(L.ChannelActivation("fc", 4)(acts), acts["fc"][:, 4])
    assert torch.allclose(L.NeuronActivation("fc", 3)(acts), acts["fc"][:, 3])
    assert torch.allclose(L.L2("features.3", constant=1.0)(acts),
                          torch.sqrt(((a3 - 1) ** 2).sum(dim=(1, 2, 3)) + 1e-6))
    tv = (a3.diff(dim=-1).abs().sum(dim=(1, 2, 3)) + a3.diff(dim=-2).abs().sum(dim=(1, 2, 3)))
    assert torch.allclose(L.TotalVariation("features.3")(acts), tv)
    vec = torch.arange(6.0)
    assert torch.allclose(L.Direction("features.3", vec)(acts), (a3 * vec.view(1, 6, 1, 1)).sum(1).mean(dim=(1, 2)))


def test_batch_index_zeroes_other_images(acts):
    full = L.ChannelActivation("features.3", 2)(acts)
    one = L.ChannelActivation("features.3", 2, batch_index=1)(acts)
    assert torch.equal(one, torch.stack([torch.tensor(0.0), full[1], torch.tensor(0.0)]))
    two = L.NeuronActivation("features.3", 0, batch_index=[0, 2])(acts)
    assert two[1] == 0 and two[0] != 0 and two[2] != 0
    with pytest.raises(IndexError, match="batch_index 3"):
        L.LayerActivation("fc", batch_index=3)(acts)


def test_composition_is_arithmetic_of_parts(acts):
    a, b = L.ChannelActivation("features.3", 2), L.DeepDream("features.1")
    va, vb = a(acts), b(acts)
    cases = {
        a + b: va + vb, a - b: va - vb, a * b: va * vb, a / b: va / vb, 2 * a: 2 * va, a + 1.5: va + 1.5,
        3 - a: 3 - va, -a: -va, a / 4: va / 4, 1 / b: 1 / vb, a**2: va**2, abs(a - b): (va - vb).abs(),
        (a + b) * 0.5 - a / b: (va + vb) * 0.5 - va / vb,
        L.sum_loss_list([a, b, a]): va + vb + va,
    }
    for composed, expected in cases.items():
        assert torch.allclose(composed(acts), expected), repr(composed)
    combined = a
    combined += b
    assert torch.allclose(combined(acts), va + vb)


def test_composition_collects_targets_once_and_prints(model):
    a = L.ChannelActivation(model.features[3], 2)
    b = L.NeuronActivation("fc", 1, batch_index=0)
    composed = 2 * a - b + a
    assert composed.targets == [model.features[3], "fc"]
    assert repr(composed) == ("(((2 * ChannelActivation(ReLU, 2)) - NeuronActivation(fc, 1, batch_index=0)) + "
                              "ChannelActivation(ReLU, 2))")
    with pytest.raises(TypeError, match="objectives combine"):
        a + "x"


def test_combine_is_the_one_helper(acts):
    a = L.ChannelActivation("features.3", 0)
    assert torch.allclose(L.combine(operator.mul, a, a, "*")(acts), a(acts) ** 2)


def test_diversity_prefers_different_images(model):
    same = torch.randn(1, 3, 8, 8).repeat(2, 1, 1, 1)
    different = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    div = L.Diversity("features.1")
    v_same = div(collect_activations(model, div.targets, same))
    v_diff = div(collect_activations(model, div.targets, different))
    assert torch.allclose(v_same, torch.tensor([-1.0, -1.0]))
    assert (v_diff > v_same).all()
    with pytest.raises(ValueError, match="at least two images"):
        div(collect_activations(model, div.targets, same[:1]))


def test_objective_model_returns_one_value_per_image(model):
    x = torch.randn(4, 3, 8, 8)
    func = ObjectiveModel(model, L.ChannelActivation("fc", 2))
    assert torch.allclose(func(x), model(x)[:, 2])
    assert not any(m._forward_hooks for m in model.modules())
    spec = {"path": "mei.optim.loss.NeuronActivation", "kwargs": {"target": "features.3", "channel_index": 1}}
    built = objective_model(model, spec)
    assert torch.allclose(built(x), model.features(x)[:, 1, 4, 4])


def test_module_outputs_missing_target(model):
    outputs = ModuleOutputs(model, {})
    with pytest.raises(KeyError, match="no activation was collected"):
        outputs["fc"]


def test_input_target_reads_the_model_input(model):
    x = torch.randn(2, 3, 8, 8)
    acts = collect_activations(model, ["input", "fc"], x)
    assert torch.equal(acts["input"], x)
    tv = L.TotalVariation("input")
    expected = x.diff(dim=-1).abs().sum(dim=(1, 2, 3)) + x.diff(dim=-2).abs().sum(dim=(1, 2, 3))
    assert torch.allclose(tv(acts), expected)
    assert torch.allclose(ObjectiveModel(model, L.ChannelActivation("fc", 0) - 0.1 * tv)(x),
                          model(x)[:, 0] - 0.1 * expected)
    assert not any(m._forward_pre_hooks for m in model.modules())
    with pytest.raises(KeyError, match="input was not collected"):
        ModuleOutputs(model)["input"]


def test_a_submodule_called_input_wins_over_the_model_input():
    net = torch.nn.Sequential()
    net.add_module("input", torch.nn.Linear(2, 2))
    x = torch.randn(1, 2)
    assert torch.equal(collect_activations(net, ["input"], x)["input"], net(x))


def test_reductions_over_positions(acts):
    a3 = acts["features.3"]
    assert torch.allclose(L.ChannelActivation("features.3", 4, reduction="sum")(acts), a3[:, 4].sum(dim=(1, 2)))
    assert torch.allclose(L.ChannelActivation("features.3", 4, reduction="max")(acts), a3[:, 4].amax(dim=(1, 2)))
    assert torch.allclose(L.LayerActivation("features.3", reduction="sum")(acts), a3.sum(dim=(1, 2, 3)))
    assert torch.allclose(L.DeepDream("features.3", reduction="max")(acts), (a3**2).amax(dim=(1, 2, 3)))
    with pytest.raises(ValueError, match="reduction must be one of"):
        L.ChannelActivation("features.3", 4, reduction="median")
