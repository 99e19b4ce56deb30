"""sinzlab/mei's mei.legacy at its path: the ops named in lab configs, the legacy loop and its helpers."""

from __future__ import annotations

import pytest
import torch

from mei.engine import rng
from mei.engine.kernels import gaussian_kernel1d
from mei.legacy import ops
from mei.legacy.core import gradient_ascent
from mei.legacy.models import VGG19
from mei.legacy.utils import Combine, Compose, varargin


def test_norm_range_and_scale_ops():
    x = torch.arange(8.0).reshape(2, 1, 2, 2)
    norms = torch.linalg.vector_norm(ops.ChangeNorm(2.0)(x, 0).reshape(2, -1), dim=1)
    assert torch.allclose(norms, torch.full((2,), 2.0))
    assert torch.equal(ops.ClipRange(1.0, 5.0)(x, iteration=3), x.clamp(1, 5))
    assert torch.equal(ops.MultiplyBy(2.0, decay_factor=0.5)(x, 3), 3.0 * x)  # 2 + 0.5 * (3 - 1)
    assert torch.allclose(ops.ChangeStd(1.0)(x, 0).reshape(2, -1).std(1), torch.ones(2))
    assert torch.allclose(ops.DivideByMeanOfAbsolute()(x, 0)[1].abs().mean(), torch.tensor(1.0))
    assert torch.allclose(ops.ChangeRange(-1.0, 1.0)(torch.zeros(1, 1, 2, 2), 0), torch.zeros(1, 1, 2, 2))
    assert ops.Resize(0.5)(torch.ones(1, 1, 4, 6), 0).shape == (1, 1, 2, 3)
    assert ops.GrayscaleToRGB()(torch.ones(1, 1, 2, 2), 0).shape == (1, 3, 2, 2)


def test_gaussian_blur_is_sinzlabs_normalized_separable_kernel():
    delta = torch.zeros(1, 1, 9, 9)
    delta[..., 4, 4] = 1.0
    blurred = ops.GaussianBlur(1.0, truncate=2)(delta, 1)
    taps = gaussian_kernel1d(1.0, size=5)  # 2 * round(1.0 * 2) + 1 taps, as sinzlab's kernel
    assert torch.allclose(blurred[0, 0, 2:7, 2:7], taps[:, None] * taps[None, :], atol=1e-6)
    assert torch.allclose(ops.GaussianBlur([1.0, 2.0])(torch.ones(1, 2, 8, 8), 1), torch.ones(1, 2, 8, 8))
    grows = ops.GaussianBlur(0.5, decay_factor=0.5)
    assert grows(delta, 3).max() < grows(delta, 1).max()  # sigma 1.5 at iteration 3, 0.5 at iteration 1


def test_regularizers_give_known_values():
    checker = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]])
    assert ops.TotalVariation(weight=2.0)(checker, 0).item() == 8.0  # 2 row + 2 column differences of 1
    assert ops.LpNorm(weight=1.0, p=2)(torch.ones(2, 1, 2, 2), 0).item() == pytest.approx(2.0)
    box = ops.BoxContrast(weight=1.0, filter_size=2, box_constraint=1.0, p=1, l1_weight=0.0)
    assert box(torch.ones(1, 1, 2, 2), 0).item() == pytest.approx(3.0)  # one box of energy 4, 3 above the bound
    assert box(0.4 * torch.ones(1, 1, 2, 2), 0).item() == 0.0
    assert ops.Transparency(0.5)(torch.ones(2, 2, 3, 3), 0).item() == 0.5
    twins = torch.stack([torch.arange(4.0), torch.arange(4.0)]).reshape(2, 1, 2, 2)
    assert ops.Similarity(metric="cosine")(twins, 0).item() == pytest.approx(1.0, abs=1e-6)
    assert ops.Similarity()(twins[:1], 0).item() == 0.0


def test_random_ops_draw_from_the_runs_seeded_streams():
    x = torch.arange(36.0).reshape(1, 1, 6, 6)
    with rng.seeded([5]):
        first = ops.Jitter(2)(x, 0), ops.RandomCrop(3, 4)(x, 0)
    with rng.seeded([5]):
        again = ops.Jitter(2)(x, 0), ops.RandomCrop(3, 4)(x, 0)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert first[0].shape == x.shape and first[1].shape == (1, 1, 3, 4)
    crops = ops.BatchedCrops(4, 4, step_size=2)(x, 0)
    assert crops.shape == (4, 1, 4, 4) and torch.equal(crops[3], x[0, :, 2:, 2:])


def test_hyperparameters_are_checked_by_name():
    with pytest.raises(ValueError, match="norm must be >= 0"):
        ops.ChangeNorm(-1.0)
    with pytest.raises(ValueError, match="combine_op must be one of"):
        ops.Similarity(combine_op="median")


def test_legacy_gradient_ascent_runs_on_the_engine_loop(capsys):
    target = torch.tensor([[1.0, -2.0]])

    @varargin
    def halve_gradient(grad):
        return grad / 2

    x0 = torch.zeros(1, 2)
    opt_x, fevals, reg_terms = gradient_ascent(lambda x: -(x - target).pow(2).sum(), x0, gradient_f=halve_gradient,
                                               step_size=0.5, num_iterations=40, print_iters=20)
    assert torch.allclose(opt_x, target, atol=1e-4) and torch.equal(x0, torch.zeros(1, 2))
    assert len(fevals) == 41 and fevals[-1] == pytest.approx(0.0, abs=1e-6) and reg_terms == []
    assert "Iter 20:" in capsys.readouterr().out
    saved, _, _ = gradient_ascent(lambda x: x.sum(), x0, num_iterations=4, save_iters=2, print_iters=100)
    assert len(saved) == 2 and torch.allclose(saved[1], torch.full((1, 2), 0.4))
    with pytest.raises(ValueError, match="float32"):
        gradient_ascent(lambda x: x.sum(), x0.double())


def test_legacy_helpers_and_models():
    add = varargin(lambda x: x + 1)
    assert add(1, iteration=3) == 2
    assert Compose([add, add])(1, iteration=1) == 3 and Compose([])(1) is None
    assert Combine([lambda x: x, lambda x: 2 * x])(torch.tensor(1.0)).item() == 3.0
    with pytest.raises(NotImplementedError, match="torchvision"):
        VGG19(layer=1, channel=0)
