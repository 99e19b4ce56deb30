"""Each mode on an operation with a known optimum or a known property."""

import pytest
import torch

from mei.meitorch.augment import zoom
from mei.meitorch.diversity import diversity
from mei.meitorch.mei import MEI
from mei.meitorch.tools.schedules import LinearSchedule
from mei.meitorch.tools.transformations import GenerativeConvNet

from .helpers import SHAPE, linear_operation, squared_distance_operation, target


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.4), ("mei", LinearSchedule(0.2, 0.0)), ("rmsprop", 0.05),
                                           ("adam", 0.1)])
def test_pixel_mei_finds_the_known_optimum_with_every_optimizer(optimizer, lr):
    t = target()
    result = MEI(squared_distance_operation(t), shape=SHAPE).generate_pixel_mei(
        dict(iter_n=150, n_samples=2, optimizer=optimizer, optimizer_params=dict(lr=lr)), seed=0)
    assert result.mei.shape == (2, *SHAPE)
    assert (result.mei - t).abs().max() < 0.05
    assert result.losses["objective"][-1] < 0.02 * result.losses["objective"][0]
    assert list(result.losses) == ["objective", "distance"] and result.steps == list(range(150))


def test_objective_is_minimized_and_runs_are_reproducible():
    w = target(2)
    mei = MEI(linear_operation(w), shape=SHAPE)
    config = dict(iter_n=5, norm=1.0, optimizer="sgd", optimizer_params=dict(lr=1.0), save_every=1, jitter=1)
    first, again, other = (mei.generate_pixel_mei(config, seed=seed) for seed in (3, 3, 4))
    assert all(torch.equal(a, b) for a, b in zip(first.images, again.images, strict=True))
    assert not torch.equal(first.images[0], other.images[0])
    best = mei.generate_pixel_mei({**config, "jitter": None}, seed=3)
    assert torch.allclose(best.mei[0], w / w.norm(), atol=1e-3)  # activation maximized = objective minimized
    assert best.losses["activation"][-1] > best.losses["activation"][0]


@pytest.mark.parametrize("distribution", ["normal", "laplace"])
def test_variational_mean_converges_to_the_pixel_mei(distribution):
    t = target()
    mei = MEI(squared_distance_operation(t), shape=SHAPE)
    pixel = mei.generate_pixel_mei(dict(iter_n=100, optimizer="adam", optimizer_params=dict(lr=0.1)), seed=0)
    variational = mei.generate_variational_mei(dict(
        iter_n=200, optimizer="adam", optimizer_params=dict(lr=LinearSchedule(0.1, 0.01)),
        distribution=distribution, n_samples_per_batch=(8, 2)), seed=0)
    assert variational.mei.shape == (1, *SHAPE)
    assert (variational.mei - pixel.mei).abs().max() < 0.1
    assert (variational.stddev > 0).all()
    assert variational.stddev.max() < 0.3  # the quadratic objective shrinks the learned spread
    samples = variational.sample(500, seed=1)
    assert samples.shape == (500, *SHAPE)
    assert torch.allclose(samples.std(0), variational.stddev[0], rtol=0.25, atol=0.01)


def test_variational_fixed_stddev_keeps_it_and_samples_have_it():
    t = target()
    result = MEI(squared_distance_operation(t), shape=SHAPE).generate_variational_mei(dict(
        iter_n=100, optimizer="sgd", optimizer_params=dict(lr=LinearSchedule(0.3, 0.01)), fixed_stddev=0.4,
        n_samples_per_batch=16), seed=0)
    assert torch.equal(result.stddev, torch.full((1, *SHAPE), 0.4))
    assert result.params.shape == (1, 1, *SHAPE)  # only the mean is optimized
    assert (result.mei - t).abs().max() < 0.05
    assert result.sample(4000, seed=0).std(0).mean().item() == pytest.approx(0.4, rel=0.05)


