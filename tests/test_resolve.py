"""The one resolver, its allowlist, and validate_config's errors (each names the offending key)."""

import pytest

from mei.engine.resolve import (
    COMPONENT_KINDS,
    ComponentNotAllowedError,
    ConfigError,
    allow_modules,
    disallow_modules,
    resolve,
    validate_config,
)
from mei.pipeline.generation import validate_method
from mei.stoppers import NumIterations


def good_config(**changes):
    config = {
        "device": "cpu",
        "initial": {"path": "mei.initial.RandomNormal"},
        "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": 0.1}},
        "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": 10}},
        "objectives": [{"path": "mei.objectives.EvaluationObjective", "kwargs": {"interval": 10}}],
    }
    config.update(changes)
    return {k: v for k, v in config.items() if v is not None}


def test_resolves_package_and_torch_optim_paths():
    assert resolve("mei.stoppers.NumIterations") is NumIterations
    assert resolve("torch.optim.Adam").__name__ == "Adam"


@pytest.mark.parametrize("path, expected", [
    ("os.system", "'os' can never be allowed"),
    ("subprocess.run", "'subprocess' can never be allowed"),
    ("builtins.eval", "'builtins' can never be allowed"),
    ("torch.load", "'torch' can never be allowed"),
    ("torch.optimx.SGD", "'torch.optimx' can never be allowed"),
    ("mei.engine.resolve.importlib.import_module", "'mei.engine.resolve.importlib' holds no components"),
    ("mei.methods.torch.load", "it names an attribute of 'mei.methods.torch'"),
    ("mei.methods.torch", "only classes and functions declared with mei.engine.component.component"),
    ("mei.methods.run_engine", "only classes and functions declared with mei.engine.component.component"),
    ("torch.optim.Optimizer", "only subclasses of torch.optim.Optimizer"),
    ("torch.optim.lr_scheduler.LambdaLR", "only subclasses of torch.optim.Optimizer"),
])
def test_paths_that_are_no_component_are_refused_without_unsafe_advice(path, expected):
    with pytest.raises(ComponentNotAllowedError, match=expected) as info:
        resolve(path)
    assert "MEI_ALLOWED_MODULES=" not in str(info.value) and "allow_modules(" not in str(info.value)


def test_a_module_of_yours_outside_the_allowlist_gets_the_narrowest_advice():
    with pytest.raises(ComponentNotAllowedError, match="outside the allowed modules") as info:
        resolve("meifoo.parts.Thing")
    assert "MEI_ALLOWED_MODULES=meifoo.parts " in str(info.value)
    assert "mei.allow_modules('meifoo.parts')" in str(info.value)


@pytest.mark.parametrize("prefix", ["os", "os.path", "subprocess", "torch", "torch.hub", "mei", "mei.demo",
                                    "datajoint", "builtins", "importlib"])
def test_the_standard_library_torch_and_the_package_cannot_be_allowed(prefix, monkeypatch):
    with pytest.raises(ValueError, match=f"cannot allow module prefix '{prefix}'"):
        allow_modules(prefix)
    monkeypatch.setenv("MEI_ALLOWED_MODULES", prefix)
    with pytest.raises(ValueError, match=f"cannot allow module prefix '{prefix}'"):
        resolve("mei.stoppers.NumIterations")


def test_a_component_is_handed_out_only_for_a_slot_of_its_kind():
    assert resolve("mei.stoppers.NumIterations", kinds=("stopper",)) is NumIterations
    with pytest.raises(ComponentNotAllowedError, match="'mei.stoppers.NumIterations' is a component of kind "
                                                      "stopper; this slot takes transform"):
        resolve("mei.stoppers.NumIterations", kinds=("transform",))
    with pytest.raises(ComponentNotAllowedError, match="kind method; this slot takes initial or optimizer"):
        resolve("mei.methods.gradient_ascent", kinds=COMPONENT_KINDS)
    with pytest.raises(ComponentNotAllowedError, match="kind trainer; this slot takes method"):
        resolve("mei.demo.lab.trainer_fn", kinds=("method",))
    with pytest.raises(ComponentNotAllowedError, match="kind optimizer; this slot takes stopper"):
        resolve("torch.optim.SGD", kinds=("stopper",))
    assert resolve("torch.optim.sgd.SGD", kinds=("optimizer",)).__name__ == "SGD"


