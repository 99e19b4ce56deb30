"""A lab's tables built from sinzlab/mei's mixins (``mei.mixins``) on DataJoint 2, populated for real."""

from __future__ import annotations

import pickle

import datajoint as dj
import pytest
import torch

from mei import mixins
from mei.main import CSRFV1ObjectiveTemplate

CONFIG = {
    "device": "cpu", "shape": [1, 1, 3, 3],
    "initial": {"path": "mei.initial.RandomNormal"},
    "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": 0.1}},
    "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": 3}},
    "postprocessing": {"path": "mei.legacy.ops.ChangeNorm", "kwargs": {"norm": 2.0}},
    "objectives": [{"path": "mei.objectives.EvaluationObjective", "kwargs": {"interval": 1}}],
}


class Sessions(torch.nn.Module):
    """Two sessions of two neurons each: the response of neuron n of session s is ``weight[s][n] . x``."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.weights = {"s0": scale * torch.ones(2, 9), "s1": -scale * torch.ones(2, 9)}

    def forward(self, x, data_key):
        return x.flatten(1) @ self.weights[data_key].T


def declare(schema):
    @schema
    class Dataset(dj.Manual):
        definition = """
        dataset_fn: varchar(32)
        dataset_hash: char(32)
        ---
        dataset_config: <blob>
        """

    @schema
    class TrainedModel(dj.Manual):
        definition = """
        -> Dataset
        model_id: int32
        """

        def load_model(self, key):
            return None, Sessions(float(key["model_id"]))

    @schema
    class TrainedEnsembleModel(mixins.TrainedEnsembleModelTemplateMixin, dj.Manual):
        dataset_table = Dataset
        trained_model_table = TrainedModel

        class Member(mixins.TrainedEnsembleModelTemplateMixin.Member, dj.Part):
            pass

    @schema
    class Objective(CSRFV1ObjectiveTemplate):
        dataset_table = Dataset

    @schema
    class Method(mixins.MEIMethodMixin, dj.Lookup):
        pass

    @schema
    class Seed(mixins.MEISeedMixin, dj.Lookup):
        pass

    @schema
    class MEI(mixins.MEITemplateMixin, dj.Computed):
        trained_model_table = TrainedEnsembleModel
        objective_table = Objective
        method_table = Method
        seed_table = Seed

    return Dataset, TrainedModel, TrainedEnsembleModel, Objective, Method, Seed, MEI


def test_tables_built_from_the_mixins_populate_meis(backend, private_tmp, monkeypatch):
    monkeypatch.chdir(private_tmp)  # fetched attachments land in dj.config['download_path'], '.' by default
    Dataset, TrainedModel, Ensemble, Objective, Method, Seed, MEI = declare(backend.schema("sinz"))
    files = []
    for session in ("s0", "s1"):
        path = private_tmp / f"{session}.pkl"
        path.write_bytes(pickle.dumps({"unit_indices": [10 + len(files) * 2, 11 + len(files) * 2],
                                       "session_id": session}))
        files.append(str(path))
    dataset = {"dataset_fn": "csrf_v1", "dataset_hash": "0" * 32}
    Dataset.insert1({**dataset, "dataset_config": {"datafiles": files}})
    TrainedModel.insert([{**dataset, "model_id": 1}, {**dataset, "model_id": 3}])
    Ensemble().create_ensemble(dataset, comment="two models")
    assert len(Ensemble()) == 1 and len(Ensemble.Member()) == 2
    Objective().populate()
    assert sorted(Objective().to_arrays("neuron_id")) == [10, 11, 12, 13]
    Method().add_method("mei.methods.gradient_ascent", CONFIG, comment="sinzlab-style")
    Seed().insert1({"mei_seed": 7})
    MEI().populate()
    assert len(MEI()) == 4
    row = (MEI & {"neuron_id": 12}).fetch1()
    mei = torch.load(row["mei"], weights_only=True)
    output = torch.load(row["output"], weights_only=True)
    assert mei.shape == (1, 1, 3, 3) and torch.linalg.vector_norm(mei).item() == pytest.approx(2.0, rel=1e-5)
    assert output["mei.objectives.EvaluationObjective"]["times"] == [0, 1, 2]
    # the ensemble averages members of scale 1 and 3: neuron 12 (session s1) responds -2 * sum(x)
    assert row["score"] == pytest.approx(float(-2.0 * mei.sum()), rel=1e-5, abs=1e-6)
    assert (MEI & {"neuron_id": 10}).fetch1("score") > 0  # session s0's neurons respond +2 * sum(x)


def test_population_objectives_pass_each_sessions_stored_mean_behaviour(backend):
    from collections import namedtuple

    from mei.fabrik import data_info_from_dataloaders
    from mei.main import PopulationObjectiveTemplate

    Batch = namedtuple("Batch", ["images", "responses", "behavior", "pupil_center"])

    class Loader(list):
        """Batches of a session with behaviour (3 values) and pupil positions (2) per trial."""

    def session(offset):
        return Loader(Batch(torch.zeros(2, 1, 3, 3), torch.zeros(2, 2), torch.full((2, 3), offset + i),
                            torch.full((2, 2), -offset - i)) for i in range(2))

    info = data_info_from_dataloaders({"train": {"s0": session(0.0), "s1": session(10.0)}})
    assert info["s1"]["forward_kwargs"] == {"behavior": [[10.5] * 3], "pupil_center": [[-10.5] * 2]}
    assert info["s0"]["neuron_ids"] == [0, 1] and info["s0"]["input_shape"] == [1, 1, 3, 3]

    schema = backend.schema("sessions")

    @schema
    class Dataset(dj.Manual):
        definition = """
        dataset_hash: char(32)
        """

    @schema
    class Trained(dj.Manual):
        definition = """
        -> Dataset
        model_id: int32
        """

        class DataInfo(dj.Part):
            definition = """
            -> master
            ---
            data_info: <blob>
            """

    @schema
    class Objective(PopulationObjectiveTemplate):
        dataset_table = Dataset
        trained_model_table = Trained

    Dataset.insert1({"dataset_hash": "1" * 32})
    Trained.insert1({"dataset_hash": "1" * 32, "model_id": 0})
    Trained.DataInfo.insert1({"dataset_hash": "1" * 32, "model_id": 0, "data_info": info})
    with pytest.raises(ValueError, match="neuron ids repeat"):  # both sessions number their neurons 0, 1
        Objective().populate(reserve_jobs=False, suppress_errors=False)
    info["s1"]["neuron_ids"] = [2, 3]
    (Trained.DataInfo & {"model_id": 0}).delete_quick()
    Trained.DataInfo.insert1({"dataset_hash": "1" * 32, "model_id": 0, "data_info": info})
    Objective().populate()
    seen = {}

    class Model(torch.nn.Module):
        def forward(self, x, data_key, behavior, pupil_center):
            seen[data_key] = (behavior, pupil_center)
            return x.flatten(1)[:, :2]

    objective = Objective().get_objective(Model(), {"dataset_hash": "1" * 32, "neuron_id": 3})
    assert objective.forward_kwargs["data_key"] == "s1"
    objective(torch.ones(1, 1, 3, 3))
    behavior, pupil_center = seen["s1"]
    assert torch.equal(behavior, torch.full((1, 3), 10.5)) and torch.equal(pupil_center, torch.full((1, 2), -10.5))
