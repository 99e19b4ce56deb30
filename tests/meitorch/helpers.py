"""Small operations with known optima for the meitorch tests."""

import torch

SHAPE = (1, 8, 8)


def target(seed: int = 1, shape=SHAPE) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def squared_distance_operation(t: torch.Tensor, seen: list | None = None):
    """objective = mean over the batch of ||x - t||^2: the MEI is t."""

    def operation(inputs):
        if seen is not None:
            seen.append(inputs.detach().clone())
        loss = ((inputs - t) ** 2).flatten(1).sum(1).mean()
        return dict(objective=loss, distance=loss.sqrt())

    return operation


def linear_operation(w: torch.Tensor):
    """objective = -mean <x, w>: the gradient of each image is -w / n (constant)."""

    def operation(inputs):
        activation = (inputs * w).flatten(1).sum(1).mean()
        return dict(objective=-activation, activation=activation)

    return operation
