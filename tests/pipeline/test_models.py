"""Trained models rebuild without dataloaders; the shared, frozen model cache changes no MEI."""

from __future__ import annotations

import pytest
import torch

from mei.main import MEIMethod, MEISeed, clear_model_cache, model_cache
from mei.methods import gradient_ascent

from . import lab as lab_module
from .lab_tables import LAB, METHOD_CONFIG, declare_lab, fill_upstream


@pytest.fixture
def lab(pipeline):
    lab = declare_lab(pipeline.schema("lab"))
    fill_upstream(lab)
    lab.Objective().populate()
    return lab


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_load_model_without_dataloaders_matches_training(lab):
    key = lab.TrainedModel.keys(order_by="model_hash")[0]
    dataloaders, with_data = lab.TrainedModel().load_model(key)
    without_data = lab.TrainedModel().load_model(key, include_dataloader=False)
    assert (lab.TrainedModel.DataInfo & key).fetch1("data_info") == {
        "s1": {"input_shape": [1, 1, 5, 5], "n_outputs": 3, "neuron_ids": [100, 101, 102]}}
    fn, config = (lab.Model & key).fn_config
    retrained = lab_module.model_fn(dataloaders, seed=7, **config)
    lab_module.trainer_fn(retrained, dataloaders, seed=7, epochs=1)
    images = next(iter(dataloaders["train"]["s1"]))[0]
    with torch.no_grad():
        assert torch.equal(with_data(images), retrained(images))
        assert torch.equal(without_data(images), retrained(images))
    assert fn == f"{LAB}.model_fn"


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_ensemble_refuses_keys_spanning_datasets(lab):
    lab.Dataset().add_entry(f"{LAB}.dataset_fn", {"n_images": 4}, "tester")
    with pytest.raises(ValueError, match="exactly one entry, it selects 2"):
        lab.TrainedEnsembleModel().create_ensemble({}, comment="two datasets")
    assert len(lab.TrainedEnsembleModel()) == 1
    again = lab.TrainedEnsembleModel().create_ensemble(lab.TrainedEnsembleModel.fetch1("KEY"))
    assert again == lab.TrainedEnsembleModel.fetch1("KEY") and len(lab.TrainedEnsembleModel.Member()) == 2


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_shared_cached_model_gives_the_meis_of_fresh_loads(lab):
    method = MEIMethod().add_method("mei.methods.gradient_ascent", METHOD_CONFIG)
    MEISeed().insert1({"mei_seed": 42})
    clear_model_cache()
    hits, misses = model_cache.hits, model_cache.misses
    assert lab.MEI().populate()["success_count"] == 3
    assert (model_cache.misses - misses, model_cache.hits - hits) == (1, 2)
    (cached,) = model_cache._models.values()
    assert not cached.training and not any(p.requires_grad for p in cached.parameters())
    ensemble_key = lab.TrainedEnsembleModel.fetch1("KEY")
    for key in lab.MEI.keys():
        fresh = lab.TrainedEnsembleModel().load_model(ensemble_key, include_dataloader=False)
        objective = lab.Objective().get_objective(fresh, key)
        mei, score, _ = gradient_ascent(None, objective, {**METHOD_CONFIG, "shape": [1, 1, 5, 5]}, 42)
        assert torch.equal(mei, lab.MEI().fetch_mei(key))
        assert score == (lab.MEI & key).fetch1("score")
    assert key["method_hash"] == method["method_hash"]


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_a_method_that_changes_its_config_changes_nothing_else(lab):
    method = MEIMethod().add_method(f"{LAB}.vandal_method", METHOD_CONFIG)
    MEISeed().insert1({"mei_seed": 3})
    assert lab.MEI().populate()["success_count"] == 3
    assert list(lab.MEI().to_arrays("steps")) == [12, 12, 12]  # each key ran the stored config
    assert set(lab.MEI().to_arrays("config_hash")) == {method["method_hash"]}
    assert (MEIMethod & method).fetch1("method_config") == METHOD_CONFIG
