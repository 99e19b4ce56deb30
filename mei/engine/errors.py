"""The errors of configs and components, shared by every layer."""

from __future__ import annotations


class ConfigError(ValueError):
    """A method config (or one of its components) is invalid.

    ``key`` names where in the config the problem is, e.g. ``"stopper.kwargs"``.
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)


class ComponentNotAllowedError(ConfigError):
    """A dotted path names something that is not an allowed component (for that slot)."""


class HyperparameterError(ValueError):
    """A component's constructor was given a bad hyperparameter value.

    ``name`` is the hyperparameter (e.g. ``"sigma"``) and ``reason`` what is wrong with the value (e.g.
    ``"must be > 0, got -1"``); the message reads ``"sigma must be > 0, got -1"``. Config readers turn it into a
    :class:`ConfigError` whose key ends with ``name``.
    """

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"{name} {reason}")


class UnitOutOfRangeError(IndexError):
    """An objective selects an output unit the model does not have.

    ``units`` are the selected units, ``n_units`` the size of the model's unit dimension; the message names
    the valid range. The pipeline adds the key of the row that selected the unit (``output_unit`` of a neuron).
    """

    def __init__(self, units: list[int], n_units: int, where: str = "output unit") -> None:
        self.units = list(units)
        self.n_units = n_units
        bad = [u for u in self.units if not -n_units <= u < n_units]
        super().__init__(f"{where} {bad[0] if len(bad) == 1 else bad} is out of range: the model's output has "
                         f"{n_units} unit(s), valid units are 0 to {n_units - 1}")
