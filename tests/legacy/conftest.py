"""A legacy lab made by DataJoint 0.14 itself on MariaDB, once per test session.

``legacy_lab``: an nnfabrik schema (nnfabrik's exact definitions, written by :mod:`tests.legacy.script_014`)
with trained models whose weights (trained by :func:`tests.pipeline.lab.trainer_fn`) sit in an S3 store
(moto), and a sinzlab/mei-style MEI schema with ``attach@`` MEIs in a file store and ``blob@`` arrays in the
S3 store. Also: what DataJoint 0.14 fetches from every table (``reference``) and a snapshot of the schemas and
stores (:func:`snapshot`) taken before any test touched them. Both schemas and the bucket are removed at the end.
DataJoint 0.14 comes from the cached environment of :mod:`tests.legacy.dj014` (a visible skip if it cannot
be made); MariaDB from :mod:`tests.servers` (a visible skip if it does not answer).
"""

from __future__ import annotations

import hashlib
import pickle
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mei.pipeline.values import make_hash
from tests import servers
from tests.legacy import dj014
from tests.pipeline import lab as lab_fns
from tests.pipeline.lab_tables import METHOD_CONFIG

LAB = "tests.pipeline.lab"
DATASET_CONFIG = {"n_images": np.int64(8), "size": 5, "n_neurons": 3}
MODEL_CONFIGS = [{"scale": 1.0}, {"scale": np.float64(0.5)}]
TRAINER_CONFIG = {"epochs": 2, "lr": 0.05}
TRAINED = [(0, 1), (0, 2), (1, 1)]  # (model index, seed)


@dataclass
class LegacyLab:
    """What the fixture made: schema names, server, stores, DataJoint 0.14's view and the first snapshot."""

    fabrik: str
    mei: str
    host: str
    port: int
    stores: dict[str, dict[str, Any]]
    work: Path
    s3: Any
    bucket: str
    reference: dict[str, list[dict[str, Any]]]
    before: dict[str, Any]
    version: str
    keys: list[dict[str, Any]] = field(default_factory=list)

    def snapshot(self) -> dict[str, Any]:
        return snapshot(self)

    def bridge(self, **kwargs: Any) -> Any:
        from mei.pipeline.legacy_bridge import LegacyFabrik

        return LegacyFabrik(self.fabrik, host=self.host, port=self.port, stores=self.stores, **kwargs)


def root_connection(host: str, port: int) -> Any:
    import pymysql

    return pymysql.connect(host=host, port=port, user="root", password="", charset="utf8mb4", autocommit=True)


def snapshot(lab: LegacyLab) -> dict[str, Any]:
    """Every table (its CREATE TABLE and every row, hidden tables included) and every stored object's hash."""
    result: dict[str, Any] = {}
    connection = root_connection(lab.host, lab.port)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name IN (%s, %s)",
                           (lab.fabrik, lab.mei))
            result["schemas"] = sorted(row[0] for row in cursor.fetchall())
            for schema in (lab.fabrik, lab.mei):
                cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                               "ORDER BY table_name", (schema,))
                for (table,) in cursor.fetchall():
                    cursor.execute(f"SHOW CREATE TABLE `{schema}`.`{table}`")
                    create = cursor.fetchone()[1]
                    cursor.execute(f"SELECT * FROM `{schema}`.`{table}`")
                    rows = sorted(repr(row) for row in cursor.fetchall())
                    result[f"{schema}.{table}"] = (create, rows)
    finally:
        connection.close()
    files = Path(lab.stores["files"]["location"])
    result["files"] = {str(p.relative_to(files)): hashlib.sha256(p.read_bytes()).hexdigest()
                       for p in sorted(files.rglob("*")) if p.is_file()}
    client = lab.s3.client()
    objects = client.list_objects_v2(Bucket=lab.bucket).get("Contents", [])
    result["s3"] = {obj["Key"]: hashlib.sha256(client.get_object(Bucket=lab.bucket, Key=obj["Key"])["Body"].read())
                    .hexdigest() for obj in objects}
    return result


