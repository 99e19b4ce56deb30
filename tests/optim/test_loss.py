"""Objectives pick exactly the activation they name; compositions are the arithmetic of their parts."""

import operator

import pytest
import torch
from torch import nn

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
    assert torch.allclose(L.ChannelActivation("features.3", 2).per_image(acts), a3[:, 2].mean(dim=(1, 2)))
    assert torch.allclose(L.NeuronActivation("features.3", 5).per_image(acts), a3[:, 5, 4, 4])
    assert torch.allclose(L.NeuronActivation("features.3", 1, x=1, y=6).per_image(acts), a3[:, 1, 6, 1])
    assert torch.allclose(L.LayerActivation("features.1").per_image(acts), acts["features.1"].mean(dim=(1, 2, 3)))
    assert torch.allclose(L.DeepDream("features.3").per_image(acts), (a3**2).mean(dim=(1, 2, 3)))
    assert torch.allclose(L.ChannelActivation("fc", 4).per_image(acts), acts["fc"][:, 4])
    assert torch.allclose(L.NeuronActivation("fc", 3).per_image(acts), acts["fc"][:, 3])
    assert torch.allclose(L.L2("features.3", constant=1.0).per_image(acts),
                          torch.sqrt(((a3 - 1) ** 2).sum(dim=(1, 2, 3)) + 1e-6))
    tv = (a3.diff(dim=-1).abs().sum(dim=(1, 2, 3)) + a3.diff(dim=-2).abs().sum(dim=(1, 2, 3)))
    assert torch.allclose(L.TotalVariation("features.3").per_image(acts), tv)
    vec = torch.arange(6.0)
    assert torch.allclose(L.Direction("features.3", vec).per_image(acts),
                          (a3 * vec.view(1, 6, 1, 1)).sum(1).mean(dim=(1, 2)))


def test_batch_index_zeroes_other_images(acts):
    full = L.ChannelActivation("features.3", 2).per_image(acts)
    one = L.ChannelActivation("features.3", 2, batch_index=1).per_image(acts)
    assert torch.equal(one, torch.stack([torch.tensor(0.0), full[1], torch.tensor(0.0)]))
    two = L.NeuronActivation("features.3", 0, batch_index=[0, 2]).per_image(acts)
    assert two[1] == 0 and two[0] != 0 and two[2] != 0
    with pytest.raises(IndexError, match="batch_index 3"):
        L.LayerActivation("fc", batch_index=3).per_image(acts)


def test_composition_is_arithmetic_of_parts(acts):
    a, b = L.ChannelActivation("features.3", 2), L.DeepDream("features.1")
    va, vb = a.per_image(acts), b.per_image(acts)
    cases = {
        a + b: va + vb, a - b: va - vb, a * b: va * vb, a / b: va / vb, 2 * a: 2 * va, a + 1.5: va + 1.5,
        3 - a: 3 - va, -a: -va, a / 4: va / 4, 1 / b: 1 / vb, a**2: va**2, abs(a - b): (va - vb).abs(),
        (a + b) * 0.5 - a / b: (va + vb) * 0.5 - va / vb,
        L.sum_loss_list([a, b, a]): va + vb + va,
    }
    for composed, expected in cases.items():
        assert torch.allclose(composed.per_image(acts), expected), repr(composed)
    combined = a
    combined += b
    assert torch.allclose(combined.per_image(acts), va + vb)


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
    assert torch.allclose(L.combine(operator.mul, a, a, "*").per_image(acts), a.per_image(acts) ** 2)


