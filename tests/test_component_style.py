"""One component style: every declared component class is a :class:`~mei.engine.component.Component` whose
constructor checks its hyperparameters, records them in ``defaults``, prints like the call that built it and
round-trips through ``state_dict`` / ``load_state_dict``."""

from __future__ import annotations

import importlib
import inspect
import json
from typing import Any

import pytest
import torch

from mei.engine.component import Component, check_bool, check_choice, check_int, check_numbers
from mei.engine.errors import ConfigError, HyperparameterError
from mei.engine.module_component import ModuleComponent
from mei.engine.resolve import build_component, package_components, resolve

JITTER = {"path": "mei.transforms.Jitter", "kwargs": {"max_shift": 1}}
L1 = {"path": "mei.regularizers.L1Norm", "kwargs": {"weight": 0.5}}
OPTIM_JITTER = {"path": "mei.optim.transforms.RandomSpatialJitter", "kwargs": {"translate": 2}}

#: path -> (positional args, keyword args) of a sample call; classes not listed are built with no arguments.
#: Values are given as the constructor stores them (lists of floats, tuples for sizes) so defaults == arguments.
SAMPLES: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "mei.initial.Constant": ((), {"value": 0.5}),
    "mei.initial.RandomNormal": ((), {"mean": 0.5, "std": 2.0}),
    "mei.initial.RandomUniform": ((), {"low": -1.5, "high": 2.0}),
    "mei.featurevis.maco.MACO": ((), {"decay_power": 1.5, "std": 0.5, "decorrelate": False, "squash": "clamp"}),
    "mei.initial.RandomNormalNullChannel": ((), {"null_channel": 1, "null_value": 0.5}),
    "mei.initial.RandomNormalSelectedChannels": ((), {"selected_channels": [0, 2], "fill_value": 0.5}),
    "mei.stoppers.NumIterations": ((), {"num_iterations": 3}),
    "mei.stoppers.EvaluationPlateau": ((), {"patience": 3, "max_iterations": 50}),
    "mei.transforms.Compose": ((), {"transforms": [JITTER]}),
    "mei.transforms.Jitter": ((), {"max_shift": [1, 2], "dims": [-2, -1]}),
    "mei.transforms.RandomCrop": ((), {"height": 2, "width": 3}),
    "mei.transforms.RandomScale": ((), {"min_scale": 0.5, "max_scale": 1.5}),
    "mei.transforms.SpatioTemporalJitter": ((), {"max_shift_time": 1, "max_shift_space": [1, 1]}),
    "mei.transforms.TemporalJitter": ((), {"max_shift": 2}),
    "mei.transforms.GaussianNoise": ((), {"std": 0.1}),
    "mei.transforms.RandomAffine": ((), {"min_scale": 0.8, "max_scale": 1.2, "max_degrees": 5, "max_shift": 2}),
    "mei.transforms.Views": ((), {"n_views": 3, "transforms": [JITTER]}),
    "mei.regularizers.RangePenalty": ((), {"x_min": -1.0, "x_max": 1.0}),
    "mei.regularizers.Sum": ((), {"regularizers": [L1]}),
    "mei.preconditioners.Compose": ((), {"transforms": [JITTER]}),
    "mei.postprocessing.Compose": ((), {"transforms": [JITTER]}),
    "mei.preconditioners.FourierSmoothing": ((), {"factor": 0.5}),
    "mei.preconditioners.GaussianBlur": ((), {"sigma": 1.5}),
    "mei.preconditioners.TemporalGaussianBlur": ((), {"sigma": 1.5}),
    "mei.preconditioners.SpatioTemporalGaussianBlur": ((), {"sigma": 1.5, "sigma_time": 0.5}),
    "mei.postprocessing.ChangeNorm": ((), {"norm": 2.0}),
    "mei.postprocessing.ChangeNormAndClip": ((), {"norm": 2.0, "x_min": -1.0, "x_max": 1.0}),
    "mei.postprocessing.ChangeNormAndClipPerChannel": ((), {"norm": 2.0, "x_min": [-1.0, 0.0], "x_max": [1.0, 2.0]}),
    "mei.postprocessing.ChangeStd": ((), {"std": 0.5}),
    "mei.postprocessing.ClipRange": ((), {"x_min": -1.0, "x_max": 1.0}),
    "mei.postprocessing.ClipRangePerChannel": ((), {"x_min": [-1.0], "x_max": [1.0]}),
    **{f"mei.objectives.{name}": ((), {"interval": 2}) for name in (
        "EvaluationObjective", "GradientNormObjective", "PostProcessedInputObjective", "RegularizationObjective",
        "TransformedInputObjective")},
    "mei.reducers.MeanOverWindow": ((), {"start": 1, "stop": 4, "dim": -1}),
    "mei.schedules.Constant": ((), {"value": 0.5}),
    "mei.schedules.Linear": ((), {"start": 1.0, "end": 0.5, "steps": 10}),
    "mei.schedules.Octave": ((), {"values": [1.0, 0.5], "steps": 10}),
    "mei.schedules.Exponential": ((), {"start": 1.0, "gamma": 0.5, "minimum": 0.1}),
    "mei.schedules.Cosine": ((), {"start": 1.0, "end": 0.0, "steps": 10}),
    "mei.schedules.Random": ((), {"minimum": 1.0, "maximum": 2.0, "seed": 3}),
    "mei.optim.loss.ActivationInterpolation": ((), {"target1": "features.1", "channel_index1": 2,
                                                     "target2": "features.3", "channel_index2": 5}),
    "mei.optim.loss.ActivationWeights": ((), {"target": "features.1", "weights": torch.tensor([1.0, 0.5])}),
    "mei.optim.loss.Alignment": ((), {"target": "features.1", "decay_ratio": 3.0}),
    "mei.optim.loss.AngledNeuronDirection": ((), {"target": "features.1", "vec": torch.tensor([1.0, 0.0])}),
    "mei.optim.loss.ChannelActivation": ((), {"target": "features.1", "channel_index": 2}),
    "mei.optim.loss.DeepDream": ((), {"target": "features.1"}),
    "mei.optim.loss.Direction": ((), {"target": "features.1", "vec": torch.tensor([1.0, 0.0])}),
    "mei.optim.loss.Diversity": ((), {"target": "features.1"}),
    "mei.optim.loss.L1": ((), {"target": "features.1", "constant": 0.5}),
    "mei.optim.loss.L2": ((), {"target": "features.1", "constant": 0.5}),
    "mei.optim.loss.LayerActivation": ((), {"target": "features.1", "reduction": "max"}),
    "mei.optim.loss.NeuronActivation": ((), {"target": "features.1", "channel_index": 2, "x": 1, "y": 0}),
    "mei.optim.loss.NeuronDirection": ((), {"target": "features.1", "vec": torch.tensor([1.0, 0.0]), "x": 1}),
    "mei.optim.loss.TensorDirection": ((), {"target": "features.1", "vec": torch.ones(2, 1, 1)}),
    "mei.optim.loss.TotalVariation": ((), {"target": "features.1"}),
    "mei.optim.images.RenderImage": ((), {"parameterization": "pixel", "decorrelate": None, "squash": "clamp"}),
    "mei.optim.transforms.CenterCrop": ((), {"size": (4, 5), "padding_value": 0.5}),
    "mei.optim.transforms.Chain": ((OPTIM_JITTER, OPTIM_JITTER), {}),
    "mei.optim.transforms.Pad": ((), {"padding": 2, "mode": "reflect", "value": 0.0}),
    "mei.optim.transforms.RandomAffine": ((), {"scale": [0.9, 1.1], "degrees": [-5.0, 5.0]}),
    "mei.optim.transforms.RandomChoice": ((), {"transforms": [OPTIM_JITTER]}),
    "mei.optim.transforms.RandomRotation": ((), {"degrees": [-5.0, 5.0]}),
    "mei.optim.transforms.RandomScale": ((), {"scale": [0.9, 1.1], "mode": "nearest"}),
    "mei.optim.transforms.RandomSpatialJitter": ((), {"translate": 3}),
    "mei.optim.transforms.TransformationRobustness": ((), {"padding_transform": None, "translate": [1, 2],
                                                            "scale": [1.0], "degrees": [0.0], "final_translate": 1,
                                                            "crop_or_pad_output": True}),
    "mei.optim.postprocessing.ContributionCrop": ((), {"percentile": 20.0}),
    "mei.optim.postprocessing.L2Decay": ((), {"theta_decay": 0.2}),
    "mei.optim.postprocessing.NormCrop": ((), {"percentile": 20.0}),
    "mei.optim.postprocessing.PeriodicBlur": ((), {"every": 2, "width": 0.5}),
    "mei.optim.postprocessing.YosinskiRegularization": ((), {"theta_decay": 0.1, "blur_every": 2}),
    "mei.legacy.ops.BatchedCrops": ((), {"height": 2, "width": 3, "step_size": [1, 2], "sigma": [1.0, 2.0]}),
    "mei.legacy.ops.ChangeNorm": ((), {"norm": 2.0}),
    "mei.legacy.ops.ChangeRange": ((), {"x_min": -1.0, "x_max": 1.0}),
    "mei.legacy.ops.ChangeStd": ((), {"std": 0.5}),
    "mei.legacy.ops.ClipRange": ((), {"x_min": -1.0, "x_max": 1.0}),
    "mei.legacy.ops.FourierSmoothing": ((), {"freq_exp": 2.0}),
    "mei.legacy.ops.GaussianBlur": ((), {"sigma": [1.0, 2.0], "decay_factor": 0.5, "truncate": 3.0}),
    "mei.legacy.ops.GaussianBlurforRing": ((), {"sigma": [1.0, 1.0], "key": {"unit_id": 3},
                                              "mask_thres_for_ring": 0.2}),
    "mei.legacy.ops.GaussianBlurforCenter": ((), {"sigma": [1.0, 2.0], "mask_thres": 0.4}),
    "mei.legacy.ops.GaussianBlurforSurround": ((), {"sigma": [2.0, 2.0], "key": {"unit_id": 1}}),
    "mei.legacy.ops.WhiteNoiseBackground": ((), {"mean": 0.5, "std": 2.0, "shape": [3, 4], "strength": 0.5}),
    "mei.legacy.ops.NatImgBackground": ((), {"dataset_fn": "lab.datasets.load", "dataset_path": ["a"], "norm": 2.0}),
    "mei.legacy.ops.NatImgBackgroundHighNorm": ((), {"images": [[[1.0, 2.0]]], "start_norm": 1.0, "end_norm": 4.0}),
    "mei.legacy.ops.Jitter": ((), {"max_jitter": [1, 2]}),
    "mei.legacy.ops.MultiplyBy": ((), {"const": 2.0, "decay_factor": 0.5}),
    "mei.legacy.ops.RandomCrop": ((), {"height": 2, "width": 3}),
    "mei.legacy.ops.Resize": ((), {"scale_factor": 0.5, "resize_method": "nearest"}),
}

