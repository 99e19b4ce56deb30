"""Objectives over several units of a model: contrastive (one unit against others) and group objectives.

Each objective is an ``nn.Module`` that maps an input batch to one value per image, so it drops into the
engine (:class:`mei.optimization.MEI`) and into :func:`mei.methods.gradient_ascent` exactly where a
:class:`~mei.modules.ConstrainedOutputModel` would. All of them

* call the model with ``forward_kwargs`` (e.g. ``{"data_key": "session-3"}`` for multi-session models),
* pick units along ``unit_dim`` of the output (1 for ``(images, units, ...)``, -1 for ``(images, time,
  units)``), and
* reduce each unit's response to one number per image with ``reducer`` (see :mod:`mei.reducers`; needed
  when the model answers over time).

A *contrastive* MEI drives one unit more than a set of others ("most discriminative stimulus"); a *group*
MEI drives a set of units together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..engine.component import check_number
from ..reducers import Reducer, build_reducer


def _units(values: int | Sequence[int], name: str) -> list[int]:
    units = [values] if isinstance(values, int) else list(values)
    if not units:
        raise ValueError(f"{name} must name at least one unit")
    return [check_number(name, u, minimum=0, integer=True) for u in units]


class UnitResponses(nn.Module):
    """The reduced responses ``(images, len(units))`` of chosen units of ``model``.

    Args:
        model (nn.Module): the model.
        units (list[int] | None): units to keep, in this order; ``None`` keeps all of them.
        reducer (Callable | dict, optional): reduces each unit's response over time (a callable or a
            component spec). Default: none (the model answers with one value per unit).
        forward_kwargs (dict, optional): keyword arguments for every forward call. Default: none.
        unit_dim (int, optional): the output dimension that indexes units. Default: 1.
    """

    def __init__(self, model: nn.Module, units: Sequence[int] | None = None,
                 reducer: Reducer | Mapping[str, Any] | None = None,
                 forward_kwargs: Mapping[str, Any] | None = None, unit_dim: int = 1) -> None:
        super().__init__()
        self.model = model
        self.units = None if units is None else _units(units, "units")
        self.reducer = build_reducer(reducer)
        self.forward_kwargs = dict(forward_kwargs or {})
        self.unit_dim = check_number("unit_dim", unit_dim, integer=True)
        if self.unit_dim == 0:
            raise ValueError("unit_dim 0 holds the images; units lie along another dimension")

    def forward(self, x: Tensor, **kwargs: Any) -> Tensor:
        output = self.model(x, **{**self.forward_kwargs, **kwargs})
        if self.units is not None:
            index = torch.as_tensor(self.units, device=output.device)
            output = output.index_select(self.unit_dim, index)
        responses = output.movedim(self.unit_dim, 1)
        if self.reducer is not None:
            responses = self.reducer(responses)
        if responses.dim() != 2:
            raise ValueError(
                f"unit responses have shape {tuple(responses.shape)} after reduction; expected (images, units): "
                "give a reducer such as mei.reducers.MeanOverTime for models that answer over time"
            )
        return responses

    def extra_repr(self) -> str:
        return f"units={self.units}, reducer={self.reducer}, forward_kwargs={self.forward_kwargs}"


class ContrastiveObjective(nn.Module):
    """One unit's response against the mean response of ``others``.

    With ``r`` the unit's reduced response and ``o_j`` the others', the value per image is

    * ``r - weight * mean_j(o_j)`` by default,
    * ``r - weight * temperature * log(mean_j(exp(o_j / temperature)))`` with a ``temperature``: a soft
      maximum of the others, that tends to their mean for a high temperature and to their maximum for a
      low one, so the MEI cannot win by silencing only the easy competitors;
    * ``r / (mean_j(o_j) + eps)`` with ``ratio=True`` (for positive responses such as firing rates).

    Args:
        model (nn.Module): the model.
        unit (int): the unit to drive.
        others (list[int], optional): the units to contrast against. Default: every other unit.
        temperature (float, optional): soft-maximum temperature, > 0. Default: ``None`` (plain mean).
        ratio (bool, optional): divide instead of subtract. Default: False.
        weight (float, optional): weight of the others' term (not with ``ratio``). Default: 1.
        eps (float, optional): added to the denominator of the ratio. Default: 1e-6.
        reducer, forward_kwargs, unit_dim: as in :class:`UnitResponses`.
    """

    def __init__(self, model: nn.Module, unit: int, others: Sequence[int] | None = None,
                 temperature: float | None = None, ratio: bool = False, weight: float = 1.0, eps: float = 1e-6,
                 reducer: Reducer | Mapping[str, Any] | None = None,
                 forward_kwargs: Mapping[str, Any] | None = None, unit_dim: int = 1) -> None:
        super().__init__()
        self.unit = check_number("unit", unit, minimum=0, integer=True)
        self.others = None if others is None else _units(others, "others")
        if self.others is not None and self.unit in self.others:
            raise ValueError(f"others must not contain the unit itself ({self.unit})")
        if temperature is not None:
            temperature = check_number("temperature", temperature, minimum=0, strict_minimum=True)
        if ratio and temperature is not None:
            raise ValueError("choose either a temperature or ratio=True, not both")
        self.temperature, self.ratio = temperature, bool(ratio)
        self.weight = check_number("weight", weight, minimum=0)
        self.eps = check_number("eps", eps, minimum=0)
        units = None if self.others is None else [self.unit, *self.others]
        self.responses = UnitResponses(model, units, reducer, forward_kwargs, unit_dim)

    def others_term(self, others: Tensor) -> Tensor:
        """The summary of the others' responses ``(images, k) -> (images,)``: mean or soft maximum."""
        if self.temperature is None:
            return others.mean(dim=1)
        t = self.temperature
        return t * (torch.logsumexp(others / t, dim=1) - math.log(others.shape[1]))

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(unit response (images,), others' responses (images, k))`` for the input ``x``."""
        responses = self.responses(x)
        if self.others is not None:
            return responses[:, 0], responses[:, 1:]
        if not 0 <= self.unit < responses.shape[1] or responses.shape[1] < 2:
            raise ValueError(f"unit {self.unit} and at least one other are needed; the model has "
                             f"{responses.shape[1]} units")
        keep = torch.ones(responses.shape[1], dtype=torch.bool, device=responses.device)
        keep[self.unit] = False
        return responses[:, self.unit], responses[:, keep]

    def forward(self, x: Tensor) -> Tensor:
        unit, others = self.split(x)
        if self.ratio:
            return unit / (others.mean(dim=1) + self.eps)
        return unit - self.weight * self.others_term(others)

    def extra_repr(self) -> str:
        return (f"unit={self.unit}, others={self.others}, temperature={self.temperature}, ratio={self.ratio}, "
                f"weight={self.weight}")


class GroupObjective(nn.Module):
    """A set of units driven together: the (weighted) mean of their reduced responses.

    Args:
        model (nn.Module): the model.
        units (list[int]): the units.
        weights (list[float], optional): one weight per unit (e.g. negative to suppress). Default: equal,
            i.e. the plain mean.
        reducer, forward_kwargs, unit_dim: as in :class:`UnitResponses`.
    """

    weights: Tensor

    def __init__(self, model: nn.Module, units: Sequence[int], weights: Sequence[float] | None = None,
                 reducer: Reducer | Mapping[str, Any] | None = None,
                 forward_kwargs: Mapping[str, Any] | None = None, unit_dim: int = 1) -> None:
        super().__init__()
        chosen = _units(units, "units")
        self.responses = UnitResponses(model, chosen, reducer, forward_kwargs, unit_dim)
        n = len(chosen)
        weights = [1.0 / n] * n if weights is None else [check_number("weights", w) for w in weights]
        if len(weights) != n:
            raise ValueError(f"{len(weights)} weights given for {n} units")
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        responses = self.responses(x)
        return responses @ self.weights.to(responses.dtype)

    def extra_repr(self) -> str:
        return f"units={self.responses.units}, weights={self.weights.tolist()}"
