"""``"minimize": true`` finds least-exciting inputs in every engine method (single and batched), for videos."""

import pytest

from mei.batched import gradient_ascent_batched
from mei.methods import gradient_ascent
from mei.modules import ConstrainedOutputModel
from mei.reducers import MeanOverTime
from mei.targets.video import correlation, video_config

from .models import SHAPE, LinearFilterModel, session_filters

FILTERS = session_filters()["session-b"]


def run_single(objectives, config, seeds):
    return [gradient_ascent(None, objective, config, seed) for objective, seed in zip(objectives, seeds, strict=True)]


def run_batched(objectives, config, seeds):
    return gradient_ascent_batched(None, objectives, config, seeds)


@pytest.mark.parametrize("method", [run_single, run_batched], ids=["gradient_ascent", "gradient_ascent_batched"])
def test_minimize_gives_the_negative_filter_and_the_lowest_score(method):
    model = LinearFilterModel(FILTERS)
    objectives = [ConstrainedOutputModel(model, unit, target_fn=MeanOverTime()) for unit in (0, 2)]
    low = method(objectives, video_config(shape=list(SHAPE), steps=30, lr=0.5, norm=5.0, minimize=True), [1, 2])
    high = method(objectives, video_config(shape=list(SHAPE), steps=30, lr=0.5, norm=5.0), [1, 2])
    for unit, (mei, score, _), (top, best, _) in zip((0, 2), low, high, strict=True):
        assert correlation(mei, -FILTERS[unit]) >= 0.99 and correlation(top, FILTERS[unit]) >= 0.99
        assert score == pytest.approx(-best, rel=1e-3)
        assert score == pytest.approx(-5.0 * FILTERS[unit].norm().item(), rel=1e-3)


def test_minimize_must_be_a_boolean():
    from mei.engine.resolve import ConfigError

    config = video_config(shape=list(SHAPE), steps=1)
    config["minimize"] = "yes"
    with pytest.raises(ConfigError, match="minimize: must be true or false"):
        gradient_ascent(None, ConstrainedOutputModel(LinearFilterModel(FILTERS), 0, MeanOverTime()), config, 0)
