"""The demo through the pipeline: fabrik entries, trained ensemble, objectives, a method, a seed, populate.

:func:`run_demo` is what ``mei demo`` runs. Every step is an ordinary call a lab would make on its own
tables; the only demo-specific parts are the functions in :mod:`mei.demo.lab` and the known truth the
report card compares with.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from .. import fabrik, main
from . import tables
from .settings import DemoSettings

LAB = "mei.demo.lab"


@dataclass
class DemoRun:
    """What :func:`run_demo` did: the keys it made and the seconds each step took."""

    settings: DemoSettings
    dataset: dict[str, Any] = field(default_factory=dict)
    ensemble: dict[str, Any] = field(default_factory=dict)
    single: dict[str, Any] | None = None
    method: dict[str, Any] = field(default_factory=dict)
    mds: dict[str, Any] | None = None
    tuning: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, step: str, say: Callable[[str], Any]) -> Iterator[None]:
        say(f"[demo] {step} ...")
        start = time.perf_counter()
        yield
        self.timings[step] = time.perf_counter() - start
        say(f"[demo] {step}: {self.timings[step]:.1f} s")


def _upstream(settings: DemoSettings) -> dict[str, Any]:
    """Contributor, seeds, dataset, model and trainer entries (idempotent)."""
    fabrik.Fabrikant().insert1({"fabrikant_name": "demo", "email": "demo@example.org", "affiliation": "mei",
                                "dj_username": "demo"}, skip_duplicates=True)
    fabrik.Seed().insert([{"seed": s} for s in settings.member_seeds], skip_duplicates=True)
    dataset = fabrik.Dataset().add_entry(f"{LAB}.dataset_fn", settings.dataset_config(), "demo",
                                         "synthetic V1 population", skip_duplicates=True)
    model = fabrik.Model().add_entry(f"{LAB}.model_fn", {"channels": settings.channels}, "demo",
                                     "CNN core + factorized readout", skip_duplicates=True)
    trainer = fabrik.Trainer().add_entry(f"{LAB}.trainer_fn", {"epochs": settings.epochs}, "demo",
                                         "Poisson loss, Adam", skip_duplicates=True)
    return {"dataset": dataset, "restriction": {**dataset, **model, **trainer}}


def run_demo(settings: DemoSettings | None = None, *, prefix: str = tables.SCHEMA, connection: Any = None,
             fresh: bool = False, say: Callable[[str], Any] = print) -> DemoRun:
    """Run the demo's pipeline: train the ensemble, populate objectives, MEIs and report cards.

    Args:
        settings (DemoSettings, optional): sizes. Default: the full demo.
        prefix (str, optional): the demo's schema name (see :func:`mei.demo.tables.schema_names`).
            Default: ``"mei_demo"``.
        connection (datajoint.Connection, optional): Default: :func:`mei.pipeline.database.connect` (embedded PostgreSQL
            unless a server is configured).
        fresh (bool, optional): drop the demo's schemas first; otherwise rows already there are reused.
            Default: False.
        say (Callable, optional): prints progress lines. Default: ``print``.
    """
    settings = settings or DemoSettings()
    run = DemoRun(settings)
    with run.timed("database", say):
        if fresh:
            tables.drop(prefix, connection=connection)
        tables.activate(prefix, connection=connection)
        upstream = _upstream(settings)
        run.dataset = upstream["dataset"]
    with run.timed("training", say):
        tables.TrainedModel().populate(upstream["restriction"], display_progress=True)
        ensemble = tables.TrainedEnsembleModel()
        members = (tables.TrainedModel() & upstream["restriction"]).proj()
        run.ensemble = ensemble.create_ensemble(members, comment=f"{len(settings.member_seeds)} members")
        if settings.transfer and len(settings.member_seeds) > 1:
            first = members & {"seed": settings.member_seeds[0]}
            run.single = ensemble.create_ensemble(first, comment="first member alone (transfer test)")
    with run.timed("objectives and method", say):
        tables.Objective().populate(run.dataset)
        run.method = main.MEIMethod().add_method("mei.methods.gradient_ascent", settings.method_config(),
                                                 comment=method_comment(settings))
        main.MEISeed().insert1({"mei_seed": 0}, skip_duplicates=True)
    with run.timed("MEIs", say), torch.random.fork_rng(devices=[]):
        # every neuron of one ensemble in one batched run (one forward per step), as populate() would make them
        tables.MEI().populate(run.method, display_progress=True, batch_size=settings.n_neurons)
    with run.timed("report cards", say):
        tables.ReportCard().populate(run.method, display_progress=True)
    if settings.analyses:
        with run.timed("MDS and tuning", say), torch.random.fork_rng(devices=[]):
            run.mds = tables.MDSConfig().add_config(settings.mds_config(), settings.mds_clusters,
                                                    align=settings.mds_align, comment="demo: clusters of the MEIs")
            tables.MDS().populate(run.mds, run.method, display_progress=True)
            run.tuning = tables.TuningConfig().add_config(settings.tuning_config(), comment="demo gratings")
            tables.Tuning().populate(run.tuning, display_progress=True)
    return run


def method_comment(settings: DemoSettings) -> str:
    """The method's comment: what the config does, in words."""
    blur = f"gradient blurred {settings.blur:g} px" if settings.blur else "plain gradient"
    return (f"demo: SGD lr {settings.lr:g}, {settings.steps} steps, {blur}, norm {settings.mei_norm():g} "
            f"(the natural images' norm x {settings.norm_fraction:g})")


def settings_dict(settings: DemoSettings) -> dict[str, Any]:
    """The settings as a plain dict (for the report)."""
    return asdict(settings)
