"""Importing a DataJoint 0.14 nnfabrik schema into DataJoint 2 tables: hashes kept, idempotent, resumable after
SIGKILL, undecodable rows skipped whole; MEIs of imported models equal MEIs of the models loaded in place."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import uuid
import warnings
from pathlib import Path

import datajoint as dj
import pytest
import torch

from mei import fabrik, main
from mei.methods import gradient_ascent
from mei.modules import ConstrainedOutputModel, EnsembleModel
from mei.pipeline import database as db
from mei.pipeline.legacy_bridge import LegacyFabrik
from mei.pipeline.legacy_bridge.guard import legacy_markers
from mei.pipeline.legacy_bridge.importer import import_fabrik, trained_model_table_in
from mei.pipeline.model_cache import freeze_model
from tests.legacy.conftest import root_connection
from tests.pipeline.lab_tables import METHOD_CONFIG

pytestmark = pytest.mark.slow  # DataJoint 0.14 in its own environment, MariaDB, an S3 server, a subprocess

ROOT = Path(__file__).resolve().parents[2]
TABLES = {"Fabrikant": 1, "Seed": 2, "Dataset": 1, "Model": 2, "Trainer": 1, "TrainedModel": 3}


def open_target(request: dict) -> tuple:
    """The DataJoint 2 side: the package's fabrik tables and a TrainedModel table in fresh MariaDB schemas."""
    instance = db.instance("mysql", host=request["host"], port=request["port"], store_location=request["store"],
                           safemode=False)
    fabrik.activate(request["fabrik2"], connection=instance.connection)
    trained = trained_model_table_in(dj.Schema(request["lab"], connection=instance.connection))
    return instance, trained


@pytest.fixture
def target(legacy_lab, tmp_path):
    label = uuid.uuid4().hex[:10]
    request = {"host": legacy_lab.host, "port": legacy_lab.port, "store": str(tmp_path / "store"),
               "fabrik2": f"meitest_{label}_fabrik2", "lab": f"meitest_{label}_lab2", "mei2": f"meitest_{label}_mei2",
               "legacy": legacy_lab.fabrik, "stores": legacy_lab.stores}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        instance, trained = open_target(request)
    yield request, instance, trained
    instance.connection.close()
    connection = root_connection(legacy_lab.host, legacy_lab.port)
    with connection.cursor() as cursor:
        for name in ("lab", "mei2", "fabrik2"):
            cursor.execute(f"DROP DATABASE IF EXISTS `{request[name]}`")
    connection.close()


def _weights_bytes(legacy_lab) -> int:
    rows = legacy_lab.reference[f"{legacy_lab.fabrik}.__trained_model__model_storage"]
    return sum(len(row["model_state"]["data"]) for row in rows)


def test_import_keeps_hashes_loads_the_same_models_and_is_idempotent(legacy_lab, target, allow_tests_modules):
    _, _, trained = target
    with legacy_lab.bridge() as legacy:
        summary = import_fabrik(legacy, trained, progress=False)
        assert summary.copied == TABLES and summary.skipped == []
        assert summary.present == dict.fromkeys(TABLES, 0)
        assert summary.bytes_copied == _weights_bytes(legacy_lab) > 0
        assert "TrainedModel: 3 copied, 0 already there" in summary.text()
        assert sorted(fabrik.Model().fetch("model_hash")) == sorted(r["model_hash"] for r in legacy.fetch("Model"))
        assert sorted(sorted(k.items()) for k in trained().keys()) == sorted(
            sorted(k.items()) for k in legacy.trained_models())
        for key in legacy.trained_models():
            imported = trained().load_model(key, include_dataloader=False)
            dataloaders, in_place = legacy.load_model(key)
            images = next(iter(dataloaders["train"]["s1"]))[0]
            assert all(torch.equal(a, b) for a, b in zip(imported.state_dict().values(),
                                                         in_place.state_dict().values(), strict=True))
            assert torch.equal(imported(images), in_place(images))
        assert (fabrik.Dataset & legacy.keys("Dataset")[0]).fetch1("dataset_comment") == "Müller's café recordings"
        assert sorted(fabrik.Model().fetch("model_comment")) == ["readout ×0.5 🧠", "readout ×1.0 🧠"]  # utf8mb4
        again = import_fabrik(legacy, trained, progress=False)
    assert again.copied == dict.fromkeys(TABLES, 0) and again.present == TABLES and again.bytes_copied == 0
    assert len(trained()) == 3 and len(trained.ModelStorage()) == 3
    query = lambda sql, args: trained.connection.query(sql, args=args).fetchall()  # noqa: E731
    assert legacy_markers(query, trained.database) == []  # DataJoint 2 schemas of the package are not refused
    assert legacy_markers(query, fabrik.schema.database) == []
    assert legacy_lab.before == legacy_lab.snapshot()


