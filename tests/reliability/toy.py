"""A two-table DataJoint pipeline for testing job recovery without the MEI tables."""

from __future__ import annotations

from typing import Any

import datajoint as dj

schema = dj.Schema()


@schema
class Item(dj.Manual):
    definition = """
    item : int32
    """


@schema
class Doubled(dj.Computed):
    definition = """
    -> Item
    ---
    value : float64
    """

    def make(self, key: dict[str, Any]) -> None:
        self.insert1({**key, "value": 2.0 * key["item"]})


def activate(schema_name: str, connection: Any) -> tuple[type, type]:
    """Bind the toy tables to ``schema_name`` on ``connection``; returns ``(Item, Doubled)``."""
    schema.database = None
    schema.activate(schema_name, connection=connection)
    return Item, Doubled