#: path -> (argument, bad value, words the error must contain besides the argument and the value)
BAD_VALUES: dict[str, tuple[str, Any, str]] = {
    "mei.stoppers.NumIterations": ("num_iterations", 0, "must be >= 1"),
    "mei.preconditioners.GaussianBlur": ("sigma", -1, "must be >= 0"),
    "mei.postprocessing.ChangeStd": ("std", 0, "must be > 0"),
    "mei.transforms.TemporalJitter": ("padding", "mirror", "must be one of"),
    "mei.optim.transforms.RandomSpatialJitter": ("translate", -1, "must be >= 0"),
    "mei.optim.transforms.Pad": ("mode", "wrap", "must be one of"),
    "mei.optim.transforms.TransformationRobustness": ("crop_or_pad_output", 1, "must be True or False"),
    "mei.optim.images.RenderImage": ("squash", "tanh", "must be one of"),
    "mei.optim.loss.LayerActivation": ("reduction", "median", "must be one of"),
    "mei.optim.loss.Alignment": ("decay_ratio", 0, "must be > 0"),
    "mei.optim.postprocessing.L2Decay": ("theta_decay", 2, "must be <= 1"),
}

#: Losses keep the repr their users read (``ChannelActivation(features.1, 2)``), which names targets unquoted.
OWN_REPR = {path for path in SAMPLES if path.startswith("mei.optim.loss.")}


