"""meitorch's modes as pipeline methods: ``method(dataloaders, model, config, seed) -> (mei, score, output)``.

Dotted paths ``mei.meitorch.methods.pixel_mei``, ``...variational_mei`` and ``...transformation_mei`` go into
``method_fn``; the config is the mode's meitorch config in JSON (schedules as
``{"schedule": "linear", "start": 0.1, "end": 0.01}``), plus:

* ``device`` (str, optional): ``"cpu"`` or ``"cuda[:N]"``. Default: ``"cpu"``.
* ``shape`` (list[int], optional): the input shape ``[1, C, H, W]`` (or ``[C, H, W]``); the pipeline fills it
  in, otherwise it comes from the dataloaders.
* transformation mode: ``transform`` is a dict of :class:`GenerativeConvNet` keyword arguments
  (``activation`` by name: relu, elu, tanh, sigmoid, identity; ``shape`` defaults to the input shape), or a
  component spec ``{"path": ..., "kwargs": {...}}`` of any allowed module class.

The model returns one value per input image (e.g. :class:`mei.modules.ConstrainedOutputModel`); the
operation maximizes its mean over the batch (``objective = -mean activation``). Each method has a
``validate_config`` attribute that the pipeline's ``add_method`` calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..engine.component import component
from ..engine.resolve import ConfigError, build_component, check_json_value
from ..methods import evaluation_mode, get_device, input_shape_from_dataloaders, record
from .config import parse_config
from .result import MEIResult
from .runner import generate
from .tools.transformations import GenerativeConvNet

PIPELINE_KEYS = ("device", "shape")
Method = Callable[[Any, nn.Module, Mapping[str, Any], int], tuple[Tensor, float, dict[str, Any]]]


def model_operation(model: Callable[[Tensor], Tensor]) -> Callable[[Tensor], dict[str, Tensor]]:
    """The meitorch operation of a one-value-per-image model: minimize ``-mean(model(x))``."""

    def operation(inputs: Tensor) -> dict[str, Tensor]:
        activation = model(inputs).mean()
        return {"objective": -activation, "activation": activation}

    return operation


def _image_shape(value: Any) -> tuple[int, int, int]:
    if (not isinstance(value, (list, tuple)) or len(value) not in (3, 4)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in value)):
        raise ConfigError("shape", f"must be [1, C, H, W] or [C, H, W] of positive ints, got {value!r}")
    return tuple(value[-3:])


def _network(spec: Any, shape: tuple[int, int, int] | None) -> nn.Module:
    if not isinstance(spec, Mapping):
        raise ConfigError("transform",
                          f"must be a dict of GenerativeConvNet arguments or a component spec, got {spec!r}")
    if "path" in spec:
        return build_component(spec, "transform")
    kwargs = dict(spec)
    if shape is not None:
        kwargs.setdefault("shape", list(shape))
    try:
        return GenerativeConvNet(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError("transform", f"GenerativeConvNet rejected {dict(spec)!r}: {error}") from None


def _split(mode: str, config: Any, shape: tuple[int, int, int] | None = None) -> tuple[str, Any, dict[str, Any]]:
    if not isinstance(config, Mapping):
        raise ConfigError("", f"a method config must be a dict, got {type(config).__name__}")
    check_json_value(dict(config), "method_config")
    device = config.get("device", "cpu")
    if not isinstance(device, str) or not (device == "cpu" or device.startswith("cuda")):
        raise ConfigError("device", f"must be 'cpu' or 'cuda' (or 'cuda:N'), got {device!r}")
    given_shape = _image_shape(config["shape"]) if "shape" in config else None
    keys = {k: v for k, v in config.items() if k not in PIPELINE_KEYS}
    if mode == "transformation" and "transform" in keys:
        keys["transform"] = _network(keys["transform"], shape or given_shape)
    return device, given_shape, keys


def validate(mode: str, config: Any) -> None:
    """Check a pipeline config of ``mode`` completely.

    Raises :class:`~mei.engine.resolve.ConfigError` naming the key."""
    _, _, keys = _split(mode, config)
    parse_config(keys, mode)


def run_method(mode: str, dataloaders: Any, model: nn.Module, config: Mapping[str, Any],
               seed: int) -> tuple[Tensor, float, dict[str, Any]]:
    """Run one meitorch mode as a pipeline method; see the module docstring."""
    device_name, shape, _ = _split(mode, config)
    shape = shape or _image_shape(list(input_shape_from_dataloaders(dataloaders)))
    _, _, keys = _split(mode, config, shape)
    device = get_device(device_name)
    with evaluation_mode(model):
        model.to(device)
        result = generate(model_operation(model), shape, device, mode, keys, int(seed))
        with torch.no_grad():
            score = float(model(result.mei.to(device)).mean())
    record(steps=len(result.steps), device=str(device))
    return result.mei, score, _output(result)


def _output(result: MEIResult) -> dict[str, Any]:
    output: dict[str, Any] = {"steps": result.steps, "losses": result.losses}
    if result.stddev is not None:
        output["stddev"] = result.stddev
    if result.mode == "transformation":
        output["samples"] = result.mei
    return output


def _method(mode: str) -> Method:
    def method(dataloaders: Any, model: nn.Module, config: Mapping[str, Any], seed: int) -> tuple[
            Tensor, float, dict[str, Any]]:
        return run_method(mode, dataloaders, model, config, seed)

    method.__name__ = method.__qualname__ = f"{mode}_mei"
    method.__module__ = __name__
    method.__doc__ = (f"The meitorch {mode} mode as a pipeline method ``(dataloaders, model, config, seed) -> "
                      f"(mei, score, output)``; ``score`` is the model's mean response to the returned MEI, "
                      f"``output`` holds ``steps`` and ``losses`` (see :mod:`mei.meitorch.methods`).")
    method.validate_config = lambda config: validate(mode, config)  # type: ignore[attr-defined]
    method.accepts_shape = True  # type: ignore[attr-defined]
    return method


pixel_mei = component("method")(_method("pixel"))
variational_mei = component("method")(_method("variational"))
transformation_mei = component("method")(_method("transformation"))

__all__ = ["pixel_mei", "variational_mei", "transformation_mei", "model_operation", "validate", "run_method"]
