"""InputOptimization runs on the engine: known optima, one forward per step, history, seeds, call styles."""

import pytest
import torch
from torch import nn

import mei.optim.hooks
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
    history = InputOptimization(model, loss.LayerActivation("score"), image, nn.Identity()).optimize(
        n_steps(300, False), lr=0.1)
    assert history.shape == (300,)  # captum's history: the summarized loss (-mean) before every step
    assert history[-1] < history[0]
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
    assert history.shape == (40,)
    assert history[-5:].mean() < history[:5].mean() - 0.002  # a random net: small but steady fall of the loss
    assert not torch.equal(image(), before)


def test_seed_makes_runs_reproducible():
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        image = images.NaturalImage(12)
        InputOptimization(Small(), loss.DeepDream("features.1"), image,
                          transforms.TransformationRobustness(translate=2)).optimize(5, seed=11)
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
    InputOptimization(model, loss.LayerActivation(target), image, nn.Identity()).optimize(20, lr=0.5)
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
        InputOptimization(Small(), objective, image, nn.Identity()).optimize(30, lr=0.1, seed=0)
        x = image().detach()
        return (x.diff(dim=-1).abs().sum() + x.diff(dim=-2).abs().sum()).item()

    assert total_variation(0.01) < 0.5 * total_variation(0.0)


# ----------------------------------------------------------------------- captum.optim's optimize() contract
def _tiny(**kwargs):
    return images.NaturalImage((8, 8), **kwargs)


def test_lr_takes_effect_with_an_optimizer_class_or_instance_and_a_factory_with_lr_raises():
    obj = InputOptimization(Small(), loss.LayerActivation("fc"), _tiny(), nn.Identity())
    assert obj.engine(torch.optim.NAdam, lr=0.05).optimizer.defaults["lr"] == 0.05
    assert obj.engine(torch.optim.NAdam).optimizer.defaults["lr"] == torch.optim.NAdam([torch.zeros(1)]).defaults["lr"]
    assert obj.engine().optimizer.defaults["lr"] == 0.025  # captum's default Adam
    sgd = torch.optim.SGD(obj.parameters(), lr=0.5, momentum=0.9)
    assert obj.engine(sgd, lr=0.01).optimizer.defaults["lr"] == 0.01
    assert obj.engine(sgd).optimizer.defaults["lr"] == 0.5
    with pytest.raises(ValueError, match="lr cannot be applied to an optimizer factory"):
        obj.optimize(2, optimizer=lambda params: torch.optim.SGD(params, lr=1.0), lr=0.05)
    with pytest.raises(ValueError, match="lr must be a positive number"):
        obj.optimize(2, lr=-1.0)


def test_nadam_with_lr_runs_at_that_lr():
    def run(**kwargs):
        image = _tiny()
        InputOptimization(Small(), loss.ChannelActivation("fc", 0), image, nn.Identity()).optimize(3, seed=0, **kwargs)
        return image().detach()

    by_hand = run(optimizer=lambda params: torch.optim.NAdam(params, lr=0.05))
    assert torch.equal(run(optimizer=torch.optim.NAdam, lr=0.05), by_hand)
    assert not torch.equal(run(optimizer=torch.optim.NAdam), by_hand)  # NAdam's own default lr is another run


def test_history_is_captums_summarized_loss_and_loss_summarize_fn_takes_effect():
    model = Small()
    image = _tiny()
    objective = loss.ChannelActivation("features.3", 2)
    obj = InputOptimization(model, objective, image, nn.Identity())
    first = -objective(mei.optim.hooks.collect_activations(model, objective.targets, image())).mean()
    history = obj.optimize(3, seed=0)
    assert history.shape == (3,)
    assert history[0].item() == pytest.approx(first.item(), abs=1e-6)  # the loss before the first step
    summed = InputOptimization(model, objective, _tiny(), nn.Identity()).optimize(
        3, loss_summarize_fn=lambda value: -value.sum(), seed=0)
    torch.testing.assert_close(summed, history * 8 * 8)  # sum over the 8 x 8 positions instead of the mean
    with pytest.raises(ValueError, match="loss_summarize_fn must return a scalar"):
        obj.optimize(1, loss_summarize_fn=lambda value: value)


def test_captum_stop_criteria_get_step_obj_history_and_optimizer():
    seen = []

    def stop_after_loss_rises_or_four(step, obj, history, optimizer):
        seen.append((step, len(history), isinstance(optimizer, torch.optim.Adam)))
        return step < 4

    obj = InputOptimization(Small(), loss.LayerActivation("fc"), _tiny(), nn.Identity())
    history = obj.optimize(stop_after_loss_rises_or_four)
    assert history.shape == (4,)
    assert seen == [(k, k, True) for k in range(5)]
    assert obj.optimize(lambda step, obj, history, optimizer: False).shape == (0,)
    assert n_steps(3, False)(2, obj, [], None) is True and n_steps(3, False)(3, obj, [], None) is False


