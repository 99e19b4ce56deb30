"""The operator's day on each backend: `mei jobs` (restrictions, done / to do / reserved / errors, --json,
--retry-errors), `mei worker` (rows counted as they are made, keys in error named), Ctrl-C on a Python
``populate(reserve_jobs=True)``, the README's worker line, one-line errors, and ``stop_embedded`` from a fresh
process."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mei import cli
from mei.pipeline import jobs as reliability

from . import lab as lab_module
from . import toy
from .backends import ROOT, spawn
from .test_recovery import set_job, statuses
from .test_workers import finish, report_of, stall_env, start_workers, wait_for

TOY = "tests.reliability.toy.Doubled"
CONNECTED = re.compile(r"\[[\d-]+ [\d:]+\] DataJoint .* connected to ")


@pytest.fixture
def toy_tables(backend):
    """Items 1..6 of the toy pipeline; 1 and 2 made, 3..5 queued, 6 never queued."""
    instance = backend.connect()
    item, doubled = toy.activate(backend.schema_name("toy"), instance.connection)
    item.insert([{"item": i} for i in range(1, 7)])
    doubled.populate("item <= 2")
    doubled.jobs.refresh()
    (doubled.jobs & {"item": 6}).delete_quick()
    yield item, doubled, instance.connection
    instance.connection.close()


def jobs_json(capsys, *args: str) -> dict:
    assert cli.main(["jobs", "--table", TOY, "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_mei_jobs_shows_done_to_do_reserved_and_errors_under_where(toy_tables, capsys):
    item, doubled, connection = toy_tables
    interval = connection.adapter.interval_expr(100, "second")
    set_job(doubled, 3, status="'reserved'", host="'node-a'", pid=4242, connection_id=connection.connection_id,
            reserved_time=f"CURRENT_TIMESTAMP(3) - {interval}")
    set_job(doubled, 4, status="'error'", error_message="'ValueError: bad input'")
    set_job(doubled, 5, status="'error'", error_message="'ValueError: bad input'")
    everything = jobs_json(capsys)
    assert {k: everything[k] for k in ("done", "to_do", "reserved", "error")} == {
        "done": 2, "to_do": 4, "reserved": 1, "error": 2}
    assert everything["errors"] == [{"message": "ValueError: bad input", "keys": 2, "interrupted": False}]
    (reservation,) = everything["reservations"]
    assert (reservation["host"], reservation["pid"], reservation["keys"]) == ("node-a", 4242, 1)
    assert 99 <= reservation["age"] < 130, reservation
    assert everything["jobs"] == {"pending": 0, "reserved": 1, "success": 0, "error": 2, "ignore": 0, "total": 3}
    later = jobs_json(capsys, "--where", "item > 3")
    assert {k: later[k] for k in ("done", "to_do", "reserved", "error")} == {
        "done": 0, "to_do": 3, "reserved": 0, "error": 2}
    assert later["restrictions"] == ["item > 3"] and later["jobs"]["total"] == 2
    three = jobs_json(capsys, "--where", '{"item": 3}')
    assert (three["done"], three["to_do"], three["reserved"], three["error"]) == (0, 1, 1, 0)
    # the default is for people
    assert cli.main(["jobs", "--table", TOY, "--where", "item <= 4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == ["Doubled where item <= 4", "  done:     2 row(s)",
                         "  to do:    2 key(s) (1 reserved, 1 in error, 0 waiting)", "  reserved: 1 key(s)"]
    assert re.fullmatch(r"    node-a pid 4242: 1 key\(s\), oldest reserved 1[0-2]\d s ago", lines[4]), lines[4]
    assert lines[5:] == ["  errors:   1 key(s); no worker retries them: fix the cause, then mei jobs --retry-errors",
                         "    1 x ValueError: bad input"]


def test_mei_jobs_clear_stale_keeps_to_its_where(toy_tables, capsys):
    item, doubled, connection = toy_tables
    dead = max(reliability.live_connection_ids(connection)) + 10**6
    for key in (3, 4):
        set_job(doubled, key, status="'reserved'", connection_id=dead, reserved_time="CURRENT_TIMESTAMP(3)")
    assert cli.main(["jobs", "--table", TOY, "--clear-stale", "0", "--where", "item = 3"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "re-queued 1 stale reservation(s)"
    assert statuses(doubled) == {3: "pending", 4: "reserved", 5: "pending"}


def test_errored_keys_are_named_by_the_worker_and_retried_on_request(toy_tables, capsys):
    item, doubled, connection = toy_tables
    for key in (3, 4):
        set_job(doubled, key, status="'error'", error_message="'ValueError: bad input'")
    assert cli.main(["worker", "--table", TOY, "--where", "item >= 3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("2 keys are in error; see mei jobs (mei jobs --retry-errors puts them back in the queue once "
                      "the cause is fixed)")
    assert out[-1] == "mei worker: made 2 key(s), 0 failed"  # 5 and 6; 3 and 4 stay in error
    assert cli.main(["jobs", "--table", TOY, "--retry-errors", "--where", "item = 3"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "put 1 errored key(s) back in the queue"
    assert cli.main(["worker", "--table", TOY]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("1 key is in error; see mei jobs") and out[-1] == "mei worker: made 1 key(s), 0 failed"
    assert reliability.retry_errors(doubled) == [{"item": 4}]
    report = reliability.run_worker(doubled, say=lambda line: None)
    assert report["made"] == 1 and report["in_error"] == 0
    assert sorted(doubled.to_arrays("item")) == [1, 2, 3, 4, 5, 6]
    assert jobs_json(capsys)["to_do"] == 0


def test_a_bad_where_is_one_line_and_exit_2(toy_tables, capsys):
    for command in ("jobs", "worker"):
        assert cli.main([command, "--table", TOY, "--where", "no_such_column > 1"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"mei {command}: cannot use --where 'no_such_column > 1': "), err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert cli.main(["jobs", "--debug", "--table", TOY, "--where", "no_such_column > 1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and err.strip().splitlines()[-1].startswith("mei jobs: cannot use --where")


# ---------------------------------------------------------------------------------------- workers and populate


@pytest.mark.slow
def test_a_stopped_worker_counts_the_rows_it_made(lab):
    lab_module.fill(lab, n_units=4, seeds=[1])
    env, stalled, _ = stall_env(lab, "count")
    worker = start_workers(lab, 1, env={**env, lab_module.STALL_AT_ENV: "3"})[0]
    wait_for(stalled, worker)  # two rows committed, the third inserted in an open transaction
    worker.send_signal(signal.SIGINT)
    code, output = finish(worker, timeout=60)
    assert code == 0, output
    assert report_of(output) == {"made": 2, "failed": 0, "stopped": "SIGINT received"}, output
    assert len(lab.MEI()) == 2
    counts = reliability.job_counts(lab.MEI)
    assert counts["reserved"] == 0 and counts["error"] == 0 and counts["pending"] == 2, counts


POPULATE = """
import sys
from tests.reliability import worker_lab
try:
    worker_lab.MEI().populate(reserve_jobs=True, **eval(sys.argv[1]))