def test_diversity_prefers_different_images(model):
    same = torch.randn(1, 3, 8, 8).repeat(2, 1, 1, 1)
    different = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    div = L.Diversity("features.1")
    v_same = div.per_image(collect_activations(model, div.targets, same))
    v_diff = div.per_image(collect_activations(model, div.targets, different))
    assert torch.allclose(v_same, torch.tensor([-1.0, -1.0]))
    assert (v_diff > v_same).all()
    with pytest.raises(ValueError, match="at least two images"):
        div.per_image(collect_activations(model, div.targets, same[:1]))


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
    assert torch.allclose(tv.per_image(acts), expected)
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
    channel = L.ChannelActivation
    assert torch.allclose(channel("features.3", 4, reduction="sum").per_image(acts), a3[:, 4].sum(dim=(1, 2)))
    assert torch.allclose(channel("features.3", 4, reduction="max").per_image(acts), a3[:, 4].amax(dim=(1, 2)))
    assert torch.allclose(L.LayerActivation("features.3", reduction="sum").per_image(acts), a3.sum(dim=(1, 2, 3)))
    assert torch.allclose(L.DeepDream("features.3", reduction="max").per_image(acts), (a3**2).amax(dim=(1, 2, 3)))
    with pytest.raises(ValueError, match="reduction must be one of"):
        L.ChannelActivation("features.3", 4, reduction="median")


# ----------------------------------------------- L1, TensorDirection, ActivationInterpolation, Alignment
def test_l1_is_the_sum_of_absolute_differences(acts):
    a = acts["features.3"]
    torch.testing.assert_close(L.L1("features.3").per_image(acts), a.abs().flatten(1).sum(1))
    torch.testing.assert_close(L.L1("features.3", constant=0.5).per_image(acts),
                               (a - 0.5).abs().flatten(1).sum(1))


def test_tensor_direction_dots_a_patch_with_the_direction(acts):
    a = acts["features.3"]  # (3, 6, 8, 8)
    vec = torch.randn(6, 3, 2, generator=torch.Generator().manual_seed(3))
    centre = a[:, :, 2:5, 3:5]  # captum's centring: top-left corner ((8 - 3) // 2, (8 - 2) // 2)
    torch.testing.assert_close(L.TensorDirection("features.3", vec).per_image(acts), (centre * vec).flatten(1).sum(1))
    corner = a[:, :, 0:3, 5:7]
    torch.testing.assert_close(L.TensorDirection("features.3", vec[None], x=6, y=1).per_image(acts),
                               (corner * vec).flatten(1).sum(1))
    dot = (centre * vec).flatten(1).sum(1)
    cos = dot / (centre.flatten(1).norm(dim=1) * vec.norm())
    torch.testing.assert_close(L.TensorDirection("features.3", vec, cossim_pow=3).per_image(acts),
                               dot * cos.clamp(min=0.1) ** 3)


def test_tensor_direction_checks_shapes(acts):
    with pytest.raises(ValueError, match=r"vec must be \(channels, h, w\), got shape \(6, 3\)"):
        L.TensorDirection("features.3", torch.ones(6, 3))
    with pytest.raises(ValueError, match=r"vec of shape \(5, 2, 2\) does not fit the layer's \(6, 8, 8\)"):
        L.TensorDirection("features.3", torch.ones(5, 2, 2)).per_image(acts)
    with pytest.raises(IndexError, match=r"a 3 x 3 patch at \(y=0, x=None\) leaves the 8 x 8 layer"):
        L.TensorDirection("features.3", torch.ones(6, 3, 3), y=0).per_image(acts)


def test_activation_interpolation_weights_the_two_channels_across_the_batch(acts):
    first = acts["features.1"][:, 2].flatten(1).mean(1)
    second = acts["features.3"][:, 5].flatten(1).mean(1)
    t = torch.tensor([0.0, 0.5, 1.0])
    objective = L.ActivationInterpolation("features.1", 2, "features.3", 5)
    torch.testing.assert_close(objective.per_image(acts), (1 - t) * first + t * second)
    assert repr(objective) == "ActivationInterpolation(features.1, features.3, 2, 5)"
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    single = collect_activations(Small(), ["features.1", "features.3"], x)
    # one image: t = 0
    torch.testing.assert_close(objective.per_image(single), single["features.1"][:, 2].flatten(1).mean(1))


