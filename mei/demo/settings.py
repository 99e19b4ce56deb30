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
        analyses: also compute most discriminative stimuli (``mds_clusters`` clusters, ``mds_steps`` steps per
            stimulus) and the in-silico tuning of every neuron (:mod:`mei.pipeline.analysis_tables`).
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
    analyses: bool = True
    mds_clusters: int = 3
    mds_steps: int = 50

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

    def mds_config(self) -> dict[str, Any]:
        """The gradient-ascent config of the most discriminative stimuli (Adam, the MEIs' norm)."""
        norm = self.norm_fraction * math.sqrt(self.height * self.width)
        return {
            "device": "cpu",
            "initial": {"path": "mei.initial.RandomNormal", "kwargs": {"std": 0.1}},
            "optimizer": {"path": "torch.optim.Adam", "kwargs": {"lr": 0.1}},
            "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": self.mds_steps}},
            "postprocessing": {"path": "mei.postprocessing.ChangeNorm", "kwargs": {"norm": round(norm, 4)}},
        }

    def tuning_config(self) -> dict[str, Any]:
        """The grating grid of the in-silico tuning (15-degree orientations, 12 frequencies, 8 phases, sizes)."""
        diagonal = math.hypot(self.height, self.width)
        return {"orientations": [15.0 * i for i in range(12)],
                "spatial_frequencies": [round(0.03 * 10 ** (i / 11), 5) for i in range(12)],
                "phases": [45.0 * i for i in range(8)], "contrast": 1.0,
                "sizes": [round(2.0 * (diagonal / 2.0) ** (i / 7), 3) for i in range(8)]}
