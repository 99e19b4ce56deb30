"""Overhead of generating MEIs through ``MEI().populate()`` versus calling the engine directly.

Both sides make the same N MEIs (one per neuron, same method config, seed and model) in one process: the
direct side calls :func:`mei.methods.gradient_ascent` on a model already in memory; the populate side runs
the whole pipeline (fetch and validate the method, load the model through the cache, look up the objective
and the input shape, run, write the MEI and output to the store, insert the row). The model is the design
notes' CPU reference: a 3-layer CNN, 1x64x64 input, 100 units.

Run: ``python benchmarks/populate_overhead.py [--n 8] [--steps 100] [--backend embedded|postgresql|mysql]``
(or ``python -m benchmarks populate_overhead``). Writes its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HERE = "benchmarks.populate_overhead"
N_UNITS = 100
SIZE = 64


# ------------------------------------------------------------------- the lab's functions (by dotted path)


def random_data(seed: int, n_images: int = 4) -> dict:
    """Four random 1x64x64 images with responses of 100 neurons (only the shapes matter here)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(n_images, 1, SIZE, SIZE, generator=generator)
    responses = torch.rand(n_images, N_UNITS, generator=generator)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, responses), batch_size=4)
    return {"train": {"s": loader}}


def cnn(dataloaders: Any, seed: int, data_info: dict | None = None, channels: int = 16) -> nn.Module:
    """Three 5x5 conv layers with ELU, then a linear readout to 100 units."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for c_in in (1, channels, channels):
        layers += [nn.Conv2d(c_in, channels, 5, padding=2), nn.ELU()]
    return nn.Sequential(*layers, nn.AvgPool2d(4), nn.Flatten(), nn.Linear(channels * (SIZE // 4) ** 2, N_UNITS))


def no_training(model: nn.Module, dataloaders: Any, seed: int, uid: Any = None, cb: Any = None) -> tuple:
    """Keeps the initial weights; returns ``(score, output, state_dict)``."""
    return 0.0, {}, model.state_dict()


def method_config(steps: int) -> dict:
    return {"device": "cpu", "initial": {"path": "mei.initial.RandomNormal"},
            "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": 0.1}},
            "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": steps}}}


# ------------------------------------------------------------------- setup


def declare(connection: Any) -> tuple[Any, Any, list]:
    """Bind the package's tables and a lab schema on ``connection``; returns ``(MEI, Objective, schemas)``."""
    import datajoint as dj

    from mei import fabrik, main
    from mei.main import MEITemplate, PopulationObjectiveTemplate

    tag = uuid.uuid4().hex[:8]
    schemas = [fabrik.activate(f"bench_{tag}_fabrik", connection=connection),
               main.activate(f"bench_{tag}_mei", connection=connection)]
    lab = dj.Schema(f"bench_{tag}_lab", connection=connection)
    schemas.append(lab)

    class TrainedModel(fabrik.TrainedModelBase):
        pass

    class Objective(PopulationObjectiveTemplate):
        trained_model_table = TrainedModel

    class MEI(MEITemplate):
        trained_model_table = TrainedModel
        objective_table = Objective

    context = {"TrainedModel": TrainedModel, "Objective": Objective}
    for table in (TrainedModel, Objective, MEI):
        lab(table, context=context)
    fabrik.Fabrikant.insert1({"fabrikant_name": "bench", "email": "-", "affiliation": "-", "dj_username": "-"})
    fabrik.Seed.insert1({"seed": 0})
    fabrik.Dataset().add_entry(f"{HERE}.random_data", {}, "bench")
    fabrik.Model().add_entry(f"{HERE}.cnn", {}, "bench")
    fabrik.Trainer().add_entry(f"{HERE}.no_training", {}, "bench")
    TrainedModel.populate()
    Objective.populate()
    return MEI, Objective, schemas


def time_direct(model: nn.Module, n: int, config: dict, seed: int) -> tuple[float, float]:
    """``(wall, cpu)`` seconds for the engine alone to make the MEIs of units ``0..n-1`` (model in memory)."""
    from mei.methods import gradient_ascent
    from mei.modules import ConstrainedOutputModel

    wall, cpu = time.perf_counter(), time.process_time()
    for unit in range(n):
        gradient_ascent(None, ConstrainedOutputModel(model, unit).eval(), config, seed)
    return time.perf_counter() - wall, time.process_time() - cpu


def time_populate(mei_table: Any, n: int) -> tuple[float, float]:
    """``(wall, cpu)`` seconds for one ``populate`` call to make the MEIs of neurons ``0..n-1``, starting
    with an empty model cache (so it pays for loading the model)."""
    from mei.main import clear_model_cache

    clear_model_cache()
    wall, cpu = time.perf_counter(), time.process_time()
    result = mei_table.populate(f"neuron_id < {n}")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if result["success_count"] != n or result["error_list"]:
        raise RuntimeError(f"populate made {result['success_count']} of {n} MEIs: {result['error_list']}")
    (mei_table & f"neuron_id < {n}").delete(prompt=False)
    return wall, cpu


