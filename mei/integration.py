"""sinzlab/mei's ``mei.integration`` at its import path: the helpers of its table mixins.

* :func:`get_mappings` — neuron id -> output position rows from a CSRF-V1-style dataset config;
* :class:`ModelLoader` — loads trained models through a table's ``load_model`` and caches them;
* :func:`hash_list_of_dictionaries` — an order-independent hash of a list of keys (the ensemble hash);
* :func:`import_module` — a method function by dotted path, through the package's allowlist.

Hashes are nnfabrik's ``make_hash`` (:func:`mei.pipeline.values.make_hash`, same values); nothing here
imports nnfabrik or DataJoint.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .engine.component import METHOD_KINDS
from .engine.resolve import resolve
from .pipeline.values import make_hash

Key = dict[str, Any]


def load_pickled_data(path: str) -> Any:
    """The object pickled in the file ``path``.

    Unpickling runs code: read only files of your own (sinzlab/mei's CSRF V1 data files are pickles).
    """
    with open(path, "rb") as datafile:
        return pickle.load(datafile)  # the lab's own data files, as in sinzlab/mei


def get_mappings(dataset_config: Mapping[str, Any], key: Mapping[str, Any],
                 load_func: Callable[[str], Any] = load_pickled_data) -> list[Key]:
    """One row per neuron of each data file of ``dataset_config["datafiles"]``.

    Each row is ``key`` plus ``neuron_id`` (from the file's ``unit_indices``), ``neuron_position`` (its index
    there) and ``session_id`` (the file's ``session_id``).
    """
    entities = []
    for datafile_path in dataset_config["datafiles"]:
        data = load_func(datafile_path)
        for neuron_pos, neuron_id in enumerate(data["unit_indices"]):
            entities.append(dict(key, neuron_id=neuron_id, neuron_position=neuron_pos, session_id=data["session_id"]))
    return entities


def import_module(path: str) -> Any:
    """The method function named by ``path`` (e.g. ``"mei.methods.gradient_ascent"``), through the allowlist."""
    return resolve(path, key="method_fn", kinds=METHOD_KINDS)


class ModelLoader:
    """Loads models with ``model_table().load_model(key=key)`` and keeps the last ``cache_size_limit`` of them.

    Models are cached by the trained-model part of the key (the model table's primary key), so keys that
    differ elsewhere share one model. ``cache_size_limit=0`` caches nothing.

    Args:
        model_table (type): the (trained or ensemble) model table class.
        cache_size_limit (int, optional): models kept. Default: 10.
    """

    def __init__(self, model_table: Any, cache_size_limit: int = 10) -> None:
        if cache_size_limit < 0:
            raise ValueError(f"cache_size_limit must be >= 0, got {cache_size_limit}")
        self.model_table = model_table
        self.cache_size_limit = cache_size_limit
        self.cache: dict[str, Any] = {}

    def load(self, key: Mapping[str, Any]) -> Any:
        """What ``load_model`` returns for ``key`` (usually ``(dataloaders, model)``), from the cache if there."""
        if self.cache_size_limit == 0:
            return self._load_model(key)
        name = self._hash_trained_model_key(key)
        if name not in self.cache:
            self.cache[name] = self._load_model(key)
            if len(self.cache) > self.cache_size_limit:
                del self.cache[next(iter(self.cache))]
        return self.cache[name]

    def _load_model(self, key: Mapping[str, Any]) -> Any:
        return self.model_table().load_model(key=key)

    def _hash_trained_model_key(self, key: Mapping[str, Any]) -> str:
        return make_hash({k: key[k] for k in self.model_table().primary_key})


def hash_list_of_dictionaries(list_of_dicts: Iterable[Mapping[str, Any]]) -> str:
    """A 32-character hash of a list of dicts, independent of the order of the list and of each dict's keys."""
    by_hash = {make_hash(d): d for d in list_of_dicts}
    return make_hash([by_hash[h] for h in sorted(by_hash)])


__all__ = ["load_pickled_data", "get_mappings", "import_module", "ModelLoader", "hash_list_of_dictionaries"]
