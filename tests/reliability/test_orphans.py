"""Store objects of rolled-back and killed makes: ``collect_orphans`` / ``mei jobs --gc`` find and remove exactly
them, on every backend, and never an object a committed row references."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from mei import main
from mei.pipeline import jobs as reliability

from . import lab as lab_module
from . import orphan_lab
from .test_workers import poll, stall_env, start_workers, wait_for

MEI_JOBS = "import sys; from mei.cli import main; sys.exit(main(sys.argv[1:]))"  # the `mei` command
TABLE = "tests.reliability.worker_lab.MEI"


def bind_lab(backend, instance) -> SimpleNamespace:
    names = (backend.schema_name("mei"), backend.schema_name("lab"))
    tables = lab_module.bind(instance.connection, *names)
    failing = orphan_lab.declare_failing(tables)
    return SimpleNamespace(backend=backend, connection=instance.connection, names=names, FailingMEI=failing,
                           **vars(tables))


@pytest.fixture
def lab(backend):
    """The reliability lab with ``FailingMEI`` on ``backend``, in fresh schemas (dropped at the end)."""
    instance = backend.connect()
    yield bind_lab(backend, instance)
    main.model_cache.clear()
    instance.connection.close()


@pytest.fixture
def s3_lab(backend, s3_server):
    """The lab on ``backend``'s database with its ``mei`` store in a fresh bucket of ``s3_server``."""
    bucket = s3_server.new_bucket("orphans")
    instance = backend.connect()
    instance.config.stores["mei"] = s3_server.store(bucket, location=f"lab-{backend.name}")
    lab = bind_lab(backend, instance)
    lab.s3, lab.bucket, lab.prefix = s3_server, bucket, f"lab-{backend.name}/"
    yield lab
    main.model_cache.clear()
    instance.connection.close()
    s3_server.drop_bucket(bucket)


def stored_files(lab) -> dict[str, int]:
    """Every object in the store under the lab's schemas, by path relative to the store's location, with its
    size: listed with ``os.walk`` for the file store, with boto3 for S3 (not through DataJoint)."""
    if getattr(lab, "s3", None) is not None:
        listing = {key[len(lab.prefix):]: size for key, size in lab.s3.objects(lab.bucket, lab.prefix).items()}
    else:
        listing = {}
        for root, _dirs, files in os.walk(lab.backend.store):
            for name in files:
                path = Path(root, name)
                listing[path.relative_to(lab.backend.store).as_posix()] = path.stat().st_size
    return {path: size for path, size in listing.items()
            if any(f"/{schema}/" in f"/{path}" for schema in lab.names)}


def meis(table) -> dict[tuple, torch.Tensor]:
    return {tuple(sorted(key.items())): table().fetch_mei(key) for key in table().keys()}


def assert_optimal(table, n_rows: int) -> None:
    """``n_rows`` rows; each MEI is its unit's known optimum ``unit / 10``."""
    keys = table().keys()
    assert len(keys) == n_rows
    for key in keys:
        mei = table().fetch_mei(key)
        assert mei.shape == (1, 1, 4, 4) and float((mei - key["unit"] / 10).abs().max()) < 1e-6, key


def failed_makes_leave_orphans_that_gc_lists_and_deletes_exactly(lab, store_url: str) -> None:
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
    assert dry.stores == {"mei": store_url}
    assert stored_files(lab) == after  # a dry run deletes nothing

    fresh = reliability.collect_orphans(failing, delete=True)  # the default keeps objects younger than 1 h
    assert fresh.orphans == [] and fresh.deleted == []
    assert {item.path for item in fresh.recent} == set(orphaned)
    assert all(-60 < item.age < 600 for item in fresh.recent)  # S3 ages are by the server's clock
    assert stored_files(lab) == after

    done = reliability.collect_orphans(failing, delete=True, min_age=0)
    assert {item.path: item.size for item in done.deleted} == orphaned and done.failed == []
    assert done.deleted_bytes == sum(orphaned.values())
    assert stored_files(lab) == committed
    assert reliability.collect_orphans(failing, min_age=0).orphans == []
    now = meis(failing)
    assert set(now) == set(before) and all(torch.equal(now[key], before[key]) for key in before)
    assert_optimal(failing, 4)

    failing.populate(suppress_errors=True)  # the failed keys, made again
    assert_optimal(failing, 8)
    assert reliability.collect_orphans(failing, min_age=0).orphans == []
    print(f"\n[{lab.backend.name}, {store_url.split(':')[0]} store] failed makes: {len(orphaned)} orphaned files of 4 "
          f"rolled-back makes listed, deleted; {len(committed)} committed files kept, 4 + 4 rows fetch equal")


