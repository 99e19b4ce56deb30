"""The meitorch config keys: defaults, which mode accepts which key, and complete validation.

:func:`parse_config` checks a config dict for one mode (``"pixel"``, ``"variational"``,
``"transformation"``), fills in the defaults, turns JSON schedules (``{"schedule": "linear", ...}``) into
:class:`~mei.meitorch.tools.schedules.Schedule` objects bound to ``iter_n``, and raises
:class:`~mei.engine.resolve.ConfigError` naming the first bad key. The table :data:`KEYS` is the reference the docs
list (``docs/meitorch.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..engine.resolve import ConfigError
from .tools.schedules import Schedule, is_schedule_spec, schedule_from_json

MODES = ("pixel", "variational", "transformation")
_ALL = frozenset(MODES)
_NOT_TRANSFORMATION = frozenset({"pixel", "variational"})

#: key -> (default, modes that accept it, meaning)
KEYS: dict[str, tuple[Any, frozenset[str], str]] = {
    "iter_n": (1000, _ALL, "number of optimization steps"),
    "save_every": (0, _ALL, "keep a copy of the image(s) every n steps (0: never)"),
    "bias": (0.0, _ALL, "mean of the normal distribution the start is drawn from"),
    "scale": (1.0, _ALL, "standard deviation of that distribution (learned stddev starts here too)"),
    "n_samples": (1, frozenset({"pixel", "transformation"}), "images optimized (pixel) or drawn (transformation) per step"),
    "diverse": (False, _ALL, "reward distance between the samples of a step"),
    "diverse_params": ({}, _ALL, "div_metric, div_linkage, div_weight (see DIVERSE_PARAMS)"),
    "scaler": (None, _ALL, "zoom factor applied before the model sees the images (None: 1)"),
    "jitter": (None, _ALL, "largest random shift in pixels before each step (None: 0)"),
    "train_norm": (None, _ALL, "rescale each image to this L2 norm before the model (None: off)"),
    "norm": (None, _NOT_TRANSFORMATION, "rescale each image to this L2 norm after each step (None: off)"),
    "optimizer": ("rmsprop", _ALL, "sgd, mei, rmsprop or adam"),
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
OPTIMIZERS = ("sgd", "mei", "rmsprop", "adam")
_CHOICES = {"optimizer": OPTIMIZERS, "blur": (None, *BLUR_PARAMS), "distribution": ("normal", "laplace"),
            "div_metric": ("euclidean", "cosine", "correlation"), "div_linkage": ("minimum", "average")}
# numeric keys: (minimum, strictly greater, None allowed, integer)
_NUMBERS: dict[str, tuple[float | None, bool, bool, bool]] = {
    "bias": (None, False, False, False), "scale": (0, False, False, False),
    "scaler": (0, True, True, False), "jitter": (0, False, True, True), "train_norm": (0, True, True, False),
    "norm": (0, True, True, False), "precond": (0, False, True, False), "fixed_stddev": (0, True, True, False),
    "div_weight": (None, False, False, False), "kernel_size": (1, False, False, True),
    "sigma": (0, False, False, False), "regularization_scaler": (0, False, False, False),
    "lr": (0, False, False, False), "num_iters": (0, False, False, True),
    "sigma_color": (0, True, False, False), "sigma_spatial": (0, True, False, False),
}


def mode_keys(mode: str) -> list[str]:
    """The config keys ``mode`` accepts."""
    return [key for key, (_, modes, _) in KEYS.items() if mode in modes]


def defaults(mode: str) -> dict[str, Any]:
    """The default config of ``mode`` (copies; ``transform`` has no default)."""
    return {key: _copy(KEYS[key][0]) for key in mode_keys(mode)}


def _copy(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


def _check_int(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or value > 10**9:
        raise ConfigError(key, f"must be a whole number >= {minimum}, got {value!r}")
    return value


def _check_number(key: str, value: Any, n_iter: int, seed: int) -> Any:
    minimum, strict, optional, integer = _NUMBERS[key.rsplit(".", 1)[-1]]
    if value is None and optional:
        return None
    if is_schedule_spec(value):
        try:
            value = schedule_from_json(value)
        except ValueError as error:
            raise ConfigError(key, str(error)) from None
    if isinstance(value, Schedule):
        low, _ = value.bounds()
        bound = value.bind(n_iter, seed)
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(key, f"must be a number{' or None' if optional else ''} or a schedule, got {value!r}")
    elif integer and not float(value).is_integer():
        raise ConfigError(key, f"must be a whole number, got {value!r}")
    else:
        low, bound = value, value
    if minimum is not None and (low < minimum or (strict and low == minimum)):
        raise ConfigError(key, f"must be {'>' if strict else '>='} {minimum}, got {value!r}")
    return bound


def _check_choice(key: str, value: Any) -> Any:
    choices = _CHOICES[key.rsplit(".", 1)[-1]]
    if value not in choices:
        raise ConfigError(key, f"must be one of {[c for c in choices if c is not None]}"
                          f"{' or None' if None in choices else ''}, got {value!r}")
    return value


def _check_sub(key: str, given: Any, allowed: Mapping[str, Any], n_iter: int, seed: int) -> dict[str, Any]:
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise ConfigError(key, f"must be a dict, got {type(given).__name__}")
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", f"unknown key(s) {unknown}; known: {sorted(allowed)}")
    out = {**allowed, **given}
    for name, value in out.items():
        sub_key = f"{key}.{name}"
        out[name] = _check_choice(sub_key, value) if name in _CHOICES else _check_number(sub_key, value, n_iter, seed)
    return out


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
    out = dict(value)
    for name, item in value.items():
        if is_schedule_spec(item):
            try:
                item = schedule_from_json(item)
            except ValueError as error:
                raise ConfigError(f"optimizer_params.{name}", str(error)) from None
        if isinstance(item, Schedule):
            item = item.bind(n_iter, seed)
        out[name] = item
    return out


def parse_config(config: Any, mode: str, seed: int = 0) -> dict[str, Any]:
    """Validate ``config`` for ``mode`` and return it complete (defaults filled, schedules bound).

    Args:
        config (dict): the user's config; never changed.
        mode (str): ``"pixel"``, ``"variational"`` or ``"transformation"``.
        seed (int, optional): seeds random schedules. Default: 0.

    Raises:
        ConfigError: an unknown key, a key of another mode, or a bad value; the message names the key.
    """
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
    out = {**defaults(mode), **config}
    n_iter = out["iter_n"] = _check_int("iter_n", out["iter_n"], 1)
    out["save_every"] = _check_int("save_every", out["save_every"] or 0, 0)
    if "n_samples" in out:
        out["n_samples"] = _check_int("n_samples", out["n_samples"], 1)
    if not isinstance(out["diverse"], bool):
        raise ConfigError("diverse", f"must be True or False, got {out['diverse']!r}")
    for key in ("optimizer", "blur", "distribution"):
        if key in out:
            _check_choice(key, out[key])
    for key in _NUMBERS:
        if key in out:
            out[key] = _check_number(key, out[key], n_iter, seed)
    out["diverse_params"] = _check_sub("diverse_params", out["diverse_params"], DIVERSE_PARAMS, n_iter, seed)
    if out.get("blur") is not None:
        out["blur_params"] = _check_sub("blur_params", out["blur_params"], BLUR_PARAMS[out["blur"]], n_iter, seed)
    elif out.get("blur_params"):
        raise ConfigError("blur_params", "given but blur is None; set blur to gaussian, tv or bilateral")
    out["optimizer_params"] = _check_optimizer_params(out["optimizer_params"], n_iter, seed)
    if mode == "variational":
        out["n_samples_per_batch"] = _sample_shape(out["n_samples_per_batch"])
    if mode == "transformation" and out["transform"] is None:
        raise ConfigError("transform", "the transformation mode needs a generative network, e.g. GenerativeConvNet")
    return out
