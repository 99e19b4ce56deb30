"""Copy a DataJoint 0.14 nnfabrik schema into the package's DataJoint 2 fabrik tables (``mei legacy import``).

Rows of ``Fabrikant``, ``Seed``, ``Dataset``, ``Model``, ``Trainer`` and the trained models (with their weights,
copied byte for byte from the legacy store into the package's store) are copied with their keys unchanged, so
every ``*_hash`` (nnfabrik's config hash) and every trained-model key carries over. The legacy schema is only
read (:class:`~mei.pipeline.legacy_bridge.reader.LegacyFabrik`).

* **Idempotent**: a row whose key is already in the target is left alone and counted as present.
* **Resumable**: each row (a trained model together with its weights) is written in one transaction; a crash
  or ``SIGKILL`` leaves whole rows only, and running the import again copies the rest.
* **Undecodable rows** are reported by key and skipped (as are rows whose parent was skipped, or whose value does
  not fit the target column); nothing of them is written.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from .. import database as db
from ..builders import get_data
from ..values import to_blob_value
from .copying import ImportSummary, RowCopier
from .external import Attachment
from .reader import LegacyFabrik, LegacySchema, native_scalars

__all__ = ["ImportSummary", "import_fabrik", "trained_model_table_in", "add_arguments", "run"]

_ROLES = ("dataset", "model", "trainer")


def _target_row(table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    if table == "Fabrikant":
        return {name: row[name] for name in ("fabrikant_name", "email", "affiliation", "dj_username")}
    if table == "Seed":
        return {"seed": row["seed"]}
    role = table.lower()
    return {f"{role}_fn": row[f"{role}_fn"], f"{role}_hash": row[f"{role}_hash"],
            f"{role}_config": native_scalars(row[f"{role}_config"]), f"{role}_fabrikant": row[f"{role}_fabrikant"],
            f"{role}_comment": row[f"{role}_comment"], f"{role}_ts": row[f"{role}_ts"]}


def _too_long(table: Any, row: Mapping[str, Any]) -> str | None:
    """Why ``row`` does not fit ``table``'s varchar columns, or None."""
    for name, attribute in table.heading.attributes.items():
        match = re.match(r"(?:var)?char\((\d+)\)", str(attribute.type))
        value = row.get(name)
        if match and isinstance(value, str) and len(value) > int(match.group(1)):
            return f"{name} has {len(value)} characters, the DataJoint 2 column holds {match.group(1)}"
    return None


def _write_plain(table: str) -> Callable[[Any, dict[str, Any], dict[str, Any]], int]:
    def write(target: Any, key: dict[str, Any], row: dict[str, Any]) -> int:
        values = _target_row(table, row)
        problem = _too_long(target, values)
        if problem:
            raise ValueError(problem)
        with target.connection.transaction:
            target.insert1(values)
        return 0

    return write


def _write_trained(legacy: LegacyFabrik, data_info: bool) -> Callable[[Any, dict[str, Any], dict[str, Any]], int]:
    infos: dict[tuple[Any, ...], Any] = {}

    def write(target: Any, key: dict[str, Any], row: dict[str, Any]) -> int:
        storage = legacy.fetch(f"{legacy.trained_model_table}.ModelStorage", key)
        attachment = storage[0]["model_state"] if storage else None
        data = attachment.data if isinstance(attachment, Attachment) else attachment
        values = {**key, "comment": row["comment"], "score": float(row["score"]),
                  "output": to_blob_value(row["output"]), "fabrikant_name": row.get("fabrikant_name"),
                  "trainedmodel_ts": row["trainedmodel_ts"]}
        info = None
        if data_info:
            dataset = (key["dataset_fn"], key["dataset_hash"], key["seed"])
            if dataset not in infos:
                fn, config = legacy.fn_config("dataset", key)
                infos[dataset] = target.get_data_info(get_data(fn, config, seed=key["seed"]), None)
            info = infos[dataset]
        with db.store_errors(db.config_of(target.connection)), target.connection.transaction:
            target.insert1(values, allow_direct_insert=True)
            if data is not None:
                target.ModelStorage().insert1({**key, "model_state": bytes(data)}, allow_direct_insert=True)
            if info is not None:
                target.DataInfo().insert1({**key, "data_info": info}, allow_direct_insert=True)
        return len(data) if data is not None else 0

    return write