@pytest.mark.parametrize("path", ["mei.__builtins__", ".relative.Thing", "mei.engine.component.Component",
                                  "NumIterations", "", "   ", "mei..stoppers", "mei.stoppers.NumIterations()"])
def test_malformed_paths_are_refused(path):
    with pytest.raises(ConfigError):
        resolve(path)


def test_unknown_attribute_names_the_missing_part():
    with pytest.raises(ConfigError, match="'mei.stoppers' has no attribute 'Nope'"):
        resolve("mei.stoppers.Nope")


def test_user_prefix_matches_whole_module_names(monkeypatch):
    monkeypatch.setenv("MEI_ALLOWED_MODULES", "tests")
    assert resolve("tests.components.Scale").__name__ == "Scale"
    monkeypatch.setenv("MEI_ALLOWED_MODULES", "test")
    with pytest.raises(ComponentNotAllowedError):
        resolve("tests.components.Scale")


def test_allow_modules_adds_and_removes_a_prefix():
    with pytest.raises(ComponentNotAllowedError):
        resolve("tests.components.Scale")
    allow_modules("tests")
    try:
        assert resolve("tests.components.Scale").__name__ == "Scale"
    finally:
        disallow_modules("tests")
    with pytest.raises(ComponentNotAllowedError):
        resolve("tests.components.Scale")


def test_a_good_config_validates():
    validate_config(good_config())


