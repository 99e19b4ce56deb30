"""Cost of schedules in the engine's configs: a run with a scheduled learning rate and a scheduled blur sigma vs
the same run with constant values.

Same small CNN as ``engine_overhead.py`` (1x64x64 -> 100 units), SGD, a Gaussian-blur preconditioner, 200 steps;
constant and scheduled configs interleaved in one process, minimum of several repeats. The scheduled sigma
changes every step, so the blur is rebuilt every step (the worst case of ``ScheduledComponent``).

Run: ``python benchmarks/schedules.py [--steps 200] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import timed, write_section
from benchmarks.engine_overhead import small_cnn
from mei.methods import gradient_ascent
from mei.modules import ConstrainedOutputModel


def config(steps: int, scheduled: bool) -> dict:
    def value(start: float, end: float) -> object:
        if not scheduled:
            return start
        return {"path": "mei.schedules.Linear", "kwargs": {"start": start, "end": end, "steps": steps}}

    return {
        "device": "cpu", "shape": [1, 1, 64, 64],
        "initial": {"path": "mei.initial.RandomNormal"},
        "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": value(0.05, 0.01)}},
        "precondition": {"path": "mei.preconditioners.GaussianBlur", "kwargs": {"sigma": value(1.5, 0.5)}},
        "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": steps}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only, do not update docs/benchmarks.md")
    args = parser.parse_args()
    model = ConstrainedOutputModel(small_cnn(), 7)
    plain, scheduled = config(args.steps, False), config(args.steps, True)
    gradient_ascent(None, model, config(5, True), 1)  # warm-up
    times: dict[str, list[float]] = {"constant": [], "scheduled": []}
    for _ in range(args.repeats):
        times["constant"].append(timed(gradient_ascent, None, model, plain, 1)[0])
        times["scheduled"].append(timed(gradient_ascent, None, model, scheduled, 1)[0])
    constant, varying = (1000 * min(times[k]) / args.steps for k in ("constant", "scheduled"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"constant lr and sigma {constant:.2f} ms/step, scheduled {varying:.2f} ms/step, "
          f"ratio {varying / constant:.3f}", flush=True)
    if not args.no_write:
        write_section("schedules", "\n".join([
            "## Schedules in engine configs", "",
            f"`python benchmarks/schedules.py`: the engine-overhead CNN, SGD and a `GaussianBlur` preconditioner, "
            f"{args.steps} steps; constant `lr` and `sigma` vs both as `mei.schedules.Linear` (the blur rebuilt "
            f"every step), interleaved, min of {args.repeats} repeats, torch threads {torch.get_num_threads()}, "
            f"load average {load:.1f} while measuring.", "",
            "| config | ms/step | ratio |", "|---|---|---|",
            f"| constant | {constant:.2f} | 1 |",
            f"| scheduled lr and sigma | {varying:.2f} | **{varying / constant:.3f}** |", "",
            "The schedules' own work per step is a few Python calls (the optimizer's step pre-hook, the schedule "
            "values, one constructor call of the blur when sigma changes); the loop is the same.",
        ]))


if __name__ == "__main__":
    main()
