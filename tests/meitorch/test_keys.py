"""meitorch's config keys clip, init, gradient_rf, scheduler_params and the mei / meibatch optimizers with
step_gain: each does what meitorch does with it, and an impossible value is refused naming the key."""

import pytest
import torch

from mei.engine.resolve import ConfigError
from mei.meitorch.mei import MEI
from mei.meitorch.methods import pixel_mei
from mei.meitorch.tools.schedules import LinearSchedule, get_lr_scheduler

from .helpers import SHAPE, linear_operation, squared_distance_operation, target


def test_clip_keeps_every_pixel_within_bias_plus_minus_scale():
    w = target(2)
    config = dict(iter_n=10, bias=0.5, scale=0.25, clip=True, optimizer="sgd", optimizer_params=dict(lr=10.0),
                  save_every=1)
    result = MEI(linear_operation(w), shape=SHAPE).generate_pixel_mei(config, seed=0)
    for image in [*result.images, result.mei]:
        assert image.min() >= 0.25 - 1e-6 and image.max() <= 0.75 + 1e-6
    # maximizing <x, w> in the box: every pixel at the bound on the side of its weight
    assert torch.allclose(result.mei[0], torch.where(w > 0, 0.75, 0.25))
    unclipped = MEI(linear_operation(w), shape=SHAPE).generate_pixel_mei({**config, "clip": False}, seed=0)
    assert unclipped.mei.abs().max() > 1.0


def test_clip_of_the_variational_mean_and_bad_values():
    w = target(2)
    result = MEI(linear_operation(w), shape=SHAPE).generate_variational_mei(
        dict(iter_n=5, scale=0.2, clip=True, optimizer="sgd", optimizer_params=dict(lr=1.0), fixed_stddev=0.1,
             n_samples_per_batch=4), seed=0)
    assert result.mei.abs().max() <= 0.2 + 1e-6
    with pytest.raises(ConfigError, match=r"clip: must be True \(clamp to \[bias - scale, bias \+ scale\]\)"):
        MEI(linear_operation(w), shape=SHAPE).generate_pixel_mei(dict(iter_n=1, clip=0.5))
    with pytest.raises(ConfigError, match="clip: unknown key for the transformation mode"):
        MEI(linear_operation(w), shape=SHAPE).generate_transformation_mei(dict(iter_n=1, clip=True))


def test_init_is_the_start_of_pixel_and_variational_runs():
    t = target(3)
    start = torch.full(SHAPE, 0.5)
    op = squared_distance_operation(t)
    # the loss is the batch mean of ||x - t||^2, so with 2 samples each image's gradient is (x - t): one SGD step
    # of rate 0.5 from `start` gives (start + t) / 2 for both
    result = MEI(op, shape=SHAPE).generate_pixel_mei(dict(iter_n=1, optimizer="sgd", n_samples=2,
                                                          optimizer_params=dict(lr=0.5)), init=start, seed=0)
    assert torch.allclose(result.mei, ((start + t) / 2).expand(2, *SHAPE), atol=1e-6)
    two = torch.stack([start, -start])  # one start per sample; with rate 0 the start is the result
    result = MEI(op, shape=SHAPE).generate_pixel_mei(dict(iter_n=1, optimizer="sgd", n_samples=2,
                                                          optimizer_params=dict(lr=0.0)), init=two, seed=0)
    assert torch.equal(result.mei, two)
    result = MEI(op, shape=SHAPE).generate_variational_mei(dict(iter_n=1, optimizer="sgd", fixed_stddev=0.1,
                                                                optimizer_params=dict(lr=0.0)), init=start.numpy())
    assert torch.equal(result.mei[0], start)
    with pytest.raises(ConfigError, match=r"init: must be one image of shape \(1, 8, 8\) or 3 of them"):
        MEI(op, shape=SHAPE).generate_pixel_mei(dict(iter_n=1, n_samples=3), init=torch.zeros(2, 1, 8, 8))
    with pytest.raises(ConfigError, match="init: holds NaN"):
        MEI(op, shape=SHAPE).generate_pixel_mei(dict(iter_n=1), init=torch.full(SHAPE, float("nan")))