def measure(mei_table: Any, model: nn.Module, n: int, config: dict, repeats: int) -> dict[str, float]:
    """Total ``(wall, cpu)`` seconds of both sides over ``repeats`` rounds of ``n`` MEIs each; the order of
    the two sides alternates from round to round so that a drifting machine load hits both alike."""
    totals = {"direct_wall": 0.0, "direct_cpu": 0.0, "populate_wall": 0.0, "populate_cpu": 0.0}
    sides = [("direct", lambda: time_direct(model, n, config, 1)), ("populate", lambda: time_populate(mei_table, n))]
    for round_ in range(repeats):
        for name, run_side in (sides if round_ % 2 == 0 else sides[::-1]):
            wall, cpu = run_side()
            totals[f"{name}_wall"] += wall
            totals[f"{name}_cpu"] += cpu
    return totals


def run(n: int, steps: int, backend: str, repeats: int) -> dict[str, Any]:
    """Set up a database with the lab's tables and measure (see :func:`measure`)."""
    from mei.engine import resolve
    from mei.main import MEIMethod, MEISeed
    from mei.pipeline import database as db

    resolve.allow_modules("benchmarks")
    root = Path(tempfile.mkdtemp(prefix="mei-bench-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        instance = db.instance(backend, store_location=root / "store", embedded_dir=root / "postgres", safemode=False)
    MEI, Objective, schemas = declare(instance.connection)
    try:
        config = method_config(steps)
        MEIMethod().add_method("mei.methods.gradient_ascent", config)
        MEISeed.insert1({"mei_seed": 1})
        model = MEI().load_model(MEI.trained_model_table.fetch1("KEY"))
        direct_config = {**config, "shape": [1, 1, SIZE, SIZE]}
        time_direct(model, 1, direct_config, 1)  # warm up
        load = os.getloadavg()[0]
        totals = measure(MEI, model, n, direct_config, repeats)
        return {"n": n, "steps": steps, "backend": backend, "repeats": repeats,
                "load": (load + os.getloadavg()[0]) / 2, **{name: value / repeats for name, value in totals.items()}}
    finally:
        for schema in reversed(schemas):
            schema.drop(prompt=False)
        if backend == "embedded":
            db.stop_embedded(root / "postgres", delete=True)
        shutil.rmtree(root, ignore_errors=True)


def report(results: dict[str, Any]) -> str:
    """The benchmark's markdown section."""
    n, r = results["n"], results

    def overhead(kind: str) -> str:
        extra = r[f"populate_{kind}"] - r[f"direct_{kind}"]
        return f"{extra / r[f'direct_{kind}'] * 100:+.1f} % ({extra / n * 1000:+.0f} ms per MEI)"

    wall = r["populate_wall"] / r["direct_wall"] - 1
    return (
        "## populate overhead\n\n"
        f"{n} MEIs (3-layer CNN 1x64x64 -> 100 units, SGD, {r['steps']} steps, one torch thread) through one "
        f"`MEI().populate()` call on the {r['backend']} backend (empty model cache at the start) versus the "
        f"same {n} through `mei.methods.gradient_ascent` directly, in one process; means over {r['repeats']} "
        "rounds with the order of the two sides alternating. CPU time is this process's only (the database "
        f"server's work shows in the wall time). Machine load average during the run: {r['load']:.1f} "
        f"on {os.cpu_count()} cores (wall times stretch with it; the CPU figures do not).\n\n"
        "| | engine directly | populate | overhead |\n|---|---|---|---|\n"
        f"| wall time | {r['direct_wall']:.2f} s | {r['populate_wall']:.2f} s | {overhead('wall')} |\n"
        f"| CPU time | {r['direct_cpu']:.2f} s | {r['populate_cpu']:.2f} s | {overhead('cpu')} |\n\n"
        f"Target: populate overhead <= 10 % of wall time ({'met' if wall <= 0.10 else 'missed'}). Command: "
        f"`python benchmarks/populate_overhead.py --n {n} --steps {r['steps']} --backend {r['backend']}`."
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="MEIs per side (<= 100)")
    parser.add_argument("--steps", type=int, default=100, help="optimization steps per MEI")
    parser.add_argument("--backend", default="embedded", choices=["embedded", "postgresql", "mysql"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = run(min(args.n, N_UNITS), args.steps, args.backend, args.repeats)
    text = report(results)
    print(text)
    if not args.no_write:
        from benchmarks._report import write_section

        write_section("populate_overhead", text)
    return results


if __name__ == "__main__":
    main()
