"""Read DataJoint 0.14 / nnfabrik schemas in place, without DataJoint 0.14 and without writing.

:class:`LegacySchema` lists the tables of one legacy schema and fetches their rows with every value decoded
as DataJoint 0.14 decodes it (blobs, attachments, external ``attach@``/``blob@`` objects, uuids).
:class:`LegacyFabrik` adds nnfabrik's protocol on top: the trained models of a fabrik schema and
``load_model(key)``, which returns what nnfabrik's ``TrainedModel().load_model(key)`` returns on DataJoint 0.14.
All database access goes through :class:`~mei.pipeline.legacy_bridge.readonly.ReadOnlyConnection`.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

import numpy as np

from ..builders import get_data, get_model, get_trainer
from .external import Attachment, LegacyDecodeError, LegacyStore, decode_blob, object_path
from .readonly import ReadOnlyConnection

__all__ = ["Column", "LegacySchema", "LegacyFabrik", "native_scalars", "table_name_of"]

_Self = TypeVar("_Self", bound="LegacySchema")
_TIERS = ("", "#", "_", "__")  # Manual, Lookup, Imported, Computed
_NATIVE_BLOBS = {"longblob", "mediumblob", "blob", "tinyblob"}
_CUSTOM = re.compile(r"^:([^:]*):")


def table_name_of(class_name: str) -> str:
    """DataJoint's table name of a class name without tier prefix: ``TrainedModel`` -> ``trained_model``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower()


