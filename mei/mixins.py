"""sinzlab/mei's table mixins at their import path, for tables on DataJoint 2.

A lab builds its tables from these as with sinzlab/mei, e.g.
``class MEI(mixins.MEITemplateMixin, dj.Computed)`` with ``trained_model_table``, ``objective_table``,
``method_table`` and ``seed_table`` set; :mod:`mei.main` has the ready templates (``CSRFV1ObjectiveTemplate``
among them). The mixins keep sinzlab/mei's methods, class attributes and collaborators (``import_func``,
``model_loader_class``, ``save``, ``get_temp_dir``, ``get_mappings``); their definitions use DataJoint 2 types
(``<blob>`` for configs, ``<attach@store>`` for the MEI and output files, the store named by ``$MEI_STORE``;
fetched attachments are written to ``dj.config["download_path"]``, the working directory by default).
Differences from sinzlab/mei are listed in docs/sinzlab.md (``add_method`` validates the method first).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping
from random import choice
from string import ascii_letters
from typing import Any

import torch

from . import integration
from .modules import ConstrainedOutputModel, EnsembleModel
from .pipeline import database as db
from .pipeline import dj_repairs
from .pipeline.generation import validate_method
from .pipeline.values import frozen_copy, make_hash

Key = dict[str, Any]

dj_repairs.install()  # tables of a lab's own schema, before any heading is read (MariaDB store columns)


def _as_dicts(expression: Any) -> list[Key]:
    """``expression.fetch(as_dict=True)`` (sinzlab/mei's call; DataJoint 2 keeps it, deprecated)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return list(expression.fetch(as_dict=True))


class TrainedEnsembleModelTemplateMixin:
    """Ensembles of trained models. Set ``dataset_table`` and ``trained_model_table``; part table ``Member``."""

    definition = """
    # contains ensemble ids
    -> self.dataset_table
    ensemble_hash                   : char(32)      # the hash of the ensemble
    ---
    ensemble_comment        = ''    : varchar(256)  # a short comment describing the ensemble
    """

    class Member:
        """The trained models of an ensemble."""

        definition = """
        # contains assignments of trained models to a specific ensemble id
        -> master
        -> master.trained_model_table
        """

        insert: Callable[[Iterable[Any]], None]
        fetch: Callable[..., Any]

    dataset_table: Any = None
    trained_model_table: Any = None
    ensemble_model_class: Any = EnsembleModel

    insert1: Callable[..., None]
    fetch1: Callable[..., Any]
    __and__: Callable[..., Any]

    def create_ensemble(self, key: Any, comment: str = "") -> None:
        """An ensemble of the trained models in ``trained_model_table & key``; ``key`` must select one dataset.

        Raises:
            ValueError: the key selects no dataset or several.
        """
        if len(self.dataset_table() & key) != 1:
            raise ValueError("Provided key not sufficient to restrict dataset table to one entry!")
        dataset_key = (self.dataset_table().proj() & key).fetch1()
        models = _as_dicts(self.trained_model_table().proj() & key)
        primary_key = dict(dataset_key, ensemble_hash=integration.hash_list_of_dictionaries(models))
        self.insert1(dict(primary_key, ensemble_comment=comment))
        self.Member().insert([{**primary_key, **m} for m in models])

    def load_model(self, key: Any = None) -> tuple[Any, Any]:
        """``(dataloaders of the first member, ensemble model)`` of the one ensemble in ``key``."""
        if key is None:
            key = self.fetch1("KEY")
        return self._load_ensemble_model(key=key)

    def _load_ensemble_model(self, key: Any = None) -> tuple[Any, Any]:
        ensemble_key = (self & key).fetch1()
        model_keys = _as_dicts(self.Member() & ensemble_key)
        loaded = [self.trained_model_table().load_model(key=k) for k in model_keys]
        dataloaders, models = (list(x) for x in zip(*loaded, strict=True))
        return dataloaders[0], self.ensemble_model_class(*models)


class CSRFV1ObjectiveTemplateMixin:
    """Neuron id -> position in the model's output (and session) for datasets of ``dataset_fn``."""

    definition = """
    # contains information that can be used to map a neuron's id to its corresponding integer position in the output of
    # the model.
    -> self.dataset_table
    neuron_id       : int32         # unique neuron identifier
    ---
    neuron_position : int32         # integer position of the neuron in the model's output
    session_id      : varchar(13)   # unique session identifier
    """

    dataset_table: Any = None
    dataset_fn = "csrf_v1"
    constrained_output_model: Any = ConstrainedOutputModel

    insert: Callable[[Iterable[Any]], None]
    __and__: Callable[..., Any]

    @property
    def _key_source(self) -> Any:
        return self.dataset_table() & dict(dataset_fn=self.dataset_fn)

    @property
    def key_source(self) -> Any:
        return self._key_source

    def _declare_check(self, primary_key: list[str], fk_attribute_map: dict[str, Any]) -> None:
        """Allow ``neuron_id`` in the key: one ``make`` fills all neurons of a dataset, as in sinzlab/mei."""

    def make(self, key: Key, get_mappings: Callable[..., Any] = integration.get_mappings) -> None:
        """Insert the neuron mappings of the dataset in ``key`` (read from its data files)."""
        dataset_config = (self.dataset_table() & key).fetch1("dataset_config")
        self.insert(get_mappings(dataset_config, key))

    def get_objective(self, model: Any, key: Key) -> Any:
        """``model`` constrained to the neuron of ``key``, called with ``data_key=<session_id>``."""
        neuron_pos, session_id = (self & key).fetch1("neuron_position", "session_id")
        return self.constrained_output_model(model, neuron_pos, forward_kwargs=dict(data_key=session_id))


class MEIMethodMixin:
    """Methods of MEI generation: a method function (dotted path) and its config."""

    definition = """
    # contains methods for generating MEIs and their configurations.
    method_fn                           : varchar(64)   # name of the method function
    method_hash                         : varchar(32)   # hash of the method config
    ---
    method_config                       : <blob>        # method configuration object
    method_ts       = CURRENT_TIMESTAMP : datetime      # UTZ timestamp at time of insertion
    method_comment                      : varchar(256)  # a short comment describing the method
    """

    insert1: Callable[..., None]
    __and__: Callable[..., Any]

    seed_table: Any = None
    import_func = staticmethod(integration.import_module)
    optional_names: tuple[str, ...] = ("initial", "transform", "regularization", "precondition", "postprocessing")
    """The config's components that get the MEI table's key (see :meth:`insert_key_in_ops`)."""

    def add_method(self, method_fn: str, method_config: Mapping[str, Any], comment: str = "") -> None:
        """Add a method; it is validated first (path allowed, config complete), so nothing bad is written.

        Raises:
            mei.engine.errors.ConfigError: the method path or its config is invalid.
        """
        validate_method(method_fn, method_config)
        self.insert1(dict(method_fn=method_fn, method_hash=make_hash(method_config),
                          method_config=method_config, method_comment=comment))

    def generate_mei(self, dataloaders: Any, model: Any, key: Key, seed: int) -> dict[str, Any]:
        """Run the method of ``key``: ``dict(key, mei=, score=, output=)``."""
        method_fn, method_config = (self & key).fetch1("method_fn", "method_config")
        method = self.import_func(method_fn)
        method_config = frozen_copy(method_config)
        self.insert_key_in_ops(method_config=method_config, key=key)
        mei, score, output = method(dataloaders, model, method_config, seed)
        return dict(key, mei=mei, score=score, output=output)

    def insert_key_in_ops(self, method_config: dict[str, Any], key: Key) -> None:
        """Give ``key`` to every component of :attr:`optional_names` whose kwargs have a ``"key"`` entry (the
        ring / centre / surround ops of :mod:`mei.legacy.ops` find earlier MEIs by it), in place; a config that
        is not a dict is left to the method to judge."""
        if not isinstance(method_config, Mapping):
            return
        for name, spec in method_config.items():
            if name in self.optional_names and isinstance(spec, dict) and "key" in (spec.get("kwargs") or {}):
                spec["kwargs"]["key"] = dict(key)


class MEISeedMixin:
    """Seeds that make the MEI generation reproducible."""

    definition = """
    # contains seeds used to make the MEI generation process reproducible
    mei_seed    : int64   # MEI seed
    """


class MEITemplateMixin:
    """MEIs: set ``trained_model_table``, ``objective_table``, ``method_table`` and ``seed_table``.

    ``make`` loads the model (cached by :class:`mei.integration.ModelLoader`), builds the objective, runs the
    method and inserts the MEI and the method's output as attached ``torch.save`` files.
    """

    trained_model_table: Any = None
    objective_table: Any = None
    method_table: Any = None
    seed_table: Any = None
    model_loader_class: Any = integration.ModelLoader
    save = staticmethod(torch.save)
    get_temp_dir: Any = tempfile.TemporaryDirectory

    insert1: Callable[..., None]

    @property
    def definition(self) -> str:
        store = db.store_name()
        return f"""
        # contains maximally exciting images (MEIs)
        -> self.method_table
        -> self.trained_model_table
        -> self.objective_table
        -> self.seed_table
        ---
        mei                 : <attach@{store}>  # the MEI as a tensor
        score               : float64           # some score depending on the used method function
        output              : <attach@{store}>  # object returned by the method function
        """

    def __init__(self, *args: Any, cache_size_limit: int = 10, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model_loader = self.model_loader_class(self.trained_model_table, cache_size_limit=cache_size_limit)

    def make(self, key: Key) -> None:
        """Fetch the model, seed and objective, generate the MEI, insert it."""
        dataloaders, model = self.model_loader.load(key=key)
        seed = (self.seed_table() & key).fetch1("mei_seed")
        objective = self.objective_table().get_objective(model, key)
        mei_entity = self.method_table().generate_mei(dataloaders, objective, key, seed)
        self._insert_mei(mei_entity)

    def _insert_mei(self, mei_entity: dict[str, Any]) -> None:
        """Save the MEI and the output to a temporary directory and insert the row with the files attached."""
        with self.get_temp_dir() as temp_dir:
            for name in ("mei", "output"):
                self._save_to_disk(mei_entity, temp_dir, name)
            self.insert1(mei_entity)

    def _save_to_disk(self, mei_entity: dict[str, Any], temp_dir: str, name: str) -> None:
        data = mei_entity.pop(name)
        filepath = os.path.join(temp_dir, f"{name}_{self._create_random_filename()}.pth.tar")
        self.save(data, filepath)
        mei_entity[name] = filepath

    @staticmethod
    def _create_random_filename(length: int = 32) -> str:
        return "".join(choice(ascii_letters) for _ in range(length))  # a file name, not a secret


__all__ = [
    "TrainedEnsembleModelTemplateMixin", "CSRFV1ObjectiveTemplateMixin", "MEIMethodMixin", "MEISeedMixin",
    "MEITemplateMixin",
]
