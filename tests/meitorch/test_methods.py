"""The modes as pipeline methods: the (dataloaders, model, config, seed) contract and config validation."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mei.engine.resolve import ConfigError, resolve
from mei.meitorch import methods
from mei.methods import recording
from mei.pipeline.generation import validate_method

from .helpers import target


class LinearUnit(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.register_buffer("w", w)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)


W = target(2)
PIXEL = {"device": "cpu", "shape": [1, 1, 8, 8], "iter_n": 20, "norm": 1.0, "optimizer": "sgd",
         "optimizer_params": {"lr": {"schedule": "linear", "start": 0.5, "end": 0.1}}}


def dataloaders():
    images = torch.zeros(4, 1, 8, 8)
    return {"train": {"session": DataLoader(TensorDataset(images, torch.zeros(4, 3)), batch_size=2)}}


def test_pixel_method_returns_mei_score_output():
    with recording() as info:
        mei, score, output = methods.pixel_mei(None, LinearUnit(W), PIXEL, 0)
    assert torch.allclose(mei[0], W / W.norm(), atol=1e-4)
    assert score == pytest.approx(W.norm().item(), rel=1e-4)
    assert output["steps"] == list(range(20)) and len(output["losses"]["activation"]) == 20
    assert info == {"steps": 20, "device": "cpu"}


def test_shape_comes_from_the_dataloaders_and_runs_are_seeded():
    config = {k: v for k, v in PIXEL.items() if k != "shape"} | {"jitter": 1}
    first = methods.pixel_mei(dataloaders(), LinearUnit(W), config, 5)[0]
    assert first.shape == (1, 1, 8, 8)
    assert torch.equal(first, methods.pixel_mei(dataloaders(), LinearUnit(W), config, 5)[0])


def test_variational_and_transformation_methods():
    config = {"shape": [1, 8, 8], "iter_n": 30, "optimizer": "adam", "optimizer_params": {"lr": 0.1},
              "n_samples_per_batch": 4}
    mean, score, output = methods.variational_mei(None, LinearUnit(W), config, 0)
    assert mean.shape == (1, 1, 8, 8) and output["stddev"].shape == (1, 1, 8, 8) and (output["stddev"] > 0).all()
    assert score > 0
    config = {"shape": [1, 1, 8, 8], "iter_n": 5, "n_samples": 3,
              "transform": {"hidden_sizes": [2], "fixed_stddev": 0.1, "activation": "tanh"}}
    samples, score, output = methods.transformation_mei(None, LinearUnit(W), config, 0)
    assert samples.shape == (3, 1, 8, 8) and output["samples"].shape == (3, 1, 8, 8)


@pytest.mark.parametrize("name, config, key", [
    ("pixel_mei", {"iter_n": 2, "blur": "box"}, "blur"),
    ("pixel_mei", {"iter_n": 2, "device": "gpu"}, "device"),
    ("pixel_mei", {"shape": [8, 8]}, "shape"),
    ("pixel_mei", {"norm": {"schedule": "linear", "start": 1}}, "norm"),
    ("variational_mei", {"fixed_stddev": -1}, "fixed_stddev"),
    ("transformation_mei", {"transform": {"hidden_sizes": [2], "activation": "swish"}}, "transform"),
    ("transformation_mei", {"transform": {"path": "os.system", "kwargs": {}}}, "transform.path"),
])
def test_validate_config_names_the_bad_key(name, config, key):
    method = resolve(f"mei.meitorch.methods.{name}")
    with pytest.raises(ConfigError) as error:
        method.validate_config(config)
    assert error.value.key == key
    with pytest.raises(ConfigError):
        validate_method(f"mei.meitorch.methods.{name}", config)


def test_pipeline_validation_accepts_good_configs():
    assert validate_method("mei.meitorch.methods.pixel_mei", PIXEL) is methods.pixel_mei
    validate_method("mei.meitorch.methods.transformation_mei", {"transform": {"hidden_sizes": [1]}})
    assert methods.pixel_mei.accepts_shape is True
    with pytest.raises(ConfigError, match="method_config"):
        validate_method("mei.meitorch.methods.pixel_mei", {"scaler": float("nan")})
