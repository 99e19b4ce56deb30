"""Binding the package's late-bound schemas: the schema name from the environment, ``activate()`` and the
mixin that binds a table's schema on first use (no database connection at import)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the mixins below are only ever mixed into DataJoint tables (typed as Any: no stubs)
    TableMixin = Any
else:
    TableMixin = object


def default_schema_name(env_var: str, default: str) -> str:
    """The schema name from ``env_var`` if set, else ``default``."""
    return os.environ.get(env_var, "").strip() or default


def bind_schema(schema: Any, schema_name: str, *, connection: Any = None, create_schema: bool = True,
                create_tables: bool = True) -> Any:
    """Bind the package's unbound ``schema`` to ``schema_name`` (rebinding is allowed, e.g. in tests).

    Args:
        schema (datajoint.Schema): an unbound (or previously bound) schema object.
        schema_name (str): database schema to bind to.
        connection (datajoint.Connection, optional): Default: :func:`mei.pipeline.database.connect`.
        create_schema, create_tables (bool, optional): as in ``datajoint.Schema.activate``. Default: True.

    Raises:
        LegacySchemaError: ``schema_name`` holds DataJoint 0.14 tables (nothing is written; see
            :mod:`mei.pipeline.legacy_bridge.guard`).
    """
    from . import database as db
    from .legacy_bridge.guard import refuse_legacy_schema

    if connection is None:
        connection = db.connect()
    db.ensure_store(db.config_of(connection))  # the MEI store must exist in the configuration of this connection
    if schema.database == schema_name and schema.connection is connection:
        return schema
    refuse_legacy_schema(connection, schema_name)  # never declare DataJoint 2 tables beside DataJoint 0.14 ones
    schema.database = None  # allow moving the package tables to another schema or connection
    schema.activate(schema_name, connection=connection, create_schema=create_schema, create_tables=create_tables)
    return schema


class LazyActivated(TableMixin):
    """Mixin for the package's own tables: the first use binds their schema with the defaults.

    By default it calls ``activate()`` of the module that defines the table class; override ``_activate``
    to do otherwise.
    """

    @classmethod
    def _activate(cls) -> None:
        sys.modules[cls.__module__].activate()

    def __init__(self) -> None:
        if type(self).database is None:
            type(self)._activate()
        super().__init__()
