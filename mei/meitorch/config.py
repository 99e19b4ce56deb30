"""The meitorch config keys: defaults, which mode accepts which key, and complete validation.

:func:`parse_config` checks a config dict for one mode (``"pixel"``, ``"variational"``,
``"transformation"``), fills in the defaults, turns JSON schedules (``{"schedule": "linear", ...}``) into
:class:`~mei.meitorch.tools.schedules.Schedule` objects bound to ``iter_n``, and raises
:class:`~mei.engine.resolve.ConfigError` naming the first bad key. The table :data:`KEYS` is the reference the docs
list (``docs/meitorch.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from ..engine.component import check_bool, check_choice, check_int
from ..engine.errors import HyperparameterError
from ..engine.resolve import ConfigError, build_component
from ..engine.schedule import Schedule
from .augment import Augmentation, FourierPrecondition
from .denoisers import DENOISERS
from .diversity import DiversityReward
from .modes import ImagePostprocessing
from .tools.schedules import LR_SCHEDULERS, check_schedulable, is_schedule_spec, schedule_from_json
from .tools.schedules import Schedule as UnboundSchedule

MODES = ("pixel", "variational", "transformation")
_ALL = frozenset(MODES)
_NOT_TRANSFORMATION = frozenset({"pixel", "variational"})

#: key -> (default, modes that accept it, meaning)
KEYS: dict[str, tuple[Any, frozenset[str], str]] = {
    "iter_n": (1000, _ALL, "number of optimization steps"),
    "save_every": (0, _ALL, "keep a copy of the image(s) every n steps (0: never)"),
    "bias": (0.0, _ALL, "mean of the normal distribution the start is drawn from"),
    "scale": (1.0, _ALL, "standard deviation of that distribution (learned stddev starts here too)"),
    "n_samples": (1, frozenset({"pixel", "transformation"}),
                  "images optimized (pixel) or drawn (transformation) per step"),
    "diverse": (False, _ALL, "reward distance between the samples of a step"),
    "diverse_params": ({}, _ALL, "div_metric, div_linkage, div_weight (see DIVERSE_PARAMS)"),
    "scaler": (None, _ALL, "zoom factor applied before the model sees the images (None: 1)"),
    "jitter": (None, _ALL, "largest random shift in pixels before each step (None: 0)"),
    "train_norm": (None, _ALL, "rescale each image to this L2 norm before the model (None: off)"),
    "norm": (None, _NOT_TRANSFORMATION, "rescale each image to this L2 norm after each step (None: off)"),
    "clip": (False, _NOT_TRANSFORMATION, "clamp the images to [bias - scale, bias + scale] after each step"),
    "init": (None, _NOT_TRANSFORMATION, "start image(s) instead of noise: (C, H, W) or one per sample"),
    "gradient_rf": (False, _ALL, "optimize the operation's linear model at a blank image (its gradient) instead"),
    "optimizer": ("rmsprop", _ALL, "sgd, mei, meibatch, rmsprop or adam"),
    "optimizer_params": ({}, _ALL, "keyword arguments of the optimizer, e.g. lr, weight_decay"),
    "precond": (None, _ALL, "Fourier fall-off exponent applied to the gradient (None or 0: off)"),
    "blur": (None, _NOT_TRANSFORMATION, "denoiser after each step: gaussian, tv or bilateral (None: off)"),
    "blur_params": ({}, _NOT_TRANSFORMATION, "denoiser arguments (see BLUR_PARAMS)"),
    "distribution": ("normal", frozenset({"variational"}), "normal or laplace"),
    "n_samples_per_batch": ((32,), frozenset({"variational"}), "sample shape drawn per step (int or tuple)"),
    "fixed_stddev": (None, frozenset({"variational"}), "fixed standard deviation; None learns it"),
    "transform": (None, frozenset({"transformation"}), "the generative network (required)"),
}

DIVERSE_PARAMS: dict[str, Any] = {"div_metric": "euclidean", "div_linkage": "minimum", "div_weight": 1.0}
BLUR_PARAMS: dict[str, dict[str, Any]] = {
    "gaussian": {"kernel_size": 3, "sigma": 1.0},
    "tv": {"regularization_scaler": 0.1, "lr": 0.1, "num_iters": 5},
    "bilateral": {"kernel_size": 3, "sigma_color": 1.0, "sigma_spatial": 1.0},
}
OPTIMIZERS = ("sgd", "mei", "meibatch", "rmsprop", "adam")
DISTRIBUTIONS = ("normal", "laplace")
SCHEDULABLE: frozenset[str] = frozenset({
    "bias", "scale", "scaler", "jitter", "train_norm", "norm", "precond", "fixed_stddev", "div_weight",
    *(name for params in BLUR_PARAMS.values() for name in params),
})
"""Numeric keys (and sub-keys) that may hold a schedule, bound to ``iter_n`` by :func:`parse_config`."""
# the parameterization's own numbers; every other value is checked by the component it configures
_SETTINGS: dict[str, dict[str, Any]] = {
    "bias": {}, "scale": {"minimum": 0}, "fixed_stddev": {"minimum": 0, "strict_minimum": True, "optional": True},
}


def mode_keys(mode: str) -> list[str]:
    """The config keys ``mode`` accepts."""
    return [key for key, (_, modes, _) in KEYS.items() if mode in modes]


def defaults(mode: str) -> dict[str, Any]:
    """The default config of ``mode`` (copies; ``transform`` has no default)."""
    return {key: _copy(KEYS[key][0]) for key in mode_keys(mode)}


def _copy(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


@contextmanager
def _key(prefix: str = "") -> Iterator[None]:
    """Turn a component's :class:`~mei.engine.errors.HyperparameterError` into a :class:`ConfigError` whose
    key is ``prefix`` + the hyperparameter's name."""
    try:
        yield
    except HyperparameterError as error:
        raise ConfigError(prefix + error.name, error.reason) from None