def test_gradient_rf_optimizes_the_linear_model_at_a_blank_image():
    # ||x - t||^2 has gradient -2t at x = 0: the linear model's minimum under a norm constraint is t / |t| * norm
    t = target(4)
    result = MEI(squared_distance_operation(t), shape=SHAPE).generate_pixel_mei(
        dict(iter_n=30, gradient_rf=True, norm=3.0, optimizer="sgd", optimizer_params=dict(lr=0.5)), seed=0)
    assert torch.allclose(result.pointrf, -2 * t, atol=1e-5)
    assert torch.allclose(result.mei[0], 3.0 * t / t.norm(), atol=1e-4)
    assert list(result.losses) == ["objective", "activation"]
    assert result.get_activation() == pytest.approx(float((result.mei[0] * 2 * t).sum()), rel=1e-5)
    plain = MEI(squared_distance_operation(t), shape=SHAPE).generate_pixel_mei(
        dict(iter_n=2, optimizer="sgd"), seed=0)
    assert plain.pointrf is None
    with pytest.raises(ConfigError, match="gradient_rf: must be True or False"):
        MEI(squared_distance_operation(t), shape=SHAPE).generate_pixel_mei(dict(iter_n=1, gradient_rf="yes"))


def test_scheduler_params_steps_a_torch_lr_scheduler_after_each_step():
    # SGD on -<x, w> moves x by lr_k * w; StepLR(step_size=1, gamma=0.5) from 0.4: 0.4 + 0.2 + 0.1 = 0.7
    w = target(2)
    config = dict(iter_n=3, bias=0, scale=0, optimizer="sgd",
                  optimizer_params=dict(lr=0.4, scheduler_params=dict(type="step", step_size=1, gamma=0.5)))
    result = MEI(linear_operation(w), shape=SHAPE).generate_pixel_mei(config, seed=0)
    assert torch.allclose(result.mei[0], 0.7 * w, atol=1e-6)
    assert config["optimizer_params"]["scheduler_params"]["type"] == "step"  # the caller's dict is not changed
    # the pipeline method takes it in JSON
    config = {"device": "cpu", "shape": [1, *SHAPE], "iter_n": 2, "optimizer": "sgd",
              "optimizer_params": {"lr": 1.0, "scheduler_params": {"type": "exponential", "gamma": 0.1}}}
    pixel_mei.validate_config(config)


def test_impossible_scheduler_params_name_the_key():
    op = linear_operation(target(2))
    with pytest.raises(ConfigError, match=r"optimizer_params.scheduler_params: scheduler_params.type must be one "
                                          r"of \['cosine', 'cosine_warm', 'exponential', 'multi_step', 'step'\]"):
        MEI(op, shape=SHAPE).generate_pixel_mei(dict(iter_n=1, optimizer_params=dict(scheduler_params={"type": "x"})))
    with pytest.raises(ConfigError, match="optimizer_params.scheduler_params: the step scheduler .*step_size"):
        MEI(op, shape=SHAPE).generate_pixel_mei(dict(iter_n=1, optimizer_params=dict(
            scheduler_params={"type": "step", "gamma": 0.5})))
    with pytest.raises(ConfigError, match="not both"):
        MEI(op, shape=SHAPE).generate_pixel_mei(dict(iter_n=2, optimizer_params=dict(
            lr=LinearSchedule(0.1, 0.2), scheduler_params={"type": "exponential", "gamma": 0.5})))
    with pytest.raises(ConfigError, match="must be a dict with 'type'"):
        MEI(op, shape=SHAPE).generate_pixel_mei(dict(iter_n=1, optimizer_params=dict(scheduler_params=0.5)))


def test_get_lr_scheduler_at_meitorchs_path():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    hparams = {"type": "multi_step", "milestones": [1], "gamma": 0.1}
    scheduler = get_lr_scheduler(optimizer, hparams)
    assert isinstance(scheduler, torch.optim.lr_scheduler.MultiStepLR) and hparams["type"] == "multi_step"


def test_an_engine_schedule_spec_in_a_meitorch_json_config():
    config = dict(iter_n=3, save_every=1, optimizer="sgd",
                  norm={"path": "mei.schedules.Linear", "kwargs": {"start": 1.0, "end": 2.0, "steps": 3}})
    result = MEI(squared_distance_operation(target()), shape=SHAPE).generate_pixel_mei(config, seed=0)
    assert [image.norm().item() for image in result.images] == pytest.approx([1.0, 1.5, 2.0], rel=1e-5)
    with pytest.raises(ConfigError, match="norm.path: 'mei.stoppers.NumIterations' is a component of kind stopper"):
        MEI(squared_distance_operation(target()), shape=SHAPE).generate_pixel_mei(
            dict(iter_n=2, norm={"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": 1}}))


