"""The cost of most discriminative stimuli and of in-silico tuning.

Part 1: one M step (one stimulus per cluster) for K clusters of the demo's CNN (48 neurons, 36 x 64, untrained
weights: the cost does not depend on them) as the MDS loop runs it, all clusters in one batch of the batched
engine (one forward per step), against K separate gradient-ascent runs of one cluster each (K forwards per
step); same config, same process, seconds and the ratio.
Part 2: a whole MDS run on the typed ground-truth population (5 types x 8 neurons, 24 x 24): rounds, seconds,
adjusted Rand index against the true types.
Part 3: grating tuning (24 orientations x 24 frequencies x 8 phases = 4,608 gratings) of the demo CNN.

``python benchmarks/mds.py [--steps N] [--no-write]``. Two torch threads, as on the 2-core target machine.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import write_section
from mei.analysis.mds import _m_step, adjusted_rand_index, most_discriminative_stimuli
from mei.analysis.tuning import grating_tuning
from mei.demo.models import build_model
from mei.demo.population import PopulationModel, make_typed_population
from mei.engine.options import BatchOptions
from mei.engine.resolve import build_components
from mei.methods import gradient_ascent
from mei.targets.clusters import ClusterContrastiveObjective


class OneCluster(nn.Module):
    """Cluster ``k``'s value of a :class:`ClusterContrastiveObjective` for one image (the unbatched baseline)."""

    def __init__(self, objective: ClusterContrastiveObjective, k: int) -> None:
        super().__init__()
        self.objective, self.k = objective, k

    def forward(self, x: Tensor) -> Tensor:
        scaled = self.objective.cluster_means(x) / self.objective.temperature
        n = self.objective.n_clusters
        return scaled[:, self.k] - torch.logsumexp(scaled, dim=1) + math.log(n)


def config(shape: list[int], steps: int, norm: float) -> dict:
    return {"device": "cpu", "shape": shape, "progress": False,
            "initial": {"path": "mei.initial.RandomNormal", "kwargs": {"std": 0.1}},
            "optimizer": {"path": "torch.optim.Adam", "kwargs": {"lr": 0.1}},
            "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": steps}},
            "postprocessing": {"path": "mei.postprocessing.ChangeNorm", "kwargs": {"norm": norm}}}


def m_step_table(steps: int) -> list[str]:
    model = build_model(48, 36, 64, seed=0).eval().requires_grad_(False)
    settings = config([1, 1, 36, 64], steps, 24.0)
    components, options = build_components(settings), BatchOptions.from_config(settings)
    rows = ["| clusters | batched M step (s) | one run per cluster (s) | ratio |", "|---|---|---|---|"]
    for k in (3, 8, 16):
        labels = torch.arange(48) % k
        start = time.perf_counter()
        _m_step(model, labels, 1.6, torch.ones(48), None, None, None, 1, components, (1, 1, 36, 64), 0,
                torch.device("cpu"), options)
        batched = time.perf_counter() - start
        objective = ClusterContrastiveObjective(model, labels, 1.6)
        start = time.perf_counter()
        for cluster in range(k):
            gradient_ascent(None, OneCluster(objective, cluster), settings, cluster)
        sequential = time.perf_counter() - start
        rows.append(f"| {k} | {batched:.2f} | {sequential:.2f} | {sequential / batched:.1f}x |")
        print(rows[-1], flush=True)
    return rows


def whole_run(steps: int) -> list[str]:
    population = make_typed_population(8, height=24, width=24, seed=0)
    meis = (population.filters[:, 0] * 24.0)[:, None]
    start = time.perf_counter()
    result = most_discriminative_stimuli(PopulationModel(population), meis, 5, config([1, 1, 24, 24], steps, 24.0))
    seconds = time.perf_counter() - start
    ari = adjusted_rand_index(result.assignments, population.types)
    line = (f"Whole MDS run on the typed ground-truth population (5 types x 8 neurons, 24 x 24, {steps} steps per "
            f"stimulus): {len(result.history)} round(s), converged {result.converged}, {seconds:.2f} s, "
            f"adjusted Rand index {ari:.2f} against the true types.")
    print(line, flush=True)
    return [line]


def tuning_line() -> list[str]:
    model = build_model(48, 36, 64, seed=0).eval().requires_grad_(False)
    start = time.perf_counter()
    grating_tuning(model, 36, 64)
    seconds = time.perf_counter() - start
    line = (f"Grating tuning of the demo CNN (48 neurons, 24 orientations x 24 frequencies x 8 phases = 4,608 "
            f"gratings, stimuli made and run in batches): {seconds:.2f} s.")
    print(line, flush=True)
    return [line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    load = os.getloadavg()[0]
    rows = m_step_table(args.steps)
    load = max(load, os.getloadavg()[0])
    text = [f"Most discriminative stimuli and tuning (`python benchmarks/mds.py`), 2 torch threads. One M step "
            f"({args.steps} steps per stimulus) on the demo CNN (48 neurons, 36 x 64): all clusters in one batch "
            "(one forward per step) against one gradient-ascent run per cluster.", "", *rows, "",
            *whole_run(args.steps), "", *tuning_line(), "",
            f"Load average at the start and after the M steps: up to {load:.1f} on {os.cpu_count()} cores (other "
            "work on a shared machine stretches the absolute seconds; the ratios are within one run)."]
    if not args.no_write:
        write_section("mds", "\n".join(text))


if __name__ == "__main__":
    main()
