"""mei.pipeline.jobs on each backend: stale reservations and interrupted keys go back to pending."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from mei.pipeline import jobs as reliability

from . import toy


@pytest.fixture
def toy_tables(backend):
    instance = backend.connect()
    item, doubled = toy.activate(backend.schema_name("toy"), instance.connection)
    item.insert([{"item": i} for i in range(1, 5)])
    doubled.jobs.refresh()
    yield item, doubled, instance.connection
    instance.connection.close()


def set_job(table, item: int, **values) -> None:
    """Write job-table columns directly, as a dead worker would have left them."""
    jobs = table.jobs
    quote = jobs.adapter.quote_identifier
    assignments = ", ".join(f"{quote(k)}={v}" for k, v in values.items())
    jobs.connection.query(f"UPDATE {jobs.full_table_name} SET {assignments} WHERE {quote('item')}={item}")


def statuses(table) -> dict[int, str]:
    return dict(zip(*table.jobs.to_arrays("item", "status"), strict=True))


def server_uptime(connection) -> float:
    if connection.adapter.backend == "postgresql":
        return float(connection.query("SELECT EXTRACT(EPOCH FROM now() - pg_postmaster_start_time())").fetchone()[0])
    return float(connection.query("SHOW GLOBAL STATUS LIKE 'Uptime'").fetchone()[1])


def test_stale_reservations_are_requeued_and_live_ones_kept(toy_tables):
    item, doubled, connection = toy_tables
    live = connection.connection_id
    dead = max(reliability.live_connection_ids(connection)) + 10**6
    set_job(doubled, 1, status="'reserved'", connection_id=live, reserved_time="CURRENT_TIMESTAMP(3)")
    set_job(doubled, 2, status="'reserved'", connection_id=dead, reserved_time="CURRENT_TIMESTAMP(3)")
    set_job(doubled, 3, status="'reserved'", connection_id=live, reserved_time="'2000-01-01 00:00:00'")
    cleared = reliability.clear_stale(doubled, older_than=3600)
    reasons = {job["key"]["item"]: job["reason"] for job in cleared}
    assert reasons == {2: "the reserving connection is closed", 3: "reserved before the database server restarted"}
    assert statuses(doubled) == {1: "reserved", 2: "pending", 3: "pending", 4: "pending"}
    assert reliability.clear_stale(doubled) == []
    doubled.populate(reserve_jobs=True)
    assert sorted(doubled.to_arrays("item")) == [2, 3, 4]
    assert reliability.job_counts(doubled)["reserved"] == 1


def test_older_than_requeues_old_reservations_of_live_connections(toy_tables):
    item, doubled, connection = toy_tables
    uptime = server_uptime(connection)
    if uptime < 3:
        time.sleep(3 - uptime)  # the reservation below must postdate the server's start
    interval = connection.adapter.interval_expr(2, "second")
    set_job(doubled, 1, status="'reserved'", connection_id=connection.connection_id,
            reserved_time=f"CURRENT_TIMESTAMP(3) - {interval}")
    assert reliability.clear_stale(doubled, older_than=3600) == []
    assert reliability.clear_stale(doubled, older_than=0) == []  # 0: no age limit (`mei jobs --clear-stale 0`)
    cleared = reliability.clear_stale(doubled, older_than=1)
    assert [(job["key"], job["reason"]) for job in cleared] == [({"item": 1}, "reserved over 1 s ago")]
    with pytest.raises(ValueError, match="older_than"):
        reliability.clear_stale(doubled, older_than=-1)


def test_interrupted_keys_are_released_failed_ones_kept(toy_tables):
    item, doubled, connection = toy_tables
    set_job(doubled, 1, status="'error'", error_message="'SystemExit: SIGTERM received'", pid=4242)
    set_job(doubled, 2, status="'error'", error_message="'KeyboardInterrupt'", pid=4343)
    set_job(doubled, 3, status="'error'", error_message="'ValueError: bad input'", pid=4242)
    assert reliability.release_interrupted(doubled, pid=4242) == [{"item": 1}]
    assert reliability.release_interrupted(doubled) == [{"item": 2}]
    assert statuses(doubled) == {1: "pending", 2: "pending", 3: "error", 4: "pending"}
    doubled.populate(reserve_jobs=True, suppress_errors=True)
    assert sorted(doubled.to_arrays("item")) == [1, 2, 4]


@pytest.mark.parametrize("message, interrupted", [
    ("SystemExit: SIGTERM received", True),
    ("KeyboardInterrupt", True),
    ("LostConnectionError: Connection was lost during a transaction.", True),
    ("OperationalError: (2013, 'Lost connection to server during query')", True),
    ("OperationalError: server closed the connection unexpectedly", True),
    ("InterfaceError: connection already closed", True),
    ("AdminShutdown: terminating connection due to administrator command", True),
    ("OperationalError: (4025, 'CONSTRAINT `x` failed')", False),
    ("NonFiniteError: non-finite (NaN or Inf) evaluation or gradient at optimization step 3", False),
    ("ConfigError: stopper.kwargs: missing a required argument", False),
])
def test_interrupted_means_stopped_or_cut_off_not_failed(message, interrupted):
    assert reliability.is_interrupted(message) is interrupted


def test_stop_on_signals_turns_ctrl_c_into_system_exit():
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(SystemExit, match="SIGINT received"):
        with reliability.stop_on_signals():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the signal interrupts this at once
    assert signal.getsignal(signal.SIGINT) is before


def test_mei_jobs_command_requeues_dead_reservations(toy_tables, allow_tests_modules, capsys):
    from mei import cli

    item, doubled, connection = toy_tables
    dead = max(reliability.live_connection_ids(connection)) + 10**6
    set_job(doubled, 4, status="'reserved'", connection_id=dead, reserved_time="CURRENT_TIMESTAMP(3)")
    assert cli.main(["jobs", "--table", "tests.reliability.toy.Doubled", "--clear-stale", "0", "--json"]) == 0
    captured = capsys.readouterr()
    assert "re-queued 1 stale reservation(s)" in captured.err.splitlines()  # stdout is the JSON alone
    status = json.loads(captured.out)
    counts = status["jobs"]
    assert counts["pending"] == 4 and counts["reserved"] == 0, counts
    assert (status["done"], status["to_do"], status["reserved"]) == (0, 4, 0), status


def test_workers_starting_together_survive_the_job_table_declaration_race():
    """On PostgreSQL, workers declaring a new job table at once fail on its index (found by the load test)."""

    class Declared:
        is_declared = True

    class Racing:
        accesses = 0

        @property
        def jobs(self):
            self.accesses += 1
            if self.accesses == 1:
                raise RuntimeError('relation "idx_~~m_e_i_status_priority_scheduled_time" already exists')
            return Declared()

    racing = Racing()
    assert isinstance(reliability._jobs(racing), Declared) and racing.accesses == 2


class _FakeMySQL:
    """Just enough of a DataJoint connection to answer ``SHOW GRANTS`` for an account."""

    class adapter:  # noqa: N801 - mimics the attribute
        backend = "mysql"

    def __init__(self, grants: list[str]) -> None:
        self.grants = grants

    def query(self, sql: str):
        rows = [(g,) for g in self.grants] if sql == "SHOW GRANTS" else [(7,), (9,)]
        return type("Cursor", (), {"fetchall": lambda _: rows})()


def test_mysql_accounts_without_process_privilege_cannot_tell_live_connections():
    """Without PROCESS the server lists only the account's own connections: clear_stale must not trust it."""
    plain = _FakeMySQL(["GRANT USAGE ON *.* TO `mei`@`%`", "GRANT ALL PRIVILEGES ON `lab`.* TO `mei`@`%`"])
    assert reliability.live_connection_ids(plain) is None
    for grants in (["GRANT PROCESS ON *.* TO `mei`@`%`"], ["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost`"]):
        assert reliability.live_connection_ids(_FakeMySQL(grants)) == {7, 9}


def test_driver_connection_errors_and_their_subclasses_mean_the_database_is_gone():
    import psycopg2.errors
    import pymysql
    from datajoint.errors import LostConnectionError

    for error in (LostConnectionError("x"), psycopg2.OperationalError("x"), psycopg2.errors.AdminShutdown("x"),
                  psycopg2.InterfaceError("x"), pymysql.err.OperationalError(2013, "Lost connection")):
        assert reliability._is_connection_error(error), error
    for error in (ValueError("x"), psycopg2.errors.UniqueViolation("x"), pymysql.err.IntegrityError(1062, "dup")):
        assert not reliability._is_connection_error(error), error
