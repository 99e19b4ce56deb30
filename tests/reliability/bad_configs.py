"""A catalogue of malformed gradient-ascent method configs, shared by the validation and pipeline tests.

Each case is ``(case id, config, key the error must name, fragment the message must contain, is a
security refusal)``. A security refusal must raise :class:`mei.engine.resolve.ComponentNotAllowedError`.
"""

from __future__ import annotations

import copy
from typing import Any

GOOD: dict[str, Any] = {
    "device": "cpu",
    "shape": [1, 1, 4, 4],
    "initial": {"path": "mei.initial.RandomNormal", "kwargs": {"std": 0.1}},
    "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": 0.1}},
    "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": 3}},
    "objectives": [{"path": "mei.objectives.EvaluationObjective", "kwargs": {"interval": 1}}],
}


def good() -> dict[str, Any]:
    """A fresh copy of a valid config."""
    return copy.deepcopy(GOOD)


def with_(*changes: tuple[str, Any]) -> dict[str, Any]:
    """``good()`` with dotted keys set (``"stopper.kwargs.num_iterations"``) or deleted (value ``DELETE``)."""
    config = good()
    for dotted, value in changes:
        *parents, last = dotted.split(".")
        target = config
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if value is DELETE:
            del target[last]
        else:
            target[last] = value
    return config


DELETE = object()


def _path(key: str, path: Any) -> dict[str, Any]:
    if key not in GOOD:
        return with_((key, {"path": path}))
    return with_((f"{key}.path", path))


class _Opaque:
    """Not JSON."""


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


STRUCTURE = [
    ("not-a-dict", [("device", "cpu")], "", "must be a dict", False),
    ("none-config", None, "", "must be a dict", False),
    ("missing-device", with_(("device", DELETE)), "device", "missing required", False),
    ("missing-initial", with_(("initial", DELETE)), "initial", "missing required", False),
    ("missing-optimizer", with_(("optimizer", DELETE)), "optimizer", "missing required", False),
    ("missing-stopper", with_(("stopper", DELETE)), "stopper", "missing required", False),
    ("unknown-top-key", with_(("optimiser", {"path": "torch.optim.SGD"})), "optimiser", "unknown config key", False),
    ("int-top-key", {**good(), 7: "x"}, "", "keys must be strings", False),
    ("device-gpu", with_(("device", "gpu")), "device", "must be 'cpu' or 'cuda'", False),
    ("device-int", with_(("device", 0)), "device", "must be 'cpu' or 'cuda'", False),
    ("device-empty", with_(("device", "")), "device", "must be 'cpu' or 'cuda'", False),
    ("component-string", with_(("stopper", "mei.stoppers.NumIterations")), "stopper", "must be a dict", False),
    ("component-no-path", with_(("stopper.path", DELETE)), "stopper", "missing 'path'", False),
    ("component-extra-key", with_(("stopper.args", [3])), "stopper", "unknown keys ['args']", False),
    ("kwargs-list", with_(("stopper.kwargs", [3])), "stopper.kwargs", "must be a dict", False),
    ("objectives-not-list", with_(("objectives", GOOD["objectives"][0])), "objectives", "must be a list", False),
    ("objectives-bad-item", with_(("objectives", [GOOD["objectives"][0], 3])), "objectives[1]", "must be a dict",
     False),
    ("shape-one-dim", with_(("shape", [16])), "shape", "at least two positive ints", False),
    ("shape-zero", with_(("shape", [1, 0, 4])), "shape", "at least two positive ints", False),
    ("minimize-string", with_(("minimize", "yes")), "minimize", "true or false", False),
]

PATHS = [
    ("path-int", _path("stopper", 42), "stopper.path", "must be a string", False),
    ("path-empty", _path("stopper", ""), "stopper.path", "empty", False),
    ("path-blank", _path("stopper", "   "), "stopper.path", "empty", False),
    ("path-no-dot", _path("stopper", "NumIterations"), "stopper.path", "not an absolute dotted path", False),
    ("path-relative", _path("stopper", ".stoppers.NumIterations"), "stopper.path", "invalid part ''", False),
    ("path-double-dot", _path("stopper", "mei..stoppers.NumIterations"), "stopper.path", "invalid part ''", False),
    ("path-trailing-dot", _path("stopper", "mei.stoppers."), "stopper.path", "invalid part ''", False),
    ("path-call-syntax", _path("stopper", "mei.stoppers.NumIterations()"), "stopper.path", "invalid part", False),
    ("path-slashes", _path("stopper", "mei/stoppers/NumIterations"), "stopper.path", "not an absolute", False),
    ("path-space", _path("stopper", "mei.stoppers. NumIterations"), "stopper.path", "invalid part", False),
    ("path-homoglyph", _path("stopper", "mei.stoppers.NumIterat\u0456ons"), "stopper.path", "invalid part", False),
    ("unknown-component", _path("stopper", "mei.stoppers.NoSuchStopper"), "stopper.path", "has no attribute", False),
    ("unknown-module", _path("stopper", "mei.nosuchmodule.Stopper"), "stopper.path",
     "'mei.nosuchmodule' holds no components", True),
    ("not-callable", _path("stopper", "mei.engine.resolve.ENV_VAR"), "stopper.path",
     "'mei.engine.resolve' holds no components", True),
    ("mei-resolve-function", _path("transform", "mei.engine.resolve.allowed_prefixes"), "transform.path",
     "'mei.engine.resolve' holds no components", True),
    ("optimizer-not-optimizer", _path("optimizer", "mei.stoppers.NumIterations"), "optimizer.path",
     "is a component of kind stopper; this slot takes optimizer", True),
]

