"""``MEI().populate(batch_size=K)`` writes the rows plain ``populate()`` writes, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

from mei.main import MEIMethod, MEISeed
from tests.pipeline.lab_tables import METHOD_CONFIG, declare_lab, fill_upstream

CONFIG = {**METHOD_CONFIG, "transform": {"path": "mei.transforms.Jitter", "kwargs": {"max_shift": 1}}}
COLUMNS = ("score", "steps", "device", "config_hash")


def lab_with_keys(pipeline, seeds=(42, 43)):
    lab = declare_lab(pipeline.schema("lab"))
    fill_upstream(lab, n_models=2)
    lab.Objective().populate()
    method = MEIMethod().add_method("mei.methods.gradient_ascent", CONFIG)
    MEISeed().insert([{"mei_seed": seed} for seed in seeds], skip_duplicates=True)
    return lab, method


def rows(table):
    return {tuple(sorted(key.items())): (table & key).fetch1() for key in table.keys()}


def test_batched_populate_writes_the_plain_rows(pipeline):
    lab, _ = lab_with_keys(pipeline)
    assert lab.MEI().populate()["success_count"] == 6
    plain = rows(lab.MEI())
    plain_outputs = {k: lab.MEI().fetch_output(dict(k)) for k in plain}
    (lab.MEI()).delete(prompt=False)

    result = lab.MEI().populate(batch_size=4)
    assert result == {"success_count": 6, "error_list": []}
    batched = rows(lab.MEI())
    assert batched.keys() == plain.keys()
    for key, row in batched.items():
        np.testing.assert_allclose(np.asarray(row["mei"]), np.asarray(plain[key]["mei"]), rtol=1e-5, atol=1e-6)
        assert row["score"] == pytest.approx(plain[key]["score"], rel=1e-5, abs=1e-6)
        assert [row[c] for c in COLUMNS[1:]] == [plain[key][c] for c in COLUMNS[1:]]
        assert row["versions"] == plain[key]["versions"] and row["wall_time"] > 0
        output = lab.MEI().fetch_output(dict(key))
        assert output["EvaluationObjective"]["times"] == plain_outputs[key]["EvaluationObjective"]["times"] == [0, 4, 8]
        np.testing.assert_allclose(output["EvaluationObjective"]["values"],
                                   plain_outputs[key]["EvaluationObjective"]["values"], rtol=1e-5)


def test_reserve_jobs_reserves_each_key_and_skips_keys_held_elsewhere(pipeline):
    lab, method = lab_with_keys(pipeline, seeds=(1,))
    table = lab.MEI()
    table.jobs.refresh(delay=-1)
    held = {**method, **lab.TrainedEnsembleModel.fetch1("KEY"), "neuron_id": 101, "mei_seed": 1}
    assert table.jobs.reserve(held)  # another worker holds this key
    result = table.populate(batch_size=8, reserve_jobs=True, refresh=False)
    assert result == {"success_count": 2, "error_list": []}
    assert sorted(table.to_arrays("neuron_id")) == [100, 102]
    assert len(table.jobs.reserved) == 1 and len(table.jobs.pending) == 0 and len(table.jobs.errors) == 0


def test_batch_size_and_unsupported_options_are_refused_before_any_work():
    from mei.pipeline.batched_populate import populate_batched

    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        populate_batched(object(), (), 0)
    with pytest.raises(ValueError, match="runs in one process"):
        populate_batched(object(), (), 4, processes=2)


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_a_table_with_its_own_compute_keeps_it(pipeline, monkeypatch):
    lab, _ = lab_with_keys(pipeline, seeds=(1,))
    seen = []
    plain_compute = lab.MEI._compute

    def compute(self, key, *args, **kwargs):
        seen.append(key["neuron_id"])
        return plain_compute(self, key, *args, **kwargs)

    monkeypatch.setattr(lab.MEI, "_compute", compute)
    assert lab.MEI().populate(batch_size=8)["success_count"] == 3
    assert sorted(seen) == [100, 101, 102]


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_a_failed_batch_marks_each_of_its_keys_as_an_error(pipeline):
    lab, _ = lab_with_keys(pipeline, seeds=(1,))
    MEIMethod().add_method("mei.methods.gradient_ascent",
                           {**CONFIG, "stopper": {"path": "tests.batched.helpers.Explode", "kwargs": {"at": 2}}})
    result = lab.MEI().populate(batch_size=8, reserve_jobs=True, suppress_errors=True)
    assert result["success_count"] == 3  # the good method's three keys
    assert len(result["error_list"]) == 3
    assert all(error == "RuntimeError: stopper exploded at step 2" for _, error in result["error_list"])
    assert len(lab.MEI()) == 3 and len(lab.MEI().jobs.errors) == 3 and len(lab.MEI().jobs.reserved) == 0
    with pytest.raises(RuntimeError, match="stopper exploded"):
        lab.MEI().jobs.errors.delete()
        lab.MEI().populate(batch_size=8, reserve_jobs=True)


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_a_key_that_cannot_be_prepared_is_reported_by_the_plain_populate(pipeline):
    from mei.engine.resolve import allow_modules, disallow_modules

    lab, _ = lab_with_keys(pipeline, seeds=(1,))  # its method's stopper lives in tests.pipeline.lab
    disallow_modules("tests")
    try:
        result = lab.MEI().populate(batch_size=8, suppress_errors=True)
    finally:
        allow_modules("tests")
    assert result["success_count"] == 0 and len(result["error_list"]) == 3
    assert all("outside the allowed modules" in error for _, error in result["error_list"])


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_fused_ensemble_populate_writes_the_plain_rows(pipeline, monkeypatch):
    from mei.batched import FusedEnsembleModel

    calls = []
    fused_forward = FusedEnsembleModel.forward
    monkeypatch.setattr(FusedEnsembleModel, "forward",
                        lambda self, x: calls.append(x.shape[0]) or fused_forward(self, x))
    lab = declare_lab(pipeline.schema("lab"))
    fill_upstream(lab, n_models=2)  # an ensemble of two members of one architecture
    lab.Objective().populate()
    MEIMethod().add_method("mei.methods.gradient_ascent", {**CONFIG, "batch": {"fuse_ensemble": True}})
    MEISeed().insert1({"mei_seed": 5})
    assert lab.MEI().populate()["success_count"] == 3  # plain populate ignores the batch options
    assert calls == []
    plain = rows(lab.MEI())
    lab.MEI().delete(prompt=False)
    assert lab.MEI().populate(batch_size=3) == {"success_count": 3, "error_list": []}
    fused = rows(lab.MEI())
    assert calls and set(calls) == {3}  # every step ran the fused ensemble on the three keys' images
    assert fused.keys() == plain.keys() and len(fused) == 3
    for key, row in fused.items():
        np.testing.assert_allclose(np.asarray(row["mei"]), np.asarray(plain[key]["mei"]), rtol=1e-5, atol=1e-6)
        assert row["score"] == pytest.approx(plain[key]["score"], rel=1e-5, abs=1e-6)
        assert row["config_hash"] == plain[key]["config_hash"]


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_a_batched_method_returning_too_few_results_fails_every_key_of_its_batch(pipeline):
    lab, _ = lab_with_keys(pipeline, seeds=(1,))
    lab.MEI().populate(batch_size=8)  # the good method's three keys
    MEIMethod().add_method("tests.batched.helpers.short_batched", CONFIG)
    result = lab.MEI().populate(batch_size=8, reserve_jobs=True, suppress_errors=True)
    assert result["success_count"] == 0 and len(result["error_list"]) == 3
    assert all(error == "ValueError: the batched method of tests.batched.helpers.short_batched returned 2 results "
               "for 3 keys" for _, error in result["error_list"]), result["error_list"]
    assert len(lab.MEI()) == 3 and len(lab.MEI().jobs.errors) == 3 and len(lab.MEI().jobs.reserved) == 0
