"""Time the demo's compute without a database: data, training the ensemble, every MEI, report-card metrics.

``python benchmarks/demo_compute.py [--no-write]`` (``taskset -c 0,1`` pins it to two cores). Two torch
threads, as on the 2-core target machine. Prints seconds per step as it goes and writes its section of
``docs/benchmarks.md``. The full ``mei demo`` adds the database, the populate bookkeeping and the figures.
"""

from __future__ import annotations

import sys
import time

import torch

from mei.analysis.report_card import report_card
from mei.demo.lab import dataset_fn, model_fn
from mei.demo.settings import DemoSettings
from mei.demo.training import fit
from mei.methods import gradient_ascent
from mei.modules import ConstrainedOutputModel, EnsembleModel

try:
    from benchmarks._report import write_section
except ImportError:  # run as a script from the repository root
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    from benchmarks._report import write_section


def _lap(times: dict[str, float], name: str, start: float) -> None:
    times[name] = time.perf_counter() - start - sum(times.values())
    print(f"{name}: {times[name]:.1f} s", flush=True)


def main() -> None:
    torch.set_num_threads(2)
    settings, times = DemoSettings(), {}
    start = time.perf_counter()
    loaders = dataset_fn(seed=1, **settings.dataset_config())
    images, counts = loaders["train"]["v1"].dataset.tensors
    val_images, val_counts = loaders["validation"]["v1"].dataset.tensors
    _lap(times, "data", start)
    members = []
    for seed in settings.member_seeds:
        model = model_fn(loaders, seed=seed, channels=settings.channels)
        fit(model, images, counts, val_images, val_counts, seed, epochs=settings.epochs)
        members.append(model.requires_grad_(False))
    _lap(times, f"training {len(members)} members x {settings.epochs} epochs", start)
    config = {**settings.method_config(), "shape": [1, 1, settings.height, settings.width]}
    meis = {}
    for name, model in (("ensemble", EnsembleModel(*members)), ("single", members[0])):
        for unit in range(settings.n_neurons):
            meis[name, unit] = gradient_ascent(None, ConstrainedOutputModel(model, unit), config, 0)[0]
    _lap(times, f"{len(meis)} MEIs x {settings.steps} steps", start)
    ensemble = EnsembleModel(*members)
    with torch.no_grad():  # every unit's natural responses once, as the report-card table does
        natural = torch.cat([ensemble(images[i:i + 500]) for i in range(0, len(images), 500)])
    for unit in range(settings.n_neurons):
        report_card(ConstrainedOutputModel(ensemble, unit), meis["ensemble", unit], images,
                    natural=[natural[:, unit]])
    _lap(times, f"{settings.n_neurons} report cards ({len(images):,} natural images)", start)
    rows = "\n".join(f"| {name} | {seconds:.1f} |" for name, seconds in times.items())
    total = sum(times.values())
    markdown = ("The demo's compute without a database, 2 torch threads (`python benchmarks/demo_compute.py`).\n\n"
                f"| step | seconds |\n|---|---|\n{rows}\n| total | {total:.1f} |\n")
    print(f"total: {total:.1f} s")
    if "--no-write" not in sys.argv:
        write_section("demo_compute", markdown)


if __name__ == "__main__":
    main()
