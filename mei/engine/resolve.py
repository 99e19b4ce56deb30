"""The one resolver for dotted paths, its positive allowlist, and method-config validation.

A dotted path in a method config is code execution: ``"os.system"`` would be a disaster, and so would a path
to anything of the package that is not a component (``"mei.demo.tables.drop"`` would drop a schema the
moment validation called it). Every path the package ever turns into an object goes through
:func:`resolve`, which hands out only three things:

* **declared components of the package**: classes and functions declared with
  :func:`mei.engine.component.component` and named as ``<component module>.<Name>``, where the module is one of
  :data:`COMPONENT_MODULES`. Each has *kinds* (``stopper``, ``transform``, ``method``, ``model`` …) and is
  handed out only for a slot of a matching kind;
* **torch optimizers**: subclasses of ``torch.optim.Optimizer`` named under ``torch.optim``;
* **objects defined in the user's own allowed modules**: prefixes from the environment variable
  ``MEI_ALLOWED_MODULES`` (comma-separated) and from :func:`allow_modules`. A prefix matches whole module
  names: ``lab`` allows ``lab`` and ``lab.x``, never ``laboratory``. The standard library, ``torch``,
  ``datajoint`` and the package itself can never be allowed this way.

Everything else is refused by name before anything is imported or called, with a
:class:`ComponentNotAllowedError` that names the config key and the reason.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .component import BUILDER_KINDS, COMPONENT_KINDS, KINDS, METHOD_KINDS, check_input_rank, declared_kinds
from .errors import ComponentNotAllowedError, ConfigError, HyperparameterError
from .options import BatchOptions
from .schedule import Schedule, ScheduledComponent, extreme_kwargs, schedule_optimizer, values_at

ENV_VAR = "MEI_ALLOWED_MODULES"
PACKAGE = "mei"
TORCH_OPTIM = "torch.optim"

COMPONENT_MODULES: tuple[str, ...] = (
    "mei.initial", "mei.stoppers", "mei.transforms", "mei.regularizers", "mei.preconditioners", "mei.postprocessing",
    "mei.objectives", "mei.reducers", "mei.methods", "mei.legacy.ops",
    "mei.optim.loss", "mei.optim.images", "mei.optim.transforms", "mei.optim.postprocessing",
    "mei.meitorch.methods", "mei.demo.lab", "mei.schedules", "mei.optimizers", "mei.featurevis.maco",
)
"""The package's modules that hold components. A path into any other module of the package is refused before
it is imported; inside these modules only declared components are handed out."""

NEVER_ALLOWED: frozenset[str] = frozenset({PACKAGE, "torch", "datajoint", *sys.stdlib_module_names})
"""Top-level packages that :func:`allow_modules` and ``MEI_ALLOWED_MODULES`` refuse: the standard library
(files, processes, sockets), ``torch`` (``torch.load``, ``torch.hub``), ``datajoint`` and the package itself
(its components are allowed already, its machinery never is)."""

_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_extra_prefixes: list[str] = []

__all__ = [
    "ENV_VAR", "COMPONENT_MODULES", "NEVER_ALLOWED", "COMPONENT_KINDS", "METHOD_KINDS", "BUILDER_KINDS", "KINDS",
    "ConfigError", "ComponentNotAllowedError", "did_you_mean", "allow_modules", "disallow_modules", "allowed_prefixes",
    "is_allowed_module", "resolve", "check_json_value", "check_kwargs", "component_spec", "build_component",
    "iter_component_specs", "Components", "build_components", "validate_config", "package_components",
    "component_catalogue",
]


def _check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not all(_IDENTIFIER.match(p) for p in prefix.split(".")):
        raise ValueError(f"invalid module prefix {prefix!r}: expected dotted identifiers like 'lab.models'")
    top = prefix.split(".")[0]
    if top in NEVER_ALLOWED:
        what = ("the package's own components are allowed already and its other modules never are"
                if top == PACKAGE
                else f"{top!r} is not a module of yours; allow the module that defines your components")
        raise ValueError(f"cannot allow module prefix {prefix!r}: {what}")
    return prefix


def allow_modules(*prefixes: str) -> None:
    """Allow components from your modules under ``prefixes`` (whole module names, e.g. ``"lab.models"``).

    Raises:
        ValueError: a prefix is malformed, or lies in the standard library, ``torch``, ``datajoint`` or ``mei``.
    """
    for prefix in prefixes:
        if _check_prefix(prefix) not in _extra_prefixes:
            _extra_prefixes.append(prefix)


def disallow_modules(*prefixes: str) -> None:
    """Undo :func:`allow_modules` for ``prefixes`` (the environment variable stays)."""
    for prefix in prefixes:
        if prefix in _extra_prefixes:
            _extra_prefixes.remove(prefix)


def allowed_prefixes() -> tuple[str, ...]:
    """The user's module prefixes that components may currently come from (environment, then run time)."""
    env = [p.strip() for p in os.environ.get(ENV_VAR, "").split(",") if p.strip()]
    for prefix in env:
        _check_prefix(prefix)
    return tuple(dict.fromkeys([*env, *_extra_prefixes]))