def test_import_survives_sigkill_and_resumes(legacy_lab, target, allow_tests_modules, tmp_path):
    request, _, trained = target
    path = tmp_path / "request.json"
    path.write_text(json.dumps({**request, "pause": 60}))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-m", "tests.legacy.import_child", str(path)], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, env=env, cwd=str(ROOT))
    try:
        lines = []
        for line in child.stdout:
            lines.append(line.strip())
            if line.strip() == "copied TrainedModel":
                break
        child.send_signal(signal.SIGKILL)  # mid-import: one trained model written, two to go
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert lines.count("copied TrainedModel") == 1 and child.returncode == -signal.SIGKILL
    assert len(trained()) == 1 and len(trained.ModelStorage()) == 1  # whole rows only
    with legacy_lab.bridge() as legacy:
        resumed = import_fabrik(legacy, trained, progress=False)
    assert resumed.copied["TrainedModel"] == 2 and resumed.present["TrainedModel"] == 1
    assert resumed.present["Model"] == 2 and resumed.skipped == []
    assert len(trained()) == 3 and len(trained.ModelStorage()) == 3
    assert legacy_lab.before == legacy_lab.snapshot()


def test_an_undecodable_row_is_reported_by_key_and_skipped_whole(legacy_lab, target, allow_tests_modules):
    _, _, trained = target
    stores = {"files": legacy_lab.stores["files"]}  # the weights' S3 store left out: their values cannot be read
    with LegacyFabrik(legacy_lab.fabrik, host=legacy_lab.host, port=legacy_lab.port, stores=stores) as legacy:
        summary = import_fabrik(legacy, trained, progress=False)
        keys = legacy.trained_models()
    assert summary.copied["TrainedModel"] == 0 and summary.copied["Model"] == 2
    assert [(table, key) for table, key, _ in summary.skipped] == [("TrainedModel", key) for key in keys]
    assert all("no spec for store 'minio'" in reason for _, _, reason in summary.skipped)
    assert len(trained()) == 0 and len(trained.ModelStorage()) == 0  # never half-written
    assert f"TrainedModel {keys[0]}" in summary.text()


def test_meis_of_imported_models_equal_meis_of_models_loaded_in_place(legacy_lab, target, allow_tests_modules):
    request, instance, trained = target
    with legacy_lab.bridge() as legacy:
        import_fabrik(legacy, trained, progress=False)
        key = legacy.trained_models()[0]
        in_place = legacy.load_model(key, include_dataloader=False)
    imported = trained().load_model(key, include_dataloader=False)
    config = {**METHOD_CONFIG, "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": 8}}}
    config.pop("objectives")
    runs = [gradient_ascent(None, ConstrainedOutputModel(model.eval(), 1), {**config, "shape": [1, 1, 5, 5]}, 7)
            for model in (in_place, imported)]
    assert torch.equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]
    assert not torch.equal(runs[0][0], torch.zeros_like(runs[0][0]))

    # the lab's DataJoint 2 MEI pipeline on the imported models, up to MEI().populate()
    main.activate(request["mei2"], connection=instance.connection)
    schema = dj.Schema(request["lab"], connection=instance.connection)

    @schema
    class TrainedEnsembleModel(main.TrainedEnsembleModelTemplate):
        dataset_table = fabrik.Dataset
        trained_model_table = trained

    @schema
    class Objective(main.PopulationObjectiveTemplate):
        dataset_table = fabrik.Dataset
        trained_model_table = trained

    mei_table = schema(type("MEI", (main.MEITemplate,), {"trained_model_table": TrainedEnsembleModel,
                                                         "objective_table": Objective}), context=locals())
    TrainedEnsembleModel().create_ensemble(key)
    Objective().populate()
    main.MEIMethod().add_method("mei.methods.gradient_ascent", METHOD_CONFIG)
    main.MEISeed().insert1({"mei_seed": 7}, skip_duplicates=True)
    assert len(Objective()) == 3 and len(TrainedEnsembleModel()) == 1
    mei_table().populate(reserve_jobs=False)
    assert len(mei_table()) == 3  # one MEI per neuron of the imported dataset
    ensemble = freeze_model(EnsembleModel(in_place))  # the model loaded in place, as the MEI table freezes its own
    for mei_key in mei_table().keys():
        objective = mei_table().get_objective(ensemble, mei_key)
        mei, score, _ = gradient_ascent(None, objective, {**METHOD_CONFIG, "shape": [1, 1, 5, 5]}, 7)
        stored = mei_table().fetch_mei(mei_key)
        assert torch.equal(stored, mei), mei_key
        assert (mei_table() & mei_key).fetch1("score") == pytest.approx(score, rel=1e-6)
    assert legacy_lab.before == legacy_lab.snapshot()