def test_a_failed_make_leaves_orphans_that_gc_lists_and_deletes_exactly(lab):
    failed_makes_leave_orphans_that_gc_lists_and_deletes_exactly(lab, lab.backend.store.resolve().as_uri())


@pytest.mark.slow
def test_a_failed_make_leaves_orphans_that_gc_lists_and_deletes_exactly_on_s3(s3_lab):
    failed_makes_leave_orphans_that_gc_lists_and_deletes_exactly(s3_lab, f"s3://{s3_lab.bucket}/{s3_lab.prefix}")


def run_mei(lab, *args: str) -> tuple[int, str, str]:
    """The ``mei`` command in a subprocess against the lab: exit code, stdout (without DataJoint's connection
    log line), stderr."""
    process = subprocess.run([sys.executable, "-c", MEI_JOBS, *args], env={
        **lab.backend.env(), "MEI_TEST_SCHEMAS": ",".join(lab.names)}, cwd=str(lab.backend.store.parent),
        capture_output=True, text=True, timeout=120, check=False)
    out = "".join(line for line in process.stdout.splitlines(keepends=True)
                  if not re.match(r"\[[\d-]+ [\d:]+\] DataJoint .* connected to ", line))
    return process.returncode, out, process.stderr


def gc_listing(stdout: str) -> dict[str, int]:
    """``{path: bytes}`` of the object lines ``mei jobs --gc`` printed."""
    return {m[1]: int(m[2]) for m in re.finditer(r"^  mei:(\S+)  (\d+) bytes", stdout, re.MULTILINE)}


@pytest.mark.slow
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
    assert f"  to do:    {n_keys} key(s) (1 reserved, 0 in error, {n_keys - 1} waiting)" in lines, out
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
        (["jobs", "--table", TABLE, "--gc", "--min-age", "-1"],
         "mei jobs: --min-age must be a number of seconds >= 0, got -1"),
    ]:
        assert cli.main(argv) == 2
        assert capsys.readouterr().err == message + "\n"
    with pytest.raises(ValueError, match="min_age must be a number of seconds >= 0"):
        reliability.collect_orphans(object(), min_age=-5)


@pytest.mark.slow
def test_an_unconfigured_store_is_a_one_line_error(lab):
    with pytest.raises(ValueError, match="store 'elsewhere' is not configured on this connection"):
        reliability.collect_orphans(lab.MEI, stores=["elsewhere"])
    code, out, err = run_mei(lab, "jobs", "--table", TABLE, "--gc", "--store", "elsewhere")
    assert code == 2 and out == "", out
    ours = [line for line in err.splitlines() if line.startswith("mei jobs:")]  # not Python's warnings
    message = ("mei jobs: store 'elsewhere' is not configured on this connection (Storage 'elsewhere' is "
               "requested but not configured in stores)")
    assert ours == [message] and err.splitlines()[-1] == message, err


