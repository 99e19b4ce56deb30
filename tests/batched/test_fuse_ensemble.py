"""FusedEnsembleModel and the ``fuse_ensemble`` batch option: the ensemble's values, not the ensemble's cost."""

import copy

import pytest
import torch
from torch import nn

from mei.batched import BatchedConstrainedOutputModel, FusedEnsembleModel, fuse_ensembles, gradient_ascent_batched
from mei.engine.resolve import ConfigError, validate_config
from mei.methods import gradient_ascent
from mei.modules import ConstrainedOutputModel, EnsembleModel
from tests.batched.helpers import TOLERANCE, config, tiny_cnn

UNITS = [0, 3, 1, 4]
SEEDS = [21, 22, 23, 24]


def ensemble(members: int = 3) -> EnsembleModel:
    return EnsembleModel(*[tiny_cnn(seed=m) for m in range(members)]).eval()


@pytest.mark.parametrize("dense", [False, True], ids=["grouped", "dense"])
def test_fused_output_and_input_gradient_equal_the_ensembles(dense):
    model = ensemble()
    fused = FusedEnsembleModel(*model.members, dense=dense)
    assert fused.n_dense == (2 if dense else 0)  # both convolutions of tiny_cnn
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(0), requires_grad=True)
    expected = model(x)
    (expected_grad,) = torch.autograd.grad(expected[:, 2].sum(), x)
    actual = fused(x)
    (actual_grad,) = torch.autograd.grad(actual[:, 2].sum(), x)
    assert actual.shape == expected.shape == (6, 5)
    torch.testing.assert_close(actual, expected, **TOLERANCE)
    torch.testing.assert_close(actual_grad, expected_grad, **TOLERANCE)
    # the members really differ, so a fused model that ran one member only would fail the check above
    assert (model.members[0](x) - model.members[1](x)).abs().max() > 0.1


def test_one_member_and_forward_kwargs():
    class Sessions(nn.Module):
        def __init__(self, seed):
            super().__init__()
            self.net = tiny_cnn(seed=seed)

        def forward(self, x, data_key="a"):
            return self.net(x) * (2.0 if data_key == "b" else 1.0)

    members = [Sessions(0), Sessions(1)]
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(FusedEnsembleModel(*members)(x, data_key="b"),
                               EnsembleModel(*members)(x, data_key="b"), **TOLERANCE)
    torch.testing.assert_close(FusedEnsembleModel(members[0])(x), members[0](x), **TOLERANCE)


def test_members_of_different_architectures_are_refused_by_name():
    with pytest.raises(ValueError, match=r"different architectures: member 0 has \('0.weight', \(3, 1, 3, 3\)"):
        FusedEnsembleModel(tiny_cnn(), nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ELU(), nn.Flatten(),
                                                     nn.Linear(4 * 64, 5)))
    with pytest.raises(ValueError, match="different classes: member 0 is Sequential, member 1 is Linear"):
        FusedEnsembleModel(tiny_cnn(), nn.Linear(3, 3))
    with pytest.raises(ValueError, match="at least one member"):
        FusedEnsembleModel()


def test_fuse_ensembles_replaces_only_a_copy():
    model = ensemble()
    objective = BatchedConstrainedOutputModel(model, UNITS)
    fused, count = fuse_ensembles(objective)
    assert count == 1 and isinstance(fused.model, FusedEnsembleModel)
    assert objective.model is model and fused.units is objective.units
    fused.to(torch.float64)  # moving the copy leaves the original's buffers alone
    assert objective.model.members[0][0].weight.dtype == torch.float32
    single, count = fuse_ensembles(ConstrainedOutputModel(model, 1))
    assert count == 1 and single.constraint == 1 and isinstance(single.model, FusedEnsembleModel)
    plain = ConstrainedOutputModel(tiny_cnn(), 1)
    assert fuse_ensembles(plain) == (plain, 0)
    one = ConstrainedOutputModel(EnsembleModel(tiny_cnn()), 1)
    assert fuse_ensembles(one) == (one, 0)


@pytest.mark.parametrize("extra", [
    {},
    {"transform": {"path": "mei.transforms.Jitter", "kwargs": {"max_shift": 2}},
     "precondition": {"path": "mei.preconditioners.GaussianBlur", "kwargs": {"sigma": 1.0}},
     "postprocessing": {"path": "mei.postprocessing.ChangeNorm", "kwargs": {"norm": 3.0}}},
], ids=["plain", "jitter-blur-norm"])
@pytest.mark.parametrize("fuse", [True, "dense"])
def test_fused_batch_gives_the_single_runs_meis(extra, fuse):
    model = ensemble()
    objectives = [ConstrainedOutputModel(model, unit) for unit in UNITS]
    cfg = config(batch={"fuse_ensemble": fuse}, **extra)
    batched = gradient_ascent_batched(None, objectives, cfg, SEEDS)
    for (mei, score, _), objective, seed in zip(batched, objectives, SEEDS, strict=True):
        single_mei, single_score, _ = gradient_ascent(None, objective, cfg, seed)
        torch.testing.assert_close(mei, single_mei, **TOLERANCE)
        assert score == pytest.approx(single_score, rel=1e-5, abs=1e-5)
    assert isinstance(objectives[0].model, EnsembleModel)  # the caller's objective is not changed


