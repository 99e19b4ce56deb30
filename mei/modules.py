"""Modules that turn a model into an objective: one unit of its output, an average of members, the units of
several sessions side by side."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
            identity. A dict in this (third) place is taken as ``forward_kwargs``: sinzlab/mei e91ef42's
            positional order was ``(model, constraint, forward_kwargs)``, its later one ``(model, constraint,
            target_fn)``; both work.
        forward_kwargs (dict, optional): keyword arguments for every forward call, e.g.
            ``{"data_key": "session-3"}`` or a session's ``pupil_center`` / ``behavior``. Default: none.
    """

    def __init__(self, model: nn.Module, constraint: int,
                 target_fn: Callable[[Tensor], Tensor] | Mapping[str, Any] | None = None,
                 forward_kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if isinstance(target_fn, Mapping):
            if forward_kwargs is not None:
                raise TypeError("ConstrainedOutputModel got forward_kwargs twice (a dict in target_fn's place too)")
            target_fn, forward_kwargs = None, target_fn
        self.model = model
        self.constraint = constraint
        self.target_fn = target_fn
        self.forward_kwargs = dict(forward_kwargs or {})

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        stored = {k: v.to(x.device) if isinstance(v, Tensor) else v for k, v in self.forward_kwargs.items()}
        output = self.model(x, *args, **{**stored, **kwargs})
        check_units(output, [self.constraint] if isinstance(self.constraint, int) else [])
        response = output[:, self.constraint]
        return self.target_fn(response) if self.target_fn is not None else response

    def __repr__(self) -> str:  # sinzlab/mei's form
        target = f", target_fn={self.target_fn!r}" if self.target_fn is not None else ""
        return (f"{type(self).__qualname__}({self.model!r}, {self.constraint}{target}, "
                f"forward_kwargs={self.forward_kwargs})")


class EnsembleModel(nn.Module):
    """The average of several members' outputs on the same input.

    Args:
        *members (nn.Module): models with the same output shape.
    """

    _module_container_cls: Callable[..., Any] = nn.ModuleList  # sinzlab/mei's hook

    def __init__(self, *members: nn.Module) -> None:
        super().__init__()
        self.members = self._module_container_cls(members)

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        if not len(self.members):
            raise ValueError("an ensemble needs at least one member")
        outputs = [member(x, *args, **kwargs) for member in self.members]
        return torch.stack(outputs).mean(dim=0) if len(outputs) > 1 else outputs[0]

    def __repr__(self) -> str:  # sinzlab/mei's form
        return f"{type(self).__qualname__}({', '.join(repr(m) for m in self.members)})"


class SessionsModel(nn.Module):
    """The neurons of several sessions of one model as one population: each session's chosen units, side by
    side along ``unit_dim`` in the order given (one forward per session, its own keyword arguments).

    Args:
        model (nn.Module): a multi-session model (e.g. ``model(x, data_key=...)``).
        sessions (list[tuple[dict, list[int]]]): per session, its forward keyword arguments (e.g.
            ``{"data_key": "s1"}``) and the output units to keep.
        unit_dim (int, optional): the output dimension that indexes units. Default: 1.
    """

    def __init__(self, model: nn.Module, sessions: Sequence[tuple[Mapping[str, Any], Sequence[int]]],
                 unit_dim: int = 1) -> None:
        super().__init__()
        if not sessions:
            raise ValueError("SessionsModel needs at least one session")
        self.model = model
        self.sessions = [(dict(kwargs), [int(u) for u in units]) for kwargs, units in sessions]
        self.unit_dim = int(unit_dim)

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        outputs = []
        for session_kwargs, units in self.sessions:
            output = self.model(x, *args, **{**kwargs, **session_kwargs})
            check_units(output, units, self.unit_dim)
            outputs.append(output.index_select(self.unit_dim, torch.tensor(units, device=output.device)))
        return torch.cat(outputs, self.unit_dim)

    def extra_repr(self) -> str:
        return f"sessions={[(k, len(u)) for k, u in self.sessions]}, unit_dim={self.unit_dim}"


def check_units(output: Tensor, units: list[int], dim: int = 1) -> None:
    """Raise :class:`~mei.engine.errors.UnitOutOfRangeError` if a unit lies outside ``output``'s unit ``dim``
    (negative units count from the end, as in indexing)."""
    n_units = output.shape[dim] if output.dim() > dim else 0
    if units and not -n_units <= min(units) <= max(units) < n_units:
        raise UnitOutOfRangeError(units, n_units)
