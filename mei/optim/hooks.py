"""Activations of chosen layers in one forward pass, by module object or by module name (captum.optim's
``collect_activations`` and friends, on the engine's hooks in :mod:`mei.engine.hooks`).

The target name ``"input"`` (:data:`MODEL_INPUT`) stands for the model's input itself (the transformed image),
unless the model has a submodule of that name. :class:`ObjectiveModel` turns ``(model, objective)`` into a module
that returns one value per image: the engine's ``func``, and a pipeline ``get_objective`` result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..engine.hooks import MODEL_INPUT, ModuleOutputs, Target, _key, capture, get_module, is_model_input, module_name
from .output_hook import ActivationFetcher, ModuleOutputsHook

__all__ = ["MODEL_INPUT", "ModuleOutputs", "Target", "capture", "get_module", "is_model_input", "module_name",
           "get_model_layers", "run_and_capture", "collect_activations", "ObjectiveModel", "objective_model",
           "ModuleOutputsHook", "ActivationFetcher"]


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
        objective (Loss): an objective from :mod:`mei.optim.loss` (its ``per_image(ModuleOutputs)``), or anything
            with ``targets`` and ``__call__(ModuleOutputs) -> Tensor`` of shape ``(images,)``.
    """

    def __init__(self, model: nn.Module, objective: Any) -> None:
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, x: Tensor) -> Tensor:
        outputs = run_and_capture(self.model, self.objective.targets, x)
        per_image = getattr(self.objective, "per_image", None)
        values = per_image(outputs) if per_image is not None else self.objective(outputs)
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
        objective (Loss or dict): the objective or its spec (resolved through :mod:`mei.engine.resolve`).
    """
    if isinstance(objective, Mapping):
        from ..engine.resolve import build_component

        objective = build_component(objective, "objective")
    return ObjectiveModel(model, objective)
