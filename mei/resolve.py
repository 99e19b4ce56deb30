"""The one resolver for dotted paths, its module allowlist, and method-config validation.

A dotted path in a method config is code execution: ``"os.system"`` would be a disaster. Every path the
package ever turns into an object goes through :func:`resolve`, which only imports modules under an
allowed prefix and only hands out objects that were *defined* in an allowed module (so
``"mei.resolve.importlib.import_module"`` is refused even though it starts with ``mei.``).

Allowed prefixes are, in order of precedence:

* the defaults ``mei`` and ``torch.optim``;
* the environment variable ``MEI_ALLOWED_MODULES`` (comma-separated, e.g. ``mymodule,lab.models``);
* prefixes added at run time with :func:`allow_modules`.

A prefix matches whole module names only: ``lab`` allows ``lab`` and ``lab.x``, never ``laboratory``.
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

DEFAULT_ALLOWED_MODULES: tuple[str, ...] = ("mei", "torch.optim")
ENV_VAR = "MEI_ALLOWED_MODULES"

_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_extra_prefixes: list[str] = []

INTERNAL_MODULES: tuple[str, ...] = ("mei.cli", "mei.db", "mei.engine_demo", "mei.reliability", "mei.main", "mei.fabrik",
                                   "mei._tables")
"""The package's own machinery, never a component whatever the allowlist: its functions run commands, write
files or open and change databases, and a config must not be able to call them."""


class ConfigError(ValueError):
    """A method config (or one of its components) is invalid.

    ``key`` names where in the config the problem is, e.g. ``"stopper.kwargs"``.
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)


class ComponentNotAllowedError(ConfigError):
    """A dotted path points outside the allowed module prefixes."""


def _check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not all(_IDENTIFIER.match(p) for p in prefix.split(".")):
        raise ValueError(f"invalid module prefix {prefix!r}: expected dotted identifiers like 'lab.models'")
    return prefix


def allow_modules(*prefixes: str) -> None:
    """Allow components from modules under ``prefixes`` (whole module names, e.g. ``"mymodule"``)."""
    for prefix in prefixes:
        if _check_prefix(prefix) not in _extra_prefixes:
            _extra_prefixes.append(prefix)


def disallow_modules(*prefixes: str) -> None:
    """Undo :func:`allow_modules` for ``prefixes`` (defaults and the environment variable stay)."""
    for prefix in prefixes:
        if prefix in _extra_prefixes:
            _extra_prefixes.remove(prefix)


def allowed_prefixes() -> tuple[str, ...]:
    """The module prefixes components may currently come from."""
    env = [p.strip() for p in os.environ.get(ENV_VAR, "").split(",") if p.strip()]
    for prefix in env:
        _check_prefix(prefix)
    return tuple(dict.fromkeys([*DEFAULT_ALLOWED_MODULES, *env, *_extra_prefixes]))


def is_allowed_module(module_name: str) -> bool:
    """Whether ``module_name`` lies under an allowed prefix (whole-name match)."""
    return any(module_name == p or module_name.startswith(p + ".") for p in allowed_prefixes())


def _how_to_allow(module: str) -> str:
    return (
        f"allowed module prefixes are {list(allowed_prefixes())}; to allow it, set the environment variable "
        f"{ENV_VAR}={module} (comma-separated for several) or call mei.resolve.allow_modules({module!r})"
    )


def _refuse_internal(path: str, modules: Iterable[str], key: str) -> None:
    for module in modules:
        internal = next((p for p in INTERNAL_MODULES if module == p or module.startswith(p + ".")), None)
        if internal is not None:
            raise ComponentNotAllowedError(
                key, f"{path!r} names {internal!r}, part of the package's machinery (command line, database, jobs, "
                "demo runner), which a config may never call"
            )


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