def _check_keys(config: Any, mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not isinstance(config, Mapping):
        raise ConfigError("", f"a config must be a dict, got {type(config).__name__}")
    accepted = mode_keys(mode)
    for key in config:
        if key not in accepted:
            where = [m for m in MODES if key in KEYS and m in KEYS[key][1]]
            hint = f"it belongs to the {'/'.join(where)} mode" if where else f"known keys: {accepted}"
            raise ConfigError(str(key), f"unknown key for the {mode} mode; {hint}")


def _check_run(out: dict[str, Any]) -> None:
    """The keys of the run itself: step counts, flags and the choices of optimizer, denoiser, distribution."""
    with _key():
        out["iter_n"] = check_int("iter_n", out["iter_n"], 1, 10**9, expected="a whole number >= 1")
        out["save_every"] = check_int("save_every", out["save_every"] or 0, 0, 10**9, expected="a whole number >= 0")
        if "n_samples" in out:
            out["n_samples"] = check_int("n_samples", out["n_samples"], 1, 10**9, expected="a whole number >= 1")
        check_bool("diverse", out["diverse"])
        check_bool("gradient_rf", out["gradient_rf"], expected="True or False (meitorch's flag)")
        if "clip" in out:
            out["clip"] = bool(check_choice("clip", out["clip"], (None, False, True),
                                            expected="True (clamp to [bias - scale, bias + scale]), False or None"))
        check_choice("optimizer", out["optimizer"], OPTIMIZERS)
        if "blur" in out:
            check_choice("blur", out["blur"], (None, *BLUR_PARAMS))
        if "distribution" in out:
            check_choice("distribution", out["distribution"], DISTRIBUTIONS)


def _bound(key: str, value: Any, n_iter: int, seed: int) -> Any:
    """``value`` with a JSON schedule turned into a :class:`Schedule`, and any schedule bound to the run.

    The JSON form is meitorch's (``{"schedule": "linear", ...}``) or the engine's component spec
    (``{"path": "mei.schedules.Cosine", "kwargs": {...}}``), built by the engine's resolver."""
    if isinstance(value, Mapping) and "path" in value:
        return build_component(value, key, kinds=("schedule",))
    if is_schedule_spec(value):
        try:
            value = schedule_from_json(value)
        except ValueError as error:
            raise ConfigError(key, str(error)) from None
    return value.bind(n_iter, seed) if isinstance(value, UnboundSchedule) else value


def _bind_schedules(values: dict[str, Any], n_iter: int, seed: int, prefix: str = "") -> dict[str, Any]:
    return {name: _bound(prefix + name, value, n_iter, seed) if name in SCHEDULABLE else value
            for name, value in values.items()}


def _sub_config(key: str, given: Any, allowed: Mapping[str, Any], n_iter: int, seed: int) -> dict[str, Any]:
    """A dict of sub-keys (``diverse_params``, ``blur_params``): known keys only, defaults filled, schedules bound."""
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise ConfigError(key, f"must be a dict, got {type(given).__name__}")
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", f"unknown key(s) {unknown}; known: {sorted(allowed)}")
    return _bind_schedules({**allowed, **given}, n_iter, seed, prefix=f"{key}.")


def _check_blur_params(out: dict[str, Any], n_iter: int, seed: int) -> None:
    if out.get("blur") is not None:
        out["blur_params"] = _sub_config("blur_params", out["blur_params"], BLUR_PARAMS[out["blur"]], n_iter, seed)
    elif out.get("blur_params"):
        raise ConfigError("blur_params", "given but blur is None; set blur to gaussian, tv or bilateral")


def _check_settings(out: Mapping[str, Any]) -> None:
    """The parameterization's own numbers (start distribution, fixed standard deviation)."""
    with _key():
        for name, checks in _SETTINGS.items():
            if name in out:
                check_schedulable(name, out[name], **checks)


def _check_components(out: Mapping[str, Any]) -> None:
    """Build (and drop) the components the config describes: their constructors check their hyperparameters."""
    builds: list[tuple[str, Callable[..., Any], dict[str, Any]]] = [
        ("", Augmentation, {name: out[name] for name in ("scaler", "jitter", "train_norm")}),
        ("", FourierPrecondition, {"precond": out["precond"]}),
        ("diverse_params.", DiversityReward, {"source": None, **out["diverse_params"]}),
    ]
    if "norm" in out:
        builds.append(("", ImagePostprocessing, {"denoiser": None, "norm": out["norm"]}))
    if out.get("blur") is not None:
        builds.append(("blur_params.", DENOISERS[out["blur"]], out["blur_params"]))
    for prefix, factory, kwargs in builds:
        with _key(prefix):
            factory(**kwargs)


def _sample_shape(value: Any) -> tuple[int, ...]:
    shape = (value,) if isinstance(value, int) and not isinstance(value, bool) else value
    if (not isinstance(shape, Sequence) or isinstance(shape, str) or not shape
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape)):
        raise ConfigError("n_samples_per_batch", f"must be a positive int or a tuple of them, got {value!r}")
    return tuple(shape)