def component_classes() -> list[str]:
    return [path for path in package_components() if inspect.isclass(resolve(path))]


def build(path: str) -> Any:
    args, kwargs = SAMPLES.get(path, ((), {}))
    return resolve(path)(*args, **kwargs)


def same(left: Any, right: Any) -> bool:
    if isinstance(left, torch.Tensor) or isinstance(right, torch.Tensor):
        return isinstance(left, torch.Tensor) and isinstance(right, torch.Tensor) and torch.equal(left, right)
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        return len(left) == len(right) and all(map(same, left, right))  # a list is the checked form of a tuple
    return type(left) is type(right) and left == right


def json_like(value: Any) -> bool:
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True


def test_every_declared_class_is_a_component_and_every_sample_is_used():
    classes = component_classes()
    assert len(classes) > 50
    assert [path for path in classes if not issubclass(resolve(path), Component)] == []
    assert set(SAMPLES) <= set(classes), "a sample names a class that is not a declared component"
    assert set(BAD_VALUES) <= set(classes)


@pytest.mark.parametrize("path", component_classes())
def test_defaults_are_the_constructors_arguments(path):
    cls = resolve(path)
    component = build(path)
    parameters = inspect.signature(cls).parameters
    assert list(component.defaults) == list(parameters)
    args, kwargs = SAMPLES.get(path, ((), {}))
    bound = inspect.signature(cls).bind(*args, **kwargs)
    bound.apply_defaults()
    assert same(dict(component.defaults), dict(bound.arguments)), path