def import_fabrik(legacy: LegacyFabrik, trained_model_table: Any, *, data_info: bool = True, progress: bool = True,
                  on_row: Callable[[str, dict[str, Any]], None] | None = None) -> ImportSummary:
    """Copy the nnfabrik tables of ``legacy`` into DataJoint 2 tables (module docstring).

    Args:
        legacy (LegacyFabrik): the legacy fabrik schema, read in place.
        trained_model_table: your DataJoint 2 trained-model table (a :class:`mei.fabrik.TrainedModelBase`
            subclass); the rows of Fabrikant, Seed, Dataset, Model and Trainer go to its ``user_table``,
            ``seed_table``, ``dataset_table``, ``model_table`` and ``trainer_table`` (by default the package's
            tables of :mod:`mei.fabrik`).
        data_info (bool, optional): also fill the trained models' ``DataInfo`` (input shape, neuron ids) from the
            dataloaders of their dataset, built once per dataset and seed, as ``TrainedModelBase.make`` does; the
            objective templates and ``load_model(include_dataloader=False)`` read it. It needs the lab's dataset
            functions (allow their module). Default: True.
        progress (bool, optional): show a progress bar (tqdm, on stderr). Default: True.
        on_row (callable, optional): called as ``on_row(table, key)`` after each row is written.

    Returns:
        ImportSummary: rows copied / already there per table, bytes of weights copied, rows skipped and why.
    """
    from tqdm.auto import tqdm

    trained = trained_model_table() if isinstance(trained_model_table, type) else trained_model_table
    targets = [("Fabrikant", trained.user_table), ("Seed", trained.seed_table), ("Dataset", trained.dataset_table),
               ("Model", trained.model_table), ("Trainer", trained.trainer_table)]
    total = sum(legacy.count(name) for name, _ in targets) + legacy.count(legacy.trained_model_table)
    summary = ImportSummary()
    with tqdm(total=total, desc=f"import {legacy.schema}", unit="row", disable=not progress) as bar:
        importer = RowCopier(legacy, summary, bar, on_row)
        for name, table in targets:
            importer.copy(name, table(), _write_plain(name))
        importer.copy("TrainedModel", trained, _write_trained(legacy, data_info))
    return summary


def trained_model_table_in(schema: Any, name: str = "TrainedModel") -> Any:
    """A trained-model table ``name`` (:class:`mei.fabrik.TrainedModelBase` over the package's fabrik tables)
    declared in ``schema`` (a bound ``dj.Schema``); the default target of ``mei legacy import``."""
    from ...fabrik import TrainedModelBase

    return schema(type(name, (TrainedModelBase,), {"__module__": __name__}))


# ---------------------------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``mei legacy import``."""
    parser.add_argument("schema", help="the legacy nnfabrik schema (DataJoint 0.14) to copy")
    parser.add_argument("--to", required=True, dest="target",
                        help="DataJoint 2 schema for the package's fabrik tables and the TrainedModel table")
    parser.add_argument("--host", default="127.0.0.1", help="legacy server host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3306, help="legacy server port (default 3306)")
    parser.add_argument("--user", default="root", help="legacy server user (SELECT is enough)")
    parser.add_argument("--password-env", default="MEI_LEGACY_PASSWORD",
                        help="environment variable holding the legacy password (default MEI_LEGACY_PASSWORD)")
    parser.add_argument("--stores", help="JSON file of the legacy stores, as DataJoint 0.14's dj.config['stores']")
    parser.add_argument("--trained-model-table", default="TrainedModel",
                        help="class name of the legacy trained-model table (default TrainedModel)")
    parser.add_argument("--meis", metavar="SCHEMA",
                        help="also copy the sinzlab/mei MEIMethod, MEISeed and MEI rows of this legacy schema")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """``mei legacy import``: copy, print the summary; exit code 1 if rows were skipped."""
    import datajoint as dj

    from ... import fabrik, main

    stores = json.loads(open(args.stores).read()) if args.stores else {}  # noqa: SIM115 - read at once
    connection = db.connect()
    fabrik.activate(args.target, connection=connection)
    trained = trained_model_table_in(dj.Schema(args.target, connection=connection))
    connect = {"host": args.host, "port": args.port, "user": args.user,
               "password": os.environ.get(args.password_env, ""), "stores": stores}
    with LegacyFabrik(args.schema, trained_model_table=args.trained_model_table, **connect) as legacy:
        summary = import_fabrik(legacy, trained, progress=not args.no_progress)
    if args.meis:
        from .meis import import_meis

        main.activate(args.target, connection=connection)
        with LegacySchema(args.meis, **connect) as legacy_meis:
            mei_summary = import_meis(legacy_meis, dj.Schema(args.target, connection=connection),
                                      trained_model_table=trained, progress=not args.no_progress)
        summary = summary.merged(mei_summary)
    print(summary.text())
    return 1 if summary.skipped else 0