def is_allowed_module(module_name: str) -> bool:
    """Whether ``module_name`` lies under one of the user's allowed prefixes (whole-name match)."""
    return any(module_name == p or module_name.startswith(p + ".") for p in allowed_prefixes())


def _how_to_allow(module: str) -> str:
    """Advice for a path outside the allowlist: the narrowest module to allow, never one that is refused."""
    if module.split(".")[0] in NEVER_ALLOWED:
        return (f"{module!r} can never be allowed (the standard library, torch beyond torch.optim's optimizers, "
                "datajoint and the package's non-component modules are refused); name a component of the package "
                "or one defined in a module of yours")
    return (f"your allowed module prefixes are {list(allowed_prefixes())}; if {module!r} holds your components, "
            f"set the environment variable {ENV_VAR}={module} (comma-separated for several) or call "
            f"mei.allow_modules({module!r})")


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'X'?"`` for the candidate closest to a mistyped ``word`` (``""`` if none is close)."""
    candidates = sorted(set(candidates))
    match = difflib.get_close_matches(word, candidates, n=1, cutoff=0.75)
    if not match:  # a wrong case or a dropped letter in a short name ('jitter', 'Jiter') is still a typo
        lowered = {candidate.lower(): candidate for candidate in candidates}
        close = difflib.get_close_matches(word.lower(), sorted(lowered), n=1, cutoff=0.75)
        match = [lowered[close[0]]] if close else []
    return f"; did you mean {match[0]!r}?" if match else ""


def _declared_names(module: Any) -> list[str]:
    return [name for name, obj in vars(module).items() if _IDENTIFIER.match(name) and declared_kinds(obj)]


def _split_path(path: Any, key: str) -> list[str]:
    if not isinstance(path, str):
        raise ConfigError(key, f"a dotted path must be a string, got {type(path).__name__}")
    if not path.strip():
        raise ConfigError(key, "the dotted path is empty")
    parts = path.split(".")
    if len(parts) < 2:
        raise ConfigError(key, f"{path!r} is not an absolute dotted path like 'package.module.Name'")
    for part in parts:
        if not _IDENTIFIER.match(part):
            raise ConfigError(
                key, f"{path!r} has an invalid part {part!r} (relative, private or dunder names are refused)"
            )
    return parts


def _import_attribute(module_name: str, name: str, path: str, key: str) -> Any:
    """``module_name.name``, importing the (already vetted) module."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise ConfigError(key, f"no module named {module_name!r} (resolving {path!r})") from error
    if not hasattr(module, name):
        raise ConfigError(key, f"{module_name!r} has no attribute {name!r} (resolving {path!r})"
                          + _suggest_attribute(module, module_name, name))
    return getattr(module, name)


def _suggest_attribute(module: Any, module_name: str, name: str) -> str:
    """A "did you mean" for a name missing from ``module``: a close component name there, or the same name in
    another of the package's component modules, or a close torch optimizer."""
    if module_name in COMPONENT_MODULES:
        hint = did_you_mean(name, _declared_names(module))
        if hint:
            return hint
        elsewhere = [path for path in package_components() if path.rsplit(".", 1)[1] == name]
        return f"; did you mean {elsewhere[0]!r}?" if elsewhere else ""
    if module_name.split(".")[:2] == TORCH_OPTIM.split("."):
        return did_you_mean(name, [n for n, obj in vars(module).items() if _is_torch_optimizer(obj)])
    return did_you_mean(name, [n for n in vars(module) if not n.startswith("_")])


