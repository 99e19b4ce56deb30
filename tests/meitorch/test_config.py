"""Every config key has a documented default; unknown keys and bad values are errors naming the key."""

import re
from pathlib import Path

import pytest
import torch

from mei.engine.resolve import ConfigError
from mei.meitorch.config import BLUR_PARAMS, DIVERSE_PARAMS, KEYS, defaults, parse_config
from mei.meitorch.mei import MEI
from mei.meitorch.tools.transformations import GenerativeConvNet

from .helpers import SHAPE, squared_distance_operation, target

DOC = Path(__file__).resolve().parents[2] / "docs" / "meitorch.md"


def make_mei():
    return MEI(squared_distance_operation(target()), shape=SHAPE)


@pytest.mark.parametrize("mode, config, key, message", [
    ("pixel", {"iter": 5}, "iter", "unknown key for the pixel mode"),
    ("pixel", {"distribution": "normal"}, "distribution", "belongs to the variational mode"),
    ("variational", {"n_samples": 4}, "n_samples", "belongs to the pixel/transformation mode"),
    ("transformation", {"blur": "tv"}, "blur", "belongs to the pixel/variational mode"),
    ("pixel", {"iter_n": 0}, "iter_n", "whole number >= 1"),
    ("pixel", {"n_samples": 2.5}, "n_samples", "whole number >= 1"),
    ("pixel", {"optimizer": "lbfgs"}, "optimizer", "must be one of ['sgd', 'mei', 'meibatch', 'rmsprop', 'adam']"),
    ("pixel", {"precond": -0.1}, "precond", "must be >= 0"),
    ("pixel", {"jitter": 1.5}, "jitter", "whole number"),
    ("pixel", {"scaler": "big"}, "scaler", "must be a number or None or a schedule"),
    ("pixel", {"diverse": 1}, "diverse", "True or False"),
    ("pixel", {"diverse_params": {"div_metric": "manhattan"}}, "diverse_params.div_metric", "must be one of"),
    ("pixel", {"diverse_params": {"weight": 1}}, "diverse_params.weight", "unknown key"),
    ("pixel", {"blur": "median"}, "blur", "gaussian"),
    ("pixel", {"blur": "gaussian", "blur_params": {"sigma_color": 1}}, "blur_params.sigma_color", "unknown key"),
    ("pixel", {"blur": "bilateral", "blur_params": {"sigma_color": 0}}, "blur_params.sigma_color", "> 0"),
    ("pixel", {"blur_params": {"sigma": 1}}, "blur_params", "blur is None"),
    ("pixel", {"optimizer": "adam", "optimizer_params": {"momentum": 0.9}}, "optimizer_params", "momentum"),
    ("pixel", {"optimizer_params": {"lr": -1}}, "optimizer_params", "learning rate"),
    ("variational", {"distribution": "cauchy"}, "distribution", "normal"),
    ("variational", {"n_samples_per_batch": (0,)}, "n_samples_per_batch", "positive int"),
    ("variational", {"fixed_stddev": 0}, "fixed_stddev", "> 0"),
    ("transformation", {}, "transform", "needs a generative network"),
])
def test_bad_configs_name_their_key(mode, config, key, message):
    with pytest.raises(ConfigError) as error:
        getattr(make_mei(), f"generate_{mode}_mei")(config)
    assert error.value.key == key
    assert message in str(error.value)


def test_diversity_needs_two_samples_and_transform_must_be_trainable():
    with pytest.raises(ConfigError, match="diverse: needs at least 2 samples"):
        make_mei().generate_pixel_mei(dict(iter_n=1, diverse=True))
    with pytest.raises(ConfigError, match="transform: .*trainable parameters"):
        make_mei().generate_transformation_mei(dict(iter_n=1, transform=torch.nn.Identity()))


def test_operation_contract_errors():
    with pytest.raises(TypeError, match=r"not operation\(\)"):
        MEI(operation={"objective": 0}, shape=SHAPE)
    with pytest.raises(TypeError, match="key 'objective'"):
        MEI(lambda x: {"loss": x.sum()}, shape=SHAPE).generate_pixel_mei(dict(iter_n=1))
    with pytest.raises(ValueError, match=r"one floating-point number .* got \(2,\)"):
        MEI(lambda x: {"objective": x.flatten(1).sum(1)}, shape=SHAPE).generate_pixel_mei(dict(iter_n=1, n_samples=2))
    with pytest.raises(ValueError, match="channels, height, width"):
        MEI(lambda x: {}, shape=(8, 8))


def test_defaults_are_complete_and_the_users_config_is_not_changed():
    config = {"iter_n": 2, "diverse_params": {"div_weight": 2.0}}
    parsed = parse_config(config, "pixel")
    assert config == {"iter_n": 2, "diverse_params": {"div_weight": 2.0}}
    assert parsed["diverse_params"] == {"div_metric": "euclidean", "div_linkage": "minimum", "div_weight": 2.0}
    assert parsed["optimizer"] == "rmsprop" and parsed["precond"] is None and parsed["save_every"] == 0
    assert set(defaults("variational")) >= {"distribution", "n_samples_per_batch", "fixed_stddev"}
    net = GenerativeConvNet(shape=SHAPE)
    assert parse_config({"transform": net}, "transformation")["transform"] is net


def _documented_default(text: str, key: str) -> str:
    row = re.search(rf"^\| `{key}` \| ([^|]+) \|", text, re.MULTILINE)
    assert row, f"docs/meitorch.md has no table row for `{key}`"
    return row.group(1).strip()


def test_docs_list_every_key_with_its_default():
    text = DOC.read_text()
    for key, (default, _, _) in KEYS.items():
        shown = _documented_default(text, key)
        if key not in ("diverse_params", "blur_params", "optimizer_params", "transform"):
            assert shown == f"`{default!r}`", f"{key}: docs say {shown}, code has {default!r}"
    for key, default in DIVERSE_PARAMS.items():
        assert _documented_default(text, key) == f"`{default!r}`"
    for blur, params in BLUR_PARAMS.items():
        for key, default in params.items():
            assert f"`{key}={default!r}`" in text, f"{blur} default {key}={default!r} missing from docs"


def test_transform_shape_must_match_the_mei_shape():
    with pytest.raises(ConfigError, match=r"transform: transform makes images of shape \(1, 40, 40\)"):
        make_mei().generate_transformation_mei(dict(iter_n=1, transform=GenerativeConvNet(shape=(1, 40, 40))))
