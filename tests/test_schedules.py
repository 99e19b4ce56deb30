"""Schedules in the engine's own configs: their values per step, and that the engine applies them per step to
the optimizer's hyperparameters and to any component's (transform, preconditioner, postprocessor)."""

import math

import pytest
import torch

from mei.engine.resolve import ConfigError, build_component, validate_config
from mei.engine.schedule import Schedule, ScheduledComponent
from mei.methods import gradient_ascent
from mei.schedules import Constant, Cosine, Exponential, Linear, Octave, Random


def linear(start, end, steps):
    return {"path": "mei.schedules.Linear", "kwargs": {"start": start, "end": end, "steps": steps}}


class Dot(torch.nn.Module):
    """``x -> <w, x>`` per image: the gradient is ``w`` everywhere, so SGD moves x by ``lr * w`` each step."""

    def __init__(self, w):
        super().__init__()
        self.w = w

    def forward(self, x):
        return (x * self.w).flatten(1).sum(dim=1)


W = torch.linspace(-1.0, 1.0, 16).reshape(1, 1, 4, 4)


def config(steps, optimizer_kwargs, **extra):
    return {"device": "cpu", "shape": [1, 1, 4, 4],
            "initial": {"path": "mei.initial.Constant", "kwargs": {"value": 0.0}},
            "optimizer": {"path": "torch.optim.SGD", "kwargs": optimizer_kwargs},
            "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": steps}}, **extra}


def test_values_per_step():
    assert [Linear(1.0, 0.0, steps=5)(i) for i in range(7)] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0, 0.0]
    assert [Octave([3, 2, 1], steps=7)(i) for i in range(8)] == [3, 3, 3, 2, 2, 1, 1, 1]
    assert [Exponential(1.0, 0.5)(i) for i in range(4)] == [1.0, 0.5, 0.25, 0.125]
    assert Exponential(1.0, 0.5, minimum=0.3)(3) == 0.3
    assert [round(Cosine(1.0, 0.0, steps=3)(i), 12) for i in range(4)] == [1.0, 0.5, 0.0, 0.0]
    assert Constant(2.5)(99) == 2.5
    values = [Random(1.0, 2.0, seed=3)(i) for i in range(200)]
    assert values == [Random(1.0, 2.0, seed=3)(i) for i in range(200)] != [Random(1.0, 2.0, seed=4)(i)
                                                                             for i in range(200)]
    assert all(1.0 <= v <= 2.0 for v in values) and 1.4 < sum(values) / 200 < 1.6
    assert Linear(2, -1, steps=4).bounds() == (-1, 2) and Exponential(2, 0.5, minimum=0.1).bounds() == (0.1, 2)
    assert Exponential(1, 2).bounds() == (1, math.inf)


def test_schedule_constructors_name_bad_values():
    with pytest.raises(ValueError, match="steps must be a whole number >= 1"):
        Linear(1, 0, steps=0)
    with pytest.raises(ValueError, match="maximum must be >= 1"):
        Random(1, 0)
    with pytest.raises(ValueError, match="values must hold 1 or more"):
        Octave([], steps=3)


def test_learning_rate_schedule_sets_each_steps_rate():
    # SGD on <w, x> from 0 moves x by lr_k * w in step k: after lr = 0.1, 0.2, 0.3 the MEI is 0.6 w exactly
    mei, _, _ = gradient_ascent(None, Dot(W), config(3, {"lr": linear(0.1, 0.3, 3)}), seed=0)
    assert torch.allclose(mei, 0.6 * W, atol=1e-6)
    # the constant rate of the step-0 value would give 0.3 w
    mei, _, _ = gradient_ascent(None, Dot(W), config(3, {"lr": 0.1}), seed=0)
    assert torch.allclose(mei, 0.3 * W, atol=1e-6)


def test_momentum_schedule_and_a_plain_value_together():
    # momentum 0.5 then 1: step 0 moves lr * w (buffer = w), step 1 lr * (1 * w + w); a constant 0.5 would
    # move lr * (0.5 * w + w) in step 1
    octave = {"path": "mei.schedules.Octave", "kwargs": {"values": [0.5, 1.0], "steps": 2}}
    mei, _, _ = gradient_ascent(None, Dot(W), config(2, {"lr": 0.5, "momentum": octave}), seed=0)
    assert torch.allclose(mei, 1.5 * W, atol=1e-6)
    mei, _, _ = gradient_ascent(None, Dot(W), config(2, {"lr": 0.5, "momentum": 0.5}), seed=0)
    assert torch.allclose(mei, 1.25 * W, atol=1e-6)


def test_postprocessing_schedule_sets_each_steps_norm():
    post = {"path": "mei.postprocessing.ChangeNorm", "kwargs": {"norm": linear(1.0, 3.0, 3)}}
    objectives = [{"path": "mei.objectives.PostProcessedInputObjective", "kwargs": {"interval": 1}}]
    _, _, output = gradient_ascent(None, Dot(W), config(3, {"lr": 0.1}, postprocessing=post,
                                                         objectives=objectives), seed=0)
    norms = [x.norm().item() for x in output["PostProcessedInputObjective"]["values"]]
    assert norms == pytest.approx([1.0, 2.0, 3.0], rel=1e-5)


