"""The demo's own tables, declared from the package's templates in the schema ``mei_demo``.

Upstream it uses the package's fabrik tables (bound to ``mei_demo_fabrik``) and the package's
``MEIMethod``/``MEISeed`` (bound to ``mei_demo_methods``), so demo rows never mix with a lab's own. Nothing
connects at import; :func:`activate` (or the first use of a table) binds all three schemas.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import datajoint as dj
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from .. import fabrik, main
from ..analysis.report_card import Objective as ObjectiveFn
from ..fabrik import TrainedModelBase
from ..main import MEITemplate, PopulationObjectiveTemplate, TrainedEnsembleModelTemplate
from ..pipeline.analysis_tables import MDSConfigTemplate, MDSTemplate, TuningConfigTemplate, TuningTemplate
from ..pipeline.report_card_table import ReportCardTemplate
from ..pipeline.schemas import LazyActivated, bind_schema
from .lab import DATA_KEY, dataset_fn, population_for

SCHEMA = "mei_demo"
schema = dj.Schema()


def schema_names(prefix: str = SCHEMA) -> dict[str, str]:
    """The three schema names of the demo for ``prefix``: fabrik, methods and the demo's tables."""
    return {"fabrik": f"{prefix}_fabrik", "methods": f"{prefix}_methods", "demo": prefix}


def activate(prefix: str = SCHEMA, *, connection: Any = None) -> dict[str, dj.Schema]:
    """Bind the fabrik tables, the method/seed tables and the demo's tables (see :func:`schema_names`).

    Args:
        prefix (str, optional): name of the demo schema and prefix of the other two. Default: ``"mei_demo"``.
        connection (datajoint.Connection, optional): Default: :func:`mei.pipeline.database.connect`.
    """
    names = schema_names(prefix)
    _frozen_model.cache_clear()
    ReportCardTemplate._image_cache.clear()
    bound = {"fabrik": fabrik.activate(names["fabrik"], connection=connection),
             "methods": main.activate(names["methods"], connection=connection)}
    bound["demo"] = bind_schema(schema, names["demo"], connection=connection)
    return bound


def drop(prefix: str = SCHEMA, *, connection: Any = None) -> None:
    """Drop the demo's three schemas with everything in them (for a fresh run)."""
    bound = activate(prefix, connection=connection)
    for name in ("demo", "methods", "fabrik"):
        bound[name].drop(prompt=False)
        bound[name].database = None  # the next activate() declares the tables again


class _DemoTable(LazyActivated):
    @classmethod
    def _activate(cls) -> None:
        activate()


@schema
class TrainedModel(_DemoTable, TrainedModelBase):
    """Trained models of the demo (the package's fabrik tables upstream)."""

    table_comment = "trained models of the demo"


@schema
class TrainedEnsembleModel(_DemoTable, TrainedEnsembleModelTemplate):
    """Ensembles of the demo's trained models."""

    trained_model_table = TrainedModel


@schema
class Objective(_DemoTable, PopulationObjectiveTemplate):
    """One row per model neuron of the demo's dataset."""

    trained_model_table = TrainedModel


@schema
class MEI(_DemoTable, MEITemplate):
    """The demo's MEIs: every neuron, for each ensemble."""

    trained_model_table = TrainedEnsembleModel
    objective_table = Objective


@schema
class ReportCard(_DemoTable, ReportCardTemplate):
    """Report cards of the demo's MEIs, with the true receptive fields and held-out members."""

    mei_table = MEI

    def true_rf(self, key: Mapping[str, Any]) -> Tensor:
        """The neuron's filter, or its quadrature pair for a complex cell (the population is redrawn)."""
        population = population_of(key)
        index = int((Objective() & key).fetch1("output_unit"))
        return population.filters[index, :2 if population.kinds[index] == "complex" else 1]

    def transfer_objectives(self, key: Mapping[str, Any], model: nn.Module) -> list[ObjectiveFn]:
        """For a one-member ensemble: the models trained like it with other seeds (held out); else the members."""
        members = (TrainedEnsembleModel.Member() & key).keys()
        if len(members) != 1:
            return super().transfer_objectives(key, model)
        trained = TrainedModel()
        own = {name: members[0][name] for name in trained.primary_key}
        siblings = (trained & {name: value for name, value in own.items() if name != "seed"}).keys()
        others = [other for other in siblings if other != own]
        return [Objective().get_objective(_held_out_model(other), key) for other in others]


@schema
class MDSConfig(_DemoTable, MDSConfigTemplate):
    """Settings of the demo's most discriminative stimuli."""


@schema
class MDS(_DemoTable, MDSTemplate):
    """Most discriminative stimuli of the demo's neurons, from their MEIs."""

    mei_table = MEI
    mds_config_table = MDSConfig


@schema
class TuningConfig(_DemoTable, TuningConfigTemplate):
    """Settings of the demo's in-silico tuning."""


@schema
class Tuning(_DemoTable, TuningTemplate):
    """Grating and size tuning of the demo's model neurons."""

    mei_table = MEI
    tuning_config_table = TuningConfig


@functools.lru_cache(maxsize=8)
def _frozen_model(key_items: tuple) -> nn.Module:
    model = TrainedModel().load_model(dict(key_items), include_dataloader=False)
    return model.eval().requires_grad_(False)


def _held_out_model(key: Mapping[str, Any]) -> nn.Module:
    """A trained model, loaded once per process and frozen (eval mode, no parameter gradients)."""
    return _frozen_model(tuple(sorted(key.items())))


def training_images(key: Mapping[str, Any]) -> Tensor:
    """The training images of the dataset in ``key`` (drawn again from its config)."""
    _, config = (fabrik.Dataset() & {k: key[k] for k in fabrik.Dataset().primary_key}).fn_config
    dataset = dataset_fn(**config)["train"][DATA_KEY].dataset
    assert isinstance(dataset, TensorDataset), type(dataset)  # dataset_fn's loaders hold TensorDatasets
    return dataset.tensors[0]


def population_of(key: Mapping[str, Any]) -> Any:
    """The known :class:`~mei.demo.population.Population` of the dataset in ``key``."""
    _, config = (fabrik.Dataset() & {k: key[k] for k in fabrik.Dataset().primary_key}).fn_config
    defaults = {"n_neurons": 48, "height": 36, "width": 64, "population_seed": 0, "typed": True}
    values = {name: config.get(name, default) for name, default in defaults.items()}
    return population_for(values["n_neurons"], values["height"], values["width"], values["population_seed"],
                          bool(values["typed"]))
