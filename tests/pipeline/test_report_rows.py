"""``mei report`` on a lab's tables: the per-MEI table says what tells its rows apart (issue 21, item 13)."""

from __future__ import annotations

import html
import re

import pytest

from mei.demo.report import distinguishing_rows, write_report
from mei.main import MEIMethod, MEISeed

from .lab_tables import METHOD_CONFIG, declare_lab, fill_upstream

GA = "mei.methods.gradient_ascent"


@pytest.mark.slow  # trains two models and makes two MEIs
@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_rows_of_two_ensembles_of_one_neuron_are_told_apart(pipeline, tmp_path):
    lab = declare_lab(pipeline.schema("lab"))
    upstream = fill_upstream(lab, n_models=2)
    first_model = lab.TrainedModel.keys(order_by="model_hash")[0]
    lab.TrainedEnsembleModel().create_ensemble({**upstream["dataset"], **first_model}, comment="first member only")
    lab.Objective().populate()
    MEIMethod().add_method(GA, METHOD_CONFIG, comment="plain ascent")
    MEISeed().insert1({"mei_seed": 3})
    neuron = lab.Objective.keys(order_by="neuron_id")[0]
    assert lab.MEI().populate(neuron)["success_count"] == 2
    table = lab.MEI() & neuron
    keys = table.keys(order_by=table.primary_key)
    rows = distinguishing_rows(table, keys)
    assert sorted(row["ensemble_comment"] for row in rows) == ["My ensemble", "first member only"]
    assert all(row["method_comment"] == "plain ascent" and row["mei_seed"] == 3 for row in rows)
    assert not any(name.endswith("_hash") for row in rows for name in row)  # the comments tell them apart
    page = write_report(table, tmp_path).read_text()
    assert "first member only" in html.unescape(page) and "My ensemble" in html.unescape(page)

    for ensemble in lab.TrainedEnsembleModel.keys():  # comments that no longer tell the rows apart
        lab.TrainedEnsembleModel.update1({**ensemble, "ensemble_comment": "same"})
    rows = distinguishing_rows(table, keys)
    assert [row["ensemble_hash"] for row in rows] == [key["ensemble_hash"][:8] for key in keys]
    assert len({tuple(map(str, row.values())) for row in rows}) == 2
    assert all(re.fullmatch(r"[0-9a-f]{8}", row["ensemble_hash"]) for row in rows)
    assert not any(name in row for row in rows for name in ("method_hash", "dataset_hash"))  # the same for both
