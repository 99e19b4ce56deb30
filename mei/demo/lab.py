"""The demo's dataset, model and trainer functions, in the nnfabrik protocol the fabrik tables call.

Named by dotted path in the tables (``mei.demo.lab.dataset_fn`` …), as a lab's own functions would be.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from ..engine.component import component
from .models import DemoModel, build_model
from .population import Population, make_population, natural_images
from .training import fit

DATA_KEY = "v1"


class _Neurons:
    def __init__(self, unit_ids: list[int]) -> None:
        self.unit_ids = unit_ids


class Recording(TensorDataset):
    """Images and spike counts of one session, with ``neurons.unit_ids`` as sinzlab datasets have."""

    def __init__(self, images: Tensor, responses: Tensor) -> None:
        super().__init__(images, responses)
        self.neurons = _Neurons(list(range(responses.shape[1])))


@functools.lru_cache(maxsize=2)
def population_for(n_neurons: int, height: int, width: int, population_seed: int, typed: bool = True) -> Population:
    """The known population of a dataset config (cached: it is drawn again for every trained model)."""
    return make_population(n_neurons, height, width, seed=population_seed, typed=typed)


@functools.lru_cache(maxsize=2)
def _recordings(n_neurons: int, n_train: int, n_val: int, height: int, width: int, population_seed: int,
                data_seed: int, typed: bool = True) -> tuple[Recording, Recording]:
    population = population_for(n_neurons, height, width, population_seed, typed)
    images = natural_images(n_train + n_val, height, width, seed=data_seed)
    counts = population.responses(images, seed=data_seed + 1)
    return Recording(images[:n_train], counts[:n_train]), Recording(images[n_train:], counts[n_train:])


@component("dataset")
def dataset_fn(seed: int | None = None, n_neurons: int = 48, n_train: int = 5000, n_val: int = 500,
               height: int = 36, width: int = 64, population_seed: int = 0, data_seed: int = 1,
               batch_size: int = 64, typed: bool = True) -> dict[str, dict[str, DataLoader]]:
    """Dataloaders ``{"train": {"v1": ...}, "validation": {"v1": ...}}`` of the synthetic recording.

    The data depend on the config only (``population_seed``, ``data_seed``, ``typed``: a population of
    functional types, :func:`~mei.demo.population.make_population`), not on ``seed``, so every ensemble member
    sees the same recording; ``seed`` only orders the training batches.
    """
    train, validation = _recordings(n_neurons, n_train, n_val, height, width, population_seed, data_seed, typed)
    generator = torch.Generator().manual_seed(seed if seed is not None else 0)
    return {"train": {DATA_KEY: DataLoader(train, batch_size=batch_size, shuffle=True, generator=generator)},
            "validation": {DATA_KEY: DataLoader(validation, batch_size=512)}}


@component("model")
def model_fn(dataloaders: Any, seed: int, data_info: dict | None = None, channels: int = 16,
             kernel_size: int = 13) -> DemoModel:
    """A :class:`~mei.demo.models.DemoModel` sized from the dataloaders, or from the stored data info."""
    if data_info is not None:
        session = data_info[DATA_KEY]
        shape, n_neurons = session["input_shape"], session["n_outputs"]
    else:
        images, responses = dataloaders["train"][DATA_KEY].dataset.tensors
        shape, n_neurons = images.shape, responses.shape[1]
    return build_model(int(n_neurons), int(shape[-2]), int(shape[-1]), seed, channels=channels,
                       kernel_size=kernel_size)


@component("trainer")
def trainer_fn(model: nn.Module, dataloaders: Any, seed: int, uid: Any = None, cb: Any = None, epochs: int = 5,
               lr: float = 5e-3, l1: float = 0.02, batch_size: int = 64) -> tuple[float, dict, dict]:
    """Train with the Poisson loss; returns ``(validation correlation, loss curves, state dict)``."""
    images, counts = dataloaders["train"][DATA_KEY].dataset.tensors
    val_images, val_counts = dataloaders["validation"][DATA_KEY].dataset.tensors
    with tqdm(total=epochs, desc=f"training member seed={seed}", unit="epoch", leave=False) as bar:
        def progress(epoch: int, val_loss: float) -> None:
            bar.set_postfix(val_loss=f"{val_loss:.4f}")
            bar.update()
            if cb is not None:
                cb(uid=uid, epoch=epoch, model=model, info={"val_loss": val_loss})

        if not isinstance(model, DemoModel):
            raise TypeError(f"trainer_fn trains a DemoModel (from model_fn), got {type(model).__name__}")
        result = fit(model, images, counts, val_images, val_counts, seed, epochs=epochs, batch_size=batch_size,
                     lr=lr, l1=l1, progress=progress)
    output = {"train_loss": result.train_loss, "val_loss": result.val_loss}
    return result.val_correlation, output, model.state_dict()