def test_diverse_samples_are_farther_apart_than_without_diversity():
    w = target(2)
    mei = MEI(linear_operation(w), shape=SHAPE)
    base = dict(iter_n=30, n_samples=4, norm=1.0, optimizer="sgd", optimizer_params=dict(lr=0.3))
    plain = mei.generate_pixel_mei(base, seed=0)
    diverse = mei.generate_pixel_mei({**base, "diverse": True, "diverse_params": dict(div_weight=2.0)}, seed=0)
    assert diversity(plain.mei).item() < 0.05  # every sample goes to w / |w|
    assert diversity(diverse.mei).item() > 0.3
    assert len(diverse.losses["diversity"]) == 30 and "diversity" not in plain.losses
    for metric in ("cosine", "correlation"):
        for linkage in ("minimum", "average"):
            run = mei.generate_pixel_mei({**base, "diverse": True, "diverse_params": dict(
                div_metric=metric, div_linkage=linkage, div_weight=20.0)}, seed=0)
            assert diversity(run.mei, metric, linkage) > 3 * diversity(plain.mei, metric, linkage) + 1e-3


def test_transformation_mei_trains_a_copy_of_the_network():
    network = GenerativeConvNet(hidden_sizes=[4], fixed_stddev=0.1, kernel_size=3, shape=SHAPE)
    before = {k: v.clone() for k, v in network.state_dict().items()}

    def operation(inputs):
        loss = ((inputs - 0.5) ** 2).mean()
        return dict(objective=loss)

    result = MEI(operation, shape=SHAPE).generate_transformation_mei(dict(
        iter_n=150, n_samples=8, optimizer="adam", optimizer_params=dict(lr=0.05), transform=network), seed=0)
    assert all(torch.equal(before[k], v) for k, v in network.state_dict().items())
    assert isinstance(result.transform, GenerativeConvNet) and result.mei.shape == (8, *SHAPE)
    assert result.losses["objective"][-1] < 0.03 < result.losses["objective"][0]
    samples = result.sample(64, seed=2)
    assert samples.mean().item() == pytest.approx(0.5, abs=0.05)
    assert samples.std().item() == pytest.approx(0.1, rel=0.3)  # the fixed output noise remains


def test_learned_stddev_network_and_precondition_of_kernels():
    network = GenerativeConvNet(hidden_sizes=[2], fixed_stddev=None, kernel_size=5, shape=SHAPE)
    result = MEI(squared_distance_operation(target()), shape=SHAPE).generate_transformation_mei(dict(
        iter_n=3, n_samples=4, precond=0.5, jitter=1, scaler=1.1, train_norm=4.0, transform=network,
        save_every=1), seed=0)
    assert len(result.images) == 3 and result.images[0].shape == (4, *SHAPE)


def test_augmentation_is_what_the_operation_sees():
    seen = []
    MEI(squared_distance_operation(target(), seen), shape=SHAPE).generate_pixel_mei(
        dict(iter_n=2, n_samples=3, train_norm=2.5), seed=0)
    assert [round(x.flatten(1).norm(dim=1).tolist()[k], 4) for x in seen[:2] for k in range(3)] == [2.5] * 6
    assert len(seen) == 3  # two steps, then the final evaluation of the images themselves
    ramp = torch.arange(16.0).repeat(16, 1)[None, None]  # value = column index
    zoomed = zoom(ramp, 2.0)
    assert torch.allclose(zoomed[0, 0, 8, 5:11].diff(), torch.full((5,), 0.5))  # zooming in halves the slope
    assert torch.allclose(zoom(ramp, 1.0), ramp, atol=1e-4)


def test_jitter_shifts_what_the_operation_sees_but_not_the_image():
    seen = []
    result = MEI(squared_distance_operation(target(), seen), shape=SHAPE).generate_pixel_mei(
        dict(iter_n=6, jitter=2, optimizer="sgd", optimizer_params=dict(lr=0.0), save_every=1), seed=0)
    image = result.images[0][0]
    shifts = set()
    for x in seen[:-1]:
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if torch.equal(torch.roll(image, (dy, dx), dims=(-2, -1)), x[0])]
        assert matches
        shifts.update(matches)
    assert len(shifts) > 1


def test_diversity_on_variational_samples_keeps_the_spread_wider():
    mei = MEI(squared_distance_operation(target()), shape=SHAPE)
    base = dict(iter_n=60, optimizer="adam", optimizer_params=dict(lr=0.05), n_samples_per_batch=8, scale=0.5)
    plain = mei.generate_variational_mei(base, seed=0)
    diverse = mei.generate_variational_mei({**base, "diverse": True, "diverse_params": dict(div_weight=5.0)}, seed=0)
    assert diverse.stddev.mean() > 2 * plain.stddev.mean()
