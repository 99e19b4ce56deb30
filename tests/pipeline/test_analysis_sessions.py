"""The MDS and tuning tables on a model of two sessions: the neurons of both are one population, clustered and
tuned together, each session called with its own data key (a real database, the lab of ``sessions_lab``)."""

from __future__ import annotations

import pytest

from mei.analysis.mds import adjusted_rand_index
from mei.main import MEIMethod, MEISeed, MEITemplate, PopulationObjectiveTemplate, TrainedEnsembleModelTemplate
from mei.pipeline.analysis_tables import MDSConfigTemplate, MDSTemplate, TuningConfigTemplate, TuningTemplate

from . import sessions_lab
from .lab_tables import declare_fabrik

LAB = "tests.pipeline.sessions_lab"


def stimulus_config(steps: int) -> dict:
    return {"device": "cpu", "initial": {"path": "mei.initial.RandomNormal", "kwargs": {"std": 0.1}},
            "optimizer": {"path": "torch.optim.Adam", "kwargs": {"lr": 0.1}},
            "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": steps}},
            "postprocessing": {"path": "mei.postprocessing.ChangeNorm", "kwargs": {"norm": 6.0}}}


def declare(schema):
    fabrik = declare_fabrik(schema)

    @schema
    class TrainedEnsembleModel(TrainedEnsembleModelTemplate):
        dataset_table = fabrik.Dataset
        trained_model_table = fabrik.TrainedModel

    @schema
    class Objective(PopulationObjectiveTemplate):
        dataset_table = fabrik.Dataset
        trained_model_table = fabrik.TrainedModel

    @schema
    class MEI(MEITemplate):
        trained_model_table = TrainedEnsembleModel
        objective_table = Objective

    @schema
    class MDSConfig(MDSConfigTemplate):
        pass

    @schema
    class MDS(MDSTemplate):
        mei_table = MEI
        mds_config_table = MDSConfig

    @schema
    class TuningConfig(TuningConfigTemplate):
        pass

    @schema
    class Tuning(TuningTemplate):
        mei_table = MEI
        tuning_config_table = TuningConfig

    return fabrik, TrainedEnsembleModel, Objective, MEI, MDSConfig, MDS, TuningConfig, Tuning


def test_mds_and_tuning_take_the_neurons_of_all_sessions_together(pipeline):
    fabrik, ensembles, objectives, mei, mds_config, mds, tuning_config, tuning = declare(pipeline.schema("lab"))
    fabrik.Fabrikant.insert1({"fabrikant_name": "tester", "email": "t@example.org", "affiliation": "lab",
                              "dj_username": "nobody"})
    fabrik.Seed.insert1({"seed": 1})
    dataset = fabrik.Dataset().add_entry(f"{LAB}.dataset_fn", {}, "tester", "two sessions")
    fabrik.Model().add_entry(f"{LAB}.model_fn", {}, "tester", "fixed fields")
    fabrik.Trainer().add_entry(f"{LAB}.trainer_fn", {}, "tester", "no training")
    fabrik.TrainedModel.populate()
    ensembles().create_ensemble(dataset, comment="one model")
    objectives().populate()
    assert sorted(objectives().to_arrays("data_key")) == ["s1"] * 3 + ["s2"] * 3
    MEIMethod().add_method("mei.methods.gradient_ascent", stimulus_config(30), comment="MEIs")
    MEISeed().insert1({"mei_seed": 0})
    assert mei().populate()["success_count"] == 6

    run = mds_config().add_config(stimulus_config(40), n_clusters=2, align=False)
    assert mds().populate(run)["success_count"] == 1 and len(mds()) == 1
    rows = (mds.Assignment() * objectives()).to_dicts(order_by=["data_key", "output_unit"])
    kinds = [kind for session in sessions_lab.SESSIONS.values() for kind in session]  # A A B, B B A
    assert [(row["data_key"], row["neuron_id"]) for row in rows] == [("s1", 0), ("s1", 1), ("s1", 2),
                                                                    ("s2", 10), ("s2", 11), ("s2", 12)]
    assert adjusted_rand_index([row["cluster"] for row in rows], kinds) == 1.0  # the types, across sessions
    stimuli = (mds.Stimulus() & run).to_dicts(order_by="cluster")
    assert [row["n_members"] for row in stimuli] == [3, 3]
    assert all(row["own_response"] > row["other_response"] for row in stimuli)

    config = tuning_config().add_config({"orientations": [15.0 * i for i in range(12)],
                                         "spatial_frequencies": [0.1, 0.2, 0.3], "phases": [45.0 * i for i in range(8)],
                                         "sizes": [3.0, 6.0, 12.0]})
    assert tuning().populate(config)["success_count"] == 1
    neurons = (tuning.Neuron() * objectives()).to_dicts(order_by=["data_key", "output_unit"])
    assert len(neurons) == 6
    for row, kind in zip(neurons, kinds, strict=True):
        angle = sessions_lab.ORIENTATIONS[kind]
        assert min(abs(row["preferred_orientation"] - angle), 180 - abs(row["preferred_orientation"] - angle)) < 5
        assert row["preferred_spatial_frequency"] == pytest.approx(0.2, rel=0.2)
        assert row["preferred_size"] is not None
