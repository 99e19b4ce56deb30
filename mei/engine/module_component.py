"""The component base for ``torch.nn.Module`` components (the captum.optim-style transforms and renderers).

:class:`ModuleComponent` is :class:`~mei.engine.component.Component` and ``nn.Module`` at once: the constructor
checks the hyperparameters and records :attr:`~mei.engine.component.Component.defaults`, the ``repr`` reads like
the call that built the module, and ``nn.Module``'s own ``state_dict`` / ``load_state_dict`` stay (parameters,
buffers, children), with the hyperparameters and running state in the module's extra state. It lives apart
from :mod:`mei.engine.component` so that the resolver does not import torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .component import Component, _saved_defaults

_EXTRA_STATE = "_extra_state"


class ModuleComponent(Component, nn.Module):
    """Base class of components that are ``nn.Module`` s; call ``super().__init__()`` first, as for any module.

    ``state_dict()`` is ``nn.Module``'s, with an ``_extra_state`` entry per component holding
    ``{"defaults": ..., "state": ...}``; ``load_state_dict`` rebuilds a component whose saved hyperparameters
    differ from its own (checked again by its constructor) before loading its tensors.

    Example:
        >>> from mei.engine.component import check_number
        >>> class Shift(ModuleComponent):
        ...     def __init__(self, by: float = 1.0) -> None:
        ...         super().__init__()
        ...         self.by = check_number("by", by)
        >>> Shift(2.0)
        Shift(2.0)
    """

    state_dict = nn.Module.state_dict
    load_state_dict = nn.Module.load_state_dict

    def get_extra_state(self) -> dict[str, Any]:
        """The hyperparameters and running state, as :meth:`Component.state_dict` gives them."""
        return Component.state_dict(self)

    def set_extra_state(self, state: Any) -> None:
        """Restore the running state (the hyperparameters were applied before the tensors were loaded)."""
        if isinstance(state, Mapping):
            self._restore_state(state.get("state") or {})

    def _load_from_state_dict(self, state_dict: Mapping[str, Any], prefix: str, *args: Any) -> None:
        extra = state_dict.get(prefix + _EXTRA_STATE)
        if extra is not None:
            defaults = _saved_defaults(self, extra)
            if not _same(defaults, self.defaults):
                training = self.training
                self._rebuild(defaults)
                self.train(training)
        super()._load_from_state_dict(state_dict, prefix, *args)


def _same(left: Any, right: Any) -> bool:
    """Equality that also compares tensors (by value) inside lists and dicts; two modules of one type count as
    the same (a child module's own state is loaded by ``nn.Module``'s recursion, not by rebuilding its parent)."""
    if isinstance(left, nn.Module) and isinstance(right, nn.Module):
        return type(left) is type(right)
    if isinstance(left, torch.Tensor) or isinstance(right, torch.Tensor):
        return isinstance(left, torch.Tensor) and isinstance(right, torch.Tensor) and torch.equal(left, right)
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        return type(left) is type(right) and len(left) == len(right) and all(map(_same, left, right))
    try:
        return bool(left == right)
    except (TypeError, RuntimeError, ValueError):
        return left is right


__all__ = ["ModuleComponent"]
