"""nnfabrik-protocol tables on DataJoint 2: Fabrikant, Seed, Dataset, Model, Trainer, trained models.

nnfabrik itself no longer imports on Python >= 3.10 and its ``longblob`` columns come back as raw bytes on
DataJoint 2, so this module provides the same table roles with the same columns (``*_fn``, ``*_hash``,
``*_config``, ``*_fabrikant``, ``*_comment``, ``*_ts``), the same ``add_entry`` and ``load_model`` protocol
and the same config hash (:func:`make_hash`), so that existing hashes carry over.

Two ways to use it:

* the package's own tables :class:`Fabrikant`, :class:`Seed`, :class:`Dataset`, :class:`Model`,
  :class:`Trainer`, bound to a schema by :func:`activate` (or, on first use, to the default schema
  ``mei_fabrik``, ``$MEI_FABRIK_SCHEMA``);
* your own tables in your own schema, built from the mixins (``class Model(ModelMixin, dj.Manual)``)
  or written from scratch: any table with the same columns and methods plugs into the templates.

The trained-model table is always yours: ``class TrainedModel(TrainedModelBase)`` in your schema, with
``dataset_table``, ``model_table``, ``trainer_table``, ``seed_table`` and ``user_table`` pointing at the
tables to use (by default the package's own).

Importing this module opens no database connection.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import datajoint as dj

from .pipeline import database as db
from .pipeline.builders import (
    accepts_keyword,
    data_info_from_dataloaders,
    get_data,
    get_model,
    get_trainer,
    resolve_fn,
)
from .pipeline.legacy_bridge.guard import LegacyGuard
from .pipeline.part_tables import give_own_parts
from .pipeline.schemas import LazyActivated, TableMixin, bind_schema, default_schema_name
from .pipeline.values import from_bytes, frozen_copy, make_hash, to_blob_value, to_bytes

__all__ = [
    "make_hash", "activate", "schema", "FabrikantMixin", "SeedMixin", "DatasetMixin", "ModelMixin", "TrainerMixin",
    "Fabrikant", "Seed", "Dataset", "Model", "Trainer", "TrainedModelBase", "get_data", "get_model", "get_trainer",
    "data_info_from_dataloaders",
]

ENV_SCHEMA = "MEI_FABRIK_SCHEMA"
DEFAULT_SCHEMA = "mei_fabrik"

schema = dj.Schema()


def activate(schema_name: str | None = None, *, connection: Any = None, create_schema: bool = True,
             create_tables: bool = True) -> dj.Schema:
    """Bind the package's nnfabrik-protocol tables (Fabrikant, Seed, Dataset, Model, Trainer) to a schema.

    You provide nothing upstream: these tables have no dependencies outside this module. Call it once per
    process before using the tables, or let their first use call it with the defaults.

    Args:
        schema_name (str, optional): database schema. Default: ``$MEI_FABRIK_SCHEMA`` or ``"mei_fabrik"``.
        connection (datajoint.Connection, optional): Default: :func:`mei.pipeline.database.connect` (embedded PostgreSQL
            unless a server is configured).
        create_schema (bool, optional): create the schema if missing. Default: True.
        create_tables (bool, optional): declare missing tables. Default: True.

    Returns:
        datajoint.Schema: the bound schema.
    """
    name = schema_name or default_schema_name(ENV_SCHEMA, DEFAULT_SCHEMA)
    return bind_schema(schema, name, connection=connection, create_schema=create_schema, create_tables=create_tables)


# --------------------------------------------------------------------------------------------- mixins


class FabrikantMixin(LegacyGuard, TableMixin):
    """Contributors. Attributes: ``fabrikant_name`` (key), ``email``, ``affiliation``, ``dj_username``."""

    definition = """
    # people who add entries
    fabrikant_name: varchar(32)   # name of the contributor
    ---
    email: varchar(64)            # e-mail address
    affiliation: varchar(32)      # contributor's affiliation
    dj_username: varchar(64)      # database user name
    """

    @classmethod
    def get_current_user(cls) -> str | None:
        """The ``fabrikant_name`` whose ``dj_username`` is the connected database user, or ``None``."""
        username = cls.connection.get_user().split("@")[0]
        entry = cls() & {"dj_username": username}
        return entry.fetch1("fabrikant_name") if len(entry) == 1 else None


class SeedMixin(LegacyGuard, TableMixin):
    """Random seeds passed to dataset and model builders. Attribute: ``seed`` (key)."""

    definition = """
    # random seeds for the dataset and model builders
    seed: int32
    """


class _FnConfigMixin(LegacyGuard, TableMixin):
    """Rows of ``<role>_fn`` (a dotted path) + ``<role>_config`` (its keyword arguments), hashed."""

    _role: ClassVar[str] = ""
    user_table: ClassVar[Any] = None

    @property
    def definition(self) -> str:
        role = self._role
        return f"""
        # {role} functions and their configurations
        {role}_fn: varchar(64)              # dotted path of the {role} function
        {role}_hash: varchar(64)            # make_hash of the configuration
        ---
        {role}_config: <blob>               # keyword arguments of the function
        -> self.user_table.proj({role}_fabrikant='fabrikant_name')
        {role}_comment='': varchar(256)     # short description
        {role}_ts=CURRENT_TIMESTAMP: datetime  # time of insertion
        """

    @property
    def fn_config(self) -> tuple[str, dict[str, Any]]:
        """``(fn, config)`` of the one row in this (restricted) table; the config is a private copy."""
        fn, config = self.fetch1(f"{self._role}_fn", f"{self._role}_config")
        return fn, frozen_copy(config)

    @classmethod
    def resolve_fn(cls, fn_name: str) -> Callable[..., Any]:
        """Resolve a dotted path through :func:`mei.engine.resolve.resolve`."""
        return resolve_fn(fn_name, f"{cls._role}_fn")

    def add_entry(self, fn: str, config: Mapping[str, Any], fabrikant: str | None = None, comment: str = "",
                  skip_duplicates: bool = False, **aliases: Any) -> dict[str, str]:
        """Add a function and its config; the dotted path is resolved first, a bad one writes no row.

        Args:
            fn (str): dotted path of the function (checked against the allowlist of :mod:`mei.engine.resolve`).
            config (dict): its keyword arguments.
            fabrikant (str, optional): a ``fabrikant_name`` in the user table. Default: the one whose
                ``dj_username`` is the connected database user.
            comment (str, optional): short description. Default: ``""``.
            skip_duplicates (bool, optional): return the existing entry instead of raising if the same
                function and config are already there. Default: False.
            **aliases: nnfabrik's keyword names ``<role>_fabrikant`` and ``<role>_comment`` are accepted.

        Returns:
            dict: the primary key ``{"<role>_fn": ..., "<role>_hash": ...}``.
        """
        role = self._role
        fabrikant = aliases.pop(f"{role}_fabrikant", fabrikant)
        comment = aliases.pop(f"{role}_comment", comment)
        if aliases:
            raise TypeError(f"add_entry got unexpected keyword arguments {sorted(aliases)}")
        self.resolve_fn(fn)
        if not isinstance(config, Mapping):
            raise TypeError(f"{role}_config must be a dict of keyword arguments, got {type(config).__name__}")
        if fabrikant is None:
            fabrikant = self.user_table.get_current_user()
            if fabrikant is None:
                raise ValueError(f"no {type(self.user_table()).__name__} entry for the connected database user; "
                                 f"pass {role}_fabrikant=... or insert one")
        key = {f"{role}_fn": fn, f"{role}_hash": make_hash(config)}
        if self & key:
            if not skip_duplicates:
                raise ValueError(f"{type(self).__name__} already has {key}; pass skip_duplicates=True to reuse it")
            return key
        self.insert1({**key, f"{role}_config": dict(config), f"{role}_fabrikant": fabrikant,
                      f"{role}_comment": comment})
        return key


class DatasetMixin(_FnConfigMixin):
    """Dataset functions: ``dataset_fn``, ``dataset_hash`` (key), ``dataset_config``, fabrikant, comment, ts."""

    _role = "dataset"

    def get_dataloader(self, seed: int | None = None, key: Mapping[str, Any] | None = None) -> Any:
        """Build the dataloaders of the one dataset selected by ``key``."""
        fn, config = (self & (key or {})).fn_config
        return get_data(fn, config, seed=seed)


class ModelMixin(_FnConfigMixin):
    """Model functions: ``model_fn``, ``model_hash`` (key), ``model_config``, fabrikant, comment, ts."""

    _role = "model"

    def build_model(self, dataloaders: Any = None, seed: int | None = None, key: Mapping[str, Any] | None = None,
                    data_info: Any = None) -> Any:
        """Build the model selected by ``key`` from dataloaders (or from ``data_info``)."""
        fn, config = (self & (key or {})).fn_config
        return get_model(fn, config, dataloaders, seed=seed, data_info=data_info)


class TrainerMixin(_FnConfigMixin):
    """Trainer functions: ``trainer_fn``, ``trainer_hash`` (key), ``trainer_config``, fabrikant, comment, ts."""

    _role = "trainer"

    def get_trainer(self, key: Mapping[str, Any] | None = None, build_partial: bool = True) -> Any:
        """The trainer function with its config bound, or ``(function, config)`` if not ``build_partial``."""
        fn, config = (self & (key or {})).fn_config
        return get_trainer(fn, config) if build_partial else (get_trainer(fn), config)


# ------------------------------------------------------------------------------------ package tables


@schema
class Fabrikant(LazyActivated, FabrikantMixin, dj.Manual):
    """The package's contributor table (see :class:`FabrikantMixin`)."""