def test_mei_legacy_import_command(legacy_lab, tmp_path):
    from tests import servers

    stores = tmp_path / "stores.json"
    stores.write_text(json.dumps(legacy_lab.stores))
    target = f"meitest_{uuid.uuid4().hex[:10]}_cli"
    env = {**os.environ, **servers.server("mysql").dj_env(), "MEI_DATABASE": "server",
           "MEI_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "mei.cli", "legacy", "import", legacy_lab.fabrik, "--to", target,
               "--host", legacy_lab.host, "--port", str(legacy_lab.port), "--stores", str(stores),
               "--allow", "tests", "--no-progress", "--meis", legacy_lab.mei]
    try:
        first = subprocess.run(command, capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
        assert first.returncode == 0, first.stderr[-2000:]
        assert "TrainedModel: 3 copied, 0 already there" in first.stdout
        meis = legacy_lab.reference[f"{legacy_lab.mei}.__m_e_i"]
        stored = _weights_bytes(legacy_lab) + sum(len(r["mei"]["data"]) + len(r["output"]["data"]) for r in meis)
        assert f"stored objects copied: {stored} bytes" in first.stdout
        assert "skipped: 0 rows" in first.stdout and "MEI: 2 copied, 0 already there" in first.stdout
        into_legacy = [*command[:7], legacy_lab.fabrik, *command[8:]]  # --to the legacy schema itself: refused
        refused = subprocess.run(into_legacy, capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
        assert refused.returncode == 2
        assert f"refusing to declare tables in schema '{legacy_lab.fabrik}'" in refused.stderr
    finally:
        connection = root_connection(legacy_lab.host, legacy_lab.port)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{target}`")
        connection.close()
    assert legacy_lab.before == legacy_lab.snapshot()


def test_sinzlab_meis_are_imported_beside_the_trained_models(legacy_lab, target, allow_tests_modules):
    from mei.pipeline.legacy_bridge import LegacySchema
    from mei.pipeline.legacy_bridge.meis import import_meis

    request, instance, trained = target
    with legacy_lab.bridge() as legacy:
        import_fabrik(legacy, trained, progress=False)
    main.activate(request["mei2"], connection=instance.connection)
    schema = dj.Schema(request["lab"], connection=instance.connection)
    with LegacySchema(legacy_lab.mei, host=legacy_lab.host, port=legacy_lab.port, stores=legacy_lab.stores) as meis:
        summary = import_meis(meis, schema, trained_model_table=trained, progress=False)
        legacy_rows = meis.fetch("MEI")
        again = import_meis(meis, schema, trained_model_table=trained, progress=False)
    assert summary.copied == {"MEIMethod": 1, "MEISeed": 1, "MEI": 2} and summary.skipped == []
    assert summary.bytes_copied == sum(len(r["mei"].data) + len(r["output"].data) for r in legacy_rows)
    assert again.copied == {"MEIMethod": 0, "MEISeed": 0, "MEI": 0} and again.present == summary.copied
    from mei.pipeline.legacy_bridge.meis import imported_mei_table_in

    with LegacySchema(legacy_lab.mei, host=legacy_lab.host, port=legacy_lab.port, stores=legacy_lab.stores) as meis:
        table = imported_mei_table_in(schema, meis, trained_model_table=trained)
    assert len(table()) == 2
    method = (main.MEIMethod & {"method_hash": legacy_rows[0]["method_hash"]}).fetch1()
    assert method["method_config"] == METHOD_CONFIG  # hash kept, config decoded into json
    for row in legacy_rows:
        key = {name: row[name] for name in table.primary_key}
        assert torch.equal(table().fetch_mei(key), torch.load(io.BytesIO(row["mei"].data)))
        assert table().fetch_output(key) == {"values": [0.1, 0.2 + (row["neuron_id"] - 100)]}
        assert (table & key).fetch1("score") == pytest.approx(row["score"])
    assert len(table().proj() * trained().proj("score")) == 2  # they join with the imported trained models
    assert legacy_lab.before == legacy_lab.snapshot()