def _package_component(path: str, parts: list[str], key: str) -> Any:
    """A declared component of the package, named ``<component module>.<Name>``."""
    module_name, name = ".".join(parts[:-1]), parts[-1]
    if module_name not in COMPONENT_MODULES:
        inside = next((m for m in COMPONENT_MODULES if module_name.startswith(m + ".")), None)
        reason = (f"it names an attribute of {inside + '.' + parts[len(inside.split('.'))]!r}; name a component "
                  "itself, as <module>.<Name>" if inside else
                  f"{module_name!r} holds no components (the package's component modules are "
                  f"{', '.join(COMPONENT_MODULES)})" + did_you_mean(module_name, COMPONENT_MODULES))
        raise ComponentNotAllowedError(key, f"{path!r} is not a component: {reason}")
    obj = _import_attribute(module_name, name, path, key)
    if not declared_kinds(obj):
        raise ComponentNotAllowedError(
            key, f"{path!r} is not a component: only classes and functions declared with "
            "mei.engine.component.component can be named, and this one is not"
        )
    return obj


def _is_torch_optimizer(obj: Any) -> bool:
    from torch.optim import Optimizer  # keep `mei.engine.resolve` importable without paying for torch

    return isinstance(obj, type) and issubclass(obj, Optimizer) and obj is not Optimizer


def _torch_optimizer(path: str, parts: list[str], key: str) -> Any:
    """A subclass of ``torch.optim.Optimizer``, named ``torch.optim[.<module>].<Name>``."""
    module_name, name = ".".join(parts[:-1]), parts[-1]
    if module_name != TORCH_OPTIM and not module_name.startswith(TORCH_OPTIM + "."):
        raise ComponentNotAllowedError(key, f"{path!r} is not an optimizer class; name one such as 'torch.optim.SGD'")
    obj = _import_attribute(module_name, name, path, key)
    if not _is_torch_optimizer(obj):
        raise ComponentNotAllowedError(
            key, f"{path!r} is not an optimizer class: from torch.optim only subclasses of torch.optim.Optimizer "
            "may be named"
        )
    return obj


def _user_object(path: str, parts: list[str], key: str) -> Any:
    """An object defined in one of the user's allowed modules (or a component re-exported there)."""
    module, n_module_parts = None, 0
    for n in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:n])
        if not is_allowed_module(name):
            continue
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name is not None and (name == error.name or name.startswith(error.name + ".")):
                continue
            raise ConfigError(key, f"importing {name!r} failed: {error}") from error
        n_module_parts = n
        break
    if module is None:
        if not is_allowed_module(".".join(parts[:-1])):
            raise ComponentNotAllowedError(key, f"{path!r} is outside the allowed modules; "
                                           + _how_to_allow(".".join(parts[:-1])))
        raise ConfigError(key, f"no module found for {path!r}")
    obj: Any = module
    for i, attr in enumerate(parts[n_module_parts:], start=n_module_parts):
        if not hasattr(obj, attr):
            raise ConfigError(key, f"{'.'.join(parts[:i])!r} has no attribute {attr!r} (resolving {path!r})")
        obj = getattr(obj, attr)
        last = i == len(parts) - 1
        if last and (declared_kinds(obj) or _is_torch_optimizer(obj)):
            return obj  # a component of the package or a torch optimizer, re-exported by the user's module
        origin = obj.__name__ if inspect.ismodule(obj) else getattr(obj, "__module__", None)
        if not isinstance(origin, str):  # e.g. `dict.update` of a module-level dict: could mutate module state
            raise ComponentNotAllowedError(
                key, f"{path!r}: {'.'.join(parts[:i + 1])!r} is a {type(obj).__name__} whose defining module is "
                "unknown; only modules, classes, functions and their instances defined in allowed modules may be named"
            )
        if not is_allowed_module(origin):
            advice = (" (and it is not a declared component of the package)" if origin.split(".")[0] == PACKAGE
                      else "; " + _how_to_allow(origin))
            raise ComponentNotAllowedError(
                key, f"{path!r} resolves to an object from module {origin!r}, which is not allowed{advice}"
            )
    return obj