KWARGS = [
    ("kwarg-unknown", with_(("stopper.kwargs.iterations", 3)), "stopper.kwargs.iterations",
     "unknown argument 'iterations'; did you mean 'num_iterations'?", False),
    ("kwarg-missing", with_(("stopper.kwargs", {})), "stopper.kwargs", "missing a required argument", False),
    ("kwarg-string-for-int", with_(("stopper.kwargs.num_iterations", "3")), "stopper.kwargs", "num_iterations",
     False),
    ("kwarg-bool-for-int", with_(("stopper.kwargs.num_iterations", True)), "stopper.kwargs", "num_iterations", False),
    ("kwarg-float-for-int", with_(("stopper.kwargs.num_iterations", 2.5)), "stopper.kwargs", "num_iterations", False),
    ("kwarg-negative", with_(("stopper.kwargs.num_iterations", -1)), "stopper.kwargs", "num_iterations", False),
    ("kwarg-huge-int", with_(("stopper.kwargs.num_iterations", 10**30)), "stopper.kwargs.num_iterations",
     "out of range", False),
    ("kwarg-huge-float", with_(("initial.kwargs.std", 1e300)), "initial.kwargs.std", "out of range", False),
    ("kwarg-nan", with_(("optimizer.kwargs.lr", float("nan"))), "optimizer.kwargs.lr", "not a finite number", False),
    ("kwarg-inf", with_(("initial.kwargs.std", float("-inf"))), "initial.kwargs.std", "not a finite number", False),
    ("kwarg-object", with_(("initial.kwargs.std", _Opaque())), "initial.kwargs.std", "not JSON-serialisable", False),
    ("kwarg-set", with_(("initial.kwargs.std", {0.1})), "initial.kwargs.std", "not JSON-serialisable", False),
    ("kwarg-bytes", with_(("initial.kwargs.std", b"0.1")), "initial.kwargs.std", "not JSON-serialisable", False),
    ("kwarg-int-key", with_(("initial.kwargs", {1: 0.1})), "initial.kwargs", "keys must be strings", False),
    ("kwarg-deep-nesting", with_(("initial.kwargs.std", _nested(40))), "initial.kwargs.std", "nested too deeply",
     False),
    ("kwarg-empty-string", with_(("initial.kwargs.std", "")), "initial.kwargs", "std", False),
    ("optimizer-params-kwarg", with_(("optimizer.kwargs.params", [1.0])), "optimizer.kwargs", "params", False),
    ("optimizer-negative-lr", with_(("optimizer.kwargs.lr", -0.1)), "optimizer.kwargs", "learning rate", False),
]

