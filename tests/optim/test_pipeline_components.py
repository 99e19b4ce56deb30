"""mei.optim pieces as pipeline components by dotted path: validated, built and run by gradient_ascent."""

import pytest
import torch

from mei.engine.resolve import ConfigError, validate_config
from mei.methods import gradient_ascent
from mei.optim.hooks import objective_model

from ._models import Small


def _config(**extra):
    config = {
        "device": "cpu",
        "shape": [1, 3, 12, 12],
        "initial": {"path": "mei.initial.RandomNormal", "kwargs": {"std": 0.1}},
        "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": 0.0}},
        "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": 2}},
    }
    config.update(extra)
    return config


def test_yosinski_postprocessing_from_a_config():
    decay = {"path": "mei.optim.postprocessing.YosinskiRegularization", "kwargs": {"theta_decay": 0.5}}
    model = objective_model(Small(), {"path": "mei.optim.loss.ChannelActivation",
                                      "kwargs": {"target": "features.3", "channel_index": 0}})
    plain, _, _ = gradient_ascent(None, model, _config(), seed=4)
    decayed, _, _ = gradient_ascent(None, model, _config(postprocessing=decay), seed=4)
    assert torch.allclose(decayed, plain * 0.25)  # lr 0: two steps of decay only


def test_render_and_robustness_transforms_from_a_config():
    transform = {"path": "mei.transforms.Compose", "kwargs": {"transforms": [
        {"path": "mei.optim.images.RenderImage", "kwargs": {"parameterization": "pixel", "decorrelate": None}},
        {"path": "mei.optim.transforms.TransformationRobustness",
         "kwargs": {"translate": 1, "crop_or_pad_output": True}},
    ]}}
    config = _config(transform=transform, optimizer={"path": "torch.optim.Adam", "kwargs": {"lr": 0.1}})
    validate_config(config)
    model = objective_model(Small(), {"path": "mei.optim.loss.DeepDream", "kwargs": {"target": "features.1"}})
    first, _, _ = gradient_ascent(None, model, config, seed=1)
    again, _, _ = gradient_ascent(None, model, config, seed=1)
    assert first.shape == (1, 3, 12, 12) and torch.equal(first, again)


def test_bad_values_are_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"postprocessing.kwargs.*theta_decay must be <= 1"):
        validate_config(_config(postprocessing={"path": "mei.optim.postprocessing.L2Decay",
                                                "kwargs": {"theta_decay": 2}}))
    with pytest.raises(ConfigError, match=r"transform.kwargs.*translate"):
        validate_config(_config(transform={"path": "mei.optim.transforms.RandomSpatialJitter",
                                           "kwargs": {"translate": -1}}))
    with pytest.raises(ConfigError, match="objective.kwargs"):
        objective_model(Small(), {"path": "mei.optim.loss.ChannelActivation", "kwargs": {"target": "fc"}})


def test_render_image_takes_a_dataset_colour_matrix_from_a_config():
    from mei.engine.resolve import build_components
    from mei.optim.images import RenderImage, ToRGB

    klt = [[0.5, 0.1, 0.0], [0.4, -0.1, 0.05], [0.3, 0.0, -0.1]]
    spec = {"path": "mei.optim.images.RenderImage",
            "kwargs": {"parameterization": "pixel", "decorrelate": klt, "squash": "none"}}
    config = _config(transform=spec)
    validate_config(config)
    render = build_components(config).transform
    assert isinstance(render, RenderImage)
    x = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(render(x, 0), ToRGB(klt)(x))
    torch.testing.assert_close(render(x, 0)[:, :, 1, 2], x[:, :, 1, 2] @ torch.tensor(klt).T)
