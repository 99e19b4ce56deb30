"""Several views per step (mei.transforms.Views): one batched forward, the objective averaged over the views."""

import pytest
import torch

from mei.batched import gradient_ascent_batched
from mei.engine import rng
from mei.engine.resolve import ConfigError, validate_config
from mei.methods import gradient_ascent
from mei.modules import ConstrainedOutputModel
from mei.optimization import MEI, optimize
from mei.stoppers import NumIterations
from mei.transforms import Jitter, RandomAffine, Views
from tests.batched.helpers import TOLERANCE, config, tiny_cnn, unit_models
from tests.components import QuadraticModel

JITTER = {"path": "mei.transforms.Jitter", "kwargs": {"max_shift": 2}}


def views(n, *transforms):
    return {"path": "mei.transforms.Views", "kwargs": {"n_views": n, "transforms": list(transforms)}}


def test_views_tile_the_batch_view_major_and_each_view_draws_its_own_numbers():
    x = torch.arange(2 * 16, dtype=torch.float32).reshape(2, 1, 4, 4)
    assert torch.equal(Views(3)(x, 0), torch.cat([x, x, x]))
    with rng.seeded([1, 2]):
        out = Views(3, [Jitter(1)])(x, 0)
    assert out.shape == (6, 1, 4, 4)
    assert len({tuple(view.flatten().tolist()) for view in out[0::2]}) > 1  # image 0's views differ
    with rng.seeded([1]):  # image 0 alone draws the same views as in the batch of two
        alone = Views(3, [Jitter(1)])(x[:1], 0)
    assert torch.equal(alone, out[0::2])


def test_identical_views_give_the_single_view_run():
    model = QuadraticModel()
    cfg = config(steps=15, shape=[1, 1, 8, 8])
    single = gradient_ascent(None, model, cfg, 0)[0]
    tiled = gradient_ascent(None, model, {**cfg, "transform": views(4)}, 0)[0]
    torch.testing.assert_close(tiled, single, atol=1e-6, rtol=1e-6)


class Views3Recorder:
    reads_input = True

    def __init__(self):
        self.states = []

    def track(self, state):
        self.states.append((state.transformed_input.clone(), state.evaluation_tensor.clone(), state.reg_term))


def test_the_objective_is_the_mean_over_views_in_one_forward():
    model = QuadraticModel(torch.zeros(1, 1, 8, 8))
    tracker = Views3Recorder()
    with rng.seeded([3, 4]):
        mei = MEI(model, torch.randn(2, 1, 8, 8), lambda p: torch.optim.SGD(p, lr=0.01),
                  transform=Views(5, [RandomAffine(0.8, 1.2, 20.0, max_shift=2)]),
                  regularization=lambda x, i: x.pow(2).sum())
        optimize(mei, NumIterations(4), tracker)
    assert model.calls == 4 + 1  # one forward per step (all five views of both images), one final evaluation
    for transformed, evaluation, reg_term in tracker.states:
        assert transformed.shape == (10, 1, 8, 8)
        expected = model(transformed).reshape(5, 2).mean(dim=0)
        torch.testing.assert_close(evaluation, expected)
        torch.testing.assert_close(torch.as_tensor(reg_term), transformed.pow(2).sum() / 5)


def test_views_in_a_batched_run_equal_one_run_per_seed():
    cfg = config(steps=6, transform=views(3, JITTER))
    net = tiny_cnn()
    models = unit_models(net, [0, 3, 1])
    batched = gradient_ascent_batched(None, models, cfg, [5, 6, 7])
    for (b_mei, b_score, _), model, seed in zip(batched, models, [5, 6, 7], strict=True):
        mei, score, _ = gradient_ascent(None, model, cfg, seed)
        torch.testing.assert_close(b_mei, mei, **TOLERANCE)
        assert b_score == pytest.approx(score, rel=1e-5, abs=1e-6)
    # the same seeds with views differ from the run without views: the views did something
    assert not torch.allclose(gradient_ascent(None, models[0], config(steps=6, transform=JITTER), 5)[0],
                              batched[0][0])


def test_views_in_json_configs_are_validated():
    validate_config(config(transform=views(4, JITTER)))
    with pytest.raises(ConfigError, match="n_views"):
        validate_config(config(transform=views(0, JITTER)))
    with pytest.raises(ConfigError, match="transforms"):
        validate_config(config(transform={"path": "mei.transforms.Views", "kwargs": {"n_views": 2, "transforms": 3}}))


def test_a_transform_that_returns_a_partial_batch_is_refused():
    model = ConstrainedOutputModel(tiny_cnn(), 0)
    mei = MEI(model, torch.zeros(2, 1, 8, 8), lambda p: torch.optim.SGD(p, lr=0.1),
              transform=lambda x, i: torch.cat([x, x[:1]]))
    with pytest.raises(ValueError, match="returned 3 images for 2 input images"):
        mei.step()
