"""FusedEnsembleModel and the ``fuse_ensemble`` batch option: the ensemble's values, not the ensemble's cost."""

import pytest
import torch
from torch import nn

from mei.methods import gradient_ascent, gradient_ascent_batched
from mei.modules import (BatchedConstrainedOutputModel, ConstrainedOutputModel, EnsembleModel, FusedEnsembleModel,
                         fuse_ensembles)
from mei.resolve import ConfigError, validate_config
from tests.batched.helpers import TOLERANCE, config, tiny_cnn

UNITS = [0, 3, 1, 4]
SEEDS = [21, 22, 23, 24]


def ensemble(members: int = 3) -> EnsembleModel:
    return EnsembleModel(*[tiny_cnn(seed=m) for m in range(members)]).eval()


def test_fused_output_and_input_gradient_equal_the_ensembles():
    model = ensemble()
    fused = FusedEnsembleModel(*model.members)
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
def test_fused_batch_gives_the_single_runs_meis(extra):
    model = ensemble()
    objectives = [ConstrainedOutputModel(model, unit) for unit in UNITS]
    cfg = config(batch={"fuse_ensemble": True}, **extra)
    batched = gradient_ascent_batched(None, objectives, cfg, SEEDS)
    for (mei, score, _), objective, seed in zip(batched, objectives, SEEDS):
        single_mei, single_score, _ = gradient_ascent(None, objective, cfg, seed)
        torch.testing.assert_close(mei, single_mei, **TOLERANCE)
        assert score == pytest.approx(single_score, rel=1e-5, abs=1e-5)
    assert isinstance(objectives[0].model, EnsembleModel)  # the caller's objective is not changed


def test_fuse_ensemble_without_an_ensemble_runs_as_it_is():
    objectives = [ConstrainedOutputModel(tiny_cnn(), unit) for unit in UNITS]
    fused = gradient_ascent_batched(None, objectives, config(batch={"fuse_ensemble": True}), SEEDS)
    plain = gradient_ascent_batched(None, objectives, config(), SEEDS)
    for (a, score_a, _), (b, score_b, _) in zip(fused, plain):
        assert torch.equal(a, b) and score_a == score_b


def test_fuse_ensemble_must_be_a_bool():
    with pytest.raises(ConfigError, match="batch.fuse_ensemble: must be true or false, got 'yes'"):
        validate_config(config(batch={"fuse_ensemble": "yes"}))
