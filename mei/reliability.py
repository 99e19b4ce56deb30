"""Job recovery for many workers on one database: stale reservations, interrupted keys, clean stops.

DataJoint's reserved-jobs populate (``populate(reserve_jobs=True)``) hands every key to exactly one
worker, but two situations need a hand:

* A worker that dies without a word (SIGKILL, power loss, the database server restarting under it)
  leaves its key ``reserved`` forever. :func:`clear_stale` finds such reservations without guessing
  from the clock: the connection that made the reservation is gone (the server no longer lists it),
  or the reservation is older than the server's last start. A time limit (``older_than``) can be
  added for servers that do not show other users' connections.
* A worker stopped on purpose (SIGTERM, Ctrl-C) rolls its ``make`` back and DataJoint records the
  key as an *error* ``SystemExit: SIGTERM received``. :func:`release_interrupted` puts such keys back
  to ``pending``; :func:`stop_on_signals` makes Ctrl-C behave like SIGTERM.

Every function takes the auto-populated table (class or instance) whose jobs it manages. Re-queuing is
one conditional ``UPDATE`` per key, so a reservation that a live worker completes in the meantime is
never touched.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

INTERRUPTED_PREFIXES: tuple[str, ...] = ("SystemExit", "KeyboardInterrupt")
"""Job error messages (as DataJoint writes them) that mean "stopped", not "failed"."""


def _jobs(table: Any) -> Any:
    table = table() if isinstance(table, type) else table
    jobs = table.jobs
    if not jobs.is_declared:
        jobs.declare()
    return jobs


def _backend(connection: Any) -> str:
    return connection.adapter.backend


def live_connection_ids(connection: Any) -> set[int] | None:
    """Ids of the connections the database server has open now, or ``None`` if it cannot tell.

    PostgreSQL lists every backend to every user. MySQL/MariaDB list other users' connections only to
    accounts with the ``PROCESS`` privilege; without it the answer is ``None`` (unknown).
    """
    if _backend(connection) == "postgresql":
        rows = connection.query("SELECT pid FROM pg_stat_activity").fetchall()
        return {int(row[0]) for row in rows}
    grants = " ".join(str(row[0]) for row in connection.query("SHOW GRANTS").fetchall()).upper()
    if "PROCESS" not in grants and "ALL PRIVILEGES ON *.*" not in grants:
        return None
    return {int(row[0]) for row in connection.query("SELECT ID FROM information_schema.PROCESSLIST").fetchall()}


def _server_start_condition(connection: Any) -> str:
    """SQL condition true for reservations made before the server last started."""
    if _backend(connection) == "postgresql":
        return "reserved_time < pg_postmaster_start_time()"
    uptime = int(connection.query("SHOW GLOBAL STATUS LIKE 'Uptime'").fetchone()[1])
    return f"reserved_time < CURRENT_TIMESTAMP(3) - INTERVAL {uptime + 1} SECOND"


def stale_reservations(table: Any, older_than: float | None = None) -> list[dict[str, Any]]:
    """Reserved jobs of ``table`` whose worker is gone; each with its key and the ``reason``.

    Args:
        table (dj.Computed | type): the auto-populated table.
        older_than (float, optional): also count reservations older than this many seconds (server
            time) as stale, whatever their connection. Use it when :func:`live_connection_ids` cannot
            tell (MySQL without ``PROCESS``), and make it longer than your slowest ``make``. Default: None.
    """
    jobs = _jobs(table)
    connection = jobs.connection
    reserved = jobs & "status = 'reserved'"
    key_names = jobs.primary_key
    found: dict[tuple, dict[str, Any]] = {}

    def collect(query: Any, reason: str) -> None:
        for row in query.to_dicts():
            ident = tuple(row[k] for k in key_names)
            found.setdefault(ident, {"key": {k: row[k] for k in key_names}, "reason": reason,
                                     "host": row["host"], "pid": row["pid"],
                                     "connection_id": row["connection_id"]})

    collect(reserved & _server_start_condition(connection), "reserved before the database server restarted")
    live = live_connection_ids(connection)
    if live is not None:
        for row in reserved.to_dicts():
            if int(row["connection_id"]) not in live:
                collect(reserved & {k: row[k] for k in key_names}, "the reserving connection is closed")
    if older_than is not None:
        if older_than <= 0:
            raise ValueError(f"older_than must be > 0 seconds, got {older_than!r}")
        interval = connection.adapter.interval_expr(older_than, "second")
        collect(reserved & f"reserved_time < CURRENT_TIMESTAMP(3) - {interval}", f"reserved over {older_than:g} s ago")
    return list(found.values())


def _repend(jobs: Any, key: dict[str, Any], condition: str) -> bool:
    """Set one job back to ``pending`` if it still satisfies ``condition``; True if it did."""
    from datajoint.condition import make_condition

    quote = jobs.adapter.quote_identifier
    where = make_condition(jobs, {k: key[k] for k in jobs.primary_key}, set())
    query = (
        f"UPDATE {jobs.full_table_name} SET {quote('status')}='pending', {quote('reserved_time')}=NULL, "
        f"{quote('error_message')}='', {quote('error_stack')}=NULL, {quote('connection_id')}=0, {quote('pid')}=0 "
        f"WHERE {where} AND {condition}"
    )
    return jobs.connection.query(query).rowcount == 1


def clear_stale(table: Any, older_than: float | None = None) -> list[dict[str, Any]]:
    """Put the stale reservations of ``table`` (see :func:`stale_reservations`) back to ``pending``.

    The next ``populate(reserve_jobs=True)`` on any worker then makes those keys. Returns the jobs
    that were re-queued, each with its key and the reason.

    Args:
        table (dj.Computed | type): the auto-populated table.
        older_than (float, optional): see :func:`stale_reservations`. Default: None.
    """
    jobs = _jobs(table)
    quote = jobs.adapter.quote_identifier
    cleared = []
    for job in stale_reservations(table, older_than):
        condition = f"{quote('status')}='reserved' AND {quote('connection_id')}={int(job['connection_id'])}"
        if _repend(jobs, job["key"], condition):
            cleared.append(job)
    return cleared


def release_interrupted(table: Any, *, pid: int | None = None, host: str | None = None) -> list[dict[str, Any]]:
    """Put keys whose ``make`` was stopped by SIGTERM/Ctrl-C (not failed) back to ``pending``.

    Args:
        table (dj.Computed | type): the auto-populated table.
        pid (int, optional): only jobs of this worker process. Default: any.
        host (str, optional): only jobs of this host. Default: any.

    Returns:
        list[dict]: the keys released.
    """
    jobs = _jobs(table)
    quote = jobs.adapter.quote_identifier
    query = jobs & "status = 'error'"
    if pid is not None:
        query = query & {"pid": int(pid)}
    if host is not None:
        query = query & {"host": host}
    released = []
    for row in query.proj("error_message", "connection_id").to_dicts():
        if not row["error_message"].startswith(INTERRUPTED_PREFIXES):
            continue
        key = {k: row[k] for k in jobs.primary_key}
        condition = f"{quote('status')}='error' AND {quote('connection_id')}={int(row['connection_id'])}"
        if _repend(jobs, key, condition):
            released.append(key)
    return released


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Inside the block, SIGTERM and Ctrl-C (SIGINT) raise ``SystemExit("<signal> received")``.

    DataJoint's ``populate`` raises exactly this on SIGTERM and, unlike for ``KeyboardInterrupt``, never
    swallows it with ``suppress_errors=True``: the ``make`` in progress rolls back, the key is recorded
    as interrupted (see :func:`release_interrupted`), and the worker loop ends. Handlers are restored
    on exit. Only usable from the main thread.
    """

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(f"{signal.Signals(signum).name} received")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def job_counts(table: Any) -> dict[str, int]:
    """Jobs of ``table`` by status (``pending``, ``reserved``, ``success``, ``error``, ``ignore``, ``total``)."""
    return dict(_jobs(table).progress())


__all__ = [
    "clear_stale", "stale_reservations", "release_interrupted", "stop_on_signals", "live_connection_ids",
    "job_counts", "INTERRUPTED_PREFIXES",
]