@schema
class Seed(LazyActivated, SeedMixin, dj.Manual):
    """The package's seed table (see :class:`SeedMixin`)."""


@schema
class Dataset(LazyActivated, DatasetMixin, dj.Manual):
    """The package's dataset table (see :class:`DatasetMixin`)."""

    user_table = Fabrikant


@schema
class Model(LazyActivated, ModelMixin, dj.Manual):
    """The package's model table (see :class:`ModelMixin`)."""

    user_table = Fabrikant


@schema
class Trainer(LazyActivated, TrainerMixin, dj.Manual):
    """The package's trainer table (see :class:`TrainerMixin`)."""

    user_table = Fabrikant


# ------------------------------------------------------------------------------------ trained models


_NNFABRIK_TABLES = {"dataset_table": "Dataset", "model_table": "Model", "trainer_table": "Trainer",
                    "seed_table": "Seed", "user_table": "Fabrikant"}


def _cpu_state(model_state: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value.detach().cpu() if hasattr(value, "detach") else value for name, value in model_state.items()}


class TrainedModelBase(LegacyGuard, dj.Computed):
    """Template of a trained-model table: inherit it in your schema (``@schema class TrainedModel(...)``).

    ``make`` builds dataloaders and model, trains with the trainer function and stores score, output, the
    state dict (``ModelStorage``, in the MEI store) and what the data says about the model's inputs and
    outputs (``DataInfo``: input shape, data keys, neuron ids per data key), so that
    ``load_model(key, include_dataloader=False)`` never has to load a dataset.

    Class attributes to set (defaults: this module's package tables):
        dataset_table, model_table, trainer_table, seed_table, user_table. As in nnfabrik, ``nnfabrik`` may
        instead name a module (or dict) holding ``Dataset``, ``Model``, ``Trainer``, ``Seed`` and
        ``Fabrikant``; table attributes set explicitly take precedence.

    Attributes: the four upstream keys, ``comment``, ``score``, ``output`` (``<blob>``), ``fabrikant_name``
    (nullable), ``trainedmodel_ts``.
    """

    dataset_table: ClassVar[Any] = Dataset
    model_table: ClassVar[Any] = Model
    trainer_table: ClassVar[Any] = Trainer
    seed_table: ClassVar[Any] = Seed
    user_table: ClassVar[Any] = Fabrikant
    table_comment: ClassVar[str] = "trained models"
    comment_delimiter: ClassVar[str] = "."

    @property
    def definition(self) -> str:
        return f"""
        # {self.table_comment}
        -> self.model_table
        -> self.dataset_table
        -> self.trainer_table
        -> self.seed_table
        ---
        comment='': varchar(768)                  # comments of model, dataset and trainer
        score: float64                            # the trainer's score
        output: <blob>                            # the trainer's output
        -> [nullable] self.user_table
        trainedmodel_ts=CURRENT_TIMESTAMP: datetime
        """

    class ModelStorage(dj.Part):
        """The trained state dict (``torch.save`` bytes in the MEI store)."""

        @property
        def definition(self) -> str:
            return f"""
            -> master
            ---
            model_state: <object@{db.store_name()}>
            """

    class DataInfo(dj.Part):
        """Input shape, data keys and neuron ids of the training data (see ``data_info_from_dataloaders``)."""

        definition = """
        -> master
        ---
        data_info: json
        """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        give_own_parts(cls, ("ModelStorage", "DataInfo"))
        tables = cls.__dict__.get("nnfabrik")
        if tables is not None:
            tables = tables if isinstance(tables, Mapping) else vars(tables)
            for attribute, name in _NNFABRIK_TABLES.items():
                if attribute not in cls.__dict__:
                    setattr(cls, attribute, tables[name])

    def _one_key(self, key: Mapping[str, Any] | None) -> dict[str, Any]:
        """The primary key in ``key`` (the row need not exist yet, as in ``make``), else the one row selected."""
        if key is not None and all(name in key for name in self.primary_key):
            return {name: key[name] for name in self.primary_key}
        return self.fetch1("KEY") if key is None else (self & key).fetch1("KEY")

    def get_full_config(self, key: Mapping[str, Any] | None = None, include_state_dict: bool = True,
                        include_trainer: bool = True) -> dict[str, Any]:
        """``dataset_fn``/``dataset_config``/``model_fn``/``model_config`` (+ trainer, + ``state_dict``)."""
        key = self._one_key(key)
        full: dict[str, Any] = {}
        tables = [("model", self.model_table), ("dataset", self.dataset_table)]
        if include_trainer:
            tables.append(("trainer", self.trainer_table))
        for role, table in tables:
            full[f"{role}_fn"], full[f"{role}_config"] = (table() & key).fn_config
        storage = self.ModelStorage() & key
        if include_state_dict and storage:
            full["state_dict"] = from_bytes(storage.fetch1("model_state"))
        return full

    def data_info(self, key: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The stored data info of one trained model, or ``None`` if it has none."""
        rows = self.DataInfo() & self._one_key(key)
        return rows.fetch1("data_info") if rows else None

    def load_model(self, key: Mapping[str, Any] | None = None, include_dataloader: bool = True,
                   include_trainer: bool = False, include_state_dict: bool = True, seed: int | None = None) -> Any:
        """Build one trained model (nnfabrik's protocol).

        Args:
            key (dict, optional): selects one row. Default: this table must hold exactly one.
            include_dataloader (bool, optional): also build the dataloaders. Without them the model is
                built from the stored data info when its function accepts ``data_info``. Default: True.
            include_trainer (bool, optional): also return the trainer function. Default: False.
            include_state_dict (bool, optional): load the trained weights. Default: True.
            seed (int, optional): Default: the row's seed.

        Returns:
            ``(dataloaders, model)``, or ``model`` when ``include_dataloader`` is False; the trainer is
            appended when ``include_trainer``.
        """
        key = self._one_key(key)
        if seed is None:
            seed = (self.seed_table() & key).fetch1("seed")
        full = self.get_full_config(key, include_state_dict=include_state_dict, include_trainer=include_trainer)
        trainer = [get_trainer(full["trainer_fn"], full["trainer_config"])] if include_trainer else []
        if not include_dataloader:
            info = self.data_info(key)
            if info is not None and accepts_keyword(resolve_fn(full["model_fn"], "model_fn"), "data_info"):
                model = get_model(full["model_fn"], full["model_config"], None, seed=seed,
                                  state_dict=full.get("state_dict"), data_info=info)
                return (model, *trainer) if trainer else model
            warnings.warn(f"{full['model_fn']} cannot be built without dataloaders (no stored data info, or it "
                          "takes no data_info argument); building the dataloaders", stacklevel=2)
        dataloaders = get_data(full["dataset_fn"], full["dataset_config"], seed=seed)
        model = get_model(full["model_fn"], full["model_config"], dataloaders, seed=seed,
                          state_dict=full.get("state_dict"))
        if not include_dataloader:
            return (model, *trainer) if trainer else model
        return (dataloaders, model, *trainer)

    def call_back(self, uid: Any = None, epoch: Any = None, model: Any = None, info: Any = None) -> None:
        """Called by the trainer during training (override to log progress)."""

    def get_data_info(self, dataloaders: Any, model: Any) -> dict[str, Any]:
        """What to store in ``DataInfo`` (override for datasets the default cannot read)."""
        return data_info_from_dataloaders(dataloaders)

    def make(self, key: dict[str, Any]) -> None:
        """Build dataloaders and model, train, and insert the row, its state dict and its data info."""
        seed = (self.seed_table() & key).fetch1("seed")
        dataloaders, model, trainer = self.load_model(key, include_trainer=True, include_state_dict=False, seed=seed)

        def call_back(**kwargs: Any) -> None:
            self.connection.ping()
            self.call_back(**kwargs)

        score, output, model_state = trainer(model=model, dataloaders=dataloaders, seed=seed, uid=key, cb=call_back)
        comments = [(table() & key).fetch1(f"{role}_comment") for role, table in
                    (("trainer", self.trainer_table), ("model", self.model_table), ("dataset", self.dataset_table))]
        with db.store_errors(db.config_of(self.connection), hint=db.POPULATE_HINT):  # the weights go to the store
            self.insert1({**key, "score": float(score), "output": to_blob_value(output),
                          "comment": self.comment_delimiter.join(comments),
                          "fabrikant_name": self.user_table.get_current_user()})
            self.ModelStorage().insert1({**key, "model_state": to_bytes(_cpu_state(model_state))})
            self.DataInfo().insert1({**key, "data_info": self.get_data_info(dataloaders, model)})
