"""Helpers shared by the table templates: per-subclass part tables, single-key lookup."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def give_own_parts(cls: type, names: tuple[str, ...]) -> None:
    """Give ``cls`` its own subclass of each inherited part table in ``names``.

    DataJoint binds a part table class to one master; a template's nested part class would otherwise be
    shared (and re-bound) by every table that inherits the template.
    """
    for name in names:
        inherited = getattr(cls, name, None)
        if inherited is None or name in cls.__dict__:
            continue
        part = type(name, (inherited,), {"__module__": cls.__module__, "__qualname__": f"{cls.__qualname__}.{name}"})
        setattr(cls, name, part)


def primary_key_of(table: Any, key: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``key`` that is ``table``'s primary key (a missing attribute is a clear error)."""
    missing = [name for name in table.primary_key if name not in key]
    if missing:
        raise ValueError(f"key lacks {missing} of {type(table).__name__}'s primary key; got {sorted(key)}")
    return {name: key[name] for name in table.primary_key}
