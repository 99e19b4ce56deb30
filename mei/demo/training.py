"""Poisson-loss training of the demo model on CPU, and an ensemble of members trained from different seeds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .models import DemoModel, build_model


@dataclass
class TrainingResult:
    """A trained member: the model, its loss per epoch (train and validation) and its validation correlation."""

    model: DemoModel
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_correlation: float = float("nan")


def poisson_loss(rates: Tensor, counts: Tensor, eps: float = 1e-6) -> Tensor:
    """Mean Poisson negative log-likelihood (without the constant ``log(counts!)``)."""
    return (rates - counts * torch.log(rates + eps)).mean()


def correlation_per_neuron(predicted: Tensor, observed: Tensor) -> Tensor:
    """Pearson correlation of each column of ``predicted`` with the same column of ``observed``."""
    p = predicted - predicted.mean(0)
    o = observed - observed.mean(0)
    return (p * o).sum(0) / (p.norm(dim=0) * o.norm(dim=0)).clamp_min(1e-12)


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, batch_size: int = 512) -> Tensor:
    """The model's rates for ``images`` in eval mode, batched."""
    model.eval()
    return torch.cat([model(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def _epoch(model: DemoModel, optimizer: torch.optim.Optimizer, images: Tensor, counts: Tensor,
           batch_size: int, l1: float, generator: torch.Generator) -> float:
    model.train()
    order = torch.randperm(len(images), generator=generator)
    total = 0.0
    for start in range(0, len(images), batch_size):
        index = order[start:start + batch_size]
        loss = poisson_loss(model(images[index]), counts[index])
        optimizer.zero_grad(set_to_none=True)
        (loss + l1 * model.readout.regularizer()).backward()
        optimizer.step()
        total += float(loss.detach()) * len(index)
    return total / len(images)


def fit(model: DemoModel, images: Tensor, counts: Tensor, val_images: Tensor, val_counts: Tensor, seed: int,
        epochs: int = 5, batch_size: int = 64, lr: float = 5e-3, l1: float = 0.02,
        progress: Callable[[int, float], Any] | None = None) -> TrainingResult:
    """Train ``model`` in place with Adam on the Poisson loss.

    Args:
        model (DemoModel): the model to train.
        images, counts (Tensor): training images ``(n, 1, h, w)`` and spike counts ``(n, neurons)``.
        val_images, val_counts (Tensor): held-out images and counts for the validation curve.
        seed (int): seeds the batch order.
        epochs (int, optional): passes over the training set. Default: 5.
        batch_size (int, optional): images per step. Default: 64.
        lr (float, optional): Adam learning rate (times 0.3 for the last third of the epochs). Default: 5e-3.
        l1 (float, optional): weight of the readout's sparsity penalty. Default: 0.02.
        progress (Callable, optional): called as ``progress(epoch, val_loss)`` after each epoch.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[max(1, 2 * epochs // 3)], gamma=0.3)
    generator = torch.Generator().manual_seed(seed)
    result = TrainingResult(model)
    for epoch in range(epochs):
        result.train_loss.append(_epoch(model, optimizer, images, counts, batch_size, l1, generator))
        scheduler.step()
        result.val_loss.append(float(poisson_loss(predict(model, val_images), val_counts)))
        if progress is not None:
            progress(epoch, result.val_loss[-1])
    result.val_correlation = float(correlation_per_neuron(predict(model, val_images), val_counts).mean())
    model.eval()
    return result


def train_model(images: Tensor, counts: Tensor, val_images: Tensor, val_counts: Tensor, seed: int,
                model_kwargs: dict[str, Any] | None = None, **fit_kwargs: Any) -> TrainingResult:
    """Build a :class:`DemoModel` from ``seed`` and :func:`fit` it (keyword arguments as there)."""
    model = build_model(counts.shape[1], images.shape[-2], images.shape[-1], seed, **(model_kwargs or {}))
    return fit(model, images, counts, val_images, val_counts, seed, **fit_kwargs)


def train_ensemble(images: Tensor, counts: Tensor, val_images: Tensor, val_counts: Tensor,
                   seeds: tuple[int, ...] = (1, 2, 3), **kwargs: Any) -> list[TrainingResult]:
    """Train one member per seed (see :func:`train_model` for the keyword arguments)."""
    return [train_model(images, counts, val_images, val_counts, seed, **kwargs) for seed in seeds]
