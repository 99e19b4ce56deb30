"""captum's output hooks: ModuleOutputsHook keeps the targets' outputs until consumed, ActivationFetcher returns
them from one forward and removes its hooks."""

import warnings

import pytest
import torch
from torch import nn

import mei.optim as opt
from mei.optim.output_hook import ActivationFetcher, ModuleOutputsHook


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 1))


def _n_forward_hooks(model):
    return sum(len(m._forward_hooks) for m in model.modules())


def test_hook_stores_each_target_output_until_consumed():
    model = _model()
    x = torch.randn(2, 3, 6, 6)
    first = model[0](x)
    last = model[2](model[1](first))
    hook = ModuleOutputsHook([model[0], model[2]])
    assert hook.outputs == {model[0]: None, model[2]: None} and not hook.is_ready
    assert list(hook.targets) == [model[0], model[2]]
    model(x)
    assert hook.is_ready
    outputs = hook.consume_outputs()
    assert torch.equal(outputs[model[0]], first) and torch.equal(outputs[model[2]], last)
    assert hook.outputs == {model[0]: None, model[2]: None} and not hook.is_ready
    hook.remove_hooks()
    assert _n_forward_hooks(model) == 0


def test_consuming_early_warns_and_names_the_missing_target():
    model = _model()
    hook = ModuleOutputsHook([model[0]])
    with pytest.warns(UserWarning, match="Conv2d"):
        assert hook.consume_outputs() == {model[0]: None}
    hook.remove_hooks()


def test_a_module_run_twice_keeps_its_first_output_and_warns():
    layer = nn.Linear(2, 2)
    model = nn.Sequential(layer, layer)
    hook = ModuleOutputsHook([layer])
    x = torch.randn(1, 2)
    expected = layer(x)
    with pytest.warns(UserWarning, match="more than once"):
        model(x)
    assert torch.equal(hook.consume_outputs()[layer], expected)
    hook.remove_hooks()


def test_hooks_go_away_with_the_object():
    model = _model()
    hook = ModuleOutputsHook([model[0], model[1]])
    assert _n_forward_hooks(model) == 2
    del hook
    assert _n_forward_hooks(model) == 0


def test_activation_fetcher_returns_the_module_outputs_and_removes_its_hooks():
    model = _model()
    x = torch.randn(1, 3, 6, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        activations = ActivationFetcher(model, [model[1]])(x)
    assert list(activations) == [model[1]]
    assert torch.equal(activations[model[1]], torch.relu(model[0](x)))
    assert _n_forward_hooks(model) == 0


def test_targets_must_be_modules_and_names_are_reexported():
    with pytest.raises(TypeError, match="nn.Modules"):
        ModuleOutputsHook(["0"])
    assert opt.ModuleOutputsHook is ModuleOutputsHook and opt.hooks.ActivationFetcher is ActivationFetcher
