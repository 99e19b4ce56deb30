"""Copy sinzlab/mei ``MEIMethod``, ``MEISeed`` and ``MEI`` rows of a DataJoint 0.14 schema into DataJoint 2.

Methods and seeds go to the package's :class:`mei.main.MEIMethod` / :class:`mei.main.MEISeed` with their hashes;
the MEIs into a table of the lab's DataJoint 2 schema that keeps the legacy keys (:func:`imported_mei_table_in`),
so old MEIs are queryable beside new ones. Same guarantees as :mod:`.importer` (idempotent, one transaction per
row, undecodable rows reported by key and skipped).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import datajoint as dj
import numpy as np

from .. import database as db
from ..values import from_bytes, to_bytes
from .copying import ImportSummary, RowCopier
from .external import Attachment
from .guard import LegacyGuard
from .reader import Column, LegacySchema, native_scalars

__all__ = ["ImportedMEITemplate", "imported_mei_table_in", "import_meis"]


class ImportedMEITemplate(LegacyGuard, dj.Manual):
    """MEIs imported from a sinzlab/mei ``MEI`` table on DataJoint 0.14 (made by :func:`imported_mei_table_in`).

    Key: ``-> MEIMethod`` (the package's), the legacy table's other key columns with their types (the
    trained-model and neuron keys, so the rows join with the imported trained models), ``-> MEISeed``.
    Attributes: ``mei`` and ``output`` (``<object@store>``: the legacy attachment's ``torch.save`` bytes, or the
    ``blob@`` array saved as a tensor), ``score``.
    """

    legacy_definition: ClassVar[str] = ""

    @property
    def definition(self) -> str:
        return self.legacy_definition

    def fetch_mei(self, key: Mapping[str, Any] | None = None, trusted: bool = False) -> Any:
        """The MEI of the one row selected by ``key`` as a tensor."""
        return from_bytes((self & (key or {})).fetch1("mei"), trusted=trusted)

    def fetch_output(self, key: Mapping[str, Any] | None = None, trusted: bool = False) -> Any:
        """The method's output of the one row selected by ``key``."""
        return from_bytes((self & (key or {})).fetch1("output"), trusted=trusted)


_SINZLAB_KEYS = {"method_fn", "method_hash", "mei_seed"}


def _column_type(column: Column) -> str:
    """A legacy column's type for a DataJoint 2 definition (display widths dropped: ``smallint(5)`` -> ``smallint``)."""
    sql = re.sub(r"\b(tinyint|smallint|mediumint|int|bigint)\(\d+\)", r"\1", column.sql_type)
    return {"float": "float32", "double": "float64"}.get(sql, sql)


def imported_mei_table_in(schema: Any, legacy: LegacySchema, mei_table: str = "MEI", name: str = "ImportedMEI",
                          trained_model_table: Any = None) -> Any:
    """Declare (or bind) the table for the MEIs of ``legacy``'s ``mei_table`` in ``schema`` (a bound
    ``dj.Schema``); the package's ``MEIMethod``/``MEISeed`` (:func:`mei.main.activate`) are its parents.

    Args:
        trained_model_table (optional): the imported trained-model table (e.g. the target of
            :func:`~mei.pipeline.legacy_bridge.importer.import_fabrik`); when the legacy MEI key holds its whole
            primary key, the MEIs reference it (``-> TrainedModel``), so they join with it. Default: none (the
            trained-model key columns are plain key columns).
    """
    from ... import main

    store = db.store_name()
    keys = [c for c in legacy.columns(mei_table) if c.in_key and c.name not in _SINZLAB_KEYS]
    parents = ["-> MEIMethod"]
    context = {"MEIMethod": main.MEIMethod, "MEISeed": main.MEISeed}
    if trained_model_table is not None and set(trained_model_table.primary_key) <= {c.name for c in keys}:
        parents.append("-> TrainedModel")
        context["TrainedModel"] = trained_model_table
        keys = [c for c in keys if c.name not in set(trained_model_table.primary_key)]
    lines = [f"# MEIs imported from DataJoint 0.14 {legacy.schema}.{legacy.table_name(mei_table)}", *parents,
             *(f"{c.name}: {_column_type(c)}" for c in keys), "-> MEISeed", "---",
             f"mei: <object@{store}>         # the MEI (torch.save bytes)", "score: float64",
             f"output: <object@{store}>      # the method's output (torch.save bytes)"]
    table = type(name, (ImportedMEITemplate,), {"__module__": __name__, "legacy_definition": "\n".join(lines)})
    return schema(table, context=context)


def _stored(value: Any) -> bytes:
    """What an ``<object@store>`` column of an imported MEI holds: attachment bytes as they are, other values
    (``blob@`` arrays, decoded blobs) as ``torch.save`` bytes."""
    if isinstance(value, Attachment):
        return value.data
    return to_bytes(value)


def _method_row(row: Mapping[str, Any]) -> dict[str, Any]:
    config = native_scalars(to_loadable_json(row["method_config"]))
    return {"method_fn": row["method_fn"], "method_hash": row["method_hash"], "method_config": config,
            "method_ts": row["method_ts"], "method_comment": row.get("method_comment") or ""}


def to_loadable_json(value: Any) -> Any:
    """numpy arrays as (nested) lists, recursively, so that a decoded config fits a ``json`` column."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(key): to_loadable_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_loadable_json(item) for item in value]
    return value


def import_meis(legacy: LegacySchema, schema: Any, *, trained_model_table: Any = None, mei_table: str = "MEI",
                method_table: str = "MEIMethod", seed_table: str = "MEISeed", progress: bool = True,
                on_row: Callable[[str, dict[str, Any]], None] | None = None) -> ImportSummary:
    """Copy sinzlab/mei ``MEIMethod``, ``MEISeed`` and ``MEI`` rows of a DataJoint 0.14 schema.

    Methods and seeds go to the package's :class:`mei.main.MEIMethod` / :class:`mei.main.MEISeed` (bind them
    first with :func:`mei.main.activate`), hashes kept; the MEIs to the table :func:`imported_mei_table_in`
    declares in ``schema``, keys kept, so old MEIs are queryable beside new ones. Idempotent and resumable as
    :func:`mei.pipeline.legacy_bridge.importer.import_fabrik` (one transaction per row).

    Args:
        legacy (LegacySchema): the legacy MEI schema, read in place (its stores given).
        schema (datajoint.Schema): bound DataJoint 2 schema for the imported MEIs' table.
        trained_model_table (optional): the imported trained models for the MEIs to reference (import them
            first); see :func:`imported_mei_table_in`. Default: none.
        mei_table, method_table, seed_table (str, optional): the legacy tables' class names.
            Defaults: ``"MEI"``, ``"MEIMethod"``, ``"MEISeed"``.
        progress (bool, optional): show a progress bar. Default: True.
        on_row (callable, optional): called as ``on_row(table, key)`` after each row is written.

    Returns:
        ImportSummary: rows copied / already there per table, bytes of MEIs and outputs copied, rows skipped.
    """
    from tqdm.auto import tqdm

    from ... import main

    imported = imported_mei_table_in(schema, legacy, mei_table, trained_model_table=trained_model_table)

    def write_method(target: Any, key: dict[str, Any], row: dict[str, Any]) -> int:
        with target.connection.transaction:
            target.insert1(_method_row(row))
        return 0

    def write_seed(target: Any, key: dict[str, Any], row: dict[str, Any]) -> int:
        with target.connection.transaction:
            target.insert1({"mei_seed": row["mei_seed"]})
        return 0

    def write_mei(target: Any, key: dict[str, Any], row: dict[str, Any]) -> int:
        mei, output = _stored(row["mei"]), _stored(row["output"])
        with db.store_errors(db.config_of(target.connection)), target.connection.transaction:
            target.insert1({**key, "mei": mei, "score": float(row["score"]), "output": output})
        return len(mei) + len(output)

    total = sum(legacy.count(name) for name in (method_table, seed_table, mei_table))
    summary = ImportSummary()
    with tqdm(total=total, desc=f"import {legacy.schema}", unit="row", disable=not progress) as bar:
        importer = RowCopier(legacy, summary, bar, on_row)
        importer.copy(method_table, main.MEIMethod(), write_method)
        importer.copy(seed_table, main.MEISeed(), write_seed)
        importer.copy(mei_table, imported(), write_mei)
    return summary
