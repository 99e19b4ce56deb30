"""A small LRU cache of frozen models, shared by the MEI rows that use the same trained model."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


def freeze_model(model: Any) -> Any:
    """Put ``model`` in eval mode with every parameter's ``requires_grad`` off; returns it.

    A frozen model carries nothing from one MEI to the next: its weights receive no gradients and no
    optimizer ever holds them, and batch-norm statistics and dropout are fixed by eval mode.
    """
    if hasattr(model, "requires_grad_"):
        model.requires_grad_(False)
    if hasattr(model, "eval"):
        model.eval()
    return model


class ModelCache:
    """Least-recently-used cache of models built by ``load(key)``, frozen on the way in.

    Args:
        size (int, optional): how many models to keep. Default: 4.
        prepare (Callable, optional): applied to each loaded value. Default: :func:`freeze_model`.
    """

    def __init__(self, size: int = 4, prepare: Callable[[Any], Any] | None = freeze_model) -> None:
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive int, got {size!r}")
        self.size = size
        self.prepare = prepare
        self.hits = 0
        self.misses = 0
        self._models: OrderedDict[Hashable, Any] = OrderedDict()

    @staticmethod
    def _cache_key(scope: Hashable, key: dict[str, Any]) -> Hashable:
        return scope, tuple(sorted((name, str(value)) for name, value in key.items()))

    def get(self, key: dict[str, Any], load: Callable[[dict[str, Any]], Any], scope: Hashable = None) -> Any:
        """The frozen model of ``key``, built by ``load(key)`` on a miss.

        Args:
            key (dict): the trained-model key.
            load (Callable[[dict], Any]): builds the model of a key.
            scope (Hashable, optional): separates tables and databases with equal keys. Default: None.
        """
        cache_key = self._cache_key(scope, key)
        if cache_key in self._models:
            self.hits += 1
            self._models.move_to_end(cache_key)
            return self._models[cache_key]
        self.misses += 1
        model = load(key)
        if self.prepare is not None:
            model = self.prepare(model)
        self._models[cache_key] = model
        while len(self._models) > self.size:
            self._models.popitem(last=False)
        return model

    def clear(self) -> None:
        """Forget every cached model."""
        self._models.clear()

    def __len__(self) -> int:
        return len(self._models)
