"""Video MEIs of a two-session model through ``MEI().populate()`` on every backend: the objective table stores
each neuron's session, populate passes it as ``data_key``, and every MEI is its own session's unit's filter."""

from __future__ import annotations

from types import SimpleNamespace

import datajoint as dj
import pytest
import torch

from mei.main import MEIMethod, MEISeed, MEITemplate, TrainedEnsembleModelTemplate
from mei.pipeline.objective_templates import ContrastiveObjectiveTemplate, ReducedObjectiveTemplate
from mei.targets.video import correlation, video_config
from tests.pipeline.lab_tables import declare_fabrik

from .models import SHAPE, LinearFilterModel, session_filters

LAB = "tests.video.lab_video"
FILTERS = session_filters()


def declare(schema: dj.Schema) -> SimpleNamespace:
    fabrik = declare_fabrik(schema)
    Dataset, TrainedModel = fabrik.Dataset, fabrik.TrainedModel

    @schema
    class Ensemble(TrainedEnsembleModelTemplate):
        dataset_table, trained_model_table = Dataset, TrainedModel

    @schema
    class VideoObjective(ReducedObjectiveTemplate):
        dataset_table, trained_model_table = Dataset, TrainedModel

    @schema
    class ContrastObjective(ContrastiveObjectiveTemplate):
        dataset_table, trained_model_table = Dataset, TrainedModel
        reducer = {"path": "mei.reducers.MeanOverTime"}

    @schema
    class VideoMEI(MEITemplate):
        trained_model_table, objective_table = Ensemble, VideoObjective

    @schema
    class ContrastMEI(MEITemplate):
        trained_model_table, objective_table = Ensemble, ContrastObjective

    tables = {k: v for k, v in locals().items() if isinstance(v, type)}
    return SimpleNamespace(**{**vars(fabrik), **tables})


def fill(lab: SimpleNamespace) -> None:
    lab.Fabrikant.insert1({"fabrikant_name": "tester", "email": "t@example.org", "affiliation": "lab",
                           "dj_username": "nobody"})
    lab.Seed.insert1({"seed": 1})
    dataset = lab.Dataset().add_entry(f"{LAB}.dataset_fn", {"n_movies": 4}, dataset_fabrikant="tester")
    lab.Model().add_entry(f"{LAB}.model_fn", {}, "tester", "two sessions")
    lab.Trainer().add_entry(f"{LAB}.trainer_fn", {}, "tester", "none")
    lab.TrainedModel.populate()
    lab.Ensemble().create_ensemble(dataset)


def contrast(responses, unit, x):
    """``unit``'s time-averaged response to ``x`` minus the mean of the session's other units."""
    r = responses(x.float()).mean(dim=-1)[0]
    return (r[unit] - torch.cat([r[:unit], r[unit + 1:]]).mean()).item()


def test_two_session_video_meis_through_populate(pipeline):
    lab = declare(pipeline.schema("video"))
    fill(lab)
    lab.VideoObjective().populate()
    lab.ContrastObjective().populate()
    rows = lab.VideoObjective().to_dicts(order_by="neuron_id")
    assert [(r["neuron_id"], r["data_key"], r["output_unit"]) for r in rows] == [
        (100, "session-a", 0), (101, "session-a", 1), (102, "session-a", 2),
        (200, "session-b", 0), (201, "session-b", 1), (202, "session-b", 2)]

    config = video_config(steps=30, lr=0.5, norm=5.0)  # no shape: the pipeline takes it from the data info
    method = MEIMethod().add_method("mei.methods.gradient_ascent", config, comment="video MEI")
    MEISeed().insert1({"mei_seed": 3})
    assert lab.VideoMEI().populate()["success_count"] == 6
    assert lab.ContrastMEI().populate()["success_count"] == 6

    for row in rows:
        key = {**method, "neuron_id": row["neuron_id"], "mei_seed": 3}
        mei = lab.VideoMEI().fetch_mei(key)
        assert mei.shape == SHAPE
        own = FILTERS[row["data_key"]][row["output_unit"]]
        other = FILTERS["session-b" if row["data_key"] == "session-a" else "session-a"][row["output_unit"]]
        assert correlation(mei, own) >= 0.99 and abs(correlation(mei, other)) < 0.3
        score = (lab.VideoMEI & key).fetch1("score")
        assert score == pytest.approx(5.0 * own.norm().item(), rel=1e-3)

        contrastive = lab.ContrastMEI().fetch_mei(key)
        responses = LinearFilterModel(FILTERS[row["data_key"]])
        unit = row["output_unit"]
        assert contrast(responses, unit, contrastive) > contrast(responses, unit, mei)
