"""Batched == unbatched, per component kind: K MEIs in one run equal K single runs with the same seeds."""

import pytest
import torch

from mei.batched import gradient_ascent_batched
from mei.methods import gradient_ascent, recording
from tests.batched.helpers import TOLERANCE, config, tiny_cnn, unit_models

UNITS = [0, 3, 1, 4]
SEEDS = [11, 12, 13, 14]


def as_tensor(values):
    return torch.stack(values) if isinstance(values[0], torch.Tensor) else torch.tensor(values)


def assert_same(cfg, units=UNITS, seeds=SEEDS):
    """Run batched and one by one; compare MEIs, scores, tracked outputs and step counts per key."""
    net = tiny_cnn()
    models = unit_models(net, units)
    with recording() as info:
        batched = gradient_ascent_batched(None, models, cfg, seeds)
    assert len(batched) == len(seeds)
    for k, (model, seed) in enumerate(zip(models, seeds, strict=True)):
        with recording() as single_info:
            mei, score, output = gradient_ascent(None, model, cfg, seed)
        b_mei, b_score, b_output = batched[k]
        assert b_mei.shape == mei.shape == (1, 1, 8, 8)
        torch.testing.assert_close(b_mei, mei, **TOLERANCE)
        assert b_score == pytest.approx(score, rel=1e-5, abs=1e-5)
        assert info["steps"][k] == single_info["steps"]
        assert b_output.keys() == output.keys()
        for name in output:
            assert b_output[name]["times"] == output[name]["times"]
            torch.testing.assert_close(as_tensor(b_output[name]["values"]), as_tensor(output[name]["values"]),
                                       **TOLERANCE)
    return batched, info["steps"]


def spec(path, **kwargs):
    return {"path": path, "kwargs": kwargs}


COMPONENTS = {
    "initial-random-normal": {"initial": spec("mei.initial.RandomNormal", std=0.5)},
    "initial-constant": {"initial": spec("mei.initial.Constant", value=0.1)},
    "transform-jitter": {"transform": spec("mei.transforms.Jitter", max_shift=2)},
    "transform-random-crop": {"transform": spec("mei.transforms.RandomCrop", height=6, width=5)},
    "transform-random-scale": {"transform": spec("mei.transforms.RandomScale", min_scale=0.8, max_scale=1.3)},
    "regularization-l2": {"regularization": spec("mei.regularizers.L2Norm", weight=0.05)},
    "regularization-tv": {"regularization": spec("mei.regularizers.TotalVariation", weight=0.02)},
    "precondition-blur": {"precondition": spec("mei.preconditioners.GaussianBlur", sigma=1.0)},
    "precondition-fourier": {"precondition": spec("mei.preconditioners.FourierSmoothing", factor=0.5)},
    "postprocessing-norm": {"postprocessing": spec("mei.postprocessing.ChangeNorm", norm=3.0)},
    "postprocessing-std": {"postprocessing": spec("mei.postprocessing.ChangeStd", std=0.5)},
    "postprocessing-clip": {"postprocessing": spec("mei.postprocessing.ClipRange", x_min=-0.5, x_max=0.5)},
    "objectives": {"objectives": [spec("mei.objectives.EvaluationObjective", interval=2),
                                  spec("mei.objectives.RegularizationObjective", interval=3),
                                  spec("mei.objectives.PostProcessedInputObjective", interval=5)],
                   "regularization": spec("mei.regularizers.L2Norm", weight=0.05)},
}


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_each_component_kind_gives_the_single_run_result(name):
    assert_same(config(**COMPONENTS[name]))


@pytest.mark.parametrize("optimizer,lr", [("torch.optim.Adam", 0.05), ("torch.optim.SGD", 0.1)])
def test_everything_random_at_once_with_stateful_optimizers(optimizer, lr):
    cfg = config(optimizer=optimizer, lr=lr, **COMPONENTS["transform-jitter"], **COMPONENTS["regularization-tv"],
                 **COMPONENTS["precondition-blur"], **COMPONENTS["postprocessing-norm"])
    assert_same(cfg)


def test_plateau_stoppers_stop_each_image_at_its_own_step():
    cfg = config(optimizer="torch.optim.Adam", lr=0.05,
                 stopper=spec("mei.stoppers.EvaluationPlateau", patience=2, min_delta=0.01, max_iterations=60),
                 postprocessing=spec("mei.postprocessing.ChangeNorm", norm=2.0))
    _, steps = assert_same(cfg)
    assert len(set(steps)) > 1, f"want images stopping at different steps, got {steps}"


def test_k_seeds_of_one_unit():
    net = tiny_cnn()
    model = unit_models(net, [2])[0]
    cfg = config(transform=spec("mei.transforms.Jitter", max_shift=1))
    batched = gradient_ascent_batched(None, model, cfg, [1, 2, 3])
    for seed, (mei, score, _) in zip([1, 2, 3], batched, strict=True):
        single = gradient_ascent(None, model, cfg, seed)
        torch.testing.assert_close(mei, single[0], **TOLERANCE)
        assert score == pytest.approx(single[1], rel=1e-5, abs=1e-5)
    assert not torch.allclose(batched[0][0], batched[1][0])  # different seeds, different MEIs


def test_a_batch_of_one_is_the_plain_run():
    net = tiny_cnn()
    [model] = unit_models(net, [1])
    cfg = config(transform=spec("mei.transforms.Jitter", max_shift=1))
    [(mei, score, _)] = gradient_ascent_batched(None, [model], cfg, [5])
    single_mei, single_score, _ = gradient_ascent(None, model, cfg, 5)
    assert torch.equal(mei, single_mei)
    assert score == single_score
