"""A two-session video lab for the pipeline test: dataset, model and trainer functions by dotted path."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .models import SHAPE, TwoSessionModel, session_filters

SESSIONS = {"session-a": 100, "session-b": 200}  # data key -> first neuron id


class _Neurons:
    def __init__(self, unit_ids: list[int]) -> None:
        self.unit_ids = unit_ids


class _Recording(TensorDataset):
    """Movies and responses ``(N, neurons, time)`` with neuron ids, the sinzlab layout."""

    def __init__(self, movies: torch.Tensor, responses: torch.Tensor, unit_ids: list[int]) -> None:
        super().__init__(movies, responses)
        self.neurons = _Neurons(unit_ids)


def dataset_fn(seed: int, n_movies: int = 4) -> dict[str, Any]:
    """Two sessions of random movies ``(N, 2, 8, 9, 9)``; three neurons each, ids 100.. and 200..."""
    generator = torch.Generator().manual_seed(seed)
    loaders = {}
    for data_key, first_id in SESSIONS.items():
        movies = torch.randn(n_movies, *SHAPE[1:], generator=generator)
        responses = torch.randn(n_movies, 3, 1, generator=generator)
        loaders[data_key] = DataLoader(_Recording(movies, responses, [first_id + u for u in range(3)]), batch_size=2)
    return {"train": loaders}


def model_fn(dataloaders: Any, seed: int, data_info: dict | None = None) -> nn.Module:
    """The two-session linear filter model (its filters are known, so the MEIs are too)."""
    return TwoSessionModel(session_filters())


def trainer_fn(model: nn.Module, dataloaders: dict, seed: int, uid: Any = None, cb: Any = None) -> tuple:
    """No training: the filters are the ground truth."""
    return 0.0, {}, model.state_dict()
