"""Store objects of rolled-back and killed makes: ``collect_orphans`` / ``mei jobs --gc`` find and remove exactly
them, on every backend, and never an object a committed row references."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from mei import main, reliability

from . import lab as lab_module
from . import orphan_lab
from .test_workers import finish, poll, stall_env, start_workers, wait_for

MEI_JOBS = "import sys; from mei.cli import main; sys.exit(main(sys.argv[1:]))"  # the `mei` command
TABLE = "tests.reliability.worker_lab.MEI"


@pytest.fixture
def lab(backend):
    """The reliability lab with ``FailingMEI`` on ``backend``, in fresh schemas (dropped at the end)."""
    instance = backend.connect()
    names = (backend.schema_name("mei"), backend.schema_name("lab"))
    tables = lab_module.bind(instance.connection, *names)
    failing = orphan_lab.declare_failing(tables)
    yield SimpleNamespace(backend=backend, connection=instance.connection, names=names, FailingMEI=failing,
                          **vars(tables))
    main.model_cache.clear()
    instance.connection.close()


def stored_files(lab) -> dict[str, int]:
    """Every file in the store under the lab's schemas, by path relative to the store, with its size."""
    found = {}
    for root, _dirs, files in os.walk(lab.backend.store):
        for name in files:
            path = Path(root, name)
            relative = path.relative_to(lab.backend.store).as_posix()
            if any(f"/{schema}/" in f"/{relative}" for schema in lab.names):
                found[relative] = path.stat().st_size
    return found


def meis(table) -> dict[tuple, torch.Tensor]:
    return {tuple(sorted(key.items())): table().fetch_mei(key) for key in table().keys()}


def assert_optimal(table, n_rows: int) -> None:
    """``n_rows`` rows; each MEI is its unit's known optimum ``unit / 10``."""
    keys = table().keys()
    assert len(keys) == n_rows
    for key in keys:
        mei = table().fetch_mei(key)
        assert mei.shape == (1, 1, 4, 4) and float((mei - key["unit"] / 10).abs().max()) < 1e-6, key


def test_a_failed_make_leaves_orphans_that_gc_lists_and_deletes_exactly(lab):
    failing = lab.FailingMEI
    lab_module.fill(lab, n_units=4, seeds=[1, 2])
    failing.populate("unit in (0, 2)")
    committed = stored_files(lab)
    assert len(committed) == 2 * 4  # 4 rows, an .npy MEI and an output object each
    failing.failing_units = {1, 3}
    result = failing.populate(suppress_errors=True)
    failing.failing_units = set()
    assert result["success_count"] == 0 and len(result["error_list"]) == 4
    assert all("UploadedThenFailed" in str(message) for _, message in result["error_list"])
    assert len(failing()) == 4
    after = stored_files(lab)
    orphaned = {path: size for path, size in after.items() if path not in committed}
    assert set(committed) <= set(after) and len(orphaned) == 2 * 4, orphaned  # 4 rolled-back makes, 2 files each
    before = meis(failing)

    dry = reliability.collect_orphans(failing, min_age=0)
    assert dry.dry_run and dry.schemas == [lab.names[1], lab.names[0]]  # the lab's schema, then upstream
    assert {item.path: item.size for item in dry.orphans} == orphaned
    assert dry.orphan_bytes == sum(orphaned.values()) and dry.recent == [] and dry.deleted == []
    assert all(item.store == "mei" for item in dry.orphans)
    assert dry.stores == {"mei": lab.backend.store.resolve().as_uri()}
    assert stored_files(lab) == after  # a dry run deletes nothing

    fresh = reliability.collect_orphans(failing, delete=True)  # the default keeps objects younger than 1 h
    assert fresh.orphans == [] and fresh.deleted == []
    assert {item.path for item in fresh.recent} == set(orphaned)
    assert all(0 <= item.age < 600 for item in fresh.recent)
    assert stored_files(lab) == after

    done = reliability.collect_orphans(failing, delete=True, min_age=0)
    assert {item.path: item.size for item in done.deleted} == orphaned and done.failed == []
    assert done.deleted_bytes == sum(orphaned.values())
    assert stored_files(lab) == committed
    assert reliability.collect_orphans(failing, min_age=0).orphans == []
    now = meis(failing)
    assert now.keys() == before.keys() and all(torch.equal(now[key], before[key]) for key in before)
    assert_optimal(failing, 4)

    failing.populate(suppress_errors=True)  # the failed keys, made again
    assert_optimal(failing, 8)
    assert reliability.collect_orphans(failing, min_age=0).orphans == []
    print(f"\n[{lab.backend.name}] failed makes: {len(orphaned)} orphaned files of 4 rolled-back makes listed, "
          f"deleted, {len(committed)} committed files kept, 4 + 4 rows fetch equal")