@pytest.mark.parametrize("config, key, message", [
    (good_config(device=None), "device", "missing required"),
    (good_config(stopper=None), "stopper", "missing required"),
    (good_config(colour="red"), "colour", "unknown config key"),
    (good_config(device="gpu"), "device", "'cpu' or 'cuda'"),
    (good_config(device=1), "device", "'cpu' or 'cuda'"),
    (good_config(initial="mei.initial.RandomNormal"), "initial", "must be a dict"),
    (good_config(initial={"kwargs": {}}), "initial", "missing 'path'"),
    (good_config(initial={"path": "mei.initial.RandomNormal", "args": [1]}), "initial.args", "unknown keys"),
    (good_config(initial={"path": "mei.initial.Nope"}), "initial.path", "no attribute"),
    (good_config(initial={"path": "os.getcwd"}), "initial.path", "outside the allowed"),
    (good_config(initial={"path": ""}), "initial.path", "empty"),
    (good_config(stopper={"path": "mei.stoppers.NumIterations"}), "stopper.kwargs", "num_iterations"),
    (good_config(stopper={"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": 3, "steps": 3}}),
     "stopper.kwargs.steps", "unknown argument 'steps'"),
    (good_config(stopper={"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": 3, "num_iteration": 3}}),
     "stopper.kwargs.num_iteration", "unknown argument 'num_iteration'; did you mean 'num_iterations'"),
    (good_config(stopper={"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": -3}}),
     "stopper.kwargs.num_iterations", "num_iterations must be >= 1"),
    (good_config(stopper={"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": 1e300}}),
     "stopper.kwargs.num_iterations", "out of range"),
    (good_config(stopper={"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": "ten"}}),
     "stopper.kwargs.num_iterations", "must be a number"),
    (good_config(stopper={"path": "mei.stoppers.NumIterations", "kwargs": [10]}), "stopper.kwargs", "must be a dict"),
    (good_config(optimizer={"path": "torch.optim.SGD", "kwargs": {"lr": -1.0}}), "optimizer.kwargs.lr",
     "learning rate"),
    (good_config(optimizer={"path": "torch.optim.SGD", "kwargs": {"lr": "0.1"}}), "optimizer.kwargs.lr",
     "must be a number, got '0.1'"),
    (good_config(optimizer={"path": "torch.optim.Adam", "kwargs": {"betas": [0.9, "0.99"]}}),
     "optimizer.kwargs.betas[1]", "must be a number"),
    (good_config(optimizer={"path": "torch.optim.SGD", "kwargs": {"learning_rate": 1.0}}),
     "optimizer.kwargs.learning_rate", "unknown argument"),
    (good_config(optimizer={"path": "torch.optim.Adamm"}), "optimizer.path", "did you mean 'Adam'"),
    (good_config(transform={"path": "mei.transforms.Jiter", "kwargs": {"max_shift": 1}}), "transform.path",
     "no attribute 'Jiter'.*; did you mean 'Jitter'"),
    (good_config(transform={"path": "mei.transforms.GaussianBlur", "kwargs": {"sigma": 1}}), "transform.path",
     "did you mean 'mei.preconditioners.GaussianBlur'"),
    (good_config(transform={"path": "mei.transform.Jitter"}), "transform.path", "did you mean 'mei.transforms'"),
    (good_config(transform={"path": "mei.transforms.Jitter", "kwarg": {}}), "transform.kwarg",
     "did you mean 'kwargs'"),
    (good_config(stoper={"path": "mei.stoppers.NumIterations"}), "stoper", "did you mean 'stopper'"),
    (good_config(precondition={"path": "mei.preconditioners.GaussianBlur", "kwargs": {"sigma": 0}}),
     "precondition.kwargs.sigma", "GaussianBlur with sigma=0 does nothing"),
    (good_config(precondition={"path": "mei.preconditioners.SpatioTemporalGaussianBlur",
                               "kwargs": {"sigma": 0, "sigma_time": 0.0}}),
     "precondition.kwargs.sigma_time", "with sigma_time=0.0 does nothing"),
    (good_config(transform={"path": "mei.transforms.Compose", "kwargs": {"transforms": [
        {"path": "mei.transforms.Jitter", "kwargs": {"max_shift": -1}}]}}),
     "transform.kwargs.transforms[0].kwargs.max_shift", "max_shift must be >= 0"),
    (good_config(optimizer={"path": "mei.stoppers.NumIterations", "kwargs": {}}), "optimizer.path",
     "kind stopper; this slot takes optimizer"),
    (good_config(optimizer={"path": "torch.optim.SGD", "kwargs": {"lr": float("nan")}}), "optimizer.kwargs.lr",
     "not a finite number"),
    (good_config(objectives={"path": "mei.objectives.EvaluationObjective"}), "objectives", "must be a list"),
    (good_config(objectives=[{"path": "mei.objectives.EvaluationObjective", "kwargs": {"interval": 0}}]),
     "objectives[0].kwargs.interval", "interval must be >= 1"),
    (good_config(transform={"path": "mei.transforms.Jitter", "kwargs": {"max_shift": object()}}),
     "transform.kwargs.max_shift", "not JSON-serialisable"),
    (good_config(shape=[1, 0, 8]), "shape", "positive ints"),
    (good_config(minimize="yes"), "minimize", "true or false"),
    (good_config(postprocessing={"path": "mei.postprocessing.ClipRange", "kwargs": {"x_min": 1, "x_max": 0}}),
     "postprocessing.kwargs.x_max", "x_max must be >="),
])
def test_each_problem_is_an_error_naming_its_key(config, key, message):
    """One scheme of keys: the path from the top of the config down to the bad value."""
    with pytest.raises(ConfigError, match=message) as info:
        validate_config(config)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")
    with pytest.raises(ConfigError) as info:  # the pipeline's (and check-config's) view: under method_config
        validate_method("mei.methods.gradient_ascent", config)
    assert info.value.key == f"method_config.{key}"


def test_non_dict_config_is_refused():
    with pytest.raises(ConfigError, match="must be a dict"):
        validate_config(["device", "cpu"])


def test_a_factory_of_yours_that_returns_no_component_is_refused(allow_tests_modules):
    match = "tests.components.make_number\\(\\*\\*kwargs\\) returned a non-callable int"
    with pytest.raises(ConfigError, match=match) as info:
        validate_config(good_config(transform={"path": "tests.components.make_number"}))
    assert info.value.key == "transform.path"