def _check_kinds(path: str, obj: Any, key: str, kinds: Sequence[str]) -> None:
    declared = declared_kinds(obj) or (frozenset({"optimizer"}) if _is_torch_optimizer(obj) else frozenset())
    if declared and not declared & set(kinds):
        raise ComponentNotAllowedError(
            key, f"{path!r} is a component of kind {' / '.join(sorted(declared))}; this slot takes "
            f"{' or '.join(kinds)}"
        )


def resolve(path: str, key: str = "path", kinds: Sequence[str] = KINDS) -> Any:
    """Import and return the component named by an absolute dotted ``path``.

    Args:
        path (str): e.g. ``"mei.stoppers.NumIterations"``, ``"torch.optim.SGD"`` or ``"lab.parts.MyStopper"``.
        key (str, optional): where the path sits in a config, used in error messages. Default: ``"path"``.
        kinds (Sequence[str], optional): the kinds of component this slot takes (see
            :data:`mei.engine.component.KINDS`); a declared component of another kind is refused. Objects of the
            user's own modules are not declared and fit any slot. Default: any kind; the package's own
            callers always name the kinds of their slot (config parts, ``method_fn``, ``*_fn`` builders).

    Raises:
        ComponentNotAllowedError: the path names something that is not an allowed component for this slot.
        ConfigError: the path is malformed or names nothing.
    """
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        raise ValueError(f"unknown component kinds {unknown}; known: {list(KINDS)}")
    allowed_prefixes()  # a refused or malformed prefix in MEI_ALLOWED_MODULES is an error for every path
    parts = _split_path(path, key)
    if parts[0] == PACKAGE:
        obj = _package_component(path, parts, key)
    elif parts[:2] == TORCH_OPTIM.split("."):
        obj = _torch_optimizer(path, parts, key)
    elif is_allowed_module(parts[0]) or is_allowed_module(".".join(parts[:-1])):
        obj = _user_object(path, parts, key)
    else:
        raise ComponentNotAllowedError(key, f"{path!r} is outside the allowed modules; "
                                       + _how_to_allow(".".join(parts[:-1])))
    _check_kinds(path, obj, key, kinds)
    return obj


def package_components() -> dict[str, frozenset[str]]:
    """Every dotted path of the package that :func:`resolve` hands out, with the kinds of its component.

    Imports the component modules (:data:`COMPONENT_MODULES`) and nothing else of the package.
    """
    paths: dict[str, frozenset[str]] = {}
    for module_name in COMPONENT_MODULES:
        module = importlib.import_module(module_name)
        for name, obj in sorted(vars(module).items()):
            if _IDENTIFIER.match(name) and declared_kinds(obj):
                paths[f"{module_name}.{name}"] = declared_kinds(obj)
    return paths


def component_catalogue() -> str:
    """The package's components as a Markdown table (kind, dotted path, first line of the docstring);
    ``docs/components.md`` is this table."""
    rows = ["| kind | dotted path | what it is |", "|---|---|---|"]
    components = package_components()
    for kind in KINDS:
        for path, kinds in components.items():
            if kind == min(kinds, key=KINDS.index):
                summary = (inspect.getdoc(resolve(path)) or "").strip().split("\n\n")[0]
                doc = " ".join(summary.split()).replace("|", "\\|")
                also = sorted(kinds - {kind}, key=KINDS.index)
                label = kind + (f" (also {', '.join(also)})" if also else "")
                rows.append(f"| {label} | `{path}` | {doc} |")
    return "\n".join(rows) + "\n"


# ----------------------------------------------------------------------------------------------- config values


