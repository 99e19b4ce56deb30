"""The package's optimizer (mei.optimizers.NormalizedGradient, the component normalized_gradient): its exact
step, per-image normalization, and its use by name in an engine config with a scheduled step gain."""

import pytest
import torch

from mei.engine.resolve import ConfigError, validate_config
from mei.methods import gradient_ascent
from mei.optimizers import NormalizedGradient, normalized_gradient

from .test_schedules import Dot, W, config, linear


def step_once(grad, **kwargs):
    x = torch.zeros_like(grad, requires_grad=True)
    optimizer = NormalizedGradient([x], **kwargs)
    x.grad = grad.clone()
    optimizer.step()
    return x.detach()


def test_the_step_is_the_gradient_over_its_mean_magnitude():
    grad = torch.tensor([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]])  # mean |g| = 3.5
    moved = step_once(grad, lr=0.2, step_gain=1.5, eps=1e-8)
    assert torch.allclose(moved, -0.3 * grad / (3.5 + 1e-8), atol=1e-7)
    assert float(moved.abs().mean()) == pytest.approx(0.3, rel=1e-6)  # every step moves lr * step_gain on average
    decayed = torch.ones(3, requires_grad=True)
    optimizer = NormalizedGradient([decayed], lr=0.5, weight_decay=0.2)
    decayed.grad = torch.tensor([1.0, 1.0, 1.0])
    optimizer.step()
    assert torch.allclose(decayed.detach(), torch.full((3,), 0.9 - 0.5), atol=1e-6)  # x * (1 - 0.1) - 0.5


def test_batch_dim_normalizes_each_image_by_its_own_gradient():
    grad = torch.stack([torch.full((4, 4), 0.01), torch.full((4, 4), 100.0)])  # two images, 10^4 apart
    together = step_once(grad, lr=1.0)
    apart = step_once(grad, lr=1.0, batch_dim=0)
    assert float(together[0].abs().mean()) < 1e-3 and float(together[1].abs().mean()) == pytest.approx(2.0, rel=1e-3)
    assert [float(image.abs().mean()) for image in apart] == pytest.approx([1.0, 1.0], rel=1e-5)
    samples = step_once(grad[None], lr=1.0, batch_dim=1)  # meitorch's layout (1, n, ...): the samples on dim 1
    assert torch.allclose(samples[0], apart, atol=1e-6)


def test_hyperparameters_are_checked():
    x = torch.zeros(2, requires_grad=True)
    for kwargs, name in [({"lr": -1}, "lr"), ({"step_gain": -0.5}, "step_gain"), ({"eps": 0}, "eps"),
                         ({"batch_dim": 1.5}, "batch_dim")]:
        with pytest.raises(ValueError, match=name):
            NormalizedGradient([x], **kwargs)
    with pytest.raises(ValueError, match="no closure"):
        NormalizedGradient([x]).step(lambda: 0.0)


def test_an_engine_config_names_it_and_schedules_its_step_gain():
    # gradient ascent on <w, x>: each step moves x by lr * gain_k * w / mean|w|; gains 1, 2, 3 and lr 0.1 give
    # 0.6 w / mean|w| (mean|w| = 8/15 for w = linspace(-1, 1, 16))
    optimizer = {"path": "mei.optimizers.normalized_gradient", "kwargs": {"lr": 0.1, "step_gain": linear(1, 3, 3)}}
    settings = config(3, {}) | {"optimizer": optimizer}
    validate_config(settings)
    mei, _, _ = gradient_ascent(None, Dot(W), settings, seed=0)
    assert torch.allclose(mei, 0.6 * W / (8 / 15), atol=1e-5)
    assert isinstance(normalized_gradient([torch.zeros(1, requires_grad=True)]), NormalizedGradient)
    with pytest.raises(ConfigError, match="step_gain"):
        validate_config(config(3, {}) | {"optimizer": {"path": "mei.optimizers.normalized_gradient",
                                                       "kwargs": {"step_gain": -1}}})
