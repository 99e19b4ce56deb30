"""A tiny lab for the pipeline tests: dataset, model and trainer functions, a custom stopper.

Named by dotted path (``tests.pipeline.lab.*``) in the tables, as a lab's own module would be.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mei.methods import gradient_ascent
from mei.stoppers import OptimizationStopper


class _Neurons:
    def __init__(self, unit_ids: list[int]) -> None:
        self.unit_ids = unit_ids


class _Recording(TensorDataset):
    """A TensorDataset that also carries neuron ids, the way sinzlab datasets do."""

    def __init__(self, images: torch.Tensor, responses: torch.Tensor, unit_ids: list[int]) -> None:
        super().__init__(images, responses)
        self.neurons = _Neurons(unit_ids)


CALLS = {"dataset_fn": 0}


def dataset_fn(seed: int, n_images: int = 8, size: int = 5, n_neurons: int = 3, first_id: int = 100) -> dict:
    """One session ``"s1"`` of random images and responses; neuron ids ``first_id, first_id + 1, ...``."""
    CALLS["dataset_fn"] += 1
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(n_images, 1, size, size, generator=generator)
    responses = torch.randn(n_images, n_neurons, generator=generator)
    dataset = _Recording(images, responses, list(range(first_id, first_id + n_neurons)))
    return {"train": {"s1": DataLoader(dataset, batch_size=4)}}


class PopulationModel(nn.Module):
    """``tanh`` of a linear readout per neuron, so every unit has a bounded, smooth response."""

    def __init__(self, n_pixels: int, n_neurons: int, generator: torch.Generator) -> None:
        super().__init__()
        self.readout = nn.Linear(n_pixels, n_neurons)
        with torch.no_grad():
            self.readout.weight.copy_(torch.randn(n_neurons, n_pixels, generator=generator) * 0.3)
            self.readout.bias.zero_()

    def forward(self, x: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
        if data_key not in (None, "s1"):
            raise KeyError(f"unknown data key {data_key!r}")
        return torch.tanh(self.readout(x.flatten(1)))


def model_fn(dataloaders: Any, seed: int, data_info: dict | None = None, scale: float = 1.0) -> PopulationModel:
    """Build the model from the dataloaders, or without them from the stored data info."""
    if data_info is not None:
        session = data_info["s1"]
        shape, n_neurons = session["input_shape"], session["n_outputs"]
    else:
        images, responses = next(iter(dataloaders["train"]["s1"]))
        shape, n_neurons = [1, *images.shape[1:]], responses.shape[1]
    n_pixels = 1
    for size in shape[1:]:
        n_pixels *= int(size)
    return PopulationModel(n_pixels, int(n_neurons), torch.Generator().manual_seed(seed + int(scale * 1000)))


def trainer_fn(model: nn.Module, dataloaders: dict, seed: int, uid: Any = None, cb: Any = None,
               epochs: int = 1, lr: float = 0.05) -> tuple[float, dict, dict]:
    """A few SGD steps on the mean squared error; returns ``(score, output, state_dict)``."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for epoch in range(epochs):
        for images, responses in dataloaders["train"]["s1"]:
            optimizer.zero_grad()
            loss = ((model(images) - responses) ** 2).mean()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        if cb is not None:
            cb(uid=uid, epoch=epoch, model=model, info=None)
    return -losses[-1], {"losses": losses}, model.state_dict()


class EvaluationThresholdOrSteps(OptimizationStopper):
    """Stop once the evaluation reaches ``threshold`` or after ``max_steps`` steps (the README's example)."""

    def __init__(self, threshold: float, max_steps: int) -> None:
        self.threshold = float(threshold)
        self.max_steps = int(max_steps)

    def __call__(self, current_state: Any) -> tuple[bool, Any]:
        done = current_state.evaluation >= self.threshold or current_state.i_iter + 1 >= self.max_steps
        return bool(done), None


def vandal_method(dataloaders: Any, model: nn.Module, config: dict, seed: int) -> tuple:
    """Gradient ascent that then vandalizes the config it was given (the pipeline must not care)."""
    result = gradient_ascent(dataloaders, model, config, seed)
    config["stopper"]["kwargs"]["max_steps"] = 1
    config.pop("objectives")
    return result


vandal_method.accepts_shape = True


def not_a_method(x: Any) -> Any:
    """A callable with the wrong signature for a method (used by bad-input tests)."""
    return x