def _rows(work: Path) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """The rows DataJoint 0.14 inserts; weights trained here, saved with torch.save as nnfabrik does."""
    uploads = work / "uploads"
    uploads.mkdir()
    dataset = {"dataset_fn": f"{LAB}.dataset_fn", "dataset_hash": make_hash(DATASET_CONFIG),
               "dataset_config": DATASET_CONFIG, "dataset_fabrikant": "mueller",
               "dataset_comment": "Müller's café recordings"}
    models = [{"model_fn": f"{LAB}.model_fn", "model_hash": make_hash(config), "model_config": config,
               "model_fabrikant": "mueller", "model_comment": f"readout ×{config['scale']} 🧠"}
              for config in MODEL_CONFIGS]
    trainer = {"trainer_fn": f"{LAB}.trainer_fn", "trainer_hash": make_hash(TRAINER_CONFIG),
               "trainer_config": TRAINER_CONFIG, "trainer_fabrikant": "mueller", "trainer_comment": "SGD"}
    trained, storage, keys = [], [], []
    for index, seed in TRAINED:
        model_row = models[index]
        key = {"model_fn": model_row["model_fn"], "model_hash": model_row["model_hash"],
               "dataset_fn": dataset["dataset_fn"], "dataset_hash": dataset["dataset_hash"],
               "trainer_fn": trainer["trainer_fn"], "trainer_hash": trainer["trainer_hash"], "seed": seed}
        loaders = lab_fns.dataset_fn(seed=seed, **{k: int(v) for k, v in DATASET_CONFIG.items()})
        model = lab_fns.model_fn(loaders, seed=seed, scale=float(MODEL_CONFIGS[index]["scale"]))
        score, output, state = lab_fns.trainer_fn(model, loaders, seed, **TRAINER_CONFIG)
        path = uploads / f"{make_hash(key)}.pth.tar"
        torch.save(state, path)
        trained.append({**key, "comment": "SGD.readout.Müller", "score": score,
                        "output": {"losses": np.array(output["losses"]), "residuals": np.zeros((40, 40))},
                        "fabrikant_name": "mueller"})  # big enough for DataJoint 0.14 to compress it
        storage.append({**key, "model_state": str(path)})
        keys.append(key)
    generator = torch.Generator().manual_seed(5)
    meis, arrays = [], []
    for neuron in range(2):
        mei_key = {**keys[0], "method_fn": "mei.methods.gradient_ascent", "method_hash": make_hash(METHOD_CONFIG),
                   "neuron_id": 100 + neuron, "mei_seed": 7}
        folder = uploads / f"mei{neuron}"
        folder.mkdir()
        mei = torch.randn(1, 1, 5, 5, generator=generator)
        torch.save(mei, folder / "mei.pth.tar")
        torch.save({"values": [0.1, 0.2 + neuron]}, folder / "output.pth.tar")
        meis.append({**mei_key, "mei": str(folder / "mei.pth.tar"), "score": 0.5 + neuron,
                     "output": str(folder / "output.pth.tar")})
        (folder / "notes.txt").write_text(f"neuron {neuron}: ✓")
        arrays.append({**mei_key, "mei_array": mei.numpy(), "notes": str(folder / "notes.txt"),
                       "run_id": uuid.UUID(int=neuron + 1)})
    rows = {
        "Fabrikant": [{"fabrikant_name": "mueller", "full_name": "Jörg Müller", "email": "jm@lab.example",
                       "affiliation": "Sinz Lab", "dj_username": "root"}],
        "Seed": [{"seed": 1}, {"seed": 2}],
        "Dataset": [dataset], "Model": models, "Trainer": [trainer],
        "TrainedModel": trained, "TrainedModel.ModelStorage": storage,
        "MEIMethod": [{"method_fn": "mei.methods.gradient_ascent", "method_hash": make_hash(METHOD_CONFIG),
                       "method_config": METHOD_CONFIG, "method_comment": "pixel MEIs"}],
        "MEISeed": [{"mei_seed": 7}],
        "MEISelector": [{"dataset_fn": dataset["dataset_fn"], "dataset_hash": dataset["dataset_hash"],
                         "neuron_id": 100 + i, "neuron_position": i, "session_id": "s1"} for i in range(3)],
        "MEI": meis, "MEIArray": arrays,
    }
    return rows, keys


@pytest.fixture(scope="session")
def dj014_python() -> tuple[Path, str]:
    """The python of the cached DataJoint 0.14 environment and its DataJoint version (a visible skip if none)."""
    python, info = dj014.python_014()
    if python is None:
        pytest.skip(info)
    return python, info


@pytest.fixture(scope="session")
def legacy_lab(dj014_python: tuple[Path, str], s3_server: Any) -> LegacyLab:
    """The legacy lab (module docstring); dropped at the end of the session."""
    host, port = servers.server("mysql").require()
    python, version = dj014_python
    work = Path(tempfile.mkdtemp(prefix="mei-legacy-tests-"))
    bucket = s3_server.new_bucket("legacy")
    stores = {"minio": s3_server.store(bucket, location="lab/legacy"),
              "files": {"protocol": "file", "location": str(work / "store")}}
    (work / "store").mkdir()
    label = uuid.uuid4().hex[:10]
    lab = LegacyLab(f"meitest_{label}_nnfabrik", f"meitest_{label}_sinzmei", host, port, stores, work, s3_server,
                    bucket, {}, {}, version)
    request = {"host": host, "port": port, "user": "root", "password": "", "stores": stores,
               "fabrik": lab.fabrik, "mei": lab.mei, "model_store": "minio", "mei_store": "files",
               "array_store": "minio"}
    try:
        rows, lab.keys = _rows(work)
        with open(work / "rows.pkl", "wb") as file:
            pickle.dump(rows, file)
        dj014.run_014(python, "create", {**request, "rows": str(work / "rows.pkl")}, work)
        dj014.run_014(python, "read", {**request, "schemas": [lab.fabrik, lab.mei],
                                       "output": str(work / "reference.pkl")}, work)
        with open(work / "reference.pkl", "rb") as file:
            lab.reference = pickle.load(file)
        lab.before = snapshot(lab)
        yield lab
    finally:
        connection = root_connection(host, port)
        try:
            with connection.cursor() as cursor:
                for schema in (lab.mei, lab.fabrik):
                    cursor.execute(f"DROP DATABASE IF EXISTS `{schema}`")
        finally:
            connection.close()
        s3_server.drop_bucket(bucket)
        shutil.rmtree(work, ignore_errors=True)
