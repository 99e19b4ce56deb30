"""Modules that turn a model into an objective: one unit of its output, an average of members."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from .engine.errors import UnitOutOfRangeError


class ConstrainedOutputModel(nn.Module):
    """The model's output restricted to one unit: ``target_fn(model(x, **forward_kwargs)[:, constraint])``.

    Args:
        model (nn.Module): the model, output ``(images, units, ...)``.
        constraint (int): index of the output unit.
        target_fn (Callable, optional): applied to the unit's response, e.g. a reduction over time. Default:
            identity.
        forward_kwargs (dict, optional): keyword arguments for every forward call, e.g.
            ``{"data_key": "session-3"}``. Default: none.
    """

    def __init__(self, model: nn.Module, constraint: int, target_fn: Callable[[Tensor], Tensor] | None = None,
                 forward_kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.model = model
        self.constraint = constraint
        self.target_fn = target_fn
        self.forward_kwargs = dict(forward_kwargs or {})

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        output = self.model(x, *args, **{**self.forward_kwargs, **kwargs})
        check_units(output, [self.constraint] if isinstance(self.constraint, int) else [])
        response = output[:, self.constraint]
        return self.target_fn(response) if self.target_fn is not None else response

    def extra_repr(self) -> str:
        return f"constraint={self.constraint}, forward_kwargs={self.forward_kwargs}"


class EnsembleModel(nn.Module):
    """The average of several members' outputs on the same input.

    Args:
        *members (nn.Module): models with the same output shape.
    """

    def __init__(self, *members: nn.Module) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        outputs = [member(x, *args, **kwargs) for member in self.members]
        return torch.stack(outputs).mean(dim=0) if len(outputs) > 1 else outputs[0]


def check_units(output: Tensor, units: list[int], dim: int = 1) -> None:
    """Raise :class:`~mei.engine.errors.UnitOutOfRangeError` if a unit lies outside ``output``'s unit ``dim``
    (negative units count from the end, as in indexing)."""
    n_units = output.shape[dim] if output.dim() > dim else 0
    if units and not -n_units <= min(units) <= max(units) < n_units:
        raise UnitOutOfRangeError(units, n_units)