def run_mei(lab, *args: str) -> tuple[int, str, str]:
    """The ``mei`` command in a subprocess against the lab: exit code, stdout (without DataJoint's connection
    log line), stderr."""
    process = subprocess.run([sys.executable, "-c", MEI_JOBS, *args], env={
        **lab.backend.env(), "MEI_TEST_SCHEMAS": ",".join(lab.names)}, cwd=str(lab.backend.store.parent),
        capture_output=True, text=True, timeout=120)
    out = "".join(line for line in process.stdout.splitlines(keepends=True)
                  if not re.match(r"\[[\d-]+ [\d:]+\] DataJoint .* connected to ", line))
    return process.returncode, out, process.stderr


def gc_listing(stdout: str) -> dict[str, int]:
    """``{path: bytes}`` of the object lines ``mei jobs --gc`` printed."""
    return {m[1]: int(m[2]) for m in re.finditer(r"^  mei:(\S+)  (\d+) bytes", stdout, re.M)}


def test_a_killed_worker_leaves_orphans_that_mei_jobs_gc_removes(lab):
    n_keys = 4
    lab_module.fill(lab, n_units=4, seeds=[1])
    env, stalled, _ = stall_env(lab, "gc-kill")
    worker = start_workers(lab, 1, env=env)[0]
    wait_for(stalled, worker)  # its first row is inserted, files uploaded, the transaction open
    worker.send_signal(signal.SIGKILL)
    assert worker.wait(timeout=30) == -signal.SIGKILL
    assert len(lab.MEI()) == 0
    orphaned = stored_files(lab)
    assert len(orphaned) == 2 and {Path(path).name.split("_")[0] for path in orphaned} == {"mei", "output"}

    code, out, err = run_mei(lab, "jobs", "--table", TABLE, "--gc", "--min-age", "0")
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0] == (f"schemas: {lab.names[1]}, {lab.names[0]}; store 'mei' at "
                        f"{lab.backend.store.resolve().as_uri()}"), out
    assert lines[1] == (f"would delete 2 orphaned object(s), {sum(orphaned.values())} bytes "
                        "(dry run: nothing deleted; --delete removes them)"), out
    assert gc_listing(out) == orphaned
    assert json.loads(lines[-1])["total"] == n_keys
    assert stored_files(lab) == orphaned

    code, out, err = run_mei(lab, "jobs", "--table", TABLE, "--gc")  # default --min-age 3600: too young
    assert code == 0, out + err
    assert "would delete 0 orphaned object(s), 0 bytes" in out
    assert f"kept 2 unreferenced object(s) younger than 3600 s, {sum(orphaned.values())} bytes" in out

    code, out, err = run_mei(lab, "jobs", "--table", TABLE, "--gc", "--delete", "--min-age", "0")
    assert code == 0, out + err
    assert out.splitlines()[1] == f"deleted 2 orphaned object(s), {sum(orphaned.values())} bytes", out
    assert gc_listing(out) == orphaned and stored_files(lab) == {}

    poll(lambda: reliability.stale_reservations(lab.MEI))  # the server notices the killed client
    report = reliability.run_worker(lab.MEI, say=lambda line: None)  # the rerun
    assert report["made"] == n_keys and report["errors"] == [] and len(report["requeued"]) == 1, report
    assert_optimal(lab.MEI, n_keys)
    counts = reliability.job_counts(lab.MEI)
    assert counts["reserved"] == counts["error"] == counts["pending"] == 0, counts
    assert len(stored_files(lab)) == 2 * n_keys
    code, out, err = run_mei(lab, "jobs", "--table", TABLE, "--gc", "--delete", "--min-age", "0")
    assert code == 0 and out.splitlines()[1] == "deleted 0 orphaned object(s), 0 bytes", out + err
    assert len(stored_files(lab)) == 2 * n_keys
    print(f"\n[{lab.backend.name}] SIGKILL mid-make: 2 orphaned files found and deleted by `mei jobs --gc --delete`,"
          f" rerun made {n_keys} keys, {2 * n_keys} files, 0 orphans")


def test_mei_jobs_gc_refuses_bad_input_in_one_line(capsys):
    from mei import cli

    for argv, message in [
        (["jobs", "--table", TABLE, "--delete"], "mei jobs: --delete only goes with --gc"),
        (["jobs", "--table", TABLE, "--min-age", "0"], "mei jobs: --min-age only goes with --gc"),
        (["jobs", "--table", TABLE, "--store", "x"], "mei jobs: --store only goes with --gc"),
        (["jobs", "--table", TABLE, "--gc", "--min-age", "-1"], "mei jobs: --min-age must be a number of seconds "
                                                                ">= 0, got -1"),
    ]:
        assert cli.main(argv) == 2
        assert capsys.readouterr().err == message + "\n"
    with pytest.raises(ValueError, match="min_age must be a number of seconds >= 0"):
        reliability.collect_orphans(object(), min_age=-5)


def test_an_unconfigured_store_is_a_one_line_error(lab, capsys):
    with pytest.raises(ValueError, match="store 'elsewhere' is not configured on this connection"):
        reliability.collect_orphans(lab.MEI, stores=["elsewhere"])
