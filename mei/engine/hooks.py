"""Activations of chosen layers in one forward pass, by module object or by module name: forward hooks on the
targeted modules only, removed in ``finally`` so a failing forward never leaves one behind. The target name
``"input"`` (:data:`MODEL_INPUT`) stands for the model's input itself, unless the model has a submodule of that
name. Used by inner-layer objectives (:mod:`mei.targets.layers`) and feature visualization (:mod:`mei.optim`)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Union

from torch import Tensor, nn

#: A layer to read activations from: the module itself or its name in ``model.named_modules()``,
#: e.g. ``"features.3"`` or ``"mixed4a"``.
Target = Union[nn.Module, str]

#: Target name of the model's own input (read by a forward pre-hook on the model).
MODEL_INPUT = "input"


_scored_views: contextvars.ContextVar[int] = contextvars.ContextVar("mei_scored_views", default=1)


@contextlib.contextmanager
def scoring_views(n_views: int) -> Iterator[None]:
    """Inside the block the batch an objective scores holds ``n_views`` views of each image, view-major (row
    ``v * K + k`` is view ``v`` of image ``k``; the engine sets it around the forward of a step whose transform
    returned several views, :class:`mei.transforms.Views`), so an objective can find an image's rows
    (:func:`image_rows`)."""
    token = _scored_views.set(int(n_views))
    try:
        yield
    finally:
        _scored_views.reset(token)


def image_rows(images: Sequence[int], n_rows: int) -> list[int]:
    """The rows of a scored batch of ``n_rows`` that hold ``images`` (every view of each, view-major): the
    images themselves without views. Raises ``IndexError`` for an image outside the batch."""
    n_views = _scored_views.get()
    n_images = n_rows // n_views if n_views > 1 and n_rows % n_views == 0 else n_rows
    for index in images:
        if not -n_images <= index < n_images:
            raise IndexError(f"batch_index {index} is out of range for {n_images} images")
    if n_images == n_rows:
        return list(images)
    return [view * n_images + index % n_images for view in range(n_rows // n_images) for index in images]


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