def resolve(path: str, key: str = "path") -> Any:
    """Import and return the object named by an absolute dotted ``path``.

    Args:
        path (str): e.g. ``"mei.stoppers.NumIterations"`` or ``"torch.optim.SGD"``.
        key (str, optional): where the path sits in a config, used in error messages. Default: ``"path"``.

    Raises:
        ComponentNotAllowedError: the path (or the module that defines the object) is not allowed.
        ConfigError: the path is malformed or names nothing.
    """
    parts = _split_path(path, key)
    _refuse_internal(path, (".".join(parts[:n]) for n in range(1, len(parts))), key)
    if not is_allowed_module(parts[0]) and not is_allowed_module(".".join(parts[:-1])):
        raise ComponentNotAllowedError(key, f"{path!r} is outside the allowed modules; " + _how_to_allow(parts[0]))
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
            raise ComponentNotAllowedError(key, f"{path!r} is outside the allowed modules; " + _how_to_allow(parts[0]))
        raise ConfigError(key, f"no module found for {path!r}")
    obj: Any = module
    for i, attr in enumerate(parts[n_module_parts:], start=n_module_parts):
        if not hasattr(obj, attr):
            raise ConfigError(key, f"{'.'.join(parts[:i])!r} has no attribute {attr!r} (resolving {path!r})")
        obj = getattr(obj, attr)
        origin = obj.__name__ if inspect.ismodule(obj) else getattr(obj, "__module__", None)
        if not isinstance(origin, str):  # e.g. `dict.update` of a module-level dict: could mutate package state
            raise ComponentNotAllowedError(
                key, f"{path!r}: {'.'.join(parts[:i + 1])!r} is a {type(obj).__name__} whose defining module is "
                "unknown; only modules, classes, functions and their instances defined in allowed modules may be named"
            )
        _refuse_internal(path, [origin], key)
        if not is_allowed_module(origin):
            raise ComponentNotAllowedError(
                key, f"{path!r} resolves to an object from module {origin!r}, which is not allowed; "
                + _how_to_allow(origin.split(".")[0])
            )
    return obj


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
    raise ConfigError(key, f"{type(value).__name__} values are not JSON-serialisable; use numbers, strings, lists, dicts")