SECURITY = [
    ("os-system", _path("initial", "os.system"), "initial.path", "outside the allowed modules", True),
    ("subprocess-run", _path("initial", "subprocess.run"), "initial.path", "outside the allowed modules", True),
    ("builtins-eval", _path("initial", "builtins.eval"), "initial.path", "outside the allowed modules", True),
    ("builtins-dunder-import", _path("initial", "builtins.__import__"), "initial.path", "invalid part", False),
    ("mei-builtins", _path("initial", "mei.__builtins__"), "initial.path", "invalid part '__builtins__'", False),
    ("mei-dunder-init", _path("stopper", "mei.stoppers.NumIterations.__init__"), "stopper.path",
     "invalid part '__init__'", False),
    ("mei-private-module", _path("initial", "mei._component.Component"), "initial.path", "invalid part '_component'",
     False),
    ("mei-reexported-importlib", _path("initial", "mei.engine.resolve.importlib.import_module"), "initial.path",
     "'mei.engine.resolve.importlib' holds no components", True),
    ("mei-reexported-os", _path("initial", "mei.engine.resolve.os.system"), "initial.path",
     "'mei.engine.resolve.os' holds no components", True),
    ("mei-reexported-torch-load", _path("initial", "mei.initial.torch.load"), "initial.path",
     "it names an attribute of 'mei.initial.torch'", True),
    ("mei-reexported-tensor", _path("initial", "mei.initial.Tensor"), "initial.path",
     "only classes and functions declared with mei.engine.component.component", True),
    ("mei-dict-method",
     with_(("transform", {"path": "mei.engine.resolve.OPTIONAL_KEYS.update", "kwargs": {"evil": 1}})),
     "transform.path", "'mei.engine.resolve.OPTIONAL_KEYS' holds no components", True),
    ("mei-str-method", _path("transform", "mei.engine.resolve.ENV_VAR.format"), "transform.path",
     "'mei.engine.resolve.ENV_VAR' holds no components", True),
    ("prefix-lookalike-mei", _path("initial", "meifoo.x"), "initial.path", "outside the allowed modules", True),
    ("mei-demo-drop", with_(("stopper", {"path": "mei.demo.tables.drop", "kwargs": {"prefix": "x"}})), "stopper.path",
     "'mei.demo.tables' holds no components", True),
    ("mei-demo-run", with_(("stopper", {"path": "mei.demo.pipeline.run_demo", "kwargs": {}})), "stopper.path",
     "'mei.demo.pipeline' holds no components", True),
    ("mei-demo-lab-helper", _path("initial", "mei.demo.lab.population_for"), "initial.path",
     "only classes and functions declared with mei.engine.component.component", True),
    ("mei-table-insert", with_(("transform", {"path": "mei.main.MEIMethod.insert1", "kwargs": {"row": {}}})),
     "transform.path", "'mei.main.MEIMethod' holds no components", True),
    ("mei-report-writer", _path("transform", "mei.demo.report.write_report"), "transform.path",
     "'mei.demo.report' holds no components", True),
    ("mei-undeclared-helper", _path("initial", "mei.methods.run_engine"), "initial.path",
     "only classes and functions declared with mei.engine.component.component", True),
    ("mei-component-attribute", _path("stopper", "mei.stoppers.NumIterations.mro"), "stopper.path",
     "it names an attribute of 'mei.stoppers.NumIterations'", True),
    ("mei-method-as-stopper", _path("stopper", "mei.methods.gradient_ascent"), "stopper.path",
     "is a component of kind method; this slot takes stopper", True),
    ("mei-trainer-as-transform", _path("transform", "mei.demo.lab.trainer_fn"), "transform.path",
     "is a component of kind trainer; this slot takes transform", True),
    ("mei-kind-mismatch", _path("initial", "mei.transforms.Jitter"), "initial.path",
     "is a component of kind transform; this slot takes initial", True),
    ("torch-optimizer-base", _path("optimizer", "torch.optim.Optimizer"), "optimizer.path",
     "only subclasses of torch.optim.Optimizer", True),
    ("prefix-lookalike-optim", _path("optimizer", "torch.optimx.SGD"), "optimizer.path",
     "outside the allowed modules", True),
    ("torch-outside-optim", _path("initial", "torch.nn.Linear"), "initial.path", "outside the allowed modules", True),
    ("torch-load", _path("initial", "torch.load"), "initial.path", "outside the allowed modules", True),
    ("pickle-loads", _path("initial", "pickle.loads"), "initial.path", "outside the allowed modules", True),
    ("mei-cli-main", with_(("transform", {"path": "mei.cli.main", "kwargs": {"argv": ["demo", "--out", "x"]}})),
     "transform.path", "'mei.cli' holds no components", True),
    ("mei-db-connect", _path("initial", "mei.pipeline.database.connect"), "initial.path",
     "'mei.pipeline.database' holds no components", True),
    ("mei-jobs-clear", _path("initial", "mei.pipeline.jobs.clear_stale"), "initial.path",
     "'mei.pipeline.jobs' holds no components", True),
    ("mei-demo-runner", with_(("transform", {"path": "mei.demo.engine_only.run", "kwargs": {"out": "x"}})),
     "transform.path", "'mei.demo.engine_only' holds no components", True),
    ("mei-main-activate", with_(("transform", {"path": "mei.main.activate", "kwargs": {"schema_name": "x"}})),
     "transform.path", "'mei.main' holds no components", True),
    ("mei-fabrik-table", _path("initial", "mei.fabrik.Model"), "initial.path", "'mei.fabrik' holds no components",
     True),
    ("optim-reexported-torch", _path("optimizer", "torch.optim.lr_scheduler.Tensor"), "optimizer.path",
     "only subclasses of torch.optim.Optimizer", True),
]

CASES = STRUCTURE + PATHS + KWARGS + SECURITY