def test_sigma_schedule_of_a_preconditioner_blurs_less_each_step():
    blur = build_component({"path": "mei.preconditioners.GaussianBlur",
                            "kwargs": {"sigma": linear(2.0, 0.0, 3), "truncate": 2.0}}, "precondition",
                           kinds=("precondition",))
    assert isinstance(blur, ScheduledComponent)
    assert [blur.component_at(i).sigma for i in range(4)] == [2.0, 1.0, 0.0, 0.0]
    assert blur.component_at(1).truncate == 2.0
    impulse = torch.zeros(1, 1, 9, 9)
    impulse[0, 0, 4, 4] = 1.0
    peaks = [blur(impulse, i)[0, 0, 4, 4].item() for i in range(3)]
    assert peaks[0] < peaks[1] < peaks[2] == 1.0  # sigma 2, then 1, then no blur at all


def test_schedule_nested_in_compose():
    compose = build_component({"path": "mei.transforms.Compose", "kwargs": {"transforms": [
        {"path": "mei.postprocessing.ChangeNorm", "kwargs": {"norm": linear(1.0, 2.0, 2)}}]}}, "postprocessing",
        kinds=("postprocessing",))
    x = torch.ones(1, 1, 2, 2)
    assert [compose(x, i).norm().item() for i in range(2)] == pytest.approx([1.0, 2.0])


def test_impossible_schedules_are_refused_before_anything_runs():
    with pytest.raises(ConfigError, match=r"precondition.kwargs: .*smallest values \{'sigma': -1.0\}: sigma must "
                                          r"be >= 0"):
        validate_config(config(3, {"lr": 0.1}, precondition={
            "path": "mei.preconditioners.GaussianBlur", "kwargs": {"sigma": linear(1.0, -1.0, 3)}}))
    with pytest.raises(ConfigError, match=r"optimizer.kwargs: .*smallest values \{'lr': -0.1\}.*learning rate"):
        validate_config(config(3, {"lr": linear(0.1, -0.1, 3)}))
    with pytest.raises(ConfigError, match=r"optimizer.kwargs.lr.kwargs.steps: .*steps must be"):
        validate_config(config(3, {"lr": linear(0.1, 0.2, 0)}))
    with pytest.raises(ConfigError, match="a component of kind schedule; this slot takes stopper"):
        validate_config(config(3, {"lr": 0.1}) | {"stopper": {"path": "mei.schedules.Constant",
                                                               "kwargs": {"value": 1}}})


def test_a_spec_that_is_not_a_schedule_is_left_to_its_component():
    # Compose builds its own specs: a list is never taken for a schedule, and a transform spec in a kwarg is not
    transforms = [{"path": "mei.transforms.Identity"}]
    compose = build_component({"path": "mei.transforms.Compose", "kwargs": {"transforms": transforms}}, "transform",
                              kinds=("transform",))
    assert not isinstance(compose, ScheduledComponent)


class Halving(Schedule):
    """A lab's own schedule: ``start / 2 ** i_iter``."""

    def __init__(self, start):
        self.start = start

    def bounds(self):
        return 0.0, self.start

    def __call__(self, i_iter):
        return self.start / 2 ** i_iter


@pytest.mark.usefixtures("allow_tests_modules")
def test_a_schedule_of_ones_own_module():
    # lr 0.4, 0.2, 0.1 along w: 0.7 w
    halving = {"path": "tests.test_schedules.Halving", "kwargs": {"start": 0.4}}
    mei, _, _ = gradient_ascent(None, Dot(W), config(3, {"lr": halving}), seed=0)
    assert torch.allclose(mei, 0.7 * W, atol=1e-6)


def test_random_schedule_in_a_run_is_reproducible():
    lr = {"path": "mei.schedules.Random", "kwargs": {"minimum": 0.1, "maximum": 0.2, "seed": 5}}
    mei, _, _ = gradient_ascent(None, Dot(W), config(4, {"lr": lr}), seed=0)
    expected = sum(Random(0.1, 0.2, seed=5)(i) for i in range(4))
    assert torch.allclose(mei, expected * W, atol=1e-6)


def test_batched_runs_apply_schedules_as_single_runs_do():
    from mei.batched.run import gradient_ascent_batched

    cfg = config(3, {"lr": linear(0.1, 0.3, 3)}, initial={"path": "mei.initial.RandomNormal"},
                 postprocessing={"path": "mei.postprocessing.ChangeNorm", "kwargs": {"norm": linear(1.0, 2.0, 3)}})
    batched = gradient_ascent_batched(None, Dot(W), cfg, seeds=[0, 1])
    for seed, (mei, _, _) in zip([0, 1], batched, strict=True):
        single, _, _ = gradient_ascent(None, Dot(W), cfg, seed=seed)
        assert torch.allclose(mei, single, atol=1e-5)
        assert mei.norm().item() == pytest.approx(2.0, rel=1e-5)