def check_kwargs(target: Callable[..., Any], kwargs: Mapping[str, Any], key: str, n_positional: int = 0) -> None:
    """Check that ``target(*n_positional placeholders, **kwargs)`` binds to its signature."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return  # builtins without a signature: checked when called
    try:
        signature.bind(*([None] * n_positional), **kwargs)
    except TypeError as error:
        accepted = [name for name in signature.parameters if name not in ("self", "params")]
        raise ConfigError(key, f"{error} (accepted keyword arguments: {accepted})") from None


def component_spec(spec: Any, key: str) -> tuple[str, dict[str, Any]]:
    """Validate the shape of a ``{"path": ..., "kwargs": {...}}`` spec and return ``(path, kwargs)``."""
    if not isinstance(spec, Mapping):
        raise ConfigError(key, f'a component must be a dict {{"path": ..., "kwargs": {{...}}}}, got {type(spec).__name__}')
    unknown = sorted(set(spec) - {"path", "kwargs"})
    if unknown:
        raise ConfigError(key, f"unknown keys {unknown}; a component has only 'path' and 'kwargs'")
    if "path" not in spec:
        raise ConfigError(key, "missing 'path'")
    kwargs = spec.get("kwargs", {})
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, Mapping):
        raise ConfigError(f"{key}.kwargs", f"must be a dict, got {type(kwargs).__name__}")
    check_json_value(dict(kwargs), f"{key}.kwargs")
    return spec["path"], dict(kwargs)


def build_component(spec: Any, key: str, n_positional: int = 0) -> Any:
    """Resolve, check and instantiate one component spec; errors name ``key``.

    With ``n_positional > 0`` the resolved object is returned (not called), after its kwargs were checked
    against its signature with that many leading positional arguments (the optimizer takes ``params``).
    """
    path, kwargs = component_spec(spec, key)
    factory = resolve(path, f"{key}.path")
    if not callable(factory):
        raise ConfigError(f"{key}.path", f"{path!r} is not callable")
    check_kwargs(factory, kwargs, f"{key}.kwargs", n_positional)
    if n_positional:
        return factory
    try:
        component = factory(**kwargs)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{key}.kwargs", f"{path} rejected its arguments: {error}") from error
    if not callable(component):
        raise ConfigError(f"{key}.path", f"{path}(**kwargs) returned a non-callable {type(component).__name__}")
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
    "transform", "regularization", "precondition", "postprocessing", "objectives",
)
OPTIONAL_KEYS: dict[str, str] = {
    "shape": "input shape (list of positive ints) when there are no dataloaders",
    "minimize": "true finds least-exciting inputs (default false)",
    "progress": "true shows a progress bar over the steps (default false)",
    "batch": "options of batched runs: chunk_size, autocast, compile, … (see mei.batched; single runs ignore it)",
}
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


class Components:
    """Everything a gradient-ascent config describes, built and ready (fresh objects on every build)."""

    def __init__(self, **fields: Any) -> None:
        self.device: str = fields["device"]
        self.initial = fields["initial"]
        self.optimizer = fields["optimizer"]
        self.stopper = fields["stopper"]
        self.transform = fields.get("transform")
        self.regularization = fields.get("regularization")
        self.precondition = fields.get("precondition")
        self.postprocessing = fields.get("postprocessing")
        self.objectives: dict[str, Any] = fields.get("objectives", {})
        self.shape: tuple[int, ...] | None = fields.get("shape")
        self.maximize: bool = not fields.get("minimize", False)
        self.progress: bool = fields.get("progress", False)


def _optimizer_factory(spec: Any, key: str) -> Callable[[list[Any]], Any]:
    import torch  # noqa: PLC0415 - keep `mei.resolve` importable without paying for torch at import

    factory = build_component(spec, key, n_positional=1)
    kwargs = component_spec(spec, key)[1]
    try:
        probe = factory([torch.zeros(1, requires_grad=True)], **kwargs)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{key}.kwargs", f"{spec['path']} rejected its arguments: {error}") from error
    if not (hasattr(probe, "step") and hasattr(probe, "zero_grad")):
        raise ConfigError(f"{key}.path", f"{spec['path']} is not a torch-style optimizer (no step/zero_grad)")

    def make(params: list[Any]) -> Any:
        return factory(params, **kwargs)

    make.__qualname__ = f"{spec['path']}(**{kwargs!r})"
    return make


def _check_shape(value: Any) -> tuple[int, ...]:
    if (not isinstance(value, (list, tuple)) or len(value) < 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 100_000 for s in value)):
        raise ConfigError("shape", f"must be a list of at least two positive ints (images first), got {value!r}")
    return tuple(value)


def build_components(config: Any, extra_keys: Iterable[str] = ()) -> Components:
    """Validate a gradient-ascent ``config`` completely and build its components.

    Checks required and unknown keys, value types, that every dotted path is allowed and resolvable, that
    each component accepts its kwargs (and its constructor accepts their values). Raises
    :class:`ConfigError` naming the offending key; nothing is optimized.

    Args:
        config (dict): the method config.
        extra_keys (Iterable[str], optional): further top-level keys a calling method understands.
    """
    if not isinstance(config, Mapping):
        raise ConfigError("", f"a method config must be a dict, got {type(config).__name__}")
    known = {*REQUIRED_KEYS, *OPTIONAL_COMPONENT_KEYS, *OPTIONAL_KEYS, *extra_keys}
    for key in config:
        if not isinstance(key, str):
            raise ConfigError("", f"config keys must be strings, got {key!r}")
    unknown = sorted(set(config) - known)
    if unknown:
        raise ConfigError(unknown[0], f"unknown config key(s) {unknown}; known keys: {sorted(known)}")
    missing = [key for key in REQUIRED_KEYS if key not in config]
    if missing:
        raise ConfigError(missing[0], f"missing required config key(s) {missing}")
    device = config["device"]
    if not isinstance(device, str) or not _DEVICE.match(device):
        raise ConfigError("device", f"must be 'cpu' or 'cuda' (or 'cuda:N'), got {device!r}")
    fields: dict[str, Any] = {"device": device}
    for key in ("minimize", "progress"):
        if key in config:
            if not isinstance(config[key], bool):
                raise ConfigError(key, f"must be true or false, got {config[key]!r}")
            fields[key] = config[key]
    if "shape" in config:
        fields["shape"] = _check_shape(config["shape"])
    if "batch" in config:  # options of batched runs, checked here so a bad one never reaches the database
        from .batched import BatchOptions  # noqa: PLC0415 - mei.batched imports this module

        BatchOptions.from_config(config)
    if "objectives" in config and not isinstance(config["objectives"], list):
        raise ConfigError("objectives", f"must be a list of components, got {type(config['objectives']).__name__}")
    fields["optimizer"] = _optimizer_factory(config["optimizer"], "optimizer")
    for key in ("initial", "stopper", *OPTIONAL_COMPONENT_KEYS[:-1]):
        if key in config:
            fields[key] = build_component(config[key], key)
    objectives: dict[str, Any] = {}
    for key, spec in iter_component_specs(config, ["objectives"]):
        objective = build_component(spec, key)
        name = type(objective).__name__
        objectives[name if name not in objectives else f"{name}_{len(objectives)}"] = objective
    fields["objectives"] = objectives
    return Components(**fields)


def validate_config(config: Any, extra_keys: Iterable[str] = ()) -> None:
    """Check a gradient-ascent method config completely; raise :class:`ConfigError` naming the key if bad."""
    build_components(config, extra_keys)
