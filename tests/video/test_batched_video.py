"""Batched generation (``gradient_ascent_batched``) with every video component equals one run per neuron."""

import pytest
import torch

from mei.batched import BatchedConstrainedOutputModel, batch_objectives, gradient_ascent_batched
from mei.methods import gradient_ascent
from mei.modules import ConstrainedOutputModel
from mei.reducers import MeanOverTime
from mei.targets.contrastive import ContrastiveObjective
from mei.targets.video import video_config

from .models import SHAPE, LinearFilterModel, session_filters

CONFIG = video_config(shape=list(SHAPE), steps=15, lr=0.5, norm=5.0, sigma=0.5, sigma_time=0.5, max_shift_space=1,
                      max_shift_time=2, smoothness=0.01, x_min=[-0.6, -0.9], x_max=[0.6, 0.9])
MODEL = LinearFilterModel(session_filters()["session-a"])
REDUCER = MeanOverTime()  # one reducer object: units of one model then share one batched forward
UNITS = [ConstrainedOutputModel(MODEL, u, target_fn=REDUCER) for u in range(3)]
MIXED = [UNITS[0], ContrastiveObjective(MODEL, 1, temperature=2.0, reducer=REDUCER)]


@pytest.mark.parametrize("objectives", [UNITS, MIXED], ids=["one-forward", "per-image"])
def test_batched_video_meis_equal_one_run_per_neuron_with_every_video_component(objectives):
    seeds = list(range(4, 4 + len(objectives)))
    batched = gradient_ascent_batched(None, objectives, CONFIG, seeds)
    for objective, seed, (mei, score, _) in zip(objectives, seeds, batched, strict=True):
        alone, alone_score, _ = gradient_ascent(None, objective, CONFIG, seed)
        assert torch.allclose(mei, alone, atol=1e-5), objective
        assert abs(score - alone_score) <= 1e-4 * abs(alone_score)
    assert not torch.allclose(batched[0][0], batched[1][0], atol=1e-2)  # different objectives, different MEIs
    assert isinstance(batch_objectives(UNITS), BatchedConstrainedOutputModel)
