"""Video MEIs end to end through ``mei.methods.gradient_ascent``: known optima of linear spatio-temporal filters."""

import pytest
import torch

from mei.engine.resolve import validate_config
from mei.methods import gradient_ascent
from mei.modules import ConstrainedOutputModel
from mei.reducers import MeanOverTime, MeanOverWindow
from mei.targets.video import correlation, video_config

from .models import SHAPE, LinearFilterModel, session_filters

FILTERS = session_filters()["session-a"]  # (3 units, C, T, H, W), the filter spans the whole movie


def test_video_config_is_a_valid_plain_json_gradient_ascent_config():
    config = video_config(shape=list(SHAPE), steps=5, sigma=1.0, sigma_time=1.0, max_shift_space=1,
                          max_shift_time=1, smoothness=0.1, x_min=[-1, -2], x_max=[1, 2], track_interval=2)
    validate_config(config)
    assert config["transform"]["path"] == "mei.transforms.SpatioTemporalJitter"
    assert config["precondition"]["path"] == "mei.preconditioners.SpatioTemporalGaussianBlur"
    assert config["postprocessing"]["kwargs"] == {"norm": 10.0, "x_min": [-1, -2], "x_max": [1, 2]}
    assert "minimize" not in config and video_config(minimize=True)["minimize"] is True
    with pytest.raises(ValueError, match="both x_min and x_max"):
        video_config(x_min=0)


@pytest.mark.parametrize("unit", [0, 2])
def test_the_mei_of_a_linear_spatiotemporal_filter_is_the_filter(unit):
    objective = ConstrainedOutputModel(LinearFilterModel(FILTERS), unit, target_fn=MeanOverTime())
    config = video_config(shape=list(SHAPE), steps=40, lr=0.5, norm=5.0, track_interval=10)
    mei, score, output = gradient_ascent(None, objective, config, seed=7)
    assert mei.shape == SHAPE
    assert correlation(mei, FILTERS[unit]) >= 0.99
    assert mei.norm().item() == pytest.approx(5.0, rel=1e-5)
    best = 5.0 * FILTERS[unit].norm().item()  # <f, x> with |x| = 5 is at most 5 |f|
    assert best * 0.99 <= score <= best * (1 + 1e-5)
    assert output["EvaluationObjective"]["times"] == [0, 10, 20, 30]


def test_minimize_finds_the_least_exciting_video_the_negative_filter():
    objective = ConstrainedOutputModel(LinearFilterModel(FILTERS), 1, target_fn=MeanOverTime())
    config = video_config(shape=list(SHAPE), steps=40, lr=0.5, norm=5.0, minimize=True)
    mei, score, _ = gradient_ascent(None, objective, config, seed=7)
    assert correlation(mei, -FILTERS[1]) >= 0.99
    assert score == pytest.approx(-5.0 * FILTERS[1].norm().item(), rel=0.01)


def test_mean_over_a_time_window_gives_the_average_of_the_shifted_filters():
    short = FILTERS[:, :, 2:5]  # 3-frame filters over an 8-frame movie: 6 response bins
    objective = ConstrainedOutputModel(LinearFilterModel(short), 0, target_fn=MeanOverWindow(start=-2))
    assert objective(torch.zeros(SHAPE)).shape == (1,)
    config = video_config(shape=list(SHAPE), steps=60, lr=0.5, norm=5.0)
    mei, _, _ = gradient_ascent(None, objective, config, seed=3)
    expected = torch.zeros(SHAPE[1:])
    for t in (4, 5):  # the last two bins see frames t..t+2
        expected[:, t:t + 3] += short[0] / 2
    assert correlation(mei, expected) >= 0.99
    assert mei[0, :, :4].abs().max() < 1e-3 * mei.abs().max()  # frames no bin of the window sees stay empty


def test_video_mei_with_every_video_component_runs_and_stays_in_range():
    objective = ConstrainedOutputModel(LinearFilterModel(FILTERS), 0, target_fn=MeanOverTime())
    config = video_config(shape=list(SHAPE), steps=30, lr=0.5, norm=5.0, sigma=0.5, sigma_time=0.5,
                          max_shift_space=1, max_shift_time=1, smoothness=0.01, x_min=[-0.6, -0.9],
                          x_max=[0.6, 0.9])
    first, score, _ = gradient_ascent(None, objective, config, seed=11)
    again, _, _ = gradient_ascent(None, objective, config, seed=11)
    assert torch.equal(first, again)  # reproducible from the seed, jitter included
    assert first[:, 0].abs().max() <= 0.6 and first[:, 1].abs().max() <= 0.9
    assert correlation(first, FILTERS[0]) > 0.5 and score > 0  # jitter and low-pass blur the optimum
