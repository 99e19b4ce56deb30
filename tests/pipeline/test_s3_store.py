"""The pipeline with its ``mei`` store on a real S3 server (moto's server mode), on every backend.

MEIs, method outputs and trained weights go to the bucket and come back equal; the objects are listed in the
bucket with boto3. Faults: the S3 server stopped in the middle of a populate (a clear error naming the store,
no row without its objects, a rerun after the restart makes every key) and wrong credentials (a clear error
when connecting or activating, nothing written to the database or the bucket).
"""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from mei import db, main
from mei._tables.common import from_bytes
from mei.main import MEIMethod, MEISeed

from .conftest import Backend, _make_instance
from .lab_tables import METHOD_CONFIG, declare_lab, fill_upstream

ROOT = Path(__file__).resolve().parents[2]


def _populate_lab(backend: Backend, seeds: tuple[int, ...] = (42,)) -> SimpleNamespace:
    """The README's flow up to the MEIs: package tables, lab tables, 2 trained models, 3 objectives, a method."""
    backend.activate_package()
    lab = declare_lab(backend.schema("lab"))
    fill_upstream(lab)
    lab.Objective().populate()
    MEIMethod().add_method("mei.methods.gradient_ascent", METHOD_CONFIG, comment="S3")
    MEISeed().insert([{"mei_seed": seed} for seed in seeds])
    return lab


def _stored_paths(table: Any, attribute: str) -> set[str]:
    """The store paths of ``attribute`` in every row of ``table`` (what DataJoint keeps in the database)."""
    return {str(row[attribute].path) for row in table.proj(attribute).to_dicts()}


def _objects(server: Any, spec: dict) -> dict[str, int]:
    """The bucket's objects under the store's location, keys relative to the location."""
    prefix = f"{spec['location']}/"
    return {key[len(prefix):]: size for key, size in server.objects(spec["bucket"], prefix).items()}


def _check_round_trips(lab: SimpleNamespace, server: Any, spec: dict, n_meis: int) -> None:
    """Every MEI, output and weight in the tables equals its object in the bucket; nothing else is there."""
    objects = _objects(server, spec)
    weights = _stored_paths(lab.TrainedModel.ModelStorage(), "model_state")
    meis, outputs = _stored_paths(lab.MEI(), "mei"), _stored_paths(lab.MEI(), "output")
    assert (len(weights), len(meis), len(outputs)) == (2, n_meis, n_meis)
    assert set(objects) == weights | meis | outputs, sorted(objects)  # every object a row points to, no other
    ensemble = lab.TrainedEnsembleModel().load_model(lab.TrainedEnsembleModel.fetch1("KEY"), include_dataloader=False)
    ensemble.eval()
    for key in lab.MEI.keys():
        row = (lab.MEI & key).fetch1()
        mei = lab.MEI().fetch_mei(key)
        raw = np.load(io.BytesIO(server.read(spec["bucket"], f"{spec['location']}/{row['mei'].path}")))
        assert mei.shape == (1, 1, 5, 5) and np.array_equal(mei.numpy(), raw)
        with torch.no_grad():  # the fetched MEI is the one the method scored
            evaluation = float(lab.Objective().get_objective(ensemble, key)(mei.float()))
        assert math.isclose(row["score"], evaluation, rel_tol=1e-5, abs_tol=1e-6)
        output = lab.MEI().fetch_output(key)
        raw_output = from_bytes(server.read(spec["bucket"], f"{spec['location']}/{row['output'].path}"))
        assert output["EvaluationObjective"]["times"] == [0, 4, 8]
        assert raw_output["EvaluationObjective"]["times"] == [0, 4, 8]
        for fetched, stored in zip(output["EvaluationObjective"]["values"], raw_output["EvaluationObjective"]["values"]):
            assert fetched == stored


def test_meis_outputs_and_weights_round_trip_through_s3(s3_backend, s3_server, allow_tests_modules):
    spec = s3_backend.store_spec
    lab = _populate_lab(s3_backend, seeds=(42, 43))
    result = lab.MEI().populate()
    assert result["success_count"] == 6 and not result["error_list"]
    assert len(lab.MEI()) == 6
    _check_round_trips(lab, s3_server, spec, n_meis=6)
    objects = _objects(s3_server, spec)
    assert len(objects) == 2 + 6 + 6 and all(size > 0 for size in objects.values())

    trained = lab.TrainedModel()
    for key in trained.keys():  # the weights in the bucket are what the trainer makes, exactly
        stored = from_bytes((lab.TrainedModel.ModelStorage & key).fetch1("model_state"))
        seed = (lab.Seed & key).fetch1("seed")
        dataloaders, model, trainer = trained.load_model(key, include_trainer=True, include_state_dict=False,
                                                         seed=seed)
        _, _, state = trainer(model=model, dataloaders=dataloaders, seed=seed, uid=key, cb=None)
        assert set(stored) == set(state) == {"readout.weight", "readout.bias"}
        for name in state:
            assert torch.equal(stored[name], state[name].cpu()), name
        loaded = trained.load_model(key, include_dataloader=False)  # load_model reads them from S3
        assert all(torch.equal(loaded.state_dict()[name], stored[name]) for name in stored)
    main.model_cache.clear()
    print(f"\n[{s3_backend.name}] S3 bucket {spec['bucket']}: 6 MEIs, 6 outputs, 2 weights round-tripped")
