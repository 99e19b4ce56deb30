"""Activations of chosen layers in one forward pass, by module object or by module name.

Forward hooks are registered only on the targeted modules and removed in ``finally``, so a failing
forward never leaves a hook behind. The target name ``"input"`` (:data:`MODEL_INPUT`) stands for the model's
input itself (the transformed image), unless the model has a submodule of that name. :class:`ObjectiveModel` turns ``(model, objective)`` into a module that
returns one value per image: the engine's ``func``, and a pipeline ``get_objective`` result.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ._typing import Target

#: Target name of the model's own input (read by a forward pre-hook on the model).
MODEL_INPUT = "input"


def is_model_input(model: nn.Module, target: Target) -> bool:
    """Whether ``target`` names the model's input (``"input"`` and no submodule of that name)."""
    if not (isinstance(target, str) and target == MODEL_INPUT):
        return False
    try:
        model.get_submodule(MODEL_INPUT)
    except AttributeError:
        return True
    return False


def _key(model: nn.Module, target: Target) -> nn.Module | str:
    return MODEL_INPUT if is_model_input(model, target) else get_module(model, target)


def get_module(model: nn.Module, target: Target) -> nn.Module:
    """The module ``target`` names inside ``model``.

    Args:
        model (nn.Module): the network.
        target (nn.Module or str): a module of ``model`` or its dotted name, e.g. ``"features.3"``;
            ``""`` is the model itself.

    Raises:
        KeyError: no module of that name (the message lists a few names that exist).
        TypeError: ``target`` is neither a module nor a string.
    """
    if isinstance(target, nn.Module):
        return target
    if not isinstance(target, str):
        raise TypeError(f"a target is an nn.Module or a module name, got {type(target).__name__}")
    try:
        return model.get_submodule(target)
    except AttributeError:
        names = [name for name, _ in model.named_modules() if name][:12]
        raise KeyError(f"{type(model).__name__} has no module named {target!r}; modules include {names}") from None


def get_model_layers(model: nn.Module, types: type[nn.Module] | tuple[type[nn.Module], ...] | None = None
                     ) -> list[str]:
    """The names objectives can target: every submodule's dotted name, in definition order.

    Args:
        model (nn.Module): the network.
        types (type or tuple of types, optional): only modules of these classes (e.g. ``nn.Conv2d``).
            Default: all.

    Example:
        >>> get_model_layers(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()))
        ['0', '1']
    """
    return [name for name, module in model.named_modules() if name and (types is None or isinstance(module, types))]


def module_name(model: nn.Module, module: nn.Module) -> str:
    """The dotted name of ``module`` inside ``model`` (``"<unnamed>"`` if it is not part of it)."""
    for name, candidate in model.named_modules():
        if candidate is module:
            return name
    return "<unnamed>"


class ModuleOutputs(dict):
    """``{module: output}`` of one forward pass that also answers lookups by module name.

    Args:
        model (nn.Module): the network the names refer to.
        outputs (dict, optional): ``{module: tensor}``. Default: empty.
    """

    def __init__(self, model: nn.Module, outputs: Mapping[nn.Module, Tensor] | None = None) -> None:
        super().__init__(outputs or {})
        self.model = model

    def __missing__(self, key: Target) -> Tensor:
        if is_model_input(self.model, key):
            raise KeyError("the model's input was not collected: it is not a target of this objective")
        module = get_module(self.model, key)
        if module is key or module not in self:
            raise KeyError(f"no activation was collected for {key!r}: it is not a target of this objective, "
                           "or the module did not run in the forward pass")
        return self[module]


def _first_tensor(output: Any) -> Tensor:
    if isinstance(output, Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], Tensor):
        return output[0]
    raise TypeError(f"cannot take an activation from a module output of type {type(output).__name__}")


