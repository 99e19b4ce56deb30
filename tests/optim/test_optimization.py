"""InputOptimization runs on the engine: known optima, one forward per step, history, seeds, call styles."""

import pytest
import torch
from torch import nn

import mei.optimization
from mei.optim import images, loss, optimization, relu, transforms
from mei.optim.optimization import InputOptimization, RenderedMEI, n_steps

from ._models import Quadratic, Small

TARGET = torch.tensor([0.2, 0.5, 0.8]).view(1, 3, 1, 1).expand(1, 3, 4, 5).contiguous()


@pytest.mark.parametrize("parameterization, decorrelate, squash", [
    (images.PixelImage, None, "none"),
    (images.PixelImage, images.ToRGB("klt"), "sigmoid"),
    (images.FFTImage, images.ToRGB("i1i2i3"), "sigmoid"),
])
def test_known_optimum_through_every_parameterization(parameterization, decorrelate, squash):
    torch.manual_seed(0)
    model = Quadratic(TARGET)
    image = images.NaturalImage((4, 5), parameterization=parameterization, decorrelation_module=decorrelate,
                                squash_func=squash)
    history = InputOptimization(model, loss.LayerActivation("score"), image).optimize(n_steps(300, False), lr=0.1)
    assert history.shape == (300, 1)
    assert history[-1, 0] > history[0, 0]
    assert torch.allclose(image(), TARGET, atol=2e-3)


def test_one_forward_per_step_through_the_engine():
    model = Small()
    calls = []
    model.register_forward_pre_hook(lambda m, a: calls.append(1))
    obj = InputOptimization(model, loss.ChannelActivation("fc", 1), images.NaturalImage(8))
    assert isinstance(obj.engine(), RenderedMEI) and isinstance(obj.engine(), mei.optimization.MEI)
    assert optimization.optimize is mei.optimization.optimize
    obj.optimize(7)
    assert len(calls) == 7 + 1  # seven steps, one final evaluation
    assert not any(m._forward_hooks for m in model.modules())


def test_result_is_written_back_and_objective_rises():
    model = Small()
    torch.manual_seed(0)
    image = images.NaturalImage(16, batch=2)
    before = image().detach().clone()
    objective = loss.ChannelActivation("features.3", 4, batch_index=0) + loss.ChannelActivation("fc", 0, batch_index=1)
    history = InputOptimization(model, objective, image, transforms.RandomSpatialJitter(1)).optimize(
        n_steps(40, True), lr=0.1, seed=3)
    assert history.shape == (40, 2)
    assert (history[-5:].mean(0) > history[:5].mean(0) + 0.002).all()  # a random net: small but steady rise
    assert not torch.equal(image(), before)


def test_seed_makes_runs_reproducible():
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        image = images.NaturalImage(12)
        InputOptimization(Small(), loss.DeepDream("features.1"), image,
                          transforms.TransformationRobustness(padding=2, translate=2)).optimize(5, seed=11)
        results.append(image().detach())
    assert torch.equal(*results)


def test_transforms_get_the_step_index_and_captum_callables_work():
    seen = []

    def engine_style(x, i_iter):
        seen.append(i_iter)
        return x

    model = Small()
    InputOptimization(model, loss.LayerActivation("fc"), images.NaturalImage(8), engine_style).optimize(3)
    assert seen == [0, 1, 2]
    only_x = nn.Sequential(nn.Identity())
    InputOptimization(model, loss.LayerActivation("fc"), images.NaturalImage(8), only_x).optimize(2)
    InputOptimization(model, loss.LayerActivation("fc"), images.NaturalImage(8), lambda x: x).optimize(2)


def test_optimizer_class_factory_or_instance():
    image = images.NaturalImage(8)
    obj = InputOptimization(Small(), loss.LayerActivation("fc"), image)
    sgd = torch.optim.SGD(image.parameters(), lr=0.5, momentum=0.9)
    assert isinstance(obj.engine(sgd).optimizer, torch.optim.SGD)
    assert obj.engine(sgd).optimizer.defaults["momentum"] == 0.9
    assert isinstance(obj.engine(torch.optim.Adagrad).optimizer, torch.optim.Adagrad)
    obj.optimize(2, optimizer=sgd)


class _DeadUnit(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.relu = nn.ReLU()
        with torch.no_grad():
            self.linear.weight.fill_(1.0)
            self.linear.bias.fill_(-10.0)  # negative for every input in [0, 1]

    def forward(self, x):
        return self.relu(self.linear(x.flatten(1)))


def _optimize_sum(model, target):
    torch.manual_seed(0)
    image = images.NaturalImage((2, 2), channels=1, parameterization=images.PixelImage, squash_func="none")
    start = image().sum().item()
    InputOptimization(model, loss.LayerActivation(target), image).optimize(20, lr=0.5)
    return start, image().sum().item()


def test_redirected_relu_revives_a_dead_unit():
    model = _DeadUnit()
    start, end = _optimize_sum(model, "relu")
    assert end == start  # no gradient through a dead ReLU: the image does not move
    with relu.swapped_layers(model):
        start, end = _optimize_sum(model, "relu")
    assert end > start + 5  # the redirected gradient raises the pixels that feed the unit
    assert isinstance(model.relu, nn.ReLU)


def test_penalty_on_the_input_smooths_the_picture():
    def total_variation(weight):
        torch.manual_seed(0)
        image = images.NaturalImage(16, parameterization=images.PixelImage)
        objective = loss.ChannelActivation("features.3", 4) - weight * loss.TotalVariation("input")
        InputOptimization(Small(), objective, image).optimize(30, lr=0.1, seed=0)
        x = image().detach()
        return (x.diff(dim=-1).abs().sum() + x.diff(dim=-2).abs().sum()).item()

    assert total_variation(0.01) < 0.5 * total_variation(0.0)