@pytest.mark.parametrize("path", [p for p in component_classes() if p not in OWN_REPR])
def test_repr_reads_like_the_call_and_rebuilds_the_component(path):
    component = build(path)
    if not json_like(dict(component.defaults)):
        pytest.skip("arguments are not JSON-like")
    namespace = vars(importlib.import_module(type(component).__module__))
    rebuilt = eval(repr(component), dict(namespace))
    assert type(rebuilt) is type(component)
    assert same(dict(rebuilt.defaults), dict(component.defaults))
    assert repr(rebuilt) == repr(component)


def test_json_like_reprs_cover_every_kind_of_front_end():
    round_tripped = [p for p in component_classes() if p not in OWN_REPR and json_like(dict(build(p).defaults))]
    for prefix in ("mei.initial", "mei.transforms", "mei.optim.transforms", "mei.optim.images",
                   "mei.optim.postprocessing"):
        assert any(path.startswith(prefix) for path in round_tripped), prefix


@pytest.mark.parametrize("path", component_classes())
def test_state_dict_round_trips_the_hyperparameters(path):
    source = build(path)
    try:
        target = resolve(path)()  # other hyperparameters, where the class has defaults for all of them
    except TypeError:
        target = build(path)
    target.load_state_dict(source.state_dict())
    assert same(dict(target.defaults), dict(source.defaults)), path
    assert repr(target) == repr(source)


def test_load_state_dict_rebuilds_modules_and_refuses_foreign_hyperparameters():
    pad = resolve("mei.optim.transforms.Pad")
    state = pad(3, mode="replicate").state_dict()
    assert set(state) == {"_extra_state"} and state["_extra_state"]["defaults"]["padding"] == 3
    loaded = pad(1)
    loaded.load_state_dict(state)
    assert loaded.padding == 3 and loaded.mode == "replicate"
    assert loaded(torch.zeros(1, 1, 2, 2)).shape == (1, 1, 8, 8)
    blur = resolve("mei.preconditioners.GaussianBlur")
    with pytest.raises(ValueError, match=r"takes no hyperparameters \['width'\]"):
        blur(1.0).load_state_dict({"defaults": {"width": 2}, "state": {}})
    with pytest.raises(ValueError, match="sigma must be >= 0, got -1"):  # the constructor checks loaded values too
        blur(1.0).load_state_dict({"defaults": {"sigma": -1}, "state": {}})