def native_scalars(data: Any) -> Any:
    """numpy scalars as Python numbers, recursively; tuples become lists (nnfabrik's ``cleanup_numpy_scalar``)."""
    if isinstance(data, np.generic) and data.shape == ():
        return data.item()
    if isinstance(data, dict):
        return {key: native_scalars(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [native_scalars(item) for item in data]
    return data


class Column:
    """One column of a legacy table: ``name``, SQL ``sql_type``, DataJoint 0.14 ``dj_type``, ``in_key``."""

    def __init__(self, name: str, sql_type: str, comment: str, in_key: bool) -> None:
        match = _CUSTOM.match(comment or "")
        self.name, self.sql_type, self.in_key = name, sql_type.lower(), in_key
        self.dj_type = match.group(1) if match else self.sql_type
        self.store = self.dj_type.split("@", 1)[1] if "@" in self.dj_type else None

    def __repr__(self) -> str:
        return f"Column({self.name!r}, {self.dj_type!r}{', key' if self.in_key else ''})"


class LegacySchema:
    """One DataJoint 0.14 schema, read in place and read-only.

    Args:
        schema (str): the schema's name on the server.
        connection (ReadOnlyConnection, optional): Default: a new one from ``host``/``port``/``user``/``password``.
        stores (Mapping, optional): ``{store name: DataJoint 0.14 store spec}`` for its external columns.
        host, port, user, password: the server, when no connection is given.
    """

    def __init__(self, schema: str, *, connection: ReadOnlyConnection | None = None,
                 stores: Mapping[str, Mapping[str, Any]] | None = None, host: str = "127.0.0.1", port: int = 3306,
                 user: str = "root", password: str = "") -> None:
        self.schema = schema
        self.connection = connection or ReadOnlyConnection(host=host, port=port, user=user, password=password)
        self.stores = {name: LegacyStore(name, spec) for name, spec in (stores or {}).items()}
        self._columns: dict[str, list[Column]] = {}
        found = self.connection.query("SELECT schema_name FROM information_schema.schemata WHERE schema_name = %s",
                                      (schema,))
        if not found:
            raise ValueError(f"no schema {schema!r} on the server {self.connection.host}:{self.connection.port}")

    # ---------------------------------------------------------------------------------------------- tables

    def tables(self) -> list[str]:
        """The names of the schema's tables, hidden ones (``~log``, ``~external_*``) included, sorted."""
        rows = self.connection.query("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                                     (self.schema,))
        return sorted(str(row[0]) for row in rows)

    def table_name(self, table: str) -> str:
        """The table name of ``table``, a table name or a class name (``TrainedModel.ModelStorage`` for a part)."""
        names = set(self.tables())
        if table in names:
            return table
        master, _, part = table.partition(".")
        for tier in _TIERS:
            name = tier + table_name_of(master) + (f"__{table_name_of(part)}" if part else "")
            if name in names:
                return name
        raise KeyError(f"schema {self.schema!r} has no table {table!r}")

    def columns(self, table: str) -> list[Column]:
        """The columns of ``table`` in their order."""
        name = self.table_name(table)
        if name not in self._columns:
            rows = self.connection.query(
                "SELECT column_name, column_type, column_comment, column_key FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position", (self.schema, name))
            self._columns[name] = [Column(str(n), str(t), str(c or ""), k == "PRI") for n, t, c, k in rows]
        return self._columns[name]

    def primary_key(self, table: str) -> list[str]:
        """The primary-key column names of ``table``."""
        return [column.name for column in self.columns(table) if column.in_key]

    # ---------------------------------------------------------------------------------------------- rows

    def _select(self, table: str, restriction: Mapping[str, Any] | None, names: list[str]) -> str:
        known = {column.name for column in self.columns(table)}
        unknown = sorted(set(restriction or {}) - known)
        if unknown:
            raise KeyError(f"table {table!r} has no columns {unknown}")
        where = " AND ".join(f"`{name}` = %s" for name in (restriction or {}))
        order = ", ".join(f"`{name}`" for name in self.primary_key(table))
        return (f"SELECT {', '.join(f'`{n}`' for n in names)} FROM `{self.schema}`.`{self.table_name(table)}`"
                + (f" WHERE {where}" if where else "") + (f" ORDER BY {order}" if order else ""))

    def fetch_raw(self, table: str, restriction: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The rows of ``table`` (restricted by a dict of column values) as stored, undecoded."""
        names = [column.name for column in self.columns(table)]
        rows = self.connection.query(self._select(table, restriction, names), tuple((restriction or {}).values()))
        return [dict(zip(names, row, strict=True)) for row in rows]

    def count(self, table: str, restriction: Mapping[str, Any] | None = None) -> int:
        """How many rows of ``table`` match ``restriction``."""
        return len(self.fetch_raw(table, restriction)) if restriction else int(self.connection.query(
            f"SELECT count(*) FROM `{self.schema}`.`{self.table_name(table)}`")[0][0])

    def keys(self, table: str, restriction: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The primary keys of the rows of ``table`` matching ``restriction``."""
        key = self.primary_key(table)
        rows = self.connection.query(self._select(table, restriction, key), tuple((restriction or {}).values()))
        return [dict(zip(key, row, strict=True)) for row in rows]

    def decode_row(self, table: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        """A row of :meth:`fetch_raw` with every value decoded as DataJoint 0.14 fetches it.

        Blobs become Python/numpy objects, ``attach``/``attach@store`` an :class:`Attachment`, ``blob@store``
        the decoded object, ``uuid`` a :class:`uuid.UUID`.

        Raises:
            LegacyDecodeError: a value cannot be decoded; the message names the table, the key and the column.
        """
        decoded = {}
        for column in self.columns(table):
            value = raw.get(column.name)
            try:
                decoded[column.name] = self._decode(column, value)
            except LegacyDecodeError as error:
                key = {name: raw.get(name) for name in self.primary_key(table)}
                raise LegacyDecodeError(f"{self.schema}.{self.table_name(table)} row {key}, column "
                                        f"{column.name!r}: {error}") from error
        return decoded

    def fetch(self, table: str, restriction: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The rows of ``table`` matching ``restriction``, decoded (:meth:`decode_row`)."""
        return [self.decode_row(table, raw) for raw in self.fetch_raw(table, restriction)]

    def fetch1(self, table: str, restriction: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The one row of ``table`` matching ``restriction``, decoded."""
        rows = self.fetch_raw(table, restriction)
        if len(rows) != 1:
            raise ValueError(f"{self.schema}.{self.table_name(table)} & {dict(restriction or {})} has {len(rows)} "
                             "rows, not one")
        return self.decode_row(table, rows[0])

    def iter_rows(self, table: str) -> Iterator[tuple[dict[str, Any], dict[str, Any] | LegacyDecodeError]]:
        """``(key, decoded row or the LegacyDecodeError)`` for every row of ``table``."""
        key_names = self.primary_key(table)
        for raw in self.fetch_raw(table):
            key = {name: raw[name] for name in key_names}
            try:
                yield key, self.decode_row(table, raw)
            except LegacyDecodeError as error:
                yield key, error

    # ---------------------------------------------------------------------------------------------- values

    def _decode(self, column: Column, value: Any) -> Any:
        if value is None:
            return None
        kind = column.dj_type.split("@", 1)[0]
        if column.store is not None and kind in ("attach", "blob"):
            return self._external(column, bytes(value))
        if column.dj_type == "attach":
            name, _, data = bytes(value).partition(b"\0")
            return Attachment(name.decode(), data)
        if column.dj_type == "uuid":
            return uuid.UUID(bytes=bytes(value))
        if column.dj_type in _NATIVE_BLOBS:
            return decode_blob(value)
        return value

    def _external(self, column: Column, hash_: bytes) -> Any:
        store = self.stores.get(str(column.store))
        if store is None:
            raise LegacyDecodeError(f"no spec for store {column.store!r}: pass stores={{{column.store!r}: ...}}")
        rows = self.connection.query(f"SELECT attachment_name, filepath, size FROM `{self.schema}`."
                                     f"`~external_{column.store}` WHERE hash = %s", (hash_,))
        if not rows:
            raise LegacyDecodeError(f"hash {uuid.UUID(bytes=hash_)} is not in ~external_{column.store}")
        attachment_name, filepath, size = rows[0]
        path = object_path(self.schema, store.spec, hash_, attachment_name, filepath)
        data = store.read(path)
        if size is not None and len(data) != int(size):
            raise LegacyDecodeError(f"external object {path!r} has {len(data)} bytes, ~external_{column.store} "
                                    f"says {size}")
        if column.dj_type.startswith("attach"):
            return Attachment(str(attachment_name), data)
        return decode_blob(data)

    def close(self) -> None:
        """Close the connection and the stores' clients."""
        for store in self.stores.values():
            store.close()
        self.connection.close()

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class LegacyFabrik(LegacySchema):
    """An nnfabrik schema on DataJoint 0.14, read in place: its trained models and ``load_model``.

    Args:
        schema (str): the fabrik schema (holding Fabrikant, Seed, Dataset, Model, Trainer and the trained models).
        trained_model_table (str, optional): class name of the trained-model table. Default: ``"TrainedModel"``.
        **kwargs: as :class:`LegacySchema` (``stores``, ``connection`` or ``host``/``port``/``user``/``password``).
    """

    def __init__(self, schema: str, *, trained_model_table: str = "TrainedModel", **kwargs: Any) -> None:
        super().__init__(schema, **kwargs)
        self.trained_model_table = trained_model_table

    def trained_models(self, restriction: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The keys of the trained models (restricted by a dict of key values)."""
        return self.keys(self.trained_model_table, restriction)

    def fn_config(self, role: str, key: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """``(fn, config)`` of the ``role`` (``"model"``, ``"dataset"``, ``"trainer"``) of ``key``."""
        table = role.capitalize()
        restriction = {name: key[name] for name in self.primary_key(table)}
        row = self.fetch1(table, restriction)
        return str(row[f"{role}_fn"]), native_scalars(row[f"{role}_config"])

    def state_dict(self, key: Mapping[str, Any], trusted: bool = False) -> dict[str, Any] | None:
        """The stored state dict of one trained model (``torch.load`` of its ``model_state`` attachment), or None.

        Args:
            trusted (bool, optional): allow arbitrary pickled objects (code execution if the file is not yours).
                Default: False (tensors and containers only, as ``torch.load``'s default).
        """
        import torch

        table = f"{self.trained_model_table}.ModelStorage"
        restriction = {name: key[name] for name in self.primary_key(self.trained_model_table)}
        rows = self.fetch(table, restriction)
        if not rows:
            return None
        attachment = rows[0]["model_state"]
        data = attachment.data if isinstance(attachment, Attachment) else attachment
        return torch.load(io.BytesIO(data), weights_only=not trusted, map_location="cpu")

    def get_full_config(self, key: Mapping[str, Any], include_state_dict: bool = True,
                        include_trainer: bool = True) -> dict[str, Any]:
        """nnfabrik's ``get_full_config``: fn and config of model, dataset (and trainer), and the state dict."""
        full: dict[str, Any] = {}
        for role in ("model", "dataset") + (("trainer",) if include_trainer else ()):
            full[f"{role}_fn"], full[f"{role}_config"] = self.fn_config(role, key)
        if include_state_dict:
            state = self.state_dict(key)
            if state is not None:
                full["state_dict"] = state
        return full

    def load_model(self, key: Mapping[str, Any] | None = None, include_dataloader: bool = True,
                   include_trainer: bool = False, include_state_dict: bool = True, seed: int | None = None) -> Any:
        """Build one trained model as nnfabrik's ``TrainedModel().load_model`` does on DataJoint 0.14.

        Args:
            key (dict, optional): selects one trained model. Default: the table must hold exactly one.
            include_dataloader (bool, optional): also return the dataloaders. Default: True.
            include_trainer (bool, optional): also return the trainer function. Default: False.
            include_state_dict (bool, optional): load the trained weights. Default: True.
            seed (int, optional): Default: the trained model's seed.

        Returns:
            ``(dataloaders, model)``, or ``model`` when ``include_dataloader`` is False (the dataloaders are
            still built, as nnfabrik does without a data-info table); the trainer is appended when
            ``include_trainer``.
        """
        keys = self.trained_models(key)
        if len(keys) != 1:
            raise ValueError(f"{self.trained_model_table} & {dict(key or {})} selects {len(keys)} trained models, "
                             "not one")
        one = keys[0]
        if seed is None:
            seed = int(self.fetch1("Seed", {"seed": one["seed"]})["seed"])
        full = self.get_full_config(one, include_state_dict=include_state_dict, include_trainer=include_trainer)
        dataloaders = get_data(full["dataset_fn"], full["dataset_config"], seed=seed)
        model = get_model(full["model_fn"], full["model_config"], dataloaders, seed=seed,
                          state_dict=full.get("state_dict"))
        trainer = [get_trainer(full["trainer_fn"], full["trainer_config"])] if include_trainer else []
        parts = ([dataloaders] if include_dataloader else []) + [model] + trainer
        return tuple(parts) if len(parts) > 1 else model