@contextlib.contextmanager
def capture(model: nn.Module, targets: Iterable[Target]) -> Iterator[ModuleOutputs]:
    """Within the block, every forward of ``model`` stores the outputs of ``targets`` in the yielded mapping.

    Args:
        model (nn.Module): the network.
        targets (Iterable[nn.Module or str]): layers to record, by object or name (duplicates collapse);
            ``"input"`` records the model's input.
    """
    keys = list(dict.fromkeys(_key(model, t) for t in targets))
    outputs = ModuleOutputs(model)
    handles = []

    def hook(mod: nn.Module, args: Any, output: Any) -> None:
        outputs[mod] = _first_tensor(output)

    def input_hook(mod: nn.Module, args: Any) -> None:
        outputs[MODEL_INPUT] = _first_tensor(args)

    try:
        for key in keys:
            if isinstance(key, str):
                handles.append(model.register_forward_pre_hook(input_hook))
            else:
                handles.append(key.register_forward_hook(hook))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def run_and_capture(model: nn.Module, targets: Iterable[Target], model_input: Tensor) -> ModuleOutputs:
    """One forward of ``model`` on ``model_input``; the outputs of ``targets`` (every one must have run)."""
    targets = list(targets)
    with capture(model, targets) as outputs:
        model(model_input)
    missing = [t for t in targets if _key(model, t) not in outputs]
    if missing:
        raise RuntimeError(f"targets {missing} did not run in the forward pass of {type(model).__name__}")
    return outputs


def collect_activations(model: nn.Module, targets: Target | Iterable[Target],
                        model_input: Tensor | None = None) -> ModuleOutputs:
    """Activations of several layers from one forward pass, without gradient.

    Args:
        model (nn.Module): the network.
        targets (nn.Module, str or list of them): the layers.
        model_input (Tensor, optional): the input. Default: ``torch.zeros(1, 3, 224, 224)`` on the model's
            device.

    Returns:
        ModuleOutputs: ``{module: activation}``, also indexable by module name.
    """
    if isinstance(targets, (nn.Module, str)):
        targets = [targets]
    if model_input is None:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        model_input = torch.zeros(1, 3, 224, 224, device=device)
    with torch.no_grad():
        outputs = run_and_capture(model, targets, model_input)
    return ModuleOutputs(model, {module: value.detach() for module, value in outputs.items()})


class ObjectiveModel(nn.Module):
    """``model`` read through an objective: ``forward(x)`` returns one value per image of ``x``.

    The objective's target layers are hooked for the duration of each forward only.

    Args:
        model (nn.Module): the network.
        objective (Loss): an objective from :mod:`mei.optim.loss` (anything with ``targets`` and
            ``__call__(ModuleOutputs) -> Tensor`` of shape ``(images,)``).
    """

    def __init__(self, model: nn.Module, objective: Any) -> None:
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, x: Tensor) -> Tensor:
        outputs = run_and_capture(self.model, self.objective.targets, x)
        values = self.objective(outputs)
        if values.dim() != 1 or values.shape[0] != x.shape[0]:
            raise ValueError(f"objective {self.objective!r} returned shape {tuple(values.shape)}, "
                             f"expected ({x.shape[0]},): one value per image")
        return values

    def extra_repr(self) -> str:
        return f"objective={self.objective!r}"


def objective_model(model: nn.Module, objective: Any) -> ObjectiveModel:
    """:class:`ObjectiveModel` from an objective or a component spec ``{"path": ..., "kwargs": {...}}``.

    The spec form is what a pipeline objective table stores, e.g.
    ``{"path": "mei.optim.loss.ChannelActivation", "kwargs": {"target": "features.3", "channel_index": 5}}``.

    Args:
        model (nn.Module): the network.
        objective (Loss or dict): the objective or its spec (resolved through :mod:`mei.resolve`).
    """
    if isinstance(objective, Mapping):
        from ..resolve import build_component

        objective = build_component(objective, "objective")
    return ObjectiveModel(model, objective)
