"""A config that does not fit the model's input, and an objective that selects a unit the model does not have:
clear errors naming the key (and the valid range), before any step is taken."""

import pytest
import torch

from mei.engine.errors import UnitOutOfRangeError
from mei.engine.resolve import ConfigError, validate_config
from mei.methods import gradient_ascent
from mei.modules import ConstrainedOutputModel
from mei.pipeline.generation import run_config

TEMPORAL_BLUR = {"path": "mei.preconditioners.TemporalGaussianBlur", "kwargs": {"sigma": 1.0}}
VIDEO_JITTER = {"path": "mei.transforms.SpatioTemporalJitter", "kwargs": {"max_shift_time": 1, "max_shift_space": 1}}


def config(**extra):
    return {"device": "cpu", "initial": {"path": "mei.initial.RandomNormal"},
            "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": 0.1}},
            "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": 2}}, **extra}


class Recorder(torch.nn.Module):
    """Sum of the input; counts its forward calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x.flatten(1).sum(dim=1)


def test_a_temporal_component_on_an_image_input_is_refused_before_any_step():
    model = Recorder()
    with pytest.raises(ConfigError) as error:  # the shape from the dataloaders: checked at run time
        gradient_ascent({"train": {"a": [(torch.zeros(1, 1, 8, 8),)]}}, model, config(precondition=TEMPORAL_BLUR), 0)
    assert error.value.key == "precondition"
    assert error.value.message.startswith("TemporalGaussianBlur works along time (dim=2), but the input is 4-D "
                                          "(1, 1, 8, 8), where dimension 2 is the height")
    assert model.calls == 0


def test_the_check_reaches_components_inside_compose_and_runs_at_validation_with_a_shape():
    nested = {"path": "mei.transforms.Compose", "kwargs": {"transforms": [
        {"path": "mei.transforms.Jitter", "kwargs": {"max_shift": 1}}, VIDEO_JITTER]}}
    with pytest.raises(ConfigError) as error:
        validate_config(config(shape=[1, 1, 8, 8], transform=nested))
    assert error.value.key == "transform.kwargs.transforms[1]"
    assert "SpatioTemporalJitter works along time (time_dim=2)" in error.value.message
    smooth = {"path": "mei.regularizers.TemporalSmoothness", "kwargs": {"weight": 1.0, "dim": -1}}
    with pytest.raises(ConfigError, match="dimension -1 is the width"):
        validate_config(config(shape=[1, 1, 5, 8, 8], regularization=smooth))


def test_video_components_on_a_video_input_run():
    mei, _, _ = gradient_ascent(None, Recorder(), config(shape=[1, 1, 4, 8, 8], precondition=TEMPORAL_BLUR,
                                                         transform=VIDEO_JITTER), 0)
    assert mei.shape == (1, 1, 4, 8, 8)


def test_a_config_shape_of_another_rank_than_the_models_input_is_refused():
    with pytest.raises(ConfigError) as error:
        run_config(gradient_ascent, config(shape=[1, 1, 4, 8, 8]), [1, 1, 8, 8])
    assert error.value.key == "method_config.shape"
    assert "is 5-D [1, 1, 4, 8, 8], but the model's input is 4-D [1, 1, 8, 8]" in error.value.message
    assert run_config(gradient_ascent, config(), [1, 1, 8, 8])["shape"] == [1, 1, 8, 8]


def test_a_unit_out_of_range_names_the_valid_units():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    with pytest.raises(UnitOutOfRangeError) as error:
        gradient_ascent(None, ConstrainedOutputModel(model, 5), config(shape=[1, 1, 8, 8]), 0)
    assert str(error.value) == "output unit 5 is out of range: the model's output has 3 unit(s), valid units are 0 to 2"
    assert isinstance(error.value, IndexError)
    assert ConstrainedOutputModel(model, -1)(torch.zeros(2, 1, 8, 8)).shape == (2,)  # from the end, as indexing