def test_the_mei_optimizer_takes_meitorchs_half_step_times_step_gain():
    w = target(3)
    mean_magnitude = float(w.abs().mean())
    mei = MEI(linear_operation(w), shape=SHAPE)
    one = mei.generate_pixel_mei(dict(iter_n=1, init=torch.zeros(SHAPE), optimizer="mei",
                                      optimizer_params=dict(lr=0.2, step_gain=3.0)), seed=0)
    assert torch.allclose(one.mei[0], 0.2 * 3.0 / 2 * w / mean_magnitude, atol=1e-5)  # x -= lr * gain / 2 * g / mean|g|
    ramp = mei.generate_pixel_mei(dict(iter_n=3, init=torch.zeros(SHAPE), optimizer="mei",
                                       optimizer_params=dict(lr=0.2, step_gain=LinearSchedule(1.0, 3.0))), seed=0)
    assert torch.allclose(ramp.mei[0], 0.2 * (1 + 2 + 3) / 2 * w / mean_magnitude, atol=1e-5)


def test_meibatch_moves_every_sample_alike_however_unequal_their_gradients():
    w = target(4)

    def unequal(inputs):  # sample 1's gradient is 10^4 times sample 0's
        per_sample = (inputs * w).flatten(1).sum(1)
        activation = 0.01 * per_sample[0] + 100.0 * per_sample[1]
        return dict(objective=-activation, activation=activation)

    mei = MEI(unequal, shape=SHAPE)
    config = dict(iter_n=1, n_samples=2, init=torch.zeros(SHAPE), optimizer_params=dict(lr=0.4))
    together = mei.generate_pixel_mei({**config, "optimizer": "mei"}, seed=0).mei
    apart = mei.generate_pixel_mei({**config, "optimizer": "meibatch"}, seed=0).mei
    assert float(together[0].abs().mean()) < 1e-3  # normalized together, the small gradient hardly moves
    assert [float(image.abs().mean()) for image in apart] == pytest.approx([0.2, 0.2], rel=1e-4)
    assert torch.allclose(apart[0], apart[1], atol=1e-6)  # both step along w / mean|w|
    with pytest.raises(ConfigError, match="optimizer_params.batch_dim"):
        mei.generate_pixel_mei({**config, "optimizer": "meibatch", "optimizer_params": dict(batch_dim=0)})


def test_meitorchs_optimizer_module_and_gradient_rf_helpers():
    from mei.meitorch.objective.optimizer import MEIBatchoptimizer, MEIoptimizer, get_optimizer

    grad = torch.stack([torch.full(SHAPE, 0.01), torch.full(SHAPE, 100.0)])
    for cls, moved in [(MEIoptimizer, None), (MEIBatchoptimizer, [0.2, 0.2])]:
        x = torch.zeros(2, *SHAPE, requires_grad=True)
        optimizer = cls([x], {"lr": 0.1, "iter_n": 2, "step_gain": LinearSchedule(1.0, 3.0)})
        for _ in range(2):
            x.grad = grad.clone()
            optimizer.step()
        means = [float(image.abs().mean()) for image in x.detach()]
        if moved is None:  # normalized together: the small gradient hardly moves its image
            assert means[0] < 1e-3 and means[1] == pytest.approx(0.1 * (1 + 3) / 2 * 2, rel=1e-3)
        else:  # each image by lr * gain / 2 per step: 0.05 then 0.15
            assert means == pytest.approx(moved, rel=1e-5)
    assert isinstance(get_optimizer([torch.zeros(1, requires_grad=True)], "sgd", lr=0.1), torch.optim.SGD)
    assert type(get_optimizer([torch.zeros(1, requires_grad=True)], "meibatch", 5, lr=0.1)) is MEIBatchoptimizer
    with pytest.raises(ValueError, match="iter_n must be specified"):
        get_optimizer([torch.zeros(1, requires_grad=True)], "mei", lr=0.1)
    with pytest.raises(ValueError, match="Invalid optimizer type"):
        get_optimizer([torch.zeros(1, requires_grad=True)], "lbfgs")
    w = target(7)
    mei = MEI(linear_operation(w), shape=SHAPE)
    assert MEI.is_gradient_rf_op({"gradient_rf": True}) and not MEI.is_gradient_rf_op({})
    linear_model, rf = mei.to_gradient_rf_op(mei.operation)
    assert torch.allclose(rf, -w, atol=1e-6)  # the gradient of -<x, w> at a blank image
    assert float(linear_model(w[None])["objective"]) == pytest.approx(-float((w * w).sum()), rel=1e-5)