def make_orphans(lab, n_units: int = 3, failing_unit: int = 2) -> tuple[dict[str, int], dict[str, int]]:
    """``n_units`` keys of ``FailingMEI``, one failing after its upload: (committed files, orphaned files)."""
    lab_module.fill(lab, n_units=n_units, seeds=[1])
    lab.FailingMEI.populate(f"unit != {failing_unit}")
    committed = stored_files(lab)
    lab.FailingMEI.failing_units = {failing_unit}
    try:
        assert len(lab.FailingMEI.populate(suppress_errors=True)["error_list"]) == 1
    finally:
        lab.FailingMEI.failing_units = set()
    orphaned = {path: size for path, size in stored_files(lab).items() if path not in committed}
    assert len(committed) == 2 * (n_units - 1) and len(orphaned) == 2
    return committed, orphaned


def test_a_relative_file_store_location_lists_only_the_real_orphans(backend, monkeypatch):
    """DataJoint's collector garbles the paths of a file store with a relative location (every live file looks
    orphaned); collect_orphans works around it and leaves the configuration as it was."""
    import datajoint as dj

    monkeypatch.chdir(backend.store)
    Path("relative").mkdir(exist_ok=True)
    instance = backend.connect()
    instance.config.stores["mei"]["location"] = "relative"
    lab = bind_lab(backend, instance)
    lab.backend = SimpleNamespace(store=backend.store / "relative")
    try:
        committed, orphaned = make_orphans(lab)
        raw = dj.gc.GarbageCollector(lab.schema, store="mei").collect(dry_run=True)
        assert raw["schema_paths_orphaned"] == len(committed) + len(orphaned)  # DataJoint's own: every file
        report = reliability.collect_orphans(lab.FailingMEI, delete=True, min_age=0)
        assert {item.path: item.size for item in report.deleted} == orphaned
        assert stored_files(lab) == committed and instance.config.stores["mei"]["location"] == "relative"
        assert_optimal(lab.FailingMEI, 2)
    finally:
        main.model_cache.clear()
        instance.connection.close()


@pytest.fixture
def unreadable_mei(lab):
    """A PostgreSQL role that sees the lab's MEI table but may not read it; yields its connection."""
    if lab.backend.settings["backend"] != "postgresql":
        pytest.skip("the role and grants of this test are PostgreSQL's; the workaround it proves is backend-neutral")
    from mei.pipeline import database as db

    role = f"mei_gc_{lab.names[1][-8:]}"
    query = lab.connection.query
    query(f'CREATE ROLE "{role}" LOGIN')
    for schema in lab.names:
        query(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        query(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
    mei_table = lab.connection.adapter.split_full_table_name(lab.FailingMEI.full_table_name)[1]
    query(f'REVOKE SELECT ON "{lab.names[1]}"."{mei_table}" FROM "{role}"')
    query(f'GRANT INSERT ON "{lab.names[1]}"."{mei_table}" TO "{role}"')  # visible, but not readable
    settings = lab.backend.settings
    other = db.instance("postgresql", host=str(settings["host"]), port=settings["port"], user=role,
                        store_location=lab.backend.store, safemode=False)
    yield other.connection
    other.connection.close()
    query(f'DROP OWNED BY "{role}"')
    query(f'DROP ROLE "{role}"')


def test_a_table_whose_references_cannot_be_read_stops_the_collection(lab, unreadable_mei):
    """DataJoint's collector logs an unreadable table and goes on: its live files look orphaned and
    ``collect(dry_run=False)`` would delete them. collect_orphans refuses and deletes nothing."""
    import datajoint as dj

    committed, orphaned = make_orphans(lab)
    schemas = [dj.Schema(name, connection=unreadable_mei, create_schema=False) for name in lab.names]
    raw = dj.gc.GarbageCollector(*schemas, store="mei").collect(dry_run=True)
    assert set(raw["orphaned_schema_paths"]) == set(committed) | set(orphaned)  # live files counted as orphans
    table = dj.FreeTable(unreadable_mei, lab.FailingMEI.full_table_name)
    with pytest.raises(reliability.GarbageCollectionError,
                       match=r"could not read everything in store 'mei' .* so nothing was deleted: Error scanning"):
        reliability.collect_orphans(table, delete=True, min_age=0)
    assert stored_files(lab) == {**committed, **orphaned}
    assert_optimal(lab.FailingMEI, 2)
