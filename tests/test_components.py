"""Built-in components: readable reprs, checked hyperparameters, per-image behaviour, exact values."""

import pytest
import torch

from mei import initial, postprocessing, preconditioners, regularizers, transforms
from mei.engine import rng
from mei.modules import ConstrainedOutputModel, EnsembleModel
from mei.stoppers import EvaluationPlateau, NumIterations


def test_reprs_read_like_the_call():
    assert repr(NumIterations(5)) == "NumIterations(5)"
    assert repr(postprocessing.ClipRange(-1, 1)) == "ClipRange(x_min=-1, x_max=1)"
    assert repr(preconditioners.GaussianBlur(1.5)) == "GaussianBlur(sigma=1.5, truncate=4.0, padding='reflect')"


@pytest.mark.parametrize("build, message", [
    (lambda: NumIterations(0), "num_iterations must be >= 1"),
    (lambda: NumIterations(2.5), "whole number"),
    (lambda: EvaluationPlateau(patience=-1), "patience"),
    (lambda: initial.RandomNormal(std=-1), "std must be >= 0"),
    (lambda: transforms.Jitter(max_shift=-1), "max_shift"),
    (lambda: regularizers.LpNorm(p=0.5), "p must be >= 1"),
    (lambda: preconditioners.GaussianBlur(sigma=-1), "sigma"),
    (lambda: preconditioners.GaussianBlur(sigma=1, padding="zeros"), "padding"),
    (lambda: postprocessing.ChangeNorm(0), "norm must be > 0"),
    (lambda: transforms.RandomScale(2, 1), "max_scale"),
])
def test_bad_hyperparameters_raise_value_errors_naming_them(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_random_normal_draws_per_image_from_the_seeded_streams():
    with rng.seeded([1, 2]):
        both = initial.RandomNormal()((2, 1, 4, 4))
    with rng.seeded([2]):
        second = initial.RandomNormal()((1, 1, 4, 4))
    assert torch.equal(both[1:], second)


def test_selected_channels_initial_fills_the_other_channels():
    with rng.seeded([0]):
        x = initial.RandomNormalSelectedChannels([1], fill_value=0.5)((1, 3, 4, 4))
    assert torch.all(x[:, [0, 2]] == 0.5)
    assert x[:, 1].std() > 0.3


def test_jitter_is_a_circular_shift_within_max_shift():
    x = torch.arange(2 * 16.0).reshape(2, 1, 4, 4)
    with rng.seeded([3, 4]):
        y = transforms.Jitter(1)(x, 0)
    for k in range(2):
        matches = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                   if torch.equal(y[k], torch.roll(x[k], (dy, dx), dims=(-2, -1)))]
        assert len(matches) == 1


def test_random_scale_of_one_is_the_identity():
    x = torch.randn(2, 1, 6, 6)
    assert torch.allclose(transforms.RandomScale(1.0, 1.0)(x, 0), x, atol=1e-5)


def test_random_crop_of_full_size_is_the_identity():
    x = torch.randn(1, 2, 5, 7)
    assert torch.allclose(transforms.RandomCrop(5, 7)(x, 0), x, atol=1e-5)


def test_regularizers_sum_per_image_terms():
    x = torch.tensor([[3.0, 4.0], [6.0, 8.0]]).reshape(2, 1, 1, 2)
    assert regularizers.L2Norm(weight=2)(x, 0).item() == pytest.approx(2 * (5 + 10))
    assert regularizers.L1Norm()(x, 0).item() == pytest.approx(21)
    assert regularizers.L2Norm(power=True)(x, 0).item() == pytest.approx(25 + 100)
    tv = regularizers.TotalVariation(weight=1)(torch.tensor([[[[0.0, 1.0], [3.0, 1.0]]]]), 0)
    assert tv.item() == pytest.approx((1 + 2) + (3 + 0))


def test_gaussian_blur_preserves_mass_and_lowers_high_frequencies():
    grad = torch.zeros(1, 1, 15, 15)
    grad[..., 7, 7] = 1
    blurred = preconditioners.GaussianBlur(1.0)(grad, 0)
    assert blurred.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert blurred[..., 7, 7].item() == pytest.approx(1 / (2 * 3.14159265), rel=0.02)
    checker = ((torch.arange(8)[:, None] + torch.arange(8)) % 2 * 2 - 1.0)[None, None]
    assert preconditioners.GaussianBlur(1.0, padding="circular")(checker, 0).abs().max() < 1e-3


def test_fourier_smoothing_of_factor_zero_is_the_identity_and_damps_high_frequencies():
    grad = torch.randn(2, 3, 8, 10)
    assert torch.allclose(preconditioners.FourierSmoothing(0)(grad, 0), grad, atol=1e-5)
    checker = ((torch.arange(8)[:, None] + torch.arange(10)) % 2 * 2 - 1.0)[None, None]
    constant = torch.ones(1, 1, 8, 10)
    smooth = preconditioners.FourierSmoothing(1.0)
    assert smooth(checker, 0).norm() < 0.1 * smooth(constant, 0).norm()


def test_postprocessing_statistics_are_per_image():
    x = torch.randn(3, 2, 5, 5) * torch.tensor([1.0, 5.0, 0.1]).view(3, 1, 1, 1)
    normed = postprocessing.ChangeNorm(2.0)(x, 0)
    assert torch.allclose(normed.flatten(1).norm(dim=1), torch.full((3,), 2.0))
    stds = postprocessing.ChangeStd(0.5)(x, 0).flatten(1).std(dim=1)
    assert torch.allclose(stds, torch.full((3,), 0.5))


def test_constrained_output_model_and_ensemble_pass_forward_kwargs():
    class TwoSessions(torch.nn.Module):
        def forward(self, x, data_key):
            scale = {"a": 1.0, "b": 10.0}[data_key]
            return scale * x.flatten(1)[:, :3]

    x = torch.ones(2, 3)
    ensemble = EnsembleModel(TwoSessions(), TwoSessions())
    unit = ConstrainedOutputModel(ensemble, 2, forward_kwargs={"data_key": "b"})
    assert torch.equal(unit(x), torch.full((2,), 10.0))
    assert repr(unit) == f"ConstrainedOutputModel({ensemble!r}, 2, forward_kwargs={{'data_key': 'b'}})"
    assert repr(ensemble) == "EnsembleModel(TwoSessions(), TwoSessions())"
    with pytest.raises(ValueError, match="at least one member"):
        EnsembleModel()(x)
