"""Every column type the pipeline stores comes back exactly, on every backend."""

from __future__ import annotations

import datetime

import datajoint as dj
import numpy as np
import torch

from mei.pipeline import database as db
from mei.pipeline.values import from_bytes, to_bytes

STORE = db.store_name()


def test_every_stored_type_round_trips(backend):
    schema = backend.schema("types")

    @schema
    class Everything(dj.Manual):
        definition = f"""
        name: varchar(64)
        digest: char(32)
        number: int64
        ---
        mei: <npy@{STORE}>
        mei64: <npy@{STORE}>
        output: <object@{STORE}>
        blob: <blob>
        config: json
        score: float64
        unit: int32
        steps=null: int64
        ts=CURRENT_TIMESTAMP: datetime
        """

    mei = torch.randn(1, 2, 3, 4).numpy()
    mei64 = np.linspace(-1e300, 1e300, 7)
    output = {"EvaluationObjective": {"times": [0, 5], "values": [0.25, torch.tensor([1.5, -2.0])]},
              "image": torch.arange(6.0).reshape(2, 3), "stddev": np.full((1, 2), 0.5), "best": np.float32(1.25)}
    blob = {"losses": [0.5, 0.25], "weights": np.eye(3, dtype=np.float32), "name": "sgd", "shape": (1, 5)}
    config = {"device": "cpu", "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": 3}},
              "objectives": [{"path": "a.B", "kwargs": {"x": 1.5, "flag": True, "none": None}}], "shape": [1, 2]}
    key = {"name": "row", "digest": "f" * 32, "number": 2**40}
    Everything.insert1({**key, "mei": mei, "mei64": mei64, "output": to_bytes(output), "blob": blob,
                        "config": config, "score": -1.0e-7, "unit": -5, "steps": None})
    Everything.insert1({"name": "second", "digest": "0" * 32, "number": -1, "mei": mei[:, :1], "mei64": mei64,
                        "output": b"raw", "blob": [1, 2], "config": [], "score": 0.0, "unit": 0, "steps": 12})

    row = (Everything & key).fetch1()
    assert {k: row[k] for k in key} == key
    loaded = np.asarray(row["mei"])
    assert loaded.dtype == np.float32 and np.array_equal(loaded, mei)
    assert np.array_equal(np.asarray(row["mei64"]), mei64)
    back = from_bytes(row["output"])
    assert back["EvaluationObjective"]["times"] == [0, 5]
    assert back["EvaluationObjective"]["values"][0] == 0.25
    assert torch.equal(back["EvaluationObjective"]["values"][1], torch.tensor([1.5, -2.0]))
    assert torch.equal(back["image"], output["image"])
    assert torch.equal(back["stddev"], torch.full((1, 2), 0.5, dtype=torch.float64))  # numpy comes back as torch
    assert back["best"] == 1.25 and isinstance(back["best"], float)
    assert row["blob"]["losses"] == [0.5, 0.25] and row["blob"]["name"] == "sgd"
    assert np.array_equal(row["blob"]["weights"], np.eye(3, dtype=np.float32))
    assert tuple(row["blob"]["shape"]) == (1, 5)
    assert row["config"] == config
    assert row["score"] == -1.0e-7 and row["unit"] == -5 and row["steps"] is None
    assert isinstance(row["ts"], datetime.datetime)
    second = (Everything & {"name": "second"}).fetch1()
    assert second["output"].read() == b"raw" and second["config"] == [] and second["steps"] == 12
    assert np.asarray(second["mei"]).shape == (1, 1, 3, 4)