def test_fuse_ensemble_without_an_ensemble_runs_as_it_is():
    objectives = [ConstrainedOutputModel(tiny_cnn(), unit) for unit in UNITS]
    fused = gradient_ascent_batched(None, objectives, config(batch={"fuse_ensemble": True}), SEEDS)
    plain = gradient_ascent_batched(None, objectives, config(), SEEDS)
    for (a, score_a, _), (b, score_b, _) in zip(fused, plain, strict=True):
        assert torch.equal(a, b) and score_a == score_b


def test_fuse_ensemble_must_be_a_bool_or_a_kind():
    with pytest.raises(ConfigError, match="batch.fuse_ensemble: must be true, false, 'grouped' or 'dense', got 'yes'"):
        validate_config(config(batch={"fuse_ensemble": "yes"}))
    for value in (True, False, "grouped", "dense"):
        validate_config(config(batch={"fuse_ensemble": value}))
    validate_config(config(batch={"fuse_ensemble": "grouped", "compile": True}))
    with pytest.raises(ConfigError, match="batch.fuse_ensemble: 'dense' cannot be combined with batch.compile"):
        validate_config(config(batch={"fuse_ensemble": "dense", "compile": "max-autotune"}))


class Strided(nn.Module):
    """Shared-input conv, a strided + dilated conv, a grouped conv (left to vmap's own rule), a bias-free one with
    "same" padding and one whose "same" padding is asymmetric (left to vmap too)."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.layers = nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2), nn.ELU(),
            nn.Conv2d(6, 6, 1, groups=3), nn.Conv2d(6, 2, (3, 1), padding="same", bias=False),
            nn.Conv2d(2, 2, 2, padding="same"),  # asymmetric "same" padding: left to vmap's rule
        )
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)

    def forward(self, x):
        return self.layers(x).flatten(1)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("channels_last", [False, True])
def test_dense_fusion_handles_stride_dilation_padding_and_leaves_grouped_or_asymmetric_convolutions(channels_last):
    members = [Strided(seed) for seed in range(4)]
    fused = FusedEnsembleModel(*members, dense=True)
    assert fused.n_dense == 3 and "dense convolutions=3" in repr(fused)
    x = torch.randn(3, 2, 9, 9, generator=torch.Generator().manual_seed(1))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    expected = EnsembleModel(*members)(x)
    (expected_grad,) = torch.autograd.grad(expected.square().sum(), x)
    actual = fused(x)
    (actual_grad,) = torch.autograd.grad(actual.square().sum(), x)
    torch.testing.assert_close(actual, expected, **TOLERANCE)
    torch.testing.assert_close(actual_grad, expected_grad, **TOLERANCE)


def test_a_dense_member_convolution_outside_vmap_is_an_ordinary_convolution():
    from mei.batched.fusion import _dense_convolutions

    plain = nn.Conv2d(3, 4, 3, stride=2, padding=1)
    dense = copy.deepcopy(plain)
    assert _dense_convolutions(dense) == 1 and type(dense).__name__ == "_DenseMemberConv2d"
    x = torch.randn(2, 3, 7, 7, generator=torch.Generator().manual_seed(2), requires_grad=True)
    grads = []
    for conv in (plain, dense):
        out = conv(x)
        grads.append(torch.autograd.grad(out.square().sum(), [x, conv.weight, conv.bias]))
        torch.testing.assert_close(out, plain(x))
    for expected, actual in zip(*grads, strict=True):
        torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize("fuse", [True, "dense"])
def test_fusion_with_channels_last_gives_the_plain_ensembles_meis(fuse):
    """channels-last converts the fused state as it does the members' (the stacked weights keep rank 4)."""
    model = ensemble()
    fused = FusedEnsembleModel(*model.members, dense=fuse == "dense").to(memory_format=torch.channels_last)
    weight = fused._stacked()["0.weight"]
    assert weight.shape == (3, 3, 1, 3, 3) and weight[1].is_contiguous(memory_format=torch.channels_last)
    objectives = [ConstrainedOutputModel(model, unit) for unit in UNITS]
    plain = gradient_ascent_batched(None, objectives, config(), SEEDS)
    fast = gradient_ascent_batched(None, objectives, config(batch={"fuse_ensemble": fuse, "channels_last": True}),
                                   SEEDS)
    for (mei, score, _), (plain_mei, plain_score, _) in zip(fast, plain, strict=True):
        torch.testing.assert_close(mei, plain_mei, **TOLERANCE)
        assert score == pytest.approx(plain_score, rel=1e-5, abs=1e-5)
