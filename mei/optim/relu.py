"""``RedirectedReLU``: a ReLU whose backward still says which way to move a dead unit, and layer swapping.

A plain ReLU passes no gradient where its input is negative, so a unit that starts dead never gets a
signal. The redirected gradient (lucid's trick) keeps the ReLU gradient wherever it is non-zero for an
image; for an image whose ReLU gradient is all zero it passes the incoming gradient instead, except where
that gradient would push an already negative input further down. The forward pass is exactly ``relu``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn


class RedirectedReLUFunction(torch.autograd.Function):
    """``relu`` forward; the redirected gradient backward (see the module docstring)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        negative = x < 0
        relu_grad = grad_output.masked_fill(negative, 0)
        # grad_output > 0 means the minimized loss wants the output lower; a negative x is low enough.
        redirected = grad_output.masked_fill(negative & (grad_output > 0), 0)
        flat = relu_grad.reshape(relu_grad.shape[0], -1) if relu_grad.dim() > 0 else relu_grad.reshape(1, -1)
        alive = flat.ne(0).any(dim=1).view(-1, *([1] * max(relu_grad.dim() - 1, 0)))
        return torch.where(alive, relu_grad, redirected)


def redirected_relu(x: Tensor) -> Tensor:
    """Functional form of :class:`RedirectedReLU`."""
    return RedirectedReLUFunction.apply(x)


class RedirectedReLU(nn.Module):
    """Drop-in ``nn.ReLU`` replacement with the redirected gradient.

    Args:
        inplace (bool, optional): accepted for ``nn.ReLU`` compatibility and ignored. Default: False.
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return redirected_relu(x)


def replace_layers(model: nn.Module, layer1: type[nn.Module] | tuple[type[nn.Module], ...] = nn.ReLU,
                   layer2: type[nn.Module] | Callable[..., nn.Module] = RedirectedReLU,
                   transfer_vars: bool = False, **kwargs: Any) -> dict[str, nn.Module]:
    """Replace every submodule of type ``layer1`` in ``model`` by a new ``layer2(**kwargs)``, in place.

    Args:
        model (nn.Module): the network (modified in place).
        layer1 (type or tuple of types, optional): the class(es) to replace. Default: ``nn.ReLU``.
        layer2 (type or Callable, optional): what to build instead. Default: :class:`RedirectedReLU`.
        transfer_vars (bool, optional): pass the old layer's constructor-style attributes (those ``layer2``
            accepts, e.g. ``inplace``) on to the new one. Default: False.
        **kwargs: further keyword arguments for ``layer2``.

    Returns:
        dict[str, nn.Module]: the replaced modules by name, for :func:`restore_layers`.
    """
    import inspect

    accepted = set(inspect.signature(layer2).parameters) if transfer_vars else set()
    replaced: dict[str, nn.Module] = {}
    for name, module in list(model.named_modules()):
        if name and isinstance(module, layer1):
            carried = {k: v for k, v in vars(module).items() if k in accepted and not k.startswith("_")}
            _set_submodule(model, name, layer2(**{**carried, **kwargs}))
            replaced[name] = module
    return replaced


def restore_layers(model: nn.Module, replaced: dict[str, nn.Module]) -> None:
    """Put back the modules :func:`replace_layers` took out."""
    for name, module in replaced.items():
        _set_submodule(model, name, module)


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


class SkipLayer(nn.Module):
    """Passes its (first) input through unchanged, whatever else it is called with: a stand-in for a layer taken
    out of a network, e.g. ``replace_layers(model, nn.Dropout, SkipLayer)`` or :func:`skip_layers`.

    Args:
        *args, **kwargs: accepted and ignored, so it can take the place of any layer's constructor.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        return x


def skip_layers(model: nn.Module, layer_types: type[nn.Module] | tuple[type[nn.Module], ...]) -> dict[str, nn.Module]:
    """Replace every submodule of the given type(s) by a :class:`SkipLayer`, in place.

    Returns:
        dict[str, nn.Module]: the removed modules by name, for :func:`restore_layers`.
    """
    return replace_layers(model, layer_types, SkipLayer)


@contextlib.contextmanager
def swapped_layers(model: nn.Module, layer1: type[nn.Module] = nn.ReLU,
                   layer2: type[nn.Module] | Callable[..., nn.Module] = RedirectedReLU,
                   **kwargs: Any) -> Iterator[nn.Module]:
    """Within the block, ``model`` has ``layer2`` instead of ``layer1`` (as :func:`replace_layers`);
    the original modules are restored afterwards, also on error.

    Note that objectives must then name such layers by name (``"features.1"``), not by the old object.
    """
    replaced = replace_layers(model, layer1, layer2, **kwargs)
    try:
        yield model
    finally:
        restore_layers(model, replaced)


__all__ = ["RedirectedReLU", "RedirectedReLUFunction", "redirected_relu", "replace_layers", "restore_layers",
           "swapped_layers", "SkipLayer", "skip_layers"]
