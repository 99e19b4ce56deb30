"""Refuse to damage: no DataJoint 2 table of this package is ever declared in a schema of DataJoint 0.14 tables.

Declaring DataJoint 2 tables in a DataJoint 0.14 schema adds tables that DataJoint 0.14 cannot read
(``~lineage``, parts with ``json`` columns), after which the lab's own 0.14 code fails on that schema. The
package therefore looks at a schema before it declares anything in it (:func:`refuse_legacy_schema`, called
by every ``activate()`` and by every package template before DataJoint 2 declares it or rebuilds its lineage,
:class:`LegacyGuard`) and raises
:class:`LegacySchemaError` when the schema holds DataJoint 0.14 tables. The check only reads
``information_schema``.

What marks a schema as DataJoint 0.14 (any one of these):

* a ``~log`` table (DataJoint 0.14 creates it with the first table it declares; DataJoint 2 has none);
* a ``~external_<store>`` table (0.14's table of external objects);
* a column whose comment records a 0.14 type: ``:attach@store:``, ``:blob@store:``, ``:filepath@store:``,
  ``:attach:`` (DataJoint 2 writes its codecs in angle brackets, ``:<attach@store>:``);
* a ``longblob``/``mediumblob``/``blob``/``tinyblob`` column without a recorded codec in a schema without
  DataJoint 2's ``~lineage`` table (0.14 serialized Python objects into such columns).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["LegacySchemaError", "legacy_markers", "refuse_legacy_schema", "LegacyGuard"]

_LEGACY_COMMENT = re.compile(r"^:(?:(?:attach|blob|filepath)@[^:<>]*|attach):")
_NATIVE_BLOBS = {"longblob", "mediumblob", "blob", "tinyblob"}
BRIDGE_HINT = ("read it in place with mei.pipeline.legacy_bridge.LegacyFabrik, or copy it into a DataJoint 2 schema "
               "with `mei legacy import` (docs/legacy.md)")


class LegacySchemaError(RuntimeError):
    """The schema holds DataJoint 0.14 tables; the package declares nothing in it.

    Attributes:
        schema (str): the schema's name.
        markers (list[str]): what shows it is a DataJoint 0.14 schema.
    """

    def __init__(self, schema: str, markers: Sequence[str], table: str | None = None) -> None:
        what = f"declare {table} in" if table else "declare tables in"
        shown = "; ".join(markers[:3]) + (f" (and {len(markers) - 3} more)" if len(markers) > 3 else "")
        super().__init__(f"refusing to {what} schema {schema!r}: it holds DataJoint 0.14 tables ({shown}), and "
                         "DataJoint 2 tables beside them make the schema unreadable for DataJoint 0.14; nothing was "
                         f"written. Use another schema name for the package's tables; {BRIDGE_HINT}")
        self.schema = schema
        self.markers = list(markers)


def legacy_markers(query: Callable[[str, tuple[Any, ...]], Sequence[Sequence[Any]]], schema: str) -> list[str]:
    """What in ``schema`` shows DataJoint 0.14 tables (empty: none, or no such schema).

    Args:
        query (callable): ``query(sql, args) -> rows``; runs a SELECT on ``information_schema``.
        schema (str): the schema (MySQL database) to look at.
    """
    tables = [str(row[0]) for row in query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))]
    markers = [f"table `{name}`" for name in sorted(tables) if name == "~log" or name.startswith("~external_")]
    has_lineage = "~lineage" in tables
    columns = query("SELECT table_name, column_name, data_type, column_comment FROM information_schema.columns "
                    "WHERE table_schema = %s ORDER BY table_name, ordinal_position", (schema,))
    for table, column, data_type, comment in columns:
        comment = str(comment or "")
        if _LEGACY_COMMENT.match(comment):
            markers.append(f"column `{table}`.`{column}` of DataJoint 0.14 type {comment.split(':')[1]}")
        elif str(data_type).lower() in _NATIVE_BLOBS and not comment.startswith(":<") and not has_lineage:
            markers.append(f"column `{table}`.`{column}` {data_type} of serialized DataJoint 0.14 blobs")
    return markers


def _query_of(connection: Any) -> Callable[[str, tuple[Any, ...]], Sequence[Sequence[Any]]]:
    def query(sql: str, args: tuple[Any, ...]) -> Sequence[Sequence[Any]]:
        return list(connection.query(sql, args=args).fetchall())

    return query


def refuse_legacy_schema(connection: Any, schema: str, table: str | None = None) -> None:
    """Raise :class:`LegacySchemaError` if ``schema`` holds DataJoint 0.14 tables (MySQL/MariaDB only).

    Args:
        connection (datajoint.Connection): a DataJoint 2 connection.
        schema (str): the schema about to receive tables.
        table (str, optional): the table about to be declared, for the message.
    """
    backend = str(getattr(getattr(connection, "adapter", None), "backend", "mysql") or "mysql")
    if "postgres" in backend.lower():
        return  # DataJoint 0.14 never ran on PostgreSQL
    markers = legacy_markers(_query_of(connection), schema)
    if markers:
        raise LegacySchemaError(schema, markers, table)


class LegacyGuard:
    """Mixin for the package's table templates: nothing is declared or written in a DataJoint 0.14 schema.

    DataJoint 2 writes into a schema when it declares a table (``declare``) and also when a table of the same
    name already exists there (it then rebuilds the table's ``~lineage`` rows, ``_refresh_lineage``): a 0.14
    table named like the lab's class (sinzlab's ``MEI`` is ``__m_e_i`` in both) would get a ``~lineage``
    table beside it. Both first call :func:`refuse_legacy_schema`.
    """

    def declare(self, context: Any = None) -> Any:
        refuse_legacy_schema(self.connection, self.database, type(self).__name__)  # type: ignore[attr-defined]
        return super().declare(context)  # type: ignore[misc]

    def _refresh_lineage(self, context: Any = None) -> Any:
        refuse_legacy_schema(self.connection, self.database, type(self).__name__)  # type: ignore[attr-defined]
        return super()._refresh_lineage(context)  # type: ignore[misc]
