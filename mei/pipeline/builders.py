"""nnfabrik-protocol builders: dataset, model and trainer functions named by dotted path.

Every ``*_fn`` goes through :func:`mei.engine.resolve.resolve` (and so through its module allowlist); nothing
here imports a dotted path any other way. The calling conventions are nnfabrik's:

* ``dataset_fn(seed=..., **dataset_config) -> dataloaders`` (``{"train": {data_key: DataLoader}, ...}``);
* ``model_fn(dataloaders, seed=..., **model_config) -> nn.Module``; a model function that also accepts
  ``data_info`` can build the model without dataloaders (then ``dataloaders`` is ``None``);
* ``trainer_fn(model=..., dataloaders=..., seed=..., uid=..., cb=..., **trainer_config)
  -> (score, output, model_state)``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch

from ..engine.resolve import ConfigError, resolve
from ..methods import _first_batch_inputs


def resolve_fn(fn_name: str, key: str) -> Callable[..., Any]:
    """Resolve a ``dataset_fn`` / ``model_fn`` / ``trainer_fn`` dotted path through the one resolver (as a
    builder of that kind) and check that it is callable."""
    kinds = {"dataset_fn": ("dataset",), "model_fn": ("model",), "trainer_fn": ("trainer",)}[key]
    fn = resolve(fn_name, key, kinds)
    if not callable(fn):
        raise ConfigError(key, f"{fn_name!r} is not callable")
    return fn


def accepts_keyword(fn: Callable[..., Any], name: str) -> bool:
    """Whether ``fn`` takes a keyword argument ``name`` (explicitly or through ``**kwargs``)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def get_data(dataset_fn: str | Callable[..., Any], dataset_config: Mapping[str, Any], seed: int | None = None) -> Any:
    """Build the dataloaders: ``dataset_fn(**dataset_config)`` with ``seed`` added unless the config has one."""
    fn = resolve_fn(dataset_fn, "dataset_fn") if isinstance(dataset_fn, str) else dataset_fn
    config = dict(dataset_config)
    if seed is not None and "seed" not in config:
        config["seed"] = seed
    return fn(**config)


def get_model(model_fn: str | Callable[..., Any], model_config: Mapping[str, Any], dataloaders: Any = None,
              seed: int | None = None, state_dict: Mapping[str, Any] | None = None, strict: bool = True,
              data_info: Any = None) -> Any:
    """Build the model: ``model_fn(dataloaders, seed=seed, **model_config)`` (plus ``data_info`` if given).

    Args:
        state_dict (dict, optional): loaded into the model with ``strict``. Default: none.
    """
    fn = resolve_fn(model_fn, "model_fn") if isinstance(model_fn, str) else model_fn
    extra = {"data_info": data_info} if data_info is not None else {}
    model = fn(dataloaders, seed=seed, **extra, **dict(model_config))
    if state_dict is not None:
        model.load_state_dict(state_dict, strict=strict)
    return model


def get_trainer(trainer_fn: str | Callable[..., Any],
                trainer_config: Mapping[str, Any] | None = None) -> Callable[..., Any]:
    """The trainer function, with ``trainer_config`` bound as keyword arguments if given."""
    fn = resolve_fn(trainer_fn, "trainer_fn") if isinstance(trainer_fn, str) else trainer_fn
    return functools.partial(fn, **dict(trainer_config)) if trainer_config is not None else fn


def _batch_parts(batch: Any) -> tuple[Any, Any]:
    """``(inputs, targets)`` of one batch in the usual layouts (tuple, namedtuple, dict, tensor)."""
    inputs = _first_batch_inputs(batch)
    if isinstance(batch, Mapping):
        return inputs, batch.get("targets", batch.get("responses"))
    if isinstance(batch, (list, tuple)) and len(batch) > 1:
        return inputs, batch[1]
    return inputs, None


FORWARD_FIELDS: tuple[str, ...] = ("behavior", "pupil_center")
"""Batch fields that models with a shifter or behaviour inputs (neuralpredictors) take as forward kwargs."""


def _field(batch: Any, name: str) -> Any:
    if isinstance(batch, Mapping):
        return batch.get(name)
    return getattr(batch, name, None) if hasattr(batch, "_fields") else None


def session_forward_kwargs(loader: Any, first_batch: Any) -> dict[str, list[list[float]]]:
    """The session's mean of each of :data:`FORWARD_FIELDS` its batches carry, as ``(1, d)`` nested lists.

    Reads the whole loader, only when the batches carry such a field; torch's global RNG is left as it was.
    """
    fields = [name for name in FORWARD_FIELDS if _field(first_batch, name) is not None]
    if not fields:
        return {}
    sums: dict[str, Any] = {}
    count = 0
    with torch.random.fork_rng(devices=[]):
        for batch in loader:
            for name in fields:
                values = torch.as_tensor(_field(batch, name), dtype=torch.float64)
                sums[name] = sums.get(name, 0) + values.reshape(len(values), -1).sum(0)
            count += len(torch.as_tensor(_field(batch, fields[0])))
    return {name: (total / count)[None].tolist() for name, total in sums.items()}


def data_info_from_dataloaders(dataloaders: Any) -> dict[str, dict[str, Any]]:
    """What building a model and its objectives needs from the data, per session (data key).

    Reads one batch of each training loader (all of it when the batches carry behaviour or pupil
    positions). Neuron ids come from ``loader.dataset.neurons.unit_ids`` when the dataset has them (the
    sinzlab layout), else they are the output indices ``0..n-1``.

    Returns:
        dict: ``{data_key: {"input_shape": [1, ...], "n_outputs": int | None, "neuron_ids": [...]}}``, and
        ``"forward_kwargs": {"behavior": [[...]], "pupil_center": [[...]]}`` (the session's means) for
        batches with those fields; a single loader that is not in a dict gets the data key ``""``.
    """
    loaders = dataloaders["train"] if isinstance(dataloaders, Mapping) and "train" in dataloaders else dataloaders
    if not isinstance(loaders, Mapping):
        loaders = {"": loaders}
    info: dict[str, dict[str, Any]] = {}
    for data_key, loader in loaders.items():
        batch = next(iter(loader))
        inputs, targets = _batch_parts(batch)
        n_outputs = int(targets.shape[1]) if targets is not None and getattr(targets, "ndim", 0) >= 2 else None
        unit_ids = getattr(getattr(getattr(loader, "dataset", None), "neurons", None), "unit_ids", None)
        neuron_ids = [int(i) for i in unit_ids] if unit_ids is not None else list(range(n_outputs or 0))
        info[str(data_key)] = {"input_shape": [1, *map(int, inputs.shape[1:])], "n_outputs": n_outputs,
                               "neuron_ids": neuron_ids}
        forward_kwargs = session_forward_kwargs(loader, batch)
        if forward_kwargs:
            info[str(data_key)]["forward_kwargs"] = forward_kwargs
    return info