def test_running_state_travels_in_the_state_dict():
    crop = resolve("mei.optim.postprocessing.ContributionCrop")(percentile=10.0)
    image = torch.randn(1, 3, 4, 4)
    crop.start(image, i_iter=4)
    restored = resolve("mei.optim.postprocessing.ContributionCrop")()
    restored.load_state_dict(crop.state_dict())
    assert restored.percentile == 10.0 and restored._last_step == 4 and torch.equal(restored._last, image)
    step = torch.randn(1, 3, 4, 4)
    assert torch.equal(restored(image + step, 5), crop(image + step, 5))
    with pytest.raises(ValueError, match="has no state"):
        restored.load_state_dict({"defaults": {"percentile": 1.0}, "state": {"other": 1}})


def test_module_components_keep_nn_module_behaviour():
    chain = resolve("mei.optim.transforms.Chain")(OPTIM_JITTER, {"path": "mei.optim.transforms.Pad",
                                                                 "kwargs": {"padding": 1}})
    assert isinstance(chain, torch.nn.Module) and isinstance(chain, ModuleComponent)
    assert [type(m).__name__ for m in chain.transforms] == ["RandomSpatialJitter", "Pad"]
    assert set(chain.state_dict()) == {"_extra_state", "transforms.0._extra_state", "transforms.1._extra_state"}
    assert chain.train(False).training is False and not chain.transforms[0].training
    render = resolve("mei.optim.images.RenderImage")()  # a child module with a buffer
    assert "decorrelate.matrix" in render.state_dict()
    assert repr(torch.nn.Sequential(resolve("mei.optim.transforms.Pad")(2))) == (
        "Sequential(\n  (0): Pad(padding=2, mode='constant', value=0.5)\n)")


@pytest.mark.parametrize("path", sorted(BAD_VALUES))
def test_a_bad_value_is_an_error_naming_the_parameter_and_the_value(path):
    name, value, words = BAD_VALUES[path]
    args, kwargs = SAMPLES.get(path, ((), {}))
    with pytest.raises(HyperparameterError) as error:
        resolve(path)(*args, **{**kwargs, name: value})
    assert error.value.name == name
    assert str(error.value).startswith(f"{name} {words}")
    assert str(error.value).endswith(f"got {value!r}")
    assert isinstance(error.value, ValueError)


def test_a_bad_value_in_a_config_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError) as error:
        build_component({"path": "mei.preconditioners.GaussianBlur", "kwargs": {"sigma": -1}}, "precondition")
    assert error.value.key == "precondition.kwargs.sigma"
    assert "sigma must be >= 0, got -1" in str(error.value)


@pytest.mark.parametrize("check, args, message", [
    (check_int, ("n", 2.0, 1, 10), "n must be a whole number >= 1 and <= 10, got 2.0"),
    (check_int, ("n", True, 1), "n must be a whole number >= 1, got True"),
    (check_choice, ("mode", 1, (True, "a")), "mode must be one of [True, 'a'], got 1"),
    (check_choice, ("blur", "x", (None, "tv")), "blur must be one of ['tv'] or None, got 'x'"),
    (check_bool, ("flag", 0), "flag must be True or False, got 0"),
    (check_numbers, ("xs", [1, "a"]), "xs[1] must be a number, got 'a'"),
    (check_numbers, ("xs", "ab"), "xs must be a list of numbers, got 'ab'"),
    (check_numbers, ("xs", []), "xs must hold 1 or more number(s), got []"),
])
def test_check_helpers_name_the_value(check, args, message):
    with pytest.raises(HyperparameterError) as error:
        check(*args)
    assert str(error.value) == message and error.value.name == message.split(" ")[0]


def test_check_helpers_return_good_values():
    assert check_int("n", 3, 1) == 3
    assert check_choice("mode", "a", ("a", "b")) == "a"
    assert check_bool("flag", False) is False
    assert check_numbers("xs", (1, 2.5), minimum=0) == [1, 2.5]