def test_seed_is_bit_identical_and_leaves_the_callers_rng_alone():
    def run():
        image = images.NaturalImage((16, 16), batch=2)  # a random start drawn from the global RNG ...
        InputOptimization(Small(), loss.DeepDream("features.1"), image).optimize(4, seed=5)  # captum's transform
        return image().detach()

    torch.manual_seed(1)
    first = run()
    state = torch.random.get_rng_state()
    second = run()  # ... another global state here: the seed redraws the start, so the run is the same
    assert torch.equal(first, second)
    image = images.NaturalImage((16, 16))
    after = torch.random.get_rng_state()
    InputOptimization(Small(), loss.DeepDream("features.1"), image).optimize(2, seed=5)
    assert torch.equal(torch.random.get_rng_state(), after)  # optimize drew nothing from the caller's RNG
    assert not torch.equal(state, after)


def test_default_input_param_and_transform_are_captums():
    obj = InputOptimization(None, loss.LayerActivation("input"))
    assert isinstance(obj.model, nn.Identity)
    assert isinstance(obj.input_param, images.NaturalImage) and obj.input_param().shape == (1, 3, 224, 224)
    scale, jitter = obj.transform
    assert isinstance(scale, transforms.RandomScale) and scale.scale == [1, 0.975, 1.025, 0.95, 1.05]
    assert isinstance(jitter, transforms.RandomSpatialJitter) and jitter.translate == 16


def test_stack_and_shared_images_optimize_through_all_their_parameters():
    fixed = torch.zeros(1, 3, 8, 8)
    stack = images.StackImage([images.PixelImage(8), fixed])
    assert stack().shape == (2, 3, 8, 8)
    InputOptimization(Small(), loss.ChannelActivation("fc", 0, batch_index=0), stack, nn.Identity()).optimize(
        5, lr=0.1, seed=0)
    assert torch.equal(stack()[1:], fixed)  # the fixed tensor stays
    shared = images.SharedImage((4, 4), images.FFTImage(8, batch=3))
    before = [p.detach().clone() for p in shared.parameters()]
    InputOptimization(Small(), loss.ChannelActivation("fc", 0), shared, nn.Identity()).optimize(5, lr=0.1, seed=0)
    assert all(not torch.equal(b, p) for b, p in zip(before, shared.parameters(), strict=True))  # both parts moved


def test_a_loss_on_the_input_parameterization_itself_reads_the_rendered_image():
    # captum lets a loss target the parameterization: its value is the image before the transforms. On the pixels
    # with SGD, -mean(red) has the gradient -1/(H*W) per red pixel: each step adds exactly lr/(H*W) to red only.
    start = torch.rand(1, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    image = images.PixelImage(init=start.clone())
    objective = InputOptimization(nn.Identity(), loss.ChannelActivation(image, 0), image,
                                  transforms.RandomSpatialJitter(1))
    assert torch.allclose(objective.loss(), start[:, 0])
    history = objective.optimize(n_steps(5, False), optimizer=torch.optim.SGD, lr=2.0)
    step = 2.0 / 20
    assert torch.allclose(history, -(start[:, 0].mean() + step * torch.arange(5.0)), atol=1e-6)
    assert torch.allclose(image.param[:, 0], start[:, 0] + 5 * step, atol=1e-6)
    assert torch.equal(image.param[:, 1:], start[:, 1:])
def test_batch_index_with_several_views_per_step_selects_every_view_of_that_image():
    from mei.engine.hooks import scoring_views
    from mei.transforms import GaussianNoise, Jitter, Views

    model = Small()
    image = images.NaturalImage(8, batch=2, parameterization=images.PixelImage)
    start = image().detach().clone()
    objective = loss.ChannelActivation("fc", 1, batch_index=1)
    obj = InputOptimization(model, objective, image, Views(3, [Jitter(2), GaussianNoise(0.5)]))
    engine = obj.engine(lr=0.1)
    state = engine.step()
    seen = state.transformed_input  # 3 views of 2 images, view-major: image 1 is rows 1, 3, 5
    assert seen.shape == (6, 3, 8, 8)
    with torch.no_grad():
        expected = -model(seen)[[1, 3, 5], 1].mean()  # captum's loss: -mean over all views of image 1
        assert float(-state.evaluation_tensor.sum()) == pytest.approx(float(expected), abs=1e-6)
        assert abs(float(expected) + float(model(seen)[1, 1])) > 1e-4  # view 0 alone would differ
    rendered = engine.current_image
    torch.testing.assert_close(rendered[0], start[0])  # image 0 is not optimized
    assert (rendered[1] - start[1]).abs().max() > 1e-3
    acts = mei.optim.hooks.run_and_capture(model, ["fc"], seen)
    with scoring_views(3):
        torch.testing.assert_close(objective(acts), acts["fc"][[1, 3, 5], 1])
        assert objective.per_image(acts).nonzero().flatten().tolist() == [1, 3, 5]
        with pytest.raises(IndexError, match="batch_index 2 is out of range for 2 images"):
            loss.ChannelActivation("fc", 1, batch_index=2)(acts)


def test_captum_stop_criteria_and_history_let_the_engine_skip_its_per_step_input_copy():
    from mei.optim.optimization import _History

    obj = InputOptimization(Small(), loss.ChannelActivation("fc", 1), images.NaturalImage(8))
    engine = obj.engine()
    mei.optimization.optimize(engine, n_steps(2, False), tracker=_History([]))
    assert engine.keep_input is False  # neither reads State.input_

    class Reading(n_steps):  # a subclass that does not say so again may read it
        pass

    engine = obj.engine()
    mei.optimization.optimize(engine, Reading(2, False), tracker=_History([]))
    assert engine.keep_input is True
