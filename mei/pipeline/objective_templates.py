"""Objective-table templates for movies, multi-session models and contrastive MEIs.

Both templates are :class:`mei.main.PopulationObjectiveTemplate` s: ``populate()`` fills one row per neuron
with its session (``data_key``) and output unit, and ``get_objective(model, key)`` builds the neuron's
objective with ``forward_kwargs={"data_key": ...}``, so ``MEI().populate()`` drives the right session's unit
without the user doing anything. On top of that:

* :class:`ReducedObjectiveTemplate` reduces a response over time (class attribute ``reducer``, a component
  spec such as ``{"path": "mei.reducers.MeanOverTime"}`` or a callable);
* :class:`ContrastiveObjectiveTemplate` drives the neuron against the other neurons of its session
  (:class:`mei.targets.contrastive.ContrastiveObjective`; class attributes ``temperature``, ``ratio``, ``weight``).

Declare them in your own schema like the population template::

    @schema
    class VideoObjective(ReducedObjectiveTemplate):
        dataset_table = Dataset
        trained_model_table = TrainedModel
        reducer = {"path": "mei.reducers.MeanOverWindow", "kwargs": {"start": -10}}

Importing this module opens no database connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import nn

from ..main import PopulationObjectiveTemplate
from ..modules import ConstrainedOutputModel
from ..reducers import Reducer, build_reducer
from ..targets.contrastive import ContrastiveObjective, GroupObjective

__all__ = ["ReducedObjectiveTemplate", "ContrastiveObjectiveTemplate"]


class _SessionObjective:
    """What both templates share: the neuron's unit, its session keywords and the reducer."""

    reducer: ClassVar[Reducer | Mapping[str, Any] | None] = None
    unit_dim: ClassVar[int] = 1
    forward_data_key: ClassVar[bool | None]

    def neuron(self, key: Mapping[str, Any]) -> tuple[int, str, dict[str, Any] | None]:
        """``(output_unit, data_key, forward_kwargs)`` of the one neuron in ``key``."""
        output_unit, data_key = (self & key).fetch1("output_unit", "data_key")  # type: ignore[operator]
        forward_kwargs = {"data_key": data_key} if data_key and self.passes_data_key(key) else None
        return int(output_unit), data_key, forward_kwargs

    def passes_data_key(self, key: Mapping[str, Any]) -> bool:
        """Whether the model gets ``data_key``: ``forward_data_key`` if set, else when the dataset of ``key``
        has several sessions."""
        flag = getattr(self, "forward_data_key", None)
        if flag is not None:
            return bool(flag)
        return len(set(self.dataset_rows(key).to_arrays("data_key"))) > 1

    def dataset_rows(self, key: Mapping[str, Any]) -> Any:
        """The rows of this table for the dataset of ``key``."""
        dataset = {name: key[name] for name in self.dataset_table().primary_key}  # type: ignore[attr-defined]
        return self & dataset  # type: ignore[operator]

    def build_reducer(self) -> Reducer | None:
        """The reducer from the ``reducer`` class attribute (a fresh component per objective)."""
        return build_reducer(type(self).reducer, f"{type(self).__name__}.reducer")


class ReducedObjectiveTemplate(_SessionObjective, PopulationObjectiveTemplate):
    """Neuron id -> output unit and session, objective = the unit's response reduced over time.

    Class attributes: those of :class:`mei.main.PopulationObjectiveTemplate`, ``reducer`` (component spec or
    callable; ``None`` = no reduction; default ``{"path": "mei.reducers.MeanOverTime"}``) and ``unit_dim``
    (the output dimension of the units: 1 for ``(images, units, time)``, the default, or -1 for ``(images,
    time, units)``).
    """

    reducer: ClassVar[Reducer | Mapping[str, Any] | None] = {"path": "mei.reducers.MeanOverTime", "kwargs": {}}

    def get_objective(self, model: nn.Module, key: Mapping[str, Any]) -> nn.Module:
        """``model`` restricted to the neuron in ``key``, its session chosen and its response reduced."""
        unit, _, forward_kwargs = self.neuron(key)
        if self.unit_dim != 1:
            return GroupObjective(model, [unit], reducer=self.build_reducer(), forward_kwargs=forward_kwargs,
                                  unit_dim=self.unit_dim)
        return ConstrainedOutputModel(model, unit, target_fn=self.build_reducer(), forward_kwargs=forward_kwargs)

    get_output_selected_model = get_objective


class ContrastiveObjectiveTemplate(_SessionObjective, PopulationObjectiveTemplate):
    """Neuron id -> output unit and session, objective = the unit against the other units of its session.

    Class attributes: those of :class:`mei.main.PopulationObjectiveTemplate`, and ``temperature``
    (``None`` = plain mean of the others), ``ratio`` (False), ``weight`` (1.0), ``reducer`` (``None``) and
    ``unit_dim`` (1) as in :class:`mei.targets.contrastive.ContrastiveObjective`. The others are the other neurons of
    the same session in this table.
    """

    temperature: ClassVar[float | None] = None
    ratio: ClassVar[bool] = False
    weight: ClassVar[float] = 1.0

    def others(self, key: Mapping[str, Any], data_key: str, unit: int) -> list[int]:
        """Output units of the other neurons of the same dataset and session."""
        units = (self.dataset_rows(key) & {"data_key": data_key}).to_arrays("output_unit")
        return sorted(int(u) for u in units if int(u) != unit)

    def get_objective(self, model: nn.Module, key: Mapping[str, Any]) -> nn.Module:
        """A :class:`mei.targets.contrastive.ContrastiveObjective` of the neuron in ``key`` against its session's
        others."""
        unit, data_key, forward_kwargs = self.neuron(key)
        others = self.others(key, data_key, unit)
        if not others:
            raise ValueError(f"neuron {key.get('neuron_id')} has no other neuron in session {data_key!r} to "
                             "contrast against")
        return ContrastiveObjective(model, unit, others=others, temperature=self.temperature, ratio=self.ratio,
                                    weight=self.weight, reducer=self.build_reducer(),
                                    forward_kwargs=forward_kwargs, unit_dim=self.unit_dim)

    get_output_selected_model = get_objective