except KeyboardInterrupt:
    print("KeyboardInterrupt")
    sys.exit(3)
"""


@pytest.mark.slow
@pytest.mark.parametrize("options", [{}, {"suppress_errors": True}, {"batch_size": 4}],
                         ids=["plain", "suppress_errors", "batched"])
def test_ctrl_c_on_a_python_populate_puts_the_key_back(lab, options):
    n_keys = 3
    lab_module.fill(lab, n_units=n_keys, seeds=[1])
    env, stalled, _ = stall_env(lab, f"python-{len(options)}-{'batch_size' in options}")
    process = spawn(POPULATE, lab.backend, repr(options),
                    env={"MEI_TEST_SCHEMAS": ",".join(lab.names), **env})
    wait_for(stalled, process)  # the first row is inserted, its transaction open
    process.send_signal(signal.SIGINT)
    code, output = finish(process, timeout=60)
    assert code == 3 and output.strip().splitlines()[-1] == "KeyboardInterrupt", output
    counts = reliability.job_counts(lab.MEI)
    assert len(lab.MEI()) == 0 and counts["error"] == 0 and counts["reserved"] == 0, counts
    assert counts["pending"] == n_keys, counts
    result = lab.MEI().populate(reserve_jobs=True)  # nothing skipped for good
    assert result["success_count"] == n_keys and len(lab.MEI()) == n_keys


# ---------------------------------------------------------------------------------------- the command as typed

LAB_MODULE = '''"""A lab's module, as the README's worker line names it: lab.MEI."""
import os

from mei.pipeline import database as db
from tests.reliability import lab as reliability_lab

MEI = reliability_lab.bind(db.connect(), *os.environ["MEI_TEST_SCHEMAS"].split(",")).MEI
'''


def mei_command() -> list[str]:
    """The installed ``mei`` script next to this interpreter, else ``python -m mei.cli``."""
    script = Path(sys.executable).parent / "mei"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mei.cli"]


def readme_worker_line() -> tuple[dict[str, str], list[str]]:
    """The environment and arguments of the README's ``mei worker`` line, as written."""
    block = re.search(r"## The `mei` command\n\n```text\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README has no `mei` command block"
    line = next(line for line in block[1].splitlines() if " mei worker " in f" {line} ")
    words = shlex.split(line.split("#")[0])
    env = dict(word.split("=", 1) for word in words if "=" in word and not word.startswith("-"))
    args = [word for word in words if word not in {f"{k}={v}" for k, v in env.items()}]
    assert args[0] == "mei", line
    return env, args[1:]


@pytest.mark.slow
def test_the_readme_worker_line_runs_in_a_lab_folder(lab, tmp_path):
    env, args = readme_worker_line()
    assert args == ["worker", "--table", "lab.MEI"]
    (tmp_path / "lab.py").write_text(LAB_MODULE)
    lab_module.fill(lab, n_units=2, seeds=[1])
    run_env = {**lab.backend.env(), "MEI_TEST_SCHEMAS": ",".join(lab.names), **env}
    done = subprocess.run([*mei_command(), *args], cwd=tmp_path, env=run_env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "mei worker: made 2 key(s), 0 failed", done.stdout
    assert len(lab.MEI()) == 2
    status = subprocess.run([*mei_command(), "jobs", "--table", "lab.MEI"], cwd=tmp_path, env=run_env,
                            capture_output=True, text=True, timeout=180)
    assert status.returncode == 0, status.stderr
    lines = [line for line in status.stdout.splitlines() if not CONNECTED.match(line)]  # DataJoint's log line
    assert lines == ["MEI", "  done:     2 row(s)", "  to do:    0 key(s) (0 reserved, 0 in error, 0 waiting)"]
    for output in (done.stderr, status.stderr):  # the command silences these two warnings
        assert "No datajoint.json found" not in output and "XDG_RUNTIME_DIR" not in output, output


@pytest.mark.slow
def test_no_database_server_is_one_line_and_exit_2(tmp_path):
    """The database server is down when the command starts: one line, exit 2; the traceback with --debug."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "lab.py").write_text(LAB_MODULE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJ_", "MEI_"))}
    env.update({"DJ_HOST": "127.0.0.1", "DJ_PORT": str(port), "DJ_USER": "postgres", "DJ_PASS": "",
                "DJ_BACKEND": "postgresql", "MEI_DATABASE": "server", "MEI_TEST_SCHEMAS": "a,b",
                "MEI_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)})
    for debug in ([], ["--debug"]):
        done = subprocess.run([*mei_command(), *debug, "jobs", "--table", "lab.MEI"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 2, done.stdout + done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("mei jobs: cannot reach the database (") and "check that the server is running" in last
        assert ("Traceback" in done.stderr) == bool(debug), done.stderr
        if not debug:
            assert len(done.stderr.strip().splitlines()) == 1, done.stderr


# ---------------------------------------------------------------------------------------- stop_embedded

EMBEDDED = """
import sys, time
from mei.pipeline import database as db
if sys.argv[1] == "start":
    db.start_embedded(sys.argv[2])
    print("started", flush=True)
    if len(sys.argv) > 3:
        time.sleep(float(sys.argv[3]))
else:
    print(db.stop_embedded(sys.argv[2], delete=sys.argv[1] == "delete"))
"""


def python(*args: str) -> str:
    done = subprocess.run([sys.executable, "-c", EMBEDDED, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def postmaster_running(pgdata: Path) -> bool:
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


@pytest.mark.slow
def test_stop_embedded_stops_a_server_another_process_started():
    from tests.servers import private_embedded_dir

    directory = private_embedded_dir("stop")
    pgdata = directory / "postgres"
    try:
        assert python("start", str(pgdata)) == "started"
        assert postmaster_running(pgdata)  # it outlives the process that started it
        holder = subprocess.Popen([sys.executable, "-c", EMBEDDED, "start", str(pgdata), "120"],
                                  stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert holder.stdout is not None and holder.stdout.readline().strip() == "started"
        assert python("stop", str(pgdata)) == "False"  # a live process still holds it
        assert postmaster_running(pgdata)
        holder.kill()  # dies without letting go
        holder.wait(timeout=30)
        assert python("stop", str(pgdata)) == "True"
        deadline = time.monotonic() + 30
        while postmaster_running(pgdata) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not postmaster_running(pgdata)
        assert python("delete", str(pgdata)) == "True" and not pgdata.exists()
    finally:
        if postmaster_running(pgdata):
            python("delete", str(pgdata))
        shutil.rmtree(directory, ignore_errors=True)
