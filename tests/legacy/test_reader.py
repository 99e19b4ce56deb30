"""Reading DataJoint 0.14 / nnfabrik schemas in place: equal to what DataJoint 0.14 fetches, and read-only."""

from __future__ import annotations

import io
import uuid

import numpy as np
import pymysql
import pytest
import torch

from mei.pipeline.legacy_bridge import Attachment, LegacySchema, LegacyWriteRefused
from mei.pipeline.legacy_bridge.external import object_path
from mei.pipeline.legacy_bridge.readonly import check_read_only
from tests.pipeline import lab as lab_fns

pytestmark = pytest.mark.slow  # DataJoint 0.14 in its own environment, MariaDB and an S3 server


def _same(ours, theirs) -> bool:
    """Values equal as DataJoint 0.14 gives them (attachments: same name and bytes; arrays: same dtype and values)."""
    if isinstance(ours, Attachment):
        return isinstance(theirs, dict) and (ours.name, ours.data) == (theirs["attachment"], theirs["data"])
    if isinstance(ours, np.ndarray) or isinstance(theirs, np.ndarray):
        return (type(ours) is type(theirs) and ours.dtype == theirs.dtype and ours.shape == theirs.shape
                and bool(np.all(ours == theirs)))
    if isinstance(ours, dict):
        return isinstance(theirs, dict) and ours.keys() == theirs.keys() and all(
            _same(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, (list, tuple)):
        return type(ours) is type(theirs) and len(ours) == len(theirs) and all(map(_same, ours, theirs))
    return type(ours) is type(theirs) and ours == theirs


def test_every_row_decodes_as_datajoint_014_fetches_it(legacy_lab):
    compared = 0
    for schema_name in (legacy_lab.fabrik, legacy_lab.mei):
        with LegacySchema(schema_name, host=legacy_lab.host, port=legacy_lab.port, stores=legacy_lab.stores) as schema:
            for table in schema.tables():
                if table.startswith("~"):
                    continue
                ours = schema.fetch(table)
                theirs = legacy_lab.reference[f"{schema_name}.{table}"]
                assert len(ours) == len(theirs) > 0, table
                for mine, reference in zip(ours, theirs, strict=True):
                    assert mine.keys() == reference.keys(), table
                    for name in mine:
                        assert _same(mine[name], reference[name]), (table, name, mine[name], reference[name])
                        compared += 1
    assert compared > 150
    with legacy_lab.bridge() as bridge:  # all three blob formats were decoded above
        raw = [bytes(row["output"][:6]) for row in bridge.fetch_raw("TrainedModel")]
        raw += [bytes(row["model_config"][:6]) for row in bridge.fetch_raw("Model")]
        assert {value[:4] for value in raw} >= {b"ZL12", b"dj0\0"}
    with LegacySchema(legacy_lab.mei, host=legacy_lab.host, port=legacy_lab.port, stores=legacy_lab.stores) as meis:
        hash_ = meis.fetch_raw("MEIArray")[0]["mei_array"]  # a blob@ object in S3: a numpy array, mYm format
        store = meis.stores["minio"]
        assert store.read(object_path(meis.schema, store.spec, hash_))[:4] == b"mYm\0"
    assert legacy_lab.before == legacy_lab.snapshot()


def test_load_model_equals_what_datajoint_014_loads(legacy_lab, allow_tests_modules):
    fabrik = legacy_lab.reference
    with legacy_lab.bridge() as bridge:
        keys = bridge.trained_models()
        assert sorted(sorted(k.items()) for k in keys) == sorted(sorted(k.items()) for k in legacy_lab.keys)
        for key in keys:
            dataloaders, model = bridge.load_model(key)
            # nnfabrik on DataJoint 0.14: config from its fetch, torch.load of the downloaded attachment, builders
            model_row = next(r for r in fabrik[f"{legacy_lab.fabrik}.model"] if r["model_hash"] == key["model_hash"])
            attachment = next(r for r in fabrik[f"{legacy_lab.fabrik}.__trained_model__model_storage"]
                              if r["model_hash"] == key["model_hash"] and r["seed"] == key["seed"])["model_state"]
            state = torch.load(io.BytesIO(attachment["data"]))
            loaders = lab_fns.dataset_fn(seed=key["seed"], n_images=8, size=5, n_neurons=3)
            reference = lab_fns.model_fn(loaders, seed=key["seed"], scale=float(model_row["model_config"]["scale"]))
            reference.load_state_dict(state)
            assert model.state_dict().keys() == state.keys()
            for name, value in model.state_dict().items():
                assert torch.equal(value, state[name]), name
            images = next(iter(dataloaders["train"]["s1"]))[0]
            assert torch.equal(model(images), reference(images))
            untrained = lab_fns.model_fn(loaders, seed=key["seed"], scale=float(model_row["model_config"]["scale"]))
            assert not torch.equal(untrained(images), model(images))  # the weights were loaded, not rebuilt
            alone = bridge.load_model(key, include_dataloader=False)
            assert torch.equal(alone(images), model(images))
        with pytest.raises(ValueError, match="selects 3 trained models, not one"):
            bridge.load_model()
    assert legacy_lab.before == legacy_lab.snapshot()


def test_configs_and_externals_decoded(legacy_lab):
    with legacy_lab.bridge() as bridge:
        fn, config = bridge.fn_config("dataset", legacy_lab.keys[0])
        assert fn == "tests.pipeline.lab.dataset_fn"
        assert config == {"n_images": 8, "size": 5, "n_neurons": 3} and type(config["n_images"]) is int
        row = bridge.fetch1("Dataset", {"dataset_hash": legacy_lab.keys[0]["dataset_hash"]})
        assert row["dataset_comment"] == "Müller's café recordings"
        assert bridge.fetch1("Fabrikant")["full_name"] == "Jörg Müller"
        assert sorted(row["model_comment"] for row in bridge.fetch("Model")) == ["readout ×0.5 🧠", "readout ×1.0 🧠"]
        assert bridge.table_name("TrainedModel.ModelStorage") == "__trained_model__model_storage"
    with LegacySchema(legacy_lab.mei, host=legacy_lab.host, port=legacy_lab.port, stores=legacy_lab.stores) as meis:
        rows = meis.fetch("MEI")
        arrays = meis.fetch("MEIArray")
        assert len(rows) == len(arrays) == 2
        for row, array in zip(rows, arrays, strict=True):
            tensor = torch.load(io.BytesIO(row["mei"].data))
            assert row["mei"].name == "mei.pth.tar" and tensor.shape == (1, 1, 5, 5)
            assert np.array_equal(array["mei_array"], tensor.numpy())  # blob@ in S3, attach@ in the file store
            assert array["notes"].name == "notes.txt" and array["notes"].data.decode().endswith(": ✓")  # attach
            assert array["run_id"] == uuid.UUID(int=array["neuron_id"] - 99)
        method = meis.fetch1("MEIMethod")
        assert method["method_config"]["optimizer"]["kwargs"]["lr"] == 0.5


def test_the_bridge_cannot_write(legacy_lab):
    with legacy_lab.bridge() as bridge:
        table = f"`{legacy_lab.fabrik}`.`seed`"
        for statement in (f"INSERT INTO {table} VALUES (99)", f"DELETE FROM {table}", f"DROP TABLE {table}",
                          f"CREATE TABLE `{legacy_lab.fabrik}`.`x` (a int)", f"UPDATE {table} SET seed = 3",
                          f"SELECT 1; DROP TABLE {table}", f"SELECT * FROM {table} INTO OUTFILE 'rows.csv'",
                          f"SELECT * FROM {table} FOR UPDATE", "SELECT 1 /* hidden */", "SET autocommit = 0"):
            with pytest.raises(LegacyWriteRefused, match="nothing was sent"):
                bridge.connection.query(statement)
        # the second lock: the session is read-only on the server itself
        with bridge.connection._connection.cursor() as cursor, pytest.raises(pymysql.err.MySQLError) as raised:
            cursor.execute(f"INSERT INTO {table} VALUES (99)")
        assert raised.value.args[0] == 1792  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
        assert bridge.connection.query(f"SELECT count(*) FROM {table}") == [(2,)]
    assert legacy_lab.before == legacy_lab.snapshot()


@pytest.mark.parametrize("statement", ["select 1", "  SELECT * FROM `a`.`#lookup` WHERE x = %s;", "SHOW TABLES"])
def test_reads_pass_the_check(statement):
    assert check_read_only(statement).strip().upper().startswith(("SELECT", "SHOW"))
