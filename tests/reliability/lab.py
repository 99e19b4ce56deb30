"""A small lab for the reliability tests, on the real MEI pipeline (``mei.main.MEITemplate``).

The model has known optima: unit ``u`` responds ``-sum((x - u / 10) ** 2)``, so its MEI is the constant
image ``u / 10``. A network with ``nan_unit >= 0`` has one unit whose response turns NaN once the input
leaves ``[-1, 1]``, which gradient ascent does at its second step.

Worker processes run the real command, ``mei worker --table tests.reliability.worker_lab.MEI``. With
``MEI_TEST_STALL=<dir>/<name>`` the first ``make`` of that worker stops right after inserting its row
(files uploaded, transaction open), writes ``<name>.stalled`` and waits for ``<name>.go``: the test can
then kill, stop or disconnect it at the worst moment. The stall happens once per name; with
``MEI_TEST_STALL_AT=n`` at the worker's n-th insert instead of its first.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import datajoint as dj
import torch
from torch import nn

from mei import main
from mei.modules import ConstrainedOutputModel

STALL_ENV = "MEI_TEST_STALL"
GO_ENV = "MEI_TEST_GO"
STALL_LIMIT_S = 60.0


def method_config(steps: int = 3) -> dict[str, Any]:
    """Plain gradient ascent: SGD with lr 0.5 lands exactly on the optimum ``u / 10`` in one step."""
    return {
        "device": "cpu",
        "shape": [1, 1, 4, 4],
        "initial": {"path": "mei.initial.RandomNormal", "kwargs": {"std": 0.1}},
        "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": 0.5}},
        "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": steps}},
    }


class TargetModel(nn.Module):
    """Unit ``u``: ``-sum((x - u / 10) ** 2)``; unit ``nan_unit``: ``sqrt(1 - max|x|) + 10 sum(x)``."""

    def __init__(self, n_units: int, nan_unit: int = -1) -> None:
        super().__init__()
        self.register_buffer("targets", torch.arange(n_units, dtype=torch.float32) / 10)
        self.nan_unit = nan_unit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        columns = [-((flat - t) ** 2).sum(1) for t in self.targets]
        if self.nan_unit >= 0:
            columns[self.nan_unit] = torch.sqrt(1 - flat.abs().amax(1)) + 10 * flat.sum(1)
        return torch.stack(columns, 1)


STALL_AT_ENV = "MEI_TEST_STALL_AT"
_inserts = [0]  # rows this process inserted so far


def stall_once() -> None:
    """Stop here once per ``$MEI_TEST_STALL`` name: announce it, then wait for the go file (or a signal).

    With ``$MEI_TEST_STALL_AT=n`` the stall comes at this process's n-th insert (default: the first)."""
    target = os.environ.get(STALL_ENV)
    if not target:
        return
    _inserts[0] += 1
    if _inserts[0] < int(os.environ.get(STALL_AT_ENV, "1")):
        return
    stalled, go = Path(target + ".stalled"), Path(target + ".go")
    if stalled.exists():
        return
    stalled.write_text(str(os.getpid()))
    deadline = time.monotonic() + STALL_LIMIT_S
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def declare(schema: dj.Schema) -> SimpleNamespace:
    """Declare (or bind to) the lab's tables in ``schema``; the package tables must be activated first."""

    @schema
    class Net(dj.Manual):
        definition = """
        net_id: int32
        ---
        n_units: int32
        nan_unit: int32      # unit whose response turns NaN, -1 for none
        """

        def load_model(self, key: dict, include_dataloader: bool = True, include_state_dict: bool = True,
                       seed: int | None = None) -> Any:
            n_units, nan_unit = (self & key).fetch1("n_units", "nan_unit")
            model = TargetModel(int(n_units), int(nan_unit))
            return (None, model) if include_dataloader else model

    @schema
    class Unit(dj.Manual):
        definition = """
        -> Net
        unit: int32
        """

        def get_objective(self, model: nn.Module, key: dict) -> nn.Module:
            return ConstrainedOutputModel(model, int(key["unit"]))

    @schema
    class MEI(main.MEITemplate):
        trained_model_table = Net
        objective_table = Unit

        def insert1(self, row: Any, **kwargs: Any) -> None:
            super().insert1(row, **kwargs)
            stall_once()

    return SimpleNamespace(Net=Net, Unit=Unit, MEI=MEI, schema=schema)


def bind(connection: Any, mei_schema: str, lab_schema: str) -> SimpleNamespace:
    """Activate the package tables in ``mei_schema`` and the lab in ``lab_schema`` on ``connection``."""
    main.activate(mei_schema, connection=connection)
    return declare(dj.Schema(lab_schema, connection=connection))


def fill(lab: SimpleNamespace, n_units: int, seeds: list[int], nan_unit: int = -1, net_id: int = 1,
         steps: int = 3) -> dict[str, Any]:
    """One network with ``n_units`` units, the seeds, one gradient-ascent method; returns the method key."""
    lab.Net.insert1({"net_id": net_id, "n_units": n_units, "nan_unit": nan_unit}, skip_duplicates=True)
    lab.Unit.insert([{"net_id": net_id, "unit": u} for u in range(n_units)], skip_duplicates=True)
    main.MEISeed.insert([{"mei_seed": s} for s in seeds], skip_duplicates=True)
    return main.MEIMethod().add_method("mei.methods.gradient_ascent", method_config(steps), "reliability tests")
