"""Job recovery for many workers on one database: stale reservations, interrupted keys, clean stops.

DataJoint's reserved-jobs populate (``populate(reserve_jobs=True)``) hands every key to exactly one
worker, but two situations need a hand:

* A worker that dies without a word (SIGKILL, power loss, the database server restarting under it)
  leaves its key ``reserved`` forever. :func:`clear_stale` finds such reservations without guessing
  from the clock: the connection that made the reservation is gone (the server no longer lists it),
  or the reservation is older than the server's last start. A time limit (``older_than``) can be
  added for servers that do not show other users' connections.
* A worker stopped on purpose (SIGTERM, Ctrl-C) rolls its ``make`` back and DataJoint records the
  key as an *error* ``SystemExit: SIGTERM received``. :func:`release_interrupted` puts such keys (and
  keys cut off by a lost connection) back to ``pending``; :func:`stop_on_signals` makes Ctrl-C behave
  like SIGTERM.

:func:`run_worker` (the ``mei worker`` command) puts these together: it re-queues on start, makes keys
until none is left, releases its key when stopped by a signal and reports a lost database clearly.

Every function takes the auto-populated table (class or instance) whose jobs it manages. Re-queuing is
one conditional ``UPDATE`` per key, so a reservation that a live worker completes in the meantime is
never touched.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

INTERRUPTED_PREFIXES: tuple[str, ...] = ("SystemExit", "KeyboardInterrupt", "LostConnectionError", "AdminShutdown")
"""Job error messages (as DataJoint writes them) that mean "stopped or cut off", not "failed": the make was
rolled back and the key can simply be made again."""

DRIVER_ERRORS: tuple[str, ...] = ("OperationalError", "InterfaceError")
CONNECTION_MARKERS: tuple[str, ...] = (
    "(2003", "(2006", "(2013", "(2055", "Lost connection", "gone away", "server closed the connection",
    "connection already closed", "terminating connection", "could not connect", "Connection refused",
)
"""Driver errors (pymysql, psycopg2) count as interrupted only with one of these: other operational errors,
such as a failed CHECK constraint, are real failures and keep their error."""


def is_interrupted(error_message: str) -> bool:
    """Whether a job error message means the ``make`` was stopped or cut off (see :data:`INTERRUPTED_PREFIXES`)."""
    if error_message.startswith(INTERRUPTED_PREFIXES):
        return True
    return error_message.startswith(DRIVER_ERRORS) and any(m in error_message for m in CONNECTION_MARKERS)


class DatabaseConnectionLost(RuntimeError):
    """The worker lost its database connection; the key in progress was rolled back. Rerun when it is back."""


def _jobs(table: Any) -> Any:
    """The job table of ``table``, declared if needed.

    Workers started together race to declare it; on PostgreSQL the losers fail on the index ("relation
    ... already exists"). They wait a moment, find the table declared and go on.
    """
    table = table() if isinstance(table, type) else table
    for attempt in range(1, 6):
        try:
            jobs = table.jobs  # DataJoint declares the job table on first access
            if not jobs.is_declared:
                jobs.declare()
            return jobs
        except Exception:
            if attempt == 5:
                raise
            time.sleep(0.1 * attempt)  # the winner's declaration is still being committed
    raise AssertionError("unreachable")


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
            tell (MySQL without ``PROCESS``), and make it longer than your slowest ``make``. ``None`` or
            0: no age limit. Default: None.
    """
    jobs = _jobs(table)
    connection = jobs.connection
    reserved = jobs & "status = 'reserved'"
    key_names = jobs.primary_key
    found: dict[tuple, dict[str, Any]] = {}

    if older_than and older_than < 0:
        raise ValueError(f"older_than must be >= 0 seconds, got {older_than!r}")
    worker = ("host", "pid", "connection_id")

    def collect(query: Any, reason: str, keep: Callable[[dict[str, Any]], bool] = lambda row: True) -> None:
        for row in query.proj(*worker).to_dicts():
            if keep(row):
                entry = {"key": {k: row[k] for k in key_names}, "reason": reason, **{k: row[k] for k in worker}}
                found.setdefault(tuple(row[k] for k in key_names), entry)

    collect(reserved & _server_start_condition(connection), "reserved before the database server restarted")
    live = live_connection_ids(connection)
    if live is not None:
        collect(reserved, "the reserving connection is closed", lambda row: int(row["connection_id"]) not in live)
    if older_than:
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
    """Put keys whose ``make`` was stopped (SIGTERM, Ctrl-C) or cut off (lost database connection) back to
    ``pending``; keys that failed for any other reason keep their error (see :func:`is_interrupted`).

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
        if not is_interrupted(row["error_message"]):
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


def _is_connection_error(error: BaseException) -> bool:
    from datajoint.errors import LostConnectionError

    return isinstance(error, LostConnectionError) or any(  # also subclasses, e.g. psycopg2's AdminShutdown
        cls.__name__ in DRIVER_ERRORS and cls.__module__.split(".")[0] in ("pymysql", "psycopg2", "datajoint")
        for cls in type(error).__mro__)


def _describe_connection(table: Any) -> str:
    info = getattr(table.connection, "conn_info", {}) or {}
    return f"{info.get('host', '?')}:{info.get('port', '?')}"


def _populate_pass(table: Any, restrictions: tuple, report: dict[str, Any], say: Callable[[str], None],
                   batch_size: int | None = None) -> int:
    """One reserved-jobs populate over the pending keys; returns how many keys it made or saw fail."""
    batch = {} if batch_size is None else {"batch_size": batch_size}
    result = table.populate(*restrictions, reserve_jobs=True, suppress_errors=True, display_progress=False, **batch)
    made = int(result["success_count"])
    report["made"] += made
    cut_off = False
    for key, message in result["error_list"]:
        if is_interrupted(str(message)):
            cut_off = True
            say(f"key {key} was cut off ({message}); rolled back, it goes back in the queue")
        else:
            report["errors"].append((key, str(message)))
            say(f"key {key} failed: {message}")
    if cut_off:
        report["requeued"] += release_interrupted(table, pid=os.getpid(), host=platform.node())
    return made + len(result["error_list"])


def check_batch_size(table: Any, batch_size: Any) -> None:
    """Raise ``ValueError`` unless ``batch_size`` is a positive int, ``TypeError`` unless ``table`` (an instance or
    a class) has the batched populate of :class:`~mei.main.MEITemplate`."""
    from .batched_populate import BatchedPopulateMixin  # noqa: PLC0415 - only for batched workers

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    cls = table if isinstance(table, type) else type(table)
    if not issubclass(cls, BatchedPopulateMixin):
        raise TypeError(f"{cls.__name__} has no batched populate (batch_size is for tables made from "
                        "mei.main.MEITemplate)")


def run_worker(table: Any, *restrictions: Any, say: Callable[[str], None] = print,
               max_passes: int = 100, batch_size: int | None = None) -> dict[str, Any]:
    """Make every pending key of ``table`` that no other worker holds, until none is left or a signal stops it.

    Start as many workers as you like, on any machines, against one database: keys are reserved one at a
    time (``populate(reserve_jobs=True)``), so each is made exactly once. On start the worker re-queues
    stale reservations (:func:`clear_stale`) and interrupted keys (:func:`release_interrupted`). SIGTERM
    or Ctrl-C rolls the key in progress back, puts it back in the queue and returns with
    ``stopped`` set. Keys whose ``make`` raises are recorded as job errors (message and stack) and the
    worker goes on with the others.

    Args:
        table (dj.Computed | type): the auto-populated table, e.g. your MEI table.
        *restrictions: restrict the keys, as in ``populate``.
        say (Callable[[str], None], optional): where progress lines go. Default: ``print``.
        max_passes (int, optional): stop after this many passes over the queue. Default: 100.
        batch_size (int, optional): fill up to this many keys that share a model and method in one batched run
            (``populate(batch_size=...)`` of :class:`~mei.main.MEITemplate` tables); each key is still reserved
            before work, and a stopped batch puts all its keys back. Default: ``None`` (key by key).

    Returns:
        dict: ``made`` (keys made by this worker), ``errors`` (``[(key, message)]``), ``stopped`` (the
        signal message or ``None``), ``released`` (keys put back on stop), ``requeued`` (stale keys
        re-queued on start).

    Raises:
        DatabaseConnectionLost: the database went away; the key in progress was rolled back. Rerun once the
            server is back: the rerun re-queues the key and makes the remaining ones.
    """
    table = table() if isinstance(table, type) else table
    if batch_size is not None:
        check_batch_size(table, batch_size)
    report: dict[str, Any] = {"made": 0, "errors": [], "stopped": None, "released": [], "requeued": []}
    try:
        report["requeued"] = [job["key"] for job in clear_stale(table)] + release_interrupted(table)
        with stop_on_signals():
            for _ in range(max_passes):
                if not _populate_pass(table, restrictions, report, say, batch_size):
                    break
    except SystemExit as stop:
        report["stopped"] = str(stop) or "stopped"
    except Exception as error:
        if not _is_connection_error(error):
            raise
        raise DatabaseConnectionLost(
            f"lost the connection to the database at {_describe_connection(table)} ({type(error).__name__}: "
            f"{' '.join(str(error).split())}); the key in progress was rolled back and no row was written. "
            "Rerun the worker once the server is back: it re-queues that key and makes the remaining ones."
        ) from error
    if report["stopped"]:
        report["released"] = release_interrupted(table, pid=os.getpid(), host=platform.node())
        say(f"{report['stopped']}: stopped; released {len(report['released'])} key(s) back to the queue")
    return report


def job_counts(table: Any) -> dict[str, int]:
    """Jobs of ``table`` by status (``pending``, ``reserved``, ``success``, ``error``, ``ignore``, ``total``)."""
    return dict(_jobs(table).progress())


__all__ = [
    "clear_stale", "stale_reservations", "release_interrupted", "stop_on_signals", "live_connection_ids",
    "job_counts", "run_worker", "check_batch_size", "DatabaseConnectionLost", "is_interrupted", "INTERRUPTED_PREFIXES",
]
