"""A lab populates variational and diverse pixel MEIs through the package's tables, on every backend."""

from __future__ import annotations

import math

import pytest
import torch

from mei.engine.resolve import ConfigError
from mei.main import MEIMethod, MEISeed
from tests.pipeline.lab_tables import declare_lab, fill_upstream

VARIATIONAL = {"iter_n": 6, "n_samples_per_batch": 4, "train_norm": 1.0, "optimizer": "sgd",
               "optimizer_params": {"lr": {"schedule": "linear", "start": 0.5, "end": 0.1}}}
DIVERSE = {"iter_n": 6, "n_samples": 3, "diverse": True, "norm": 1.0, "jitter": 1}


def test_meitorch_methods_populate_through_the_tables(pipeline):
    lab = declare_lab(pipeline.schema("lab"))
    fill_upstream(lab, n_models=1)
    lab.Objective().populate()
    variational = MEIMethod().add_method("mei.meitorch.methods.variational_mei", VARIATIONAL)
    diverse = MEIMethod().add_method("mei.meitorch.methods.pixel_mei", DIVERSE)
    with pytest.raises(ConfigError, match="blur"):
        MEIMethod().add_method("mei.meitorch.methods.pixel_mei", {"blur": "median"})
    assert len(MEIMethod()) == 2  # the bad config got no row
    MEISeed().insert1({"mei_seed": 7})
    result = lab.MEI().populate()
    assert result["success_count"] == 6 and not result["error_list"]

    ensemble = lab.TrainedEnsembleModel().load_model(lab.TrainedEnsembleModel.fetch1("KEY"), include_dataloader=False)
    for key in (lab.MEI & variational).keys():
        mean, output = lab.MEI().fetch_mei(key), lab.MEI().fetch_output(key)
        assert mean.shape == (1, 1, 5, 5) and output["stddev"].shape == (1, 1, 5, 5)
        assert (output["stddev"] > 0).all() and len(output["losses"]["objective"]) == 6
        objective = lab.Objective().get_objective(ensemble, key)
        with torch.no_grad():
            assert math.isclose((lab.MEI & key).fetch1("score"), float(objective(mean.float()).mean()),
                                rel_tol=1e-5, abs_tol=1e-6)
    for key in (lab.MEI & diverse).keys():
        images = lab.MEI().fetch_mei(key)
        assert images.shape == (3, 1, 5, 5)
        assert torch.allclose(images.flatten(1).norm(dim=1), torch.ones(3), atol=1e-5)
        assert len(lab.MEI().fetch_output(key)["losses"]["diversity"]) == 6
