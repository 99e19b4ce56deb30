"""A lab's own schema, as the READMEs describe it, declared afresh for each test."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import datajoint as dj

from mei.fabrik import DatasetMixin, FabrikantMixin, ModelMixin, SeedMixin, TrainedModelBase, TrainerMixin
from mei.main import MEITemplate, PopulationObjectiveTemplate, TrainedEnsembleModelTemplate

LAB = "tests.pipeline.lab"

METHOD_CONFIG = {
    "device": "cpu",
    "initial": {"path": "mei.initial.RandomNormal", "kwargs": {"std": 0.1}},
    "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": 0.5}},
    "stopper": {"path": f"{LAB}.EvaluationThresholdOrSteps", "kwargs": {"threshold": 2.0, "max_steps": 12}},
    "objectives": [{"path": "mei.objectives.EvaluationObjective", "kwargs": {"interval": 4}}],
}


def declare_fabrik(schema: dj.Schema) -> SimpleNamespace:
    """Declare a lab's nnfabrik-protocol tables (Fabrikant, Seed, Dataset, Model, Trainer, TrainedModel)."""

    @schema
    class Fabrikant(FabrikantMixin, dj.Manual):
        pass

    @schema
    class Seed(SeedMixin, dj.Manual):
        pass

    @schema
    class Dataset(DatasetMixin, dj.Manual):
        user_table = Fabrikant

    @schema
    class Model(ModelMixin, dj.Manual):
        user_table = Fabrikant

    @schema
    class Trainer(TrainerMixin, dj.Manual):
        user_table = Fabrikant

    @schema
    class TrainedModel(TrainedModelBase):
        nnfabrik = {"Dataset": Dataset, "Model": Model, "Trainer": Trainer, "Seed": Seed, "Fabrikant": Fabrikant}

    return SimpleNamespace(**{k: v for k, v in locals().items() if isinstance(v, type)})


def declare_lab(schema: dj.Schema, naming: str = "objective") -> SimpleNamespace:
    """Declare the lab's nnfabrik-protocol tables, trained models, ensembles, objective and MEI tables.

    Args:
        naming: ``"objective"`` (``objective_table``) or ``"selector"`` (``selector_table``).
    """
    fabrik = declare_fabrik(schema)
    Dataset, TrainedModel = fabrik.Dataset, fabrik.TrainedModel

    @schema
    class TrainedEnsembleModel(TrainedEnsembleModelTemplate):
        dataset_table = Dataset
        trained_model_table = TrainedModel

    @schema
    class Objective(PopulationObjectiveTemplate):
        dataset_table = Dataset
        trained_model_table = TrainedModel

    attributes = {"trained_model_table": TrainedEnsembleModel, f"{naming}_table": Objective}
    MEI = schema(type("MEI", (MEITemplate,), attributes), context=locals())
    tables = {k: v for k, v in locals().items() if isinstance(v, type)}
    return SimpleNamespace(**{**vars(fabrik), **tables})


def fill_upstream(lab: SimpleNamespace, n_models: int = 2) -> dict[str, Any]:
    """Contributor, seed, one dataset, ``n_models`` models, one trainer; trained models; one ensemble."""
    lab.Fabrikant.insert1({"fabrikant_name": "tester", "email": "t@example.org", "affiliation": "lab",
                           "dj_username": "nobody"})
    lab.Seed.insert1({"seed": 7})
    dataset = lab.Dataset().add_entry(f"{LAB}.dataset_fn", {"n_images": 8, "n_neurons": 3},
                                      dataset_fabrikant="tester", dataset_comment="toy data")
    for scale in range(1, n_models + 1):
        lab.Model().add_entry(f"{LAB}.model_fn", {"scale": float(scale)}, "tester", f"model {scale}")
    lab.Trainer().add_entry(f"{LAB}.trainer_fn", {"epochs": 1}, "tester", "sgd")
    lab.TrainedModel.populate()
    ensemble = lab.TrainedEnsembleModel().create_ensemble(dataset, comment="My ensemble")
    return {"dataset": dataset, "ensemble": ensemble}
