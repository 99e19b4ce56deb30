"""The READMEs' usage flow, end to end, on every backend: tables, ensemble, objective, method, seeds, populate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mei.main import MEIMethod, MEISeed

from . import lab as lab_module
from .lab_tables import METHOD_CONFIG, declare_lab, fill_upstream


def _check_meis(lab, rows: int) -> None:
    ensemble = lab.TrainedEnsembleModel().load_model(lab.TrainedEnsembleModel.fetch1("KEY"), include_dataloader=False)
    ensemble.eval()
    keys = lab.MEI.keys()
    assert len(keys) == rows
    for key in keys:
        mei = lab.MEI().fetch_mei(key)
        assert mei.shape == (1, 1, 5, 5)
        assert torch.isfinite(mei).all()
        objective = lab.Objective().get_objective(ensemble, key)
        with torch.no_grad():
            evaluation = float(objective(mei.float()))
        row = (lab.MEI & key).fetch1()
        assert math.isclose(row["score"], evaluation, rel_tol=1e-5, abs_tol=1e-6)
        output = lab.MEI().fetch_output(key)
        assert output["EvaluationObjective"]["times"] == [0, 4, 8]
        assert len(output["EvaluationObjective"]["values"]) == 3
        assert row["steps"] == 12  # tanh < 1 never reaches the threshold 2.0: the step limit stops it
        assert row["device"] == "cpu"
        assert row["config_hash"] == key["method_hash"]
        assert set(row["versions"]) == {"mei", "torch", "datajoint", "python"}
        assert row["wall_time"] > 0


@pytest.mark.parametrize("naming", ["objective", "selector"])
def test_readme_flow(pipeline, naming):
    lab = declare_lab(pipeline.schema("lab"), naming)
    assert (lab.TrainedModel.dataset_table, lab.TrainedModel.user_table) == (lab.Dataset, lab.Fabrikant)  # nnfabrik=
    upstream = fill_upstream(lab)
    assert len(lab.TrainedModel()) == 2
    assert len(lab.TrainedEnsembleModel.Member() & upstream["ensemble"]) == 2

    loaded_datasets = lab_module.CALLS["dataset_fn"]
    lab.Objective().populate()
    assert sorted(lab.Objective().to_arrays("neuron_id")) == [100, 101, 102]

    method = MEIMethod().add_method("mei.methods.gradient_ascent", METHOD_CONFIG, comment="My MEI method")
    MEISeed().insert1({"mei_seed": 42})
    MEISeed().insert1({"mei_seed": 43})
    result = lab.MEI().populate(display_progress=True)
    assert result["success_count"] == 6 and not result["error_list"]
    _check_meis(lab, rows=6)
    assert lab_module.CALLS["dataset_fn"] == loaded_datasets  # objective and MEIs never loaded the dataset

    first = lab.MEI().fetch_mei({**method, "neuron_id": 100, "mei_seed": 42})
    other_seed = lab.MEI().fetch_mei({**method, "neuron_id": 100, "mei_seed": 43})
    assert not torch.equal(first, other_seed)
    stored = (MEIMethod & method).fetch1("method_config")
    assert stored == METHOD_CONFIG and "shape" not in stored  # the run's shape went into a copy


def test_reserve_jobs_populate(pipeline):
    lab = declare_lab(pipeline.schema("lab"))
    fill_upstream(lab, n_models=1)
    lab.Objective().populate(reserve_jobs=True)
    MEIMethod().add_method("mei.methods.gradient_ascent", METHOD_CONFIG)
    MEISeed().insert1({"mei_seed": 1})
    result = lab.MEI().populate(reserve_jobs=True, display_progress=True)
    assert result["success_count"] == 3
    assert len(lab.MEI()) == 3
    assert np.isfinite(lab.MEI().to_arrays("score")).all()
