"""The demo's sizes and its MEI method config (no database needed to read them)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass
class DemoSettings:
    """Sizes of the demo. The defaults are the full demo; the tests use much smaller ones.

    Attributes:
        n_neurons, n_train, n_val, height, width: the synthetic recording.
        population_seed, data_seed: the seeds it is drawn from.
        member_seeds: one trained model per seed; the ensemble averages them all.
        epochs, channels: training passes and core channels of each member.
        steps, lr, blur: gradient-ascent steps, SGD learning rate and gradient blur (pixels) of the MEIs.
        norm_fraction: MEI norm as a fraction of a natural image's norm (all have ``sqrt(height * width)``).
        transfer: also make MEIs on the first member alone, to test them on the held-out members.
    """

    n_neurons: int = 48
    n_train: int = 5000
    n_val: int = 500
    height: int = 36
    width: int = 64
    population_seed: int = 0
    data_seed: int = 1
    member_seeds: tuple[int, ...] = (1, 2, 3)
    epochs: int = 5
    channels: int = 16
    steps: int = 50
    lr: float = 2.0
    blur: float = 1.5
    norm_fraction: float = 0.5
    transfer: bool = True

    def dataset_config(self) -> dict[str, Any]:
        keys = ("n_neurons", "n_train", "n_val", "height", "width", "population_seed", "data_seed")
        return {name: getattr(self, name) for name in keys}

    def method_config(self) -> dict[str, Any]:
        norm = self.norm_fraction * math.sqrt(self.height * self.width)
        return {
            "device": "cpu",
            "initial": {"path": "mei.initial.RandomNormal", "kwargs": {"std": 0.1}},
            "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": self.lr}},
            "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": self.steps}},
            "precondition": {"path": "mei.preconditioners.GaussianBlur", "kwargs": {"sigma": self.blur}},
            "postprocessing": {"path": "mei.postprocessing.ChangeNorm", "kwargs": {"norm": round(norm, 4)}},
            "objectives": [{"path": "mei.objectives.EvaluationObjective", "kwargs": {"interval": 10}}],
        }