def check_json_value(value: Any, key: str, max_abs: float = 1e12, depth: int = 0) -> None:
    """Check that ``value`` is plain JSON (str keys; finite numbers of sane size), raising :class:`ConfigError`."""
    if depth > 20:
        raise ConfigError(key, "value is nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(key, f"{value!r} is not a finite number")
        if abs(value) > max_abs:
            raise ConfigError(key, f"{value!r} is out of range (|value| <= {max_abs:g})")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_json_value(item, f"{key}[{i}]", max_abs, depth + 1)
        return
    if isinstance(value, Mapping):
        for k, item in value.items():
            if not isinstance(k, str):
                raise ConfigError(key, f"keys must be strings, got {k!r}")
            check_json_value(item, f"{key}.{k}", max_abs, depth + 1)
        return
    raise ConfigError(key, f"{type(value).__name__} values are not JSON-serialisable; "
                           "use numbers, strings, lists, dicts")


def check_kwargs(target: Callable[..., Any], kwargs: Mapping[str, Any], key: str, n_positional: int = 0) -> None:
    """Check that ``target(*n_positional placeholders, **kwargs)`` binds to its signature."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return  # builtins without a signature: checked when called
    accepted = [name for name in signature.parameters if name not in ("self", "params")]
    parameters = list(signature.parameters.values())
    if not any(p.kind is p.VAR_KEYWORD for p in parameters):
        names = {p.name for p in parameters[n_positional:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        unknown = [name for name in kwargs if name not in names]
        if unknown:
            raise ConfigError(f"{key}.{unknown[0]}", f"unknown argument {unknown[0]!r}"
                              + did_you_mean(unknown[0], names) + f" (accepted keyword arguments: {accepted})")
    try:
        signature.bind(*([None] * n_positional), **kwargs)
    except TypeError as error:
        raise ConfigError(key, f"{error} (accepted keyword arguments: {accepted})") from None


def component_spec(spec: Any, key: str) -> tuple[str, dict[str, Any]]:
    """Validate the shape of a ``{"path": ..., "kwargs": {...}}`` spec and return ``(path, kwargs)``."""
    if not isinstance(spec, Mapping):
        raise ConfigError(key, 'a component must be a dict {"path": ..., "kwargs": {...}}, '
                               f"got {type(spec).__name__}")
    unknown = sorted(set(spec) - {"path", "kwargs"})
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", f"unknown keys {unknown}; a component has only 'path' and 'kwargs'"
                          + did_you_mean(str(unknown[0]), ["path", "kwargs"]))
    if "path" not in spec:
        raise ConfigError(key, "missing 'path'")
    kwargs = spec.get("kwargs", {})
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, Mapping):
        raise ConfigError(f"{key}.kwargs", f"must be a dict, got {type(kwargs).__name__}")
    check_json_value(dict(kwargs), f"{key}.kwargs")
    return spec["path"], dict(kwargs)


def _schedule_class(value: Any) -> Any:
    """The schedule class a kwargs value names, if it is a schedule spec ``{"path": ..., "kwargs": {...}}``
    whose path resolves to a schedule (declared ``"schedule"`` or a :class:`Schedule` subclass); else None.

    A spec naming anything else (a reducer, a transform that the component builds itself) is left alone, and
    so is one whose path does not resolve: the component it is given to reports that with its own key."""
    if not (isinstance(value, Mapping) and isinstance(value.get("path"), str) and set(value) <= {"path", "kwargs"}):
        return None
    try:
        obj = resolve(value["path"])
    except (ConfigError, ComponentNotAllowedError):
        return None
    if "schedule" in declared_kinds(obj) or (isinstance(obj, type) and issubclass(obj, Schedule)):
        return obj
    return None


def build_schedules(kwargs: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``kwargs`` with every schedule spec among its values built into its :class:`Schedule` (errors name
    ``key.<name>``); everything else unchanged."""
    out = dict(kwargs)
    for name, value in kwargs.items():
        if _schedule_class(value) is not None:
            schedule = build_component(value, f"{key}.{name}", kinds=("schedule",))
            if not isinstance(schedule, Schedule):
                raise ConfigError(f"{key}.{name}.path", f"{value['path']} did not build a Schedule")
            out[name] = schedule
    return out


def _check_extremes(factory: Callable[..., Any], kwargs: Mapping[str, Any], key: str, path: str,
                    n_positional: int = 0) -> None:
    """Build ``factory`` with every schedule at its smallest and at its largest value (and drop the result)."""
    import torch

    placeholders = [[torch.zeros(1, requires_grad=True)]] if n_positional else []
    for which, values in zip(("smallest", "largest"), extreme_kwargs(kwargs), strict=True):
        try:
            factory(*placeholders, **values)
        except (ValueError, TypeError) as error:
            at = {name: values[name] for name, value in kwargs.items() if isinstance(value, Schedule)}
            raise ConfigError(f"{key}.kwargs", f"{path} rejected its scheduled arguments at their {which} "
                                               f"values {at}: {error}") from error


def build_component(spec: Any, key: str, n_positional: int = 0, kinds: Sequence[str] = COMPONENT_KINDS) -> Any:
    """Resolve, check and instantiate one component spec; errors name ``key``.

    With ``n_positional > 0`` the resolved object is returned (not called), after its kwargs were checked
    against its signature with that many leading positional arguments (the optimizer takes ``params``).
    ``kinds`` are the component kinds the slot takes (see :func:`resolve`).

    A kwargs value that is a schedule spec (``{"path": "mei.schedules.Linear", "kwargs": {...}}``) makes the
    component a :class:`~mei.engine.schedule.ScheduledComponent`, built with each step's values; the
    component is checked at each schedule's smallest and largest value first.
    """
    path, kwargs = component_spec(spec, key)
    factory = resolve(path, f"{key}.path", kinds)
    if not callable(factory):
        raise ConfigError(f"{key}.path", f"{path!r} is not callable")
    check_kwargs(factory, kwargs, f"{key}.kwargs", n_positional)
    if n_positional:
        return factory
    kwargs = build_schedules(kwargs, f"{key}.kwargs") if "schedule" not in kinds else kwargs
    scheduled = any(isinstance(value, Schedule) for value in kwargs.values())
    if scheduled:
        _check_extremes(factory, kwargs, key, path)
    try:
        component = ScheduledComponent(factory, kwargs, path) if scheduled else factory(**kwargs)
    except ConfigError as error:  # a nested spec (Compose, Sum): its key continues this one's
        raise type(error)(f"{key}.kwargs.{error.key}" if error.key else f"{key}.kwargs", error.message) from error
    except HyperparameterError as error:
        raise ConfigError(f"{key}.kwargs.{error.name}", f"{path}: {error}") from error
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{key}.kwargs", f"{path} rejected its arguments: {error}") from error
    if not callable(component):
        raise ConfigError(f"{key}.path", f"{path}(**kwargs) returned a non-callable {type(component).__name__}")
    name = "" if scheduled else getattr(component, "does_nothing", "")
    if isinstance(name, str) and name:  # e.g. GaussianBlur(sigma=0): surely not what the config meant
        raise ConfigError(f"{key}.kwargs.{name}", f"{path} with {name}={kwargs.get(name, 0)!r} does nothing "
                                                  f"(must be > 0); leave the component out instead")
    return component


def iter_component_specs(config: Mapping[str, Any], keys: Iterable[str]) -> Iterable[tuple[str, Any]]:
    """Yield ``(key, spec)`` for the component keys present in ``config`` (lists expanded as ``key[i]``)."""
    for key in keys:
        if key not in config:
            continue
        value = config[key]
        if isinstance(value, list):
            for i, spec in enumerate(value):
                yield f"{key}[{i}]", spec
        else:
            yield key, value


# ------------------------------------------------------------------------------------ gradient-ascent configs

REQUIRED_KEYS: tuple[str, ...] = ("device", "initial", "optimizer", "stopper")
OPTIONAL_COMPONENT_KEYS: tuple[str, ...] = (
    "parameterization", "transform", "regularization", "precondition", "postprocessing", "objectives",
)
OPTIONAL_KEYS: dict[str, str] = {
    "shape": "input shape (list of positive ints) when there are no dataloaders",
    "minimize": "true finds least-exciting inputs (default false)",
    "progress": "true shows a progress bar over the steps (default false)",
    "batch": "options of batched runs: chunk_size, autocast, compile, … (see mei.batched; single runs ignore it)",
}
SLOT_KINDS: dict[str, str] = {
    "initial": "initial", "optimizer": "optimizer", "stopper": "stopper", "parameterization": "parameterization",
    "transform": "transform",
    "regularization": "regularization", "precondition": "precondition", "postprocessing": "postprocessing",
    "objectives": "objective",
}
"""The component kind each top-level slot of a gradient-ascent config takes."""
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


class Components:
    """Everything a gradient-ascent config describes, built and ready (fresh objects on every build)."""

    def __init__(self, **fields: Any) -> None:
        self.device: str = fields["device"]
        self.initial = fields["initial"]
        self.optimizer = fields["optimizer"]
        self.stopper = fields["stopper"]
        self.parameterization = fields.get("parameterization")
        self.transform = fields.get("transform")
        self.regularization = fields.get("regularization")
        self.precondition = fields.get("precondition")
        self.postprocessing = fields.get("postprocessing")
        self.objectives: dict[str, Any] = fields.get("objectives", {})
        self.shape: tuple[int, ...] | None = fields.get("shape")
        self.maximize: bool = not fields.get("minimize", False)
        self.progress: bool = fields.get("progress", False)

    def check_input(self, shape: Sequence[int]) -> None:
        """Refuse components that cannot work on an input of ``shape`` (temporal components on a 4-D image
        input), with a :class:`ConfigError` naming the config key."""
        for key in ("transform", "regularization", "precondition", "postprocessing"):
            part = getattr(self, key)
            if part is not None:
                check_input_rank(part, shape, key)


def _optimizer_factory(spec: Any, key: str) -> Callable[[list[Any]], Any]:
    import torch  # keep `mei.engine.resolve` importable without paying for torch at import

    factory = build_component(spec, key, n_positional=1, kinds=("optimizer",))
    kwargs = build_schedules(component_spec(spec, key)[1], f"{key}.kwargs")
    schedules = {name: value for name, value in kwargs.items() if isinstance(value, Schedule)}
    first = values_at(kwargs, 0)
    _check_optimizer_numbers(factory, first, f"{key}.kwargs")
    if schedules:
        _check_extremes(factory, kwargs, key, spec["path"], n_positional=1)
    try:
        probe = factory([torch.zeros(1, requires_grad=True)], **first)
    except (ValueError, TypeError) as error:
        name = next((name for phrase, name in _TORCH_PHRASES.items() if phrase in str(error)
                     and name.split("[")[0] in kwargs), None)
        where = f"{key}.kwargs.{name}" if name else f"{key}.kwargs"
        raise ConfigError(where, f"{spec['path']} rejected its arguments: {error}") from error
    if not (hasattr(probe, "step") and hasattr(probe, "zero_grad")):
        raise ConfigError(f"{key}.path", f"{spec['path']} is not a torch-style optimizer (no step/zero_grad)")
    if schedules and not hasattr(probe, "register_step_pre_hook"):
        raise ConfigError(f"{key}.kwargs", f"scheduled hyperparameters {sorted(schedules)} need a "
                                           f"torch.optim.Optimizer; {spec['path']} has no step hooks")

    def make(params: list[Any]) -> Any:
        return schedule_optimizer(factory(params, **first), schedules)

    make.__qualname__ = f"{spec['path']}(**{kwargs!r})"
    return make


_TORCH_PHRASES = {
    "learning rate": "lr", "momentum": "momentum", "weight_decay": "weight_decay", "epsilon": "eps",
    "beta parameter at index 0": "betas[0]", "beta parameter at index 1": "betas[1]", "dampening": "dampening",
    "alpha": "alpha", "rho": "rho", "lr_decay": "lr_decay",
}
"""Words of torch's optimizer errors (``Invalid learning rate: -1``) -> the argument they are about."""


def _check_optimizer_numbers(factory: Any, kwargs: Mapping[str, Any], key: str) -> None:
    """Where a torch optimizer's default is a number (or a tuple of numbers), the config must give one too
    (``"lr": "0.1"`` would otherwise fail inside torch with "'<' not supported between 'str' and 'float'")."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return
    for name, value in kwargs.items():
        default = parameters[name].default if name in parameters else inspect.Parameter.empty
        if _is_number(default) and not _is_number(value):
            raise ConfigError(f"{key}.{name}", f"must be a number, got {value!r}")
        if isinstance(default, tuple) and default and all(_is_number(d) for d in default):
            if not isinstance(value, (list, tuple)) or len(value) != len(default):
                raise ConfigError(f"{key}.{name}", f"must be a list of {len(default)} numbers, got {value!r}")
            for i, item in enumerate(value):
                if not _is_number(item):
                    raise ConfigError(f"{key}.{name}[{i}]", f"must be a number, got {item!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_shape(value: Any) -> tuple[int, ...]:
    if (not isinstance(value, (list, tuple)) or len(value) < 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 100_000 for s in value)):
        raise ConfigError("shape", f"must be a list of at least two positive ints (images first), got {value!r}")
    return tuple(value)


def _check_keys(config: Any, extra_keys: Iterable[str]) -> None:
    """A dict with string keys, every required key present and no unknown one."""
    if not isinstance(config, Mapping):
        raise ConfigError("", f"a method config must be a dict, got {type(config).__name__}")
    known = {*REQUIRED_KEYS, *OPTIONAL_COMPONENT_KEYS, *OPTIONAL_KEYS, *extra_keys}
    for key in config:
        if not isinstance(key, str):
            raise ConfigError("", f"config keys must be strings, got {key!r}")
    unknown = sorted(set(config) - known)
    if unknown:
        raise ConfigError(unknown[0], f"unknown config key(s) {unknown}" + did_you_mean(unknown[0], known)
                          + f" (known keys: {sorted(known)})")
    missing = [key for key in REQUIRED_KEYS if key not in config]
    if missing:
        raise ConfigError(missing[0], f"missing required config key(s) {missing}")


def _plain_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The values that are not components: device, flags, shape, batch options (checked, not stored)."""
    device = config["device"]
    if not isinstance(device, str) or not _DEVICE.match(device):
        raise ConfigError("device", f"must be 'cpu' or 'cuda' (or 'cuda:N'), got {device!r}")
    settings: dict[str, Any] = {"device": device}
    for key in ("minimize", "progress"):
        if key in config:
            if not isinstance(config[key], bool):
                raise ConfigError(key, f"must be true or false, got {config[key]!r}")
            settings[key] = config[key]
    if "shape" in config:
        settings["shape"] = _check_shape(config["shape"])
    if "batch" in config:  # options of batched runs, checked here so a bad one never reaches the database
        BatchOptions.from_config(config)
    return settings


def _built_parts(config: Mapping[str, Any]) -> dict[str, Any]:
    """Every component of the config, resolved for its slot's kind and instantiated (objectives by dotted path,
    as sinzlab/mei names them; a path repeated gets ``_<position>`` appended)."""
    if "objectives" in config and not isinstance(config["objectives"], list):
        raise ConfigError("objectives", f"must be a list of components, got {type(config['objectives']).__name__}")
    parts: dict[str, Any] = {"optimizer": _optimizer_factory(config["optimizer"], "optimizer")}
    for key in ("initial", "stopper", *OPTIONAL_COMPONENT_KEYS[:-1]):
        if key in config:
            parts[key] = build_component(config[key], key, kinds=(SLOT_KINDS[key],))
    objectives: dict[str, Any] = {}
    for key, spec in iter_component_specs(config, ["objectives"]):
        objective = build_component(spec, key, kinds=(SLOT_KINDS["objectives"],))
        name = spec["path"]
        objectives[name if name not in objectives else f"{name}_{len(objectives)}"] = objective
    parts["objectives"] = objectives
    return parts


def build_components(config: Any, extra_keys: Iterable[str] = ()) -> Components:
    """Validate a gradient-ascent ``config`` completely and build its components.

    Checks required and unknown keys, value types, that every dotted path is allowed and resolvable, that
    each component accepts its kwargs (and its constructor accepts their values). Raises
    :class:`ConfigError` naming the offending key; nothing is optimized.

    Args:
        config (dict): the method config.
        extra_keys (Iterable[str], optional): further top-level keys a calling method understands.
    """
    _check_keys(config, extra_keys)
    components = Components(**_plain_settings(config), **_built_parts(config))
    if components.shape is not None:
        components.check_input(components.shape)
    return components


def validate_config(config: Any, extra_keys: Iterable[str] = ()) -> None:
    """Check a gradient-ascent method config completely; raise :class:`ConfigError` naming the key if bad."""
    build_components(config, extra_keys)