def _check_optimizer_params(value: Any, n_iter: int, seed: int) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError("optimizer_params", f"must be a dict of keyword arguments, got {value!r}")
    out = {name: _bound(f"optimizer_params.{name}", item, n_iter, seed) for name, item in value.items()
           if name != "scheduler_params"}
    if value.get("scheduler_params") is not None:
        scheduler = value["scheduler_params"]
        if isinstance(out.get("lr"), Schedule):
            raise ConfigError("optimizer_params.scheduler_params",
                              "give the learning rate a schedule (lr) or a torch scheduler (scheduler_params), "
                              "not both")
        if not isinstance(scheduler, Mapping) or "type" not in scheduler:
            raise ConfigError("optimizer_params.scheduler_params",
                              f"must be a dict with 'type' (one of {sorted(LR_SCHEDULERS)}) and the scheduler's "
                              f"arguments, got {scheduler!r}")
        out["scheduler_params"] = dict(scheduler)
    return out
def _start_images(value: Any) -> Any:
    """``init`` as a float tensor (from a tensor, an array or nested lists); its shape is checked by the mode."""
    try:
        images = torch.as_tensor(value, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ConfigError("init", f"must be an image tensor (C, H, W) or (n, C, H, W), got "
                                  f"{type(value).__name__}: {error}") from None
    if not bool(torch.isfinite(images).all()):
        raise ConfigError("init", "holds NaN or infinite values")
    return images.detach().clone()


def _check_mode(out: dict[str, Any], mode: str) -> None:
    if mode == "variational":
        out["n_samples_per_batch"] = _sample_shape(out["n_samples_per_batch"])
    if mode == "transformation" and out["transform"] is None:
        raise ConfigError("transform", "the transformation mode needs a generative network, e.g. GenerativeConvNet")


def parse_config(config: Any, mode: str, seed: int = 0) -> dict[str, Any]:
    """Validate ``config`` for ``mode`` and return it complete (defaults filled, schedules bound).

    The run's own keys are checked here; the values that configure a component (``scaler``, ``jitter``,
    ``train_norm``, ``precond``, ``norm``, ``diverse_params``, ``blur_params``) are checked by that component's
    constructor, built once for the purpose, and the optimizer's by building it on a probe tensor.

    Args:
        config (dict): the user's config; never changed.
        mode (str): ``"pixel"``, ``"variational"`` or ``"transformation"``.
        seed (int, optional): seeds random schedules. Default: 0.

    Raises:
        ConfigError: an unknown key, a key of another mode, or a bad value; the message names the key.
    """
    _check_keys(config, mode)
    out = {**defaults(mode), **config}
    if out.get("init") is not None:
        out["init"] = _start_images(out["init"])
    _check_run(out)
    n_iter = out["iter_n"]
    out = _bind_schedules(out, n_iter, seed)
    _check_settings(out)
    out["diverse_params"] = _sub_config("diverse_params", out["diverse_params"], DIVERSE_PARAMS, n_iter, seed)
    _check_blur_params(out, n_iter, seed)
    _check_components(out)
    out["optimizer_params"] = _check_optimizer_params(out["optimizer_params"], n_iter, seed)
    _check_mode(out, mode)
    return out
