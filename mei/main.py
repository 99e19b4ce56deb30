"""The MEI pipeline's tables: templates a lab inherits in its own schema, and the package's own tables.

Templates (declare them in *your* ``dj.Schema`` by inheriting, then point their class attributes at your
tables):

* :class:`TrainedEnsembleModelTemplate` — ensembles of trained models (``dataset_table``,
  ``trained_model_table``); ``create_ensemble(key, comment="")``, ``load_model(key)``.
* :class:`PopulationObjectiveTemplate` — neuron id -> output unit of a population model, filled from the
  data info stored with the trained models; ``get_objective(model, key)`` (alias
  ``get_output_selected_model``). Your own objective (or selector) table works as well.
* :class:`MEITemplate` — the MEIs (``trained_model_table`` and ``objective_table`` or ``selector_table``);
  ``populate()`` generates them.

The package's own tables :class:`MEIMethod` and :class:`MEISeed` live in a schema bound by :func:`activate`
(or, on their first use, in the default schema ``mei`` — ``$MEI_SCHEMA`` — on :func:`mei.pipeline.database.connect`).

Importing this module opens no database connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import datajoint as dj
import numpy as np
import torch

from . import mixins
from .engine.errors import UnitOutOfRangeError
from .fabrik import Dataset, data_info_from_dataloaders
from .modules import ConstrainedOutputModel, EnsembleModel
from .pipeline import database as db
from .pipeline.batched_populate import BatchedPopulateMixin
from .pipeline.generation import run_config, run_method, validate_method, versions
from .pipeline.legacy_bridge.guard import LegacyGuard
from .pipeline.model_cache import ModelCache, freeze_model
from .pipeline.part_tables import give_own_parts, primary_key_of
from .pipeline.schemas import LazyActivated, bind_schema, default_schema_name
from .pipeline.values import from_bytes, frozen_copy, make_hash, to_bytes
from .tracking import TrackedLog

__all__ = [
    "activate", "schema", "MEIMethod", "MEISeed", "TrainedEnsembleModelTemplate", "PopulationObjectiveTemplate",
    "MEITemplate", "CSRFV1ObjectiveTemplate", "model_cache", "data_info_cache", "clear_model_cache",
]

ENV_SCHEMA = "MEI_SCHEMA"
DEFAULT_SCHEMA = db.DEFAULT_SCHEMA

schema = dj.Schema()

#: The process-wide cache of frozen models used by every MEI table (see :class:`MEITemplate`).
model_cache = ModelCache(size=4)
#: The data info (input shapes, sessions, neuron ids) of the same trained models.
data_info_cache = ModelCache(size=64, prepare=None)
_multi_session: dict[tuple[Any, ...], bool] = {}


def activate(schema_name: str | None = None, *, connection: Any = None, create_schema: bool = True,
             create_tables: bool = True) -> dj.Schema:
    """Bind the package's tables :class:`MEIMethod` and :class:`MEISeed` to a schema.

    You provide nothing upstream: these tables depend on no other table. Your MEI table (a
    :class:`MEITemplate`) references them, so bind them on the connection your own schema uses, before
    declaring it. Without a call, their first use binds them with the defaults.

    Args:
        schema_name (str, optional): database schema. Default: ``$MEI_SCHEMA`` or ``"mei"``.
        connection (datajoint.Connection, optional): Default: :func:`mei.pipeline.database.connect` (embedded PostgreSQL
            unless a server is configured).
        create_schema (bool, optional): create the schema if missing. Default: True.
        create_tables (bool, optional): declare missing tables. Default: True.

    Returns:
        datajoint.Schema: the bound schema.
    """
    name = schema_name or default_schema_name(ENV_SCHEMA, DEFAULT_SCHEMA)
    return bind_schema(schema, name, connection=connection, create_schema=create_schema, create_tables=create_tables)


def _model_only(loaded: Any) -> Any:
    """The model from what a ``load_model(..., include_dataloader=False)`` returned (model or a tuple)."""
    return loaded[1] if isinstance(loaded, tuple) and len(loaded) == 2 else loaded


# ------------------------------------------------------------------------------------ methods, seeds


@schema
class MEISeed(LazyActivated, dj.Lookup):
    """Seeds that make MEI generation reproducible. Attribute: ``mei_seed`` (key)."""

    definition = """
    # seeds of the MEI generation
    mei_seed: int64      # MEI seed
    """


@schema
class MEIMethod(LazyActivated, dj.Lookup):
    """Methods of MEI generation: a method function (dotted path) and its config.

    Attributes: ``method_fn`` and ``method_hash`` (key; the hash is :func:`mei.fabrik.make_hash` of the
    config), ``method_config`` (json), ``method_ts``, ``method_comment``.
    """

    definition = """
    # methods of MEI generation and their configurations
    method_fn: varchar(64)                   # dotted path of the method function
    method_hash: char(32)                    # make_hash of the method config
    ---
    method_config: json                      # the method config
    method_ts=CURRENT_TIMESTAMP: datetime    # time of insertion
    method_comment='': varchar(256)          # a short description
    """

    def add_method(self, method_fn: str, method_config: Mapping[str, Any], comment: str = "") -> dict[str, str]:
        """Validate a method completely, then add it (once: the same method and config are not added twice).

        Args:
            method_fn (str): dotted path of the method, e.g. ``"mei.methods.gradient_ascent"``.
            method_config (dict): its config; JSON values only.
            comment (str, optional): a short description. Default: ``""``.

        Returns:
            dict: the key ``{"method_fn": ..., "method_hash": ...}``.

        Raises:
            mei.engine.resolve.ConfigError: the path is not allowed or does not resolve, or the config is invalid;
                nothing is written.
        """
        validate_method(method_fn, method_config)
        key = {"method_fn": method_fn, "method_hash": make_hash(method_config)}
        if not self & key:
            self.insert1({**key, "method_config": frozen_copy(dict(method_config)), "method_comment": comment})
        return key

    def fetch_method(self, key: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        """``(method, config)`` of the one method in ``key``, validated again; the config is a private copy."""
        method_fn, config = (self & key).fetch1("method_fn", "method_config")
        config = frozen_copy(config)
        return validate_method(method_fn, config), config

    def generate_mei(self, dataloaders: Any, model: Any, key: Mapping[str, Any], seed: int) -> dict[str, Any]:
        """Run the method of ``key`` on ``model`` (sinzlab's API); returns ``dict(key, mei=, score=, output=)``."""
        method, config = self.fetch_method(key)
        result = run_method(method, dataloaders, model, config, seed)
        return {**key, "mei": result["mei"], "score": result["score"], "output": result["output"]}


# ------------------------------------------------------------------------------------ ensembles


class TrainedEnsembleModelTemplate(LegacyGuard, dj.Manual):
    """Template of ensembles of trained models whose outputs are averaged.

    Class attributes to set: ``dataset_table`` (default: :class:`mei.fabrik.Dataset`),
    ``trained_model_table`` (your :class:`mei.fabrik.TrainedModelBase` table or any table with
    ``load_model``); optionally ``ensemble_model_class`` (default :class:`mei.modules.EnsembleModel`).

    Attributes: the dataset key, ``ensemble_hash`` (key), ``ensemble_comment``; part ``Member``.
    """

    dataset_table: ClassVar[Any] = Dataset
    trained_model_table: ClassVar[Any] = None
    ensemble_model_class: ClassVar[type] = EnsembleModel

    @property
    def definition(self) -> str:
        if self.trained_model_table is None:
            raise TypeError(f"{type(self).__name__} needs a trained_model_table class attribute")
        return """
        # ensembles of trained models
        -> self.dataset_table
        ensemble_hash: char(32)               # make_hash of the members' keys
        ---
        ensemble_comment='': varchar(256)     # a short description
        """

    class Member(dj.Part):
        """The trained models of an ensemble."""

        definition = """
        -> master
        -> master.trained_model_table
        """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        give_own_parts(cls, ("Member",))

    def create_ensemble(self, key: Mapping[str, Any] | str | None = None, comment: str = "") -> dict[str, Any]:
        """Make an ensemble of the trained models in ``trained_model_table & key``.

        Args:
            key (dict | str, optional): a restriction; it must select exactly one dataset. Default: none.
            comment (str, optional): a short description. Default: ``""``.

        Returns:
            dict: the ensemble's key (the same ensemble twice gives the same key and no new rows).

        Raises:
            ValueError: the restriction selects no dataset or several, or no trained model.
        """
        key = {} if key is None else key
        datasets = (self.dataset_table() & key).keys()
        if len(datasets) != 1:
            raise ValueError(f"the key must restrict {type(self.dataset_table()).__name__} to exactly one entry, "
                             f"it selects {len(datasets)}; ensembles of models trained on different datasets are "
                             "not supported")
        members = (self.trained_model_table() & datasets[0] & key).keys()
        if not members:
            raise ValueError(f"no trained models match {key!r}")
        ensemble_key = {**datasets[0], "ensemble_hash": make_hash(sorted(sorted(m.items()) for m in members))}
        with self.connection.transaction:
            if not self & ensemble_key:
                self.insert1({**ensemble_key, "ensemble_comment": comment})
                self.Member().insert([{**ensemble_key, **member} for member in members])
        return ensemble_key

    def member_keys(self, key: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Trained-model keys of the one ensemble selected by ``key``."""
        ensemble = self.fetch1("KEY") if key is None else (self & key).fetch1("KEY")
        trained = self.trained_model_table()
        return [primary_key_of(trained, row) for row in (self.Member() & ensemble).keys()]

    def load_model(self, key: Mapping[str, Any] | None = None, include_dataloader: bool = True,
                   include_state_dict: bool = True, seed: int | None = None) -> Any:
        """Build the ensemble: ``(dataloaders, model)``, or the model alone without dataloaders.

        Dataloaders are built once (for the first member); the others are built without them.
        """
        trained = self.trained_model_table()
        models = []
        dataloaders = None
        for i, member in enumerate(self.member_keys(key)):
            with_data = include_dataloader and i == 0
            loaded = trained.load_model(member, include_dataloader=with_data, include_state_dict=include_state_dict,
                                        seed=seed)
            if with_data:
                dataloaders, loaded = loaded
            models.append(_model_only(loaded))
        ensemble = self.ensemble_model_class(*models)
        return (dataloaders, ensemble) if include_dataloader else ensemble

    def data_info(self, key: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The data info of the ensemble's first member (all members share the dataset)."""
        trained = self.trained_model_table()
        return trained.data_info(self.member_keys(key)[0]) if hasattr(trained, "data_info") else None


# ------------------------------------------------------------------------------------ objectives


class PopulationObjectiveTemplate(LegacyGuard, dj.Computed):
    """Template of an objective table for population models: neuron id -> output unit, per dataset.

    ``populate()`` reads, for each dataset, the data info stored with a model trained on it (when
    ``trained_model_table`` is set to a :class:`mei.fabrik.TrainedModelBase` table) or builds the
    dataloaders (``dataset_table.get_dataloader``) otherwise, and inserts one row per neuron. Neuron ids
    must be unique within a dataset.

    Class attributes: ``dataset_table`` (default :class:`mei.fabrik.Dataset`), ``trained_model_table``
    (optional), ``forward_data_key`` (pass the row's ``data_key`` to the model as a keyword argument: True,
    False, or ``None``, the default: only when the dataset has several sessions), ``forward_session_kwargs``
    (pass the session's stored mean ``behavior`` / ``pupil_center``, when the data info has them; default True).

    Attributes: the dataset key, ``neuron_id`` (key), ``data_key``, ``output_unit``.
    """

    dataset_table: ClassVar[Any] = Dataset
    trained_model_table: ClassVar[Any] = None
    forward_data_key: ClassVar[bool | None] = None
    forward_session_kwargs: ClassVar[bool] = True
    constrained_output_model: ClassVar[type] = ConstrainedOutputModel

    definition = """
    # neuron id -> output unit of the model
    -> self.dataset_table
    neuron_id: int64                 # the neuron's id in the dataset
    ---
    data_key='': varchar(64)         # the session (data key) the neuron was recorded in
    output_unit: int32               # index of the neuron in the model's output for that session
    """

    def _declare_check(self, primary_key: list[str], fk_attribute_map: dict[str, Any]) -> None:
        """Allow ``neuron_id`` in the key: one ``make`` fills all neurons of a dataset, by design."""

    @property
    def key_source(self) -> Any:
        datasets = self.dataset_table().proj()
        trained = self.trained_model_table
        if trained is not None and hasattr(trained, "DataInfo"):
            return datasets & trained.DataInfo().proj()
        return datasets

    def data_info(self, key: Mapping[str, Any]) -> dict[str, Any]:
        """The data info of the dataset in ``key`` (stored with a trained model, else from its dataloaders)."""
        trained = self.trained_model_table
        if trained is not None and hasattr(trained, "DataInfo"):
            rows = (trained.DataInfo() & key).to_dicts(limit=1)
            if rows:
                return rows[0]["data_info"]
        return data_info_from_dataloaders((self.dataset_table() & key).get_dataloader())

    def make(self, key: dict[str, Any]) -> None:
        """Insert one row per neuron of the dataset."""
        rows = [{**key, "neuron_id": int(neuron_id), "data_key": data_key, "output_unit": unit}
                for data_key, session in self.data_info(key).items()
                for unit, neuron_id in enumerate(session["neuron_ids"])]
        ids = [row["neuron_id"] for row in rows]
        if len(set(ids)) != len(ids):
            raise ValueError(f"neuron ids repeat across the sessions of dataset {key}; this template needs unique ids")
        self.insert(rows)

    def get_objective(self, model: torch.nn.Module, key: Mapping[str, Any]) -> torch.nn.Module:
        """``model`` restricted to the neuron in ``key`` (a :class:`mei.modules.ConstrainedOutputModel`), called
        with the neuron's ``data_key`` (see ``forward_data_key``) and its session's stored forward kwargs (the
        mean ``behavior`` / ``pupil_center`` of the session's training data, see ``forward_session_kwargs``)."""
        output_unit, data_key = (self & key).fetch1("output_unit", "data_key")
        forward_kwargs = {"data_key": data_key} if data_key and self._pass_data_key(key) else {}
        if self.forward_session_kwargs:
            forward_kwargs.update(self.session_forward_kwargs(key, data_key))
        return self.constrained_output_model(model, int(output_unit), forward_kwargs=forward_kwargs or None)

    def session_forward_kwargs(self, key: Mapping[str, Any], data_key: str) -> dict[str, torch.Tensor]:
        """The forward kwargs stored for session ``data_key`` in the trained models' data info (tensors), or
        none when there is no stored data info."""
        trained = self.trained_model_table
        if trained is None or not hasattr(trained, "DataInfo"):
            return {}
        rows = (trained.DataInfo() & primary_key_of(self.dataset_table(), key)).to_dicts(limit=1)
        session = rows[0]["data_info"].get(data_key, {}) if rows else {}
        return {name: torch.tensor(value, dtype=torch.float32)
                for name, value in session.get("forward_kwargs", {}).items()}

    get_output_selected_model = get_objective

    def _pass_data_key(self, key: Mapping[str, Any]) -> bool:
        if self.forward_data_key is not None:
            return bool(self.forward_data_key)
        dataset = primary_key_of(self.dataset_table(), key)
        cache_key = (self.full_table_name, str(self.connection.conn_info.get("host")), tuple(sorted(dataset.items())))
        if cache_key not in _multi_session:  # a dataset's sessions are all inserted by one make
            _multi_session[cache_key] = len(set((self & dataset).to_arrays("data_key"))) > 1
        return _multi_session[cache_key]


class CSRFV1ObjectiveTemplate(mixins.CSRFV1ObjectiveTemplateMixin, dj.Computed):
    """sinzlab/mei's CSRF V1 objective table template (:class:`mei.mixins.CSRFV1ObjectiveTemplateMixin`).

    Inherit it in your schema; ``dataset_table`` defaults to :class:`mei.fabrik.Dataset` and ``populate()``
    fills the neuron mappings of the datasets whose ``dataset_fn`` is ``dataset_fn`` (``"csrf_v1"``) from their
    data files. ``get_objective(model, key)`` restricts the model to the neuron, with ``data_key`` its session.
    """

    dataset_table = Dataset


# ------------------------------------------------------------------------------------ MEIs


class MEITemplate(LegacyGuard, BatchedPopulateMixin, dj.Computed):
    """Template of the MEI table: one MEI per method, trained model, neuron (objective) and seed.

    Class attributes to set: ``trained_model_table`` (anything with ``load_model``, e.g. your
    :class:`TrainedEnsembleModelTemplate` table) and either ``objective_table`` (with
    ``get_objective(model, key)``) or ``selector_table`` (with ``get_output_selected_model(model, key)``).
    ``method_table`` and ``seed_table`` default to :class:`MEIMethod` and :class:`MEISeed`.

    ``make`` = fetch (method, seed, model from :data:`model_cache`), compute (:meth:`_compute`), insert.
    The model is frozen (eval mode, no gradients on its parameters) and shared by the keys that use it.
    The method gets no dataloaders when the input shape is known from the trained model's data info
    (the shape is put into a copy of the config); otherwise, or when ``include_dataloader`` is True or the
    method has ``needs_dataloaders = True``, the trained model's dataloaders are built.

    Attributes: the four upstream keys; ``mei`` (``<npy@mei>``), ``score``, ``output`` (``<object@mei>``,
    read with :meth:`fetch_output`), and provenance: ``steps``, ``wall_time`` (s), ``device``,
    ``config_hash``, ``versions`` (mei, torch, datajoint, python).

    ``populate(batch_size=K)`` fills up to K pending keys that share a model and a method in one batched
    run (:mod:`mei.pipeline.batched_populate`), one row per key as the plain populate writes it.
    """

    trained_model_table: ClassVar[Any] = None
    objective_table: ClassVar[Any] = None
    selector_table: ClassVar[Any] = None
    method_table: ClassVar[Any] = MEIMethod
    seed_table: ClassVar[Any] = MEISeed
    include_dataloader: ClassVar[bool] = False
    batched_compute: ClassVar[bool] = True  # batched populate reproduces this class's _compute (an override opts out)

    @classmethod
    def _objective_attribute(cls) -> str:
        if cls.trained_model_table is None:
            raise TypeError(f"{cls.__name__} needs a trained_model_table class attribute")
        for name in ("objective_table", "selector_table"):
            if getattr(cls, name) is not None:
                return name
        raise TypeError(f"{cls.__name__} needs an objective_table (or a selector_table) class attribute")

    @property
    def definition(self) -> str:
        store = db.store_name()
        return f"""
        # most exciting inputs
        -> self.method_table
        -> self.trained_model_table
        -> self.{self._objective_attribute()}
        -> self.seed_table
        ---
        mei: <npy@{store}>               # the MEI, a float array of the model's input shape
        score: float64                   # the method's score (gradient_ascent: the final evaluation)
        output: <object@{store}>         # the method's output (torch.save bytes)
        steps=null: int64                # optimization steps taken
        wall_time: float64               # seconds spent in the method
        device: varchar(32)              # where it ran
        config_hash: char(32)            # make_hash of the method config used
        versions: json                   # mei, torch, datajoint and python versions
        """

    # ---------------------------------------------------------------- fetch

    def get_objective(self, model: torch.nn.Module, key: Mapping[str, Any]) -> torch.nn.Module:
        """The objective module of ``key`` from the objective (or selector) table."""
        if self.objective_table is not None:
            return self.objective_table().get_objective(model, key)
        return self.selector_table().get_output_selected_model(model, key)

    def _cache_scope(self, trained: Any) -> tuple[Any, ...]:
        info = self.connection.conn_info
        return trained.full_table_name, str(info.get("host")), info.get("port")

    def load_model(self, key: Mapping[str, Any]) -> torch.nn.Module:
        """The frozen trained model of ``key``, through :data:`model_cache`."""
        trained = self.trained_model_table()
        return model_cache.get(primary_key_of(trained, key),
                               lambda k: _model_only(trained.load_model(k, include_dataloader=False)),
                               self._cache_scope(trained))

    def data_info(self, key: Mapping[str, Any]) -> dict[str, Any] | None:
        """The trained model's data info (cached like the model), or ``None`` if it has none."""
        trained = self.trained_model_table()
        if not hasattr(trained, "data_info"):
            return None
        return data_info_cache.get(primary_key_of(trained, key), trained.data_info, self._cache_scope(trained))

    def input_shape(self, key: Mapping[str, Any]) -> list[int] | None:
        """The model's input shape from the trained model's data info, or ``None`` if unknown."""
        info = self.data_info(key)
        if not info:
            return None
        shapes = {tuple(session["input_shape"]) for session in info.values()}
        if len(shapes) == 1:
            return list(shapes.pop())
        objective = (self.objective_table or self.selector_table)()
        data_key = (objective & key).fetch1("data_key") if "data_key" in objective.heading.names else None
        return list(info[data_key]["input_shape"]) if data_key in info else None

    def _dataloaders(self, key: Mapping[str, Any]) -> Any:
        trained = self.trained_model_table()
        return trained.load_model(primary_key_of(trained, key), include_dataloader=True)[0]

    # ---------------------------------------------------------------- compute

    def _compute(self, key: Mapping[str, Any], model: torch.nn.Module, objective: torch.nn.Module, method_fn: Any,
                 config: Mapping[str, Any], seed: int, dataloaders: Any = None) -> dict[str, Any]:
        """Generate one MEI: ``method_fn(dataloaders, objective, config, seed)`` with steps, device and time.

        Override or extend (e.g. for several units per run); ``model`` is the shared frozen model.
        """
        return run_method(method_fn, dataloaders, objective, config, seed)

    def make(self, key: dict[str, Any]) -> None:
        """Fetch, compute, insert one MEI."""
        method, stored_config = self.method_table().fetch_method(key)
        seed = (self.seed_table() & key).fetch1("mei_seed")
        model = self.load_model(key)
        objective = freeze_model(self.get_objective(model, key))  # in eval mode, so no run flips the model back
        config = run_config(method, stored_config, self.input_shape(key))
        needs_data = self.include_dataloader or getattr(method, "needs_dataloaders", "shape" not in config)
        dataloaders = self._dataloaders(key) if needs_data else None
        try:
            result = self._compute(key, model, objective, method, config, seed, dataloaders)
        except UnitOutOfRangeError as error:  # say which row selected the unit
            selector = (self.objective_table or self.selector_table)()
            raise UnitOutOfRangeError(error.units, error.n_units, f"{type(selector).__name__} row "
                                      f"{primary_key_of(selector, key)}: its output unit") from error
        row = self._row(key, result, stored_config)
        with db.store_errors(db.config_of(self.connection), hint=db.POPULATE_HINT):  # a clear error if the store fails
            self.insert1(row)

    # ---------------------------------------------------------------- insert

    @staticmethod
    def _row(key: Mapping[str, Any], result: Mapping[str, Any], stored_config: Mapping[str, Any]) -> dict[str, Any]:
        mei = result["mei"]
        mei = mei.detach().cpu().numpy() if isinstance(mei, torch.Tensor) else np.asarray(mei)
        return {**key, "mei": mei, "score": float(result["score"]), "output": to_bytes(result["output"]),
                "steps": result.get("steps"), "wall_time": float(result.get("wall_time", 0.0)),
                "device": str(result.get("device", "")), "config_hash": make_hash(stored_config),
                "versions": versions()}

    # ---------------------------------------------------------------- read back

    def fetch_mei(self, key: Mapping[str, Any] | None = None) -> torch.Tensor:
        """The MEI of one row as a CPU tensor."""
        rows = self if key is None else self & key
        with db.store_errors(db.config_of(self.connection)):
            return torch.from_numpy(np.array(rows.fetch1("mei")))

    def fetch_output(self, key: Mapping[str, Any] | None = None, trusted: bool = False) -> Any:
        """The method output of one row (tensors, numbers, containers; ``trusted=True`` allows any pickle).

        A dict comes back as a :class:`~mei.tracking.TrackedLog`: rows keyed by objective path (this version,
        as sinzlab/mei) and by class name (earlier versions) answer to both names.
        """
        rows = self if key is None else self & key
        with db.store_errors(db.config_of(self.connection)):
            output = from_bytes(rows.fetch1("output"), trusted=trusted)
        return TrackedLog(output) if isinstance(output, dict) else output


def clear_model_cache() -> None:
    """Empty :data:`model_cache` and :data:`data_info_cache` (e.g. after retraining models in place)."""
    model_cache.clear()
    data_info_cache.clear()
    _multi_session.clear()

