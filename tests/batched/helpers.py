"""A tiny CNN with several output units and config builders shared by the batched tests."""

import torch
from torch import nn

from mei.modules import ConstrainedOutputModel

SHAPE = [1, 1, 8, 8]
TOLERANCE = {"atol": 1e-5, "rtol": 1e-5}  # batched kernels sum in another order: float32 rounding only


def tiny_cnn(n_units: int = 5, seed: int = 0) -> nn.Module:
    """Conv - ELU - conv - ELU - linear, 1x8x8 -> ``n_units``, with fixed weights."""
    generator = torch.Generator().manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ELU(), nn.Conv2d(3, 3, 3), nn.ELU(), nn.Flatten(), nn.Linear(3 * 36, n_units)
    )
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    return net


def unit_models(net: nn.Module, units: list[int]) -> list[nn.Module]:
    return [ConstrainedOutputModel(net, unit) for unit in units]


def config(steps: int = 12, optimizer: str = "torch.optim.SGD", lr: float = 0.1, device: str = "cpu", **extra) -> dict:
    return {
        "device": device,
        "shape": SHAPE,
        "initial": {"path": "mei.initial.RandomNormal"},
        "optimizer": {"path": optimizer, "kwargs": {"lr": lr}},
        "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": steps}},
        **extra,
    }


class OutOfMemoryAbove(nn.Module):
    """Raises ``torch.OutOfMemoryError`` (as CUDA would) when asked for more than ``limit`` images."""

    def __init__(self, model: nn.Module, limit: int) -> None:
        super().__init__()
        self.model = model
        self.limit = limit
        self.batch_sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batch_sizes.append(x.shape[0])
        if x.shape[0] > self.limit:
            raise torch.OutOfMemoryError(f"pretend: {x.shape[0]} images do not fit")
        return self.model(x)


class Explode:
    """A stopper that raises at step ``at`` (a batch that fails part-way)."""

    def __init__(self, at: int = 1) -> None:
        self.at = at

    def __call__(self, state):
        if state.i_iter >= self.at:
            raise RuntimeError(f"stopper exploded at step {state.i_iter}")
        return False, None


def short_batched(dataloaders, model, config, seed):
    """``gradient_ascent``, with a broken batched counterpart that returns one result too few."""
    from mei.methods import gradient_ascent

    return gradient_ascent(dataloaders, model, config, seed)


def _drop_last(dataloaders, models, config, seeds):
    from mei.batched import gradient_ascent_batched

    return gradient_ascent_batched(dataloaders, models, config, seeds)[:-1]


short_batched.batched = _drop_last