def test_alignment_sums_to_the_decayed_neighbour_differences():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(6, 3, 8, 8, generator=gen)
    acts = collect_activations(Small(), "features.3", x)
    flat = acts["features.3"].flatten(1)
    expected = 0.0
    for d in range(1, 5):
        for i in range(6 - d):
            expected = expected - ((flat[i] - flat[i + d]) ** 2).mean() / 3.0**d
    values = L.Alignment("features.3", decay_ratio=3.0).per_image(acts)
    assert values.shape == (6,)
    torch.testing.assert_close(values.sum(), expected)
    # image 0 takes half of its pairs with 1..4; the middle images share more pairs than the ends
    own = -0.5 * sum(((flat[0] - flat[d]) ** 2).mean() / 3.0**d for d in range(1, 5))
    torch.testing.assert_close(values[0], own)
    identical = collect_activations(Small(), "features.3", x[:1].expand(4, -1, -1, -1))
    assert L.Alignment("features.3").per_image(identical).abs().max() == 0


def test_interpolation_with_alignment_renders_a_transition():
    """Five images from channel 0 (red) to channel 3 (minus red) of a 1x1 convolution: red falls along the batch."""
    from mei.optim import InputOptimization, images
    from mei.optim.optimization import n_steps

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1, bias=False))
    weight = torch.zeros(4, 3)
    weight[0, 0], weight[1, 1], weight[2, 2], weight[3, 0] = 1.0, 1.0, 1.0, -1.0
    with torch.no_grad():
        model[0].weight.copy_(weight.view(4, 3, 1, 1))
    image = images.NaturalImage((4, 4), batch=5, parameterization=images.PixelImage, decorrelation_module=None)
    objective = L.ActivationInterpolation("0", 0, "0", 3) + 0.1 * L.Alignment("0")
    InputOptimization(model, objective, image, nn.Identity()).optimize(n_steps(200, False), lr=0.05, seed=0)
    red = image().detach()[:, 0].mean(dim=(1, 2))
    assert red[0] > 0.95 and red[-1] < 0.05  # the ends: pure channel 0, pure channel 3
    assert red[2] == pytest.approx(0.5, abs=0.01)  # t = 1/2: the two channels cancel, the image stays grey
    assert bool((red[1:] < red[:-1] + 1e-6).all())  # red falls along the batch


# ----------------------------------------------------------------- captum.optim's contract: loss(activations)
def test_captum_values_are_the_unreduced_target_or_a_batch_scalar(acts):
    a3, a1, fc = acts["features.3"], acts["features.1"], acts["fc"]
    torch.testing.assert_close(L.ChannelActivation("features.3", 2)(acts), a3[:, 2])
    torch.testing.assert_close(L.ChannelActivation("features.3", 2, batch_index=1)(acts), a3[1:2, 2])
    torch.testing.assert_close(L.LayerActivation("features.1")(acts), a1)
    torch.testing.assert_close(L.DeepDream("features.3")(acts), a3**2)
    torch.testing.assert_close(L.NeuronActivation("features.3", 5)(acts), a3[:, 5, 4:5, 4:5])
    torch.testing.assert_close(L.NeuronActivation("fc", 3)(acts), fc[:, 3])
    torch.testing.assert_close(L.L1("features.3", constant=0.5)(acts), (a3 - 0.5).abs().sum())
    torch.testing.assert_close(L.L2("features.3")(acts), torch.sqrt(1e-6 + (a3**2).sum()))
    tv = a3.diff(dim=-1).abs().sum() + a3.diff(dim=-2).abs().sum()
    torch.testing.assert_close(L.TotalVariation("features.3")(acts), tv)
    vec = torch.arange(6.0)
    torch.testing.assert_close(L.Direction("features.3", vec)(acts), (a3 * vec.view(1, 6, 1, 1)).sum(1))
    centre = a3[..., 4:5, 4:5]
    torch.testing.assert_close(L.NeuronDirection("features.3", vec)(acts), (centre * vec.view(1, 6, 1, 1)).sum(1))
    # the per-image value is the mean of captum's value per image wherever captum's value keeps the images
    for loss in [L.ChannelActivation("features.3", 2), L.DeepDream("features.3"), L.Direction("features.3", vec)]:
        torch.testing.assert_close(loss.per_image(acts), loss(acts).flatten(1).mean(1))


