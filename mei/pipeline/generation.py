"""Pure pieces of MEI generation used by the MEI tables: method validation, run config, one run, provenance.

Nothing here touches the database, so each piece is testable on its own.
"""

from __future__ import annotations

import copy
import platform
import time
from collections.abc import Callable, Mapping
from typing import Any

from .. import __version__
from ..engine.resolve import METHOD_KINDS, ConfigError, check_json_value, resolve, validate_config
from ..methods import gradient_ascent, recording


def method_validator(method: Callable[..., Any]) -> Callable[[Any], None] | None:
    """The config validator of ``method``: its ``validate_config`` attribute, :func:`mei.engine.resolve.validate_config`
    for :func:`mei.methods.gradient_ascent`, or ``None`` (then only JSON-ness is checked)."""
    validator = getattr(method, "validate_config", None)
    if validator is None and method is gradient_ascent:
        validator = validate_config
    return validator


def validate_method(method_fn: Any, method_config: Any) -> Callable[..., Any]:
    """Resolve ``method_fn`` and check ``method_config`` completely; returns the method.

    Raises:
        ConfigError: naming the offending key: ``method_fn``, ``method_config`` or the path of the value inside
            it, e.g. ``method_config.optimizer.kwargs.lr``.
    """
    method = resolve(method_fn, "method_fn", METHOD_KINDS)
    if not callable(method):
        raise ConfigError("method_fn", f"{method_fn!r} is not callable")
    if not isinstance(method_config, Mapping):
        raise ConfigError("method_config", f"must be a dict, got {type(method_config).__name__}")
    check_json_value(dict(method_config), "method_config")
    validator = method_validator(method)
    if validator is not None:
        try:
            validator(method_config)
        except ConfigError as error:  # one scheme of keys: from the top, down to the value
            key = f"method_config.{error.key}" if error.key else "method_config"
            raise type(error)(key, error.message) from error
    return method


def accepts_shape(method: Callable[..., Any]) -> bool:
    """Whether the pipeline may put the input shape into the config (``"shape"`` key) for ``method``.

    True for the package's own methods (``mei.methods``) and for any method with ``accepts_shape = True``.
    """
    return bool(getattr(method, "accepts_shape", getattr(method, "__module__", "") == "mei.methods"))


def run_config(method: Callable[..., Any], config: Mapping[str, Any], shape: Any) -> dict[str, Any]:
    """A deep copy of ``config`` with ``"shape"`` set to ``shape`` where the method takes it and it is missing
    (whatever the method does to its config stays in that copy).

    Raises:
        ConfigError: the config's own ``shape`` has another rank than the model's input ``shape``.
    """
    copied: dict[str, Any] = copy.deepcopy(dict(config))
    given = copied.get("shape")
    if shape is not None and isinstance(given, (list, tuple)) and len(given) != len(shape):
        raise ConfigError("method_config.shape", f"is {len(given)}-D {list(given)}, but the model's input is "
                                                 f"{len(shape)}-D {[int(s) for s in shape]}: a video config on an "
                                                 "image model (or an image config on a video model)")
    if shape is not None and "shape" not in copied and accepts_shape(method):
        copied["shape"] = [int(s) for s in shape]
    return copied


def run_method(method: Callable[..., Any], dataloaders: Any, objective: Any, config: Mapping[str, Any],
               seed: int) -> dict[str, Any]:
    """Call ``method(dataloaders, objective, config, seed)`` and time it.

    Returns:
        dict: ``mei``, ``score``, ``output`` and the run's ``steps`` (``None`` if the method does not
        record them), ``device`` and ``wall_time`` (seconds).
    """
    start = time.perf_counter()
    with recording() as info:
        mei, score, output = method(dataloaders, objective, config, int(seed))
    wall_time = time.perf_counter() - start
    device = info.get("device") or str(config.get("device", "cpu"))
    return {"mei": mei, "score": float(score), "output": output, "steps": info.get("steps"),
            "device": device, "wall_time": wall_time}


def versions() -> dict[str, str]:
    """Versions of mei, torch, datajoint and Python, recorded with every MEI."""
    import datajoint
    import torch

    return {"mei": __version__, "torch": torch.__version__, "datajoint": datajoint.__version__,
            "python": platform.python_version()}
