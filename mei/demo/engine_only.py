"""A small, self-contained engine demo: MEIs of a built-in CNN whose units are oriented edge detectors.

The CNN's first layer holds eight hand-made Gabor filters (four orientations, two phases); each output unit
reads one channel at one position through a small second layer. The MEI of a unit should therefore look like
its Gabor at its position. Used by ``mei demo --engine`` and in the docs.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from ..methods import gradient_ascent
from ..modules import ConstrainedOutputModel

CONFIG = {
    "device": "cpu",
    "shape": [1, 1, 32, 32],
    "initial": {"path": "mei.initial.RandomNormal", "kwargs": {"std": 0.1}},
    "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": 0.5}},
    "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": 150}},
    "transform": {"path": "mei.transforms.Jitter", "kwargs": {"max_shift": 1}},
    "precondition": {"path": "mei.preconditioners.GaussianBlur", "kwargs": {"sigma": 1.0}},
    "postprocessing": {"path": "mei.postprocessing.ChangeNorm", "kwargs": {"norm": 8.0}},
    "objectives": [{"path": "mei.objectives.EvaluationObjective", "kwargs": {"interval": 1}}],
}


def gabor(size: int, theta: float, phase: float, wavelength: float = 6.0, sigma: float = 2.5) -> torch.Tensor:
    """A ``size`` x ``size`` Gabor patch with zero mean and unit norm."""
    r = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    y, x = torch.meshgrid(r, r, indexing="ij")
    u = x * math.cos(theta) + y * math.sin(theta)
    g = torch.exp(-(x**2 + y**2) / (2 * sigma**2)) * torch.cos(2 * math.pi * u / wavelength + phase)
    g = g - g.mean()
    return g / g.norm()


class GaborCNN(nn.Module):
    """Conv (8 fixed Gabors, 11x11) -> ReLU -> per-unit 5x5 readout around a position -> softplus."""

    def __init__(self, n_units: int = 8, size: int = 32, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(1, 8, 11, padding=5, bias=False)
        filters = [gabor(11, k * math.pi / 4, p) for k in range(4) for p in (0.0, math.pi / 2)]
        self.conv.weight.data = torch.stack(filters)[:, None]
        self.channels = torch.randint(0, 8, (n_units,), generator=generator)
        self.positions = torch.randint(8, size - 8, (n_units, 2), generator=generator)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.relu(self.conv(x))
        out = [features[:, c, y - 2:y + 3, x_ - 2:x_ + 3].mean(dim=(1, 2))
               for c, (y, x_) in zip(self.channels.tolist(), self.positions.tolist(), strict=True)]
        return nn.functional.softplus(torch.stack(out, dim=1) * 4)


def run(out_dir: str | Path = "mei_output", n_units: int = 8, seed: int = 42) -> tuple[Path, Path]:
    """Generate an MEI per unit, write ``meis.png`` and ``losses.png`` into ``out_dir``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tqdm.auto import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = GaborCNN(n_units)
    results = [gradient_ascent(None, ConstrainedOutputModel(model, unit), CONFIG, seed)
               for unit in tqdm(range(n_units), desc="MEIs", unit="unit")]
    fig, axes = plt.subplots(2, n_units // 2, figsize=(2 * n_units // 2, 4.4))
    # not strict: odd n_units, one axis short
    for unit, (ax, (mei, score, _)) in enumerate(zip(axes.flat, results, strict=False)):
        lim = float(mei.abs().max())
        ax.imshow(mei[0, 0], cmap="gray", vmin=-lim, vmax=lim)
        ax.set_title(f"unit {unit}: {score:.2f}", fontsize=9)
        ax.axis("off")
    fig.suptitle("MEIs of the built-in Gabor CNN (title: unit, final activation)")
    grid_path = out / "meis.png"
    fig.savefig(grid_path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    for unit, (_, _, output) in enumerate(results):
        track = output["EvaluationObjective"]
        ax.plot(track["times"], track["values"], label=f"unit {unit}")
    ax.set_xlabel("step")
    ax.set_ylabel("activation")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Activation during gradient ascent")
    loss_path = out / "losses.png"
    fig.savefig(loss_path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return grid_path, loss_path