def test_batch_scalars_are_the_per_image_values_summed(acts):
    sums = [L.L1("features.3"), L.TotalVariation("features.3"), L.Alignment("features.3"),
            L.ActivationInterpolation("features.1", 2, "features.3", 5)]
    for loss in sums:
        value = loss(acts)
        assert value.dim() == 0, loss
        torch.testing.assert_close(value, loss.per_image(acts).sum())
    div = L.Diversity("features.3")
    torch.testing.assert_close(div(acts), div.per_image(acts).sum() * 2 / 3)  # captum: sum over pairs / N


def test_every_loss_has_captums_target(model):
    a, b = L.ChannelActivation(model.features[3], 2), L.DeepDream("fc")
    assert a.target is model.features[3] and b.target == "fc"
    assert (a * 2).target is model.features[3] and (-a).target is model.features[3]
    assert (a + b).target == [model.features[3], "fc"]
    assert (a + a).target == [model.features[3]]
    assert L.sum_loss_list([a, b, a]).target == [model.features[3], "fc"]
    assert L.ActivationInterpolation("features.1", 0, "fc", 1).target == ["features.1", "fc"]


def test_captum_composites_reduce_two_losses_to_means(acts):
    a, b = L.ChannelActivation("features.3", 2), L.DeepDream("features.1")
    va, vb = a(acts), b(acts)
    torch.testing.assert_close((a + b)(acts), va.mean() + vb.mean())
    torch.testing.assert_close((a * b)(acts), va.mean() * vb.mean())
    torch.testing.assert_close((a + 1)(acts), va + 1)
    torch.testing.assert_close((3 - a)(acts), 3 - va)
    torch.testing.assert_close((2 / a)(acts), 2 / va.mean())
    torch.testing.assert_close((2**a)(acts), 2 ** va.mean())
    torch.testing.assert_close((-a)(acts), -va)
    torch.testing.assert_close(L.sum_loss_list([a, b])(acts), va.mean() + vb.mean())
    torch.testing.assert_close(L.sum_loss_list([a, b], to_scalar_fn=torch.sum)(acts), va.sum() + vb.sum())
    assert L.default_loss_summarize(va) == -va.mean()


def test_angled_neuron_direction_and_activation_weights(acts):
    a3 = acts["features.3"]
    vec = torch.arange(1.0, 7.0)
    centre = a3[..., 4, 4]
    torch.testing.assert_close(L.AngledNeuronDirection("features.3", vec, cossim_pow=0)(acts), centre * vec)
    whitening = torch.eye(6) * 2
    torch.testing.assert_close(L.AngledNeuronDirection("features.3", vec, vec_whitened=whitening, cossim_pow=0)(acts),
                               centre * vec * 2)
    dot = (centre * vec).mean()
    cos = dot / (1e-4 + centre.pow(2).sum().sqrt())
    torch.testing.assert_close(L.AngledNeuronDirection("features.3", vec)(acts), dot * cos.clamp(min=0.1) ** 4)
    per = L.AngledNeuronDirection("features.3", vec, cossim_pow=2, x=1, y=2).per_image(acts)
    row = a3[..., 2, 1]
    dots = (row * vec).mean(1)
    torch.testing.assert_close(per, dots * (dots / (1e-4 + row.norm(dim=1))).clamp(min=0.1) ** 2)
    weights = torch.arange(6.0)
    torch.testing.assert_close(L.ActivationWeights("features.3", weights)(acts), a3 * weights.view(1, 6, 1, 1))
    torch.testing.assert_close(L.ActivationWeights("features.3", weights, neuron=True)(acts), a3[..., 4, 4] * weights)
    window = L.ActivationWeights("features.3", weights, x=1, y=2, wx=3, wy=2)(acts)
    torch.testing.assert_close(window, a3[..., 2:4, 1:4] * weights.view(1, 6, 1, 1))
    with pytest.raises(ValueError, match="wx and wy go together"):
        L.ActivationWeights("features.3", weights, wx=2)
    with pytest.raises(TypeError, match="needs weights"):
        L.ActivationWeights("features.3")
