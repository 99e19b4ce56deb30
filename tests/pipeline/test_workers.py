"""A worker process and the test process share one database through reserved jobs; the worker reuses the
embedded server the test process started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mei.main import MEIMethod, MEISeed

from .lab_tables import METHOD_CONFIG, declare_lab, fill_upstream

ROOT = Path(__file__).resolve().parents[2]
WORKER = """
import sys, warnings
warnings.simplefilter("ignore")
import datajoint as dj
from mei import allow_modules, fabrik, main
from mei.pipeline import database as db
from tests.pipeline.lab_tables import declare_lab

fabrik_name, mei_name, lab_name, embedded_dir, store = sys.argv[1:6]
allow_modules("tests")
connection = db.instance("embedded", embedded_dir=embedded_dir, store_location=store, safemode=False).connection
fabrik.activate(fabrik_name, connection=connection)
main.activate(mei_name, connection=connection)
lab = declare_lab(dj.Schema(lab_name, connection=connection))
result = lab.MEI().populate(reserve_jobs=True)
print("MADE", result["success_count"], len(result["error_list"]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_workers_split_the_keys(pipeline):
    lab_schema = pipeline.schema("lab")
    lab = declare_lab(lab_schema)
    fill_upstream(lab, n_models=1)
    lab.Objective().populate()
    MEIMethod().add_method("mei.methods.gradient_ascent", METHOD_CONFIG)
    MEISeed().insert([{"mei_seed": seed} for seed in (1, 2)])
    names = [schema.database for schema in pipeline.schemas[:2]] + [lab_schema.database]
    args = [sys.executable, "-c", WORKER, *names, str(pipeline.embedded_dir), str(pipeline.store)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    here = lab.MEI().populate(reserve_jobs=True)
    out, err = worker.communicate(timeout=240)
    assert worker.returncode == 0, err[-3000:]
    made, errors = (int(n) for n in out.split("MADE")[1].split())
    assert here["success_count"] + made == 6 and errors == 0 and not here["error_list"]
    assert len(lab.MEI()) == 6
    assert len(lab.MEI.jobs.errors) == 0
