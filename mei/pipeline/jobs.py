"""Job recovery for many workers on one database: stale reservations, interrupted keys, clean stops.

DataJoint's reserved-jobs populate (``populate(reserve_jobs=True)``) hands every key to exactly one
worker, but three situations need a hand:

* A worker that dies without a word (SIGKILL, power loss, the database server restarting under it)
  leaves its key ``reserved`` forever. :func:`clear_stale` finds such reservations without guessing
  from the clock: the connection that made the reservation is gone (the server no longer lists it),
  or the reservation is older than the server's last start. A time limit (``older_than``) can be
  added for servers that do not show other users' connections.
* A worker stopped on purpose (SIGTERM, Ctrl-C) rolls its ``make`` back and DataJoint records the
  key as an *error* ``SystemExit: SIGTERM received``. :func:`release_interrupted` puts such keys (and
  keys cut off by a lost connection) back to ``pending``; :func:`stop_on_signals` makes Ctrl-C behave
  like SIGTERM.
* Either way, and whenever a ``make`` raises, the rows are rolled back but the files the ``make`` had
  already uploaded to the store stay there, referenced by nothing. :func:`collect_orphans` (``mei jobs
  --gc``) finds them with DataJoint's garbage collector and removes them on request.

:func:`run_worker` (the ``mei worker`` command) puts these together: it re-queues on start, makes keys
until none is left, releases its key when stopped by a signal and reports a lost database clearly.

Two more things need the operator: a key whose ``make`` failed stays a job error that no populate retries
(:func:`retry_errors`, ``mei jobs --retry-errors``, once the cause is fixed), and DataJoint's job counts say
nothing of finished work or of keys never queued (:func:`job_status`, ``mei jobs``: rows done, keys to do,
reservations by worker, errors by message). :func:`requeue_on_interrupt` makes Ctrl-C on a Python
``populate(reserve_jobs=True)`` put its key back (``MEITemplate`` tables do it by themselves).

Every function takes the auto-populated table (class or instance) whose jobs it manages. Re-queuing is
one conditional ``UPDATE`` per key, so a reservation that a live worker completes in the meantime is
never touched.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import platform
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
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


def to_do_source(table: Any, restrictions: Sequence[Any] = ()) -> Any:
    """The keys of ``table``'s key source under ``restrictions`` (what ``populate`` considers), made or not."""
    import datajoint as dj

    table = table() if isinstance(table, type) else table
    return (table.key_source & dj.AndList(list(restrictions))).proj()


def restricted_jobs(table: Any, restrictions: Sequence[Any] = ()) -> Any:
    """The job table of ``table``; with ``restrictions``, only the jobs of keys of the restricted key source
    (the jobs a ``populate(*restrictions, reserve_jobs=True)`` would take)."""
    jobs = _jobs(table)
    if not restrictions:
        return jobs
    # the job table's key has another lineage than the key source: DataJoint's populate restricts it the same way
    return jobs.restrict(to_do_source(table, restrictions), semantic_check=False)


def stale_reservations(table: Any, older_than: float | None = None, *,
                       restrictions: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Reserved jobs of ``table`` whose worker is gone; each with its key and the ``reason``.

    Args:
        table (dj.Computed | type): the auto-populated table.
        older_than (float, optional): also count reservations older than this many seconds (server
            time) as stale, whatever their connection. Use it when :func:`live_connection_ids` cannot
            tell (MySQL without ``PROCESS``), and make it longer than your slowest ``make``. ``None`` or
            0: no age limit. Default: None.
        restrictions (Sequence, optional): only jobs of keys of the key source under these restrictions
            (as ``populate`` takes them). Default: all jobs.
    """
    jobs = _jobs(table)
    connection = jobs.connection
    reserved = restricted_jobs(table, restrictions) & "status = 'reserved'"
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


def clear_stale(table: Any, older_than: float | None = None, *,
                restrictions: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Put the stale reservations of ``table`` (see :func:`stale_reservations`) back to ``pending``.

    The next ``populate(reserve_jobs=True)`` on any worker then makes those keys. Returns the jobs
    that were re-queued, each with its key and the reason.

    Args:
        table (dj.Computed | type): the auto-populated table.
        older_than (float, optional): see :func:`stale_reservations`. Default: None.
        restrictions (Sequence, optional): see :func:`stale_reservations`. Default: all jobs.
    """
    jobs = _jobs(table)
    quote = jobs.adapter.quote_identifier
    cleared = []
    for job in stale_reservations(table, older_than, restrictions=restrictions):
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


def retry_errors(table: Any, *restrictions: Any) -> list[dict[str, Any]]:
    """Put every key of ``table`` whose job is an error back to ``pending`` (``mei jobs --retry-errors``).

    DataJoint never retries a key whose ``make`` failed: ``populate(reserve_jobs=True)`` skips it until its
    job error is gone. Call this once the cause is fixed (a bug in your code, a missing file, a bad method
    row); the next worker makes those keys again. Keys it makes that fail again get a new error.

    Args:
        table (dj.Computed | type): the auto-populated table.
        *restrictions: only keys of the key source under these restrictions, as in ``populate``.

    Returns:
        list[dict]: the keys put back in the queue.
    """
    jobs = _jobs(table)
    quote = jobs.adapter.quote_identifier
    retried = []
    for key in (restricted_jobs(table, restrictions) & "status = 'error'").keys():
        key = {k: key[k] for k in jobs.primary_key}
        if _repend(jobs, key, f"{quote('status')}='error'"):
            retried.append(key)
    return retried


def count_errors(table: Any, *restrictions: Any) -> int:
    """How many keys of ``table`` (under ``restrictions``) are job errors, which no populate retries."""
    return len(restricted_jobs(table, restrictions) & "status = 'error'")


@contextlib.contextmanager
def requeue_on_interrupt(table: Any) -> Iterator[None]:
    """Around a reserved-jobs populate: Ctrl-C stops it and puts the key in progress back in the queue.

    DataJoint records a key stopped by Ctrl-C as a job error ``KeyboardInterrupt`` that no later
    ``populate(reserve_jobs=True)`` retries; with ``suppress_errors=True`` it even goes on with the next key.
    Inside this block (from the main thread, while Ctrl-C has Python's default handler), Ctrl-C stops the
    ``make`` in progress (which rolls back), the keys this process was stopped on are released
    (:func:`release_interrupted`) and ``KeyboardInterrupt`` is raised as usual. :class:`mei.main.MEITemplate`
    tables do this in ``populate(reserve_jobs=True)``; wrap other tables' populate in it.

    Args:
        table (dj.Computed | type): the auto-populated table being populated.
    """
    fired: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        fired.append(signum)
        raise SystemExit("SIGINT received")  # DataJoint's populate never swallows a SystemExit

    install = (threading.current_thread() is threading.main_thread()
               and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    if install:
        signal.signal(signal.SIGINT, handler)
    try:
        yield
    except (KeyboardInterrupt, SystemExit) as stop:
        if isinstance(stop, SystemExit) and not fired:
            raise  # a SystemExit of someone else's (e.g. SIGTERM in a worker): not ours to handle
        if install:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            install = False
        release_interrupted(table, pid=os.getpid(), host=platform.node())
        if fired:
            raise KeyboardInterrupt from None
        raise
    finally:
        if install:
            signal.signal(signal.SIGINT, signal.default_int_handler)


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
    made = int(result["success_count"])  # report["made"] is counted row by row (_counting_makes)
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
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    cls = table if isinstance(table, type) else type(table)
    populate = getattr(cls, "populate", None)
    try:
        batched = populate is not None and "batch_size" in inspect.signature(populate).parameters
    except (TypeError, ValueError):  # no signature to read
        batched = False
    if not batched:
        raise TypeError(f"{cls.__name__} has no batched populate (batch_size is for tables made from "
                        "mei.main.MEITemplate)")


@contextlib.contextmanager
def _counting_makes(table: Any, report: dict[str, Any]) -> Iterator[None]:
    """Count each key made into ``report["made"]`` as its row is committed, so that a worker stopped in the
    middle of a populate pass still reports the rows it wrote. Both DataJoint's populate and the batched
    populate mark a made key with ``jobs.complete(key, duration=...)``; a key found already made is
    completed without a duration and not counted."""
    jobs = _jobs(table)
    complete = jobs.complete

    def counting_complete(key: dict[str, Any], duration: float | None = None) -> None:
        complete(key, duration=duration)
        if duration is not None:
            report["made"] += 1

    jobs.complete = counting_complete
    try:
        yield
    finally:
        del jobs.complete  # the Job class's own method again


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
        dict: ``made`` (keys made by this worker, counted as each row is committed), ``errors``
        (``[(key, message)]``), ``stopped`` (the signal message or ``None``), ``released`` (keys put back on
        stop), ``requeued`` (stale keys re-queued on start), ``in_error`` (keys under the restrictions that
        were job errors on start: no populate retries them; :func:`retry_errors` puts them back).

    Raises:
        DatabaseConnectionLost: the database went away; the key in progress was rolled back. Rerun once the
            server is back: the rerun re-queues the key and makes the remaining ones.
    """
    table = table() if isinstance(table, type) else table
    if batch_size is not None:
        check_batch_size(table, batch_size)
    report: dict[str, Any] = {"made": 0, "errors": [], "stopped": None, "released": [], "requeued": [],
                              "in_error": 0}
    try:
        report["requeued"] = [job["key"] for job in clear_stale(table)] + release_interrupted(table)
        report["in_error"] = count_errors(table, *restrictions)
        if report["in_error"]:
            n = report["in_error"]
            say(f"{n} {'key is' if n == 1 else 'keys are'} in error; see mei jobs (mei jobs --retry-errors puts "
                f"{'it' if n == 1 else 'them'} back in the queue once the cause is fixed)")
        with stop_on_signals(), _counting_makes(table, report):
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


JOB_STATUSES: tuple[str, ...] = ("pending", "reserved", "success", "error", "ignore")


def job_counts(table: Any, *restrictions: Any) -> dict[str, int]:
    """Rows of ``table``'s job table by status (``pending``, ``reserved``, ``success``, ``error``, ``ignore``,
    ``total``), only of keys under ``restrictions`` when given.

    DataJoint deletes the job of a key once it is made (unless ``jobs.keep_completed``) and adds jobs for new keys
    only when a populate refreshes the queue, so these counts say nothing about finished work or keys never
    queued: :func:`job_status` does."""
    jobs = restricted_jobs(table, restrictions)
    counts = {status: len(jobs & f"status = '{status}'") for status in JOB_STATUSES}
    counts["total"] = sum(counts.values())
    return counts


@dataclass(frozen=True)
class Reservation:
    """The keys one worker process holds: ``host``, ``pid``, how many keys and the age of the oldest (seconds)."""

    host: str
    pid: int
    keys: int
    age: float


@dataclass(frozen=True)
class ErrorGroup:
    """Keys whose job error has this ``message``; ``interrupted`` when it means stopped, not failed."""

    message: str
    keys: int
    interrupted: bool


@dataclass
class JobStatus:
    """Where the work of a table stands for a restriction (:func:`job_status`, ``mei jobs``).

    ``to_do`` counts the keys of the key source that have no row yet, whatever their job (none yet, pending,
    reserved, error or ignore); ``done`` counts the table's rows; ``reserved`` and ``errors`` are among ``to_do``.
    """

    table: str
    restrictions: list[Any]
    done: int
    to_do: int
    reserved: list[Reservation] = field(default_factory=list)
    errors: list[ErrorGroup] = field(default_factory=list)
    jobs: dict[str, int] = field(default_factory=dict)
    """The job table's rows by status, as :func:`job_counts`."""

    @property
    def n_reserved(self) -> int:
        return sum(item.keys for item in self.reserved)

    @property
    def n_errors(self) -> int:
        return sum(item.keys for item in self.errors)

    def as_dict(self) -> dict[str, Any]:
        """Plain types only, for JSON (``mei jobs --json``)."""
        return {"table": self.table, "restrictions": self.restrictions, "done": self.done, "to_do": self.to_do,
                "reserved": self.n_reserved, "error": self.n_errors,
                "reservations": [vars(item) for item in self.reserved],
                "errors": [vars(item) for item in self.errors], "jobs": self.jobs}

    def lines(self) -> list[str]:
        """The human-readable form ``mei jobs`` prints."""
        where = f" where {' and '.join(str(r) for r in self.restrictions)}" if self.restrictions else ""
        waiting = self.to_do - self.n_reserved - self.n_errors
        out = [f"{self.table}{where}",
               f"  done:     {self.done} row(s)",
               f"  to do:    {self.to_do} key(s) ({self.n_reserved} reserved, {self.n_errors} in error, "
               f"{max(waiting, 0)} waiting)"]
        if self.reserved:
            out.append(f"  reserved: {self.n_reserved} key(s)")
            out += [f"    {item.host} pid {item.pid}: {item.keys} key(s), oldest reserved {item.age:.0f} s ago"
                    for item in self.reserved]
        if self.errors:
            out.append(f"  errors:   {self.n_errors} key(s); no worker retries them: fix the cause, then "
                       "mei jobs --retry-errors")
            out += [f"    {item.keys} x {item.message}" + (" (interrupted: a worker re-queues it on start)"
                                                         if item.interrupted else "")
                    for item in self.errors]
        return out


def _server_now(connection: Any, like: datetime) -> datetime:
    now = connection.query("SELECT CURRENT_TIMESTAMP(3)").fetchone()[0]
    if like.tzinfo is None and now.tzinfo is not None:
        now = now.replace(tzinfo=None)  # the server's session time zone, as the stored reservation times
    return now


def job_status(table: Any, *restrictions: Any) -> JobStatus:
    """What is done and what is left of ``table`` under ``restrictions`` (``mei jobs``).

    Args:
        table (dj.Computed | type): the auto-populated table.
        *restrictions: restrict the keys, as in ``populate``.

    Returns:
        JobStatus: ``done`` (rows), ``to_do`` (keys of the key source without a row), the reservations by worker
        (host, pid, age) and the job errors grouped by message.
    """
    import datajoint as dj

    table = table() if isinstance(table, type) else table
    restrictions = tuple(restrictions)
    source = to_do_source(table, restrictions)
    jobs = restricted_jobs(table, restrictions)
    status = JobStatus(table=type(table).__name__, restrictions=list(restrictions),
                       done=len(table & dj.AndList(list(restrictions))), to_do=len(source - table.proj()),
                       jobs=job_counts(table, *restrictions))
    rows = (jobs & "status = 'reserved'").proj("host", "pid", "reserved_time").to_dicts()
    workers: dict[tuple[str, int], list[datetime]] = {}
    for row in rows:
        workers.setdefault((row["host"], int(row["pid"])), []).append(row["reserved_time"])
    if workers:
        now = _server_now(jobs.connection, rows[0]["reserved_time"])
        status.reserved = [Reservation(host, pid, len(times), max(0.0, (now - min(times)).total_seconds()))
                           for (host, pid), times in sorted(workers.items())]
    messages = Counter(row["error_message"] for row in (jobs & "status = 'error'").proj("error_message").to_dicts())
    status.errors = [ErrorGroup(message, n, is_interrupted(message)) for message, n in messages.most_common()]
    return status


# ------------------------------------------------------------------------------------ orphaned store objects

DEFAULT_GC_MIN_AGE_S: float = 3600.0
"""Unreferenced store objects younger than this (seconds) are kept: a ``make`` on another worker may have uploaded
them and not committed yet. :func:`collect_orphans` and ``mei jobs --gc --min-age`` take another value."""

_REFERENCE_SCAN_ERRORS: tuple[str, ...] = ("Error scanning", "Error accessing table")


class GarbageCollectionError(RuntimeError):
    """The store or the database could not be read completely, so nothing was (or would be) deleted."""


@dataclass(frozen=True)
class StoreObject:
    """One object in a store: ``path`` relative to the store's location (the S3 key below its prefix)."""

    store: str
    path: str
    size: int
    age: float | None = None
    """Seconds since it was written; ``None`` when not looked up (``min_age=0``)."""


@dataclass
class OrphanReport:
    """What :func:`collect_orphans` found and did.

    ``orphans`` are the objects no committed row references and older than ``min_age``: the ones a delete removes.
    ``recent`` are unreferenced but younger than ``min_age`` and always kept. ``deleted`` and ``failed`` are empty
    on a dry run.
    """

    schemas: list[str]
    stores: dict[str, str]
    """Store name -> its location as a URL (``file:///...``, ``s3://bucket/prefix/``)."""
    min_age: float
    dry_run: bool
    orphans: list[StoreObject] = field(default_factory=list)
    recent: list[StoreObject] = field(default_factory=list)
    deleted: list[StoreObject] = field(default_factory=list)
    failed: list[StoreObject] = field(default_factory=list)

    @property
    def orphan_bytes(self) -> int:
        return sum(item.size for item in self.orphans)

    @property
    def deleted_bytes(self) -> int:
        return sum(item.size for item in self.deleted)


def _schema_object(connection: Any, name: str) -> Any:
    """The schema ``name`` as registered on ``connection`` (registered now if it is not)."""
    import datajoint as dj

    return connection.schemas.get(name) or dj.Schema(name, connection=connection, create_schema=False,
                                                     create_tables=False)


def gc_schemas(table: Any, upstream: bool = True) -> list[str]:
    """Names of the schemas :func:`collect_orphans` collects for ``table``: its own first, then (with ``upstream``)
    those of every table it depends on, however indirectly (e.g. the trained-model schema that keeps weights).

    Schemas DataJoint has not loaded yet are registered on ``table``'s connection as they are found.
    """
    table = table() if isinstance(table, type) else table
    connection = table.connection
    names = [table.database]
    if not upstream:
        return names
    split = connection.adapter.split_full_table_name
    while True:
        connection.dependencies.load()  # every schema registered on the connection
        found = {split(name)[0] for name in connection.dependencies.ancestors(table.full_table_name)}
        new = sorted(found - set(connection.schemas))
        if not new:
            return names + sorted(found - {table.database})
        for name in new:  # their own parents become visible on the next load
            _schema_object(connection, name)


@contextlib.contextmanager
def _reference_scan_problems() -> Iterator[list[str]]:
    """Collect the warnings DataJoint's garbage collector logs when it cannot read a table's references.

    Workaround: ``dj.gc.GarbageCollector`` (2.3.5) logs such errors (a lost connection, a table the account cannot
    read) and goes on without that table's references, so the live objects of that table look orphaned and
    ``collect(dry_run=False)`` would delete them; its own guard covers only errors listing the store.
    """
    logger = logging.getLogger("datajoint")
    problems: list[str] = []

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if message.startswith(_REFERENCE_SCAN_ERRORS):
                problems.append(message)

    handler, level = Handler(logging.WARNING), logger.level
    logger.addHandler(handler)
    if not logger.isEnabledFor(logging.WARNING):
        logger.setLevel(logging.WARNING)
    try:
        yield problems
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@contextlib.contextmanager
def _absolute_file_location(config: Any, store: str) -> Iterator[None]:
    """Workaround: with a relative ``location``, a file store's listing in ``dj.gc`` (2.3.5) yields garbled paths
    (fsspec walks absolute paths, DataJoint cuts off ``len(location)`` characters), so every live object looks
    orphaned. The location is made absolute while collecting, then restored."""
    spec = config.stores.get(store)
    location = spec.get("location") if isinstance(spec, dict) and spec.get("protocol") == "file" else None
    if not location or Path(location).is_absolute():
        yield
        return
    spec["location"] = str(Path(location).expanduser().resolve())
    try:
        yield
    finally:
        spec["location"] = location


def _age(backend: Any, path: str, now: datetime) -> float:
    modified = backend.fs.modified(backend._full_path(path))
    if modified.tzinfo is None:
        modified = modified.astimezone()  # a naive time is the local time
    return (now - modified).total_seconds()


def collect_orphans(table: Any, *, delete: bool = False, min_age: float = DEFAULT_GC_MIN_AGE_S,
                    stores: Sequence[str] | None = None, upstream: bool = True) -> OrphanReport:
    """Find, and with ``delete=True`` remove, store objects that no committed row references.

    A ``make`` that raises, is stopped or is killed after its files were uploaded rolls its rows back but leaves
    the files (``<npy@>``, ``<object@>``, ``<blob@>``, ...) in the store. This finds them with DataJoint's own
    garbage collector (``dj.gc.GarbageCollector``, one per store) over the schemas of :func:`gc_schemas`, and
    deletes them with DataJoint's deleters. Every object a row of those schemas references is kept, and so is
    everything outside those schemas' sections of the store.

    Safe beside running workers: objects younger than ``min_age`` are reported as ``recent`` and kept, as a
    ``make`` elsewhere may not have committed them yet. Make ``min_age`` longer than any ``make`` holds its
    transaction open after inserting (for MEI tables: seconds); 0 includes everything (no worker running).
    If any table's references or any part of the store cannot be read, it raises and deletes nothing.

    Args:
        table (dj.Table | type): a table of the pipeline, e.g. your MEI table.
        delete (bool, optional): remove the orphans; otherwise only report them (a dry run). Default: False.
        min_age (float, optional): seconds; keep unreferenced objects younger than this.
            Default: :data:`DEFAULT_GC_MIN_AGE_S` (1 h).
        stores (Sequence[str], optional): the stores to collect.
            Default: the MEI store (:func:`mei.pipeline.database.store_name`).
        upstream (bool, optional): also collect the schemas of the tables ``table`` depends on. Default: True.

    Returns:
        OrphanReport: the schemas and stores collected, the orphans (path, size, age) and what was deleted.

    Raises:
        ValueError: ``min_age`` is negative or a store is not configured on the table's connection.
        GarbageCollectionError: a table's references or the store's listing could not be read; nothing deleted.
    """
    import datajoint as dj
    from datajoint.errors import DataJointError
    from datajoint.hash_registry import delete_path

    from . import database as db

    if isinstance(min_age, bool) or not isinstance(min_age, (int, float)) or not min_age >= 0:
        raise ValueError(f"min_age must be a number of seconds >= 0, got {min_age!r}")
    table = table() if isinstance(table, type) else table
    connection = table.connection
    names = gc_schemas(table, upstream=upstream)
    schemas = [_schema_object(connection, name) for name in names]
    config = db.config_of(connection)
    store_names = list(dict.fromkeys(stores)) if stores else [db.store_name()]
    report = OrphanReport(schemas=names, stores={}, min_age=float(min_age), dry_run=not delete)
    with contextlib.ExitStack() as stack:
        scanned = []  # every store is read completely before anything is deleted
        for store in store_names:
            stack.enter_context(_absolute_file_location(config, store))
            try:
                collector = dj.gc.GarbageCollector(*schemas, store=store, config=config)
            except DataJointError as error:
                raise ValueError(f"store {store!r} is not configured on this connection ({error})") from error
            report.stores[store] = collector.backend.get_url("")
            with _reference_scan_problems() as problems:
                stats = collector.collect(dry_run=True)
            if problems or stats["scan_errors"]:
                raise GarbageCollectionError(
                    f"could not read everything in store {store!r} for schemas {', '.join(names)}, so nothing was "
                    f"deleted: {'; '.join(problems + stats['scan_errors'])}")
            scanned.append((store, collector, stats))
        now = datetime.now(timezone.utc)
        for store, collector, stats in scanned:
            backend = collector.backend
            for kind, paths in (("hash", stats["orphaned_hash_paths"]), ("schema", stats["orphaned_schema_paths"])):
                for path in paths:
                    item = StoreObject(store, path, int(backend.size(path)),
                                       _age(backend, path, now) if min_age > 0 else None)
                    if item.age is not None and item.age < min_age:
                        report.recent.append(item)
                        continue
                    report.orphans.append(item)
                    if not delete:
                        continue
                    try:
                        done = (delete_path(path, store, config=config) if kind == "hash"
                                else collector.delete_schema_path(path))  # logs and returns False on an error
                    except Exception:  # noqa: BLE001 - reported as not deleted, the others go on
                        done = False
                    (report.deleted if done else report.failed).append(item)
    return report


__all__ = [
    "clear_stale", "stale_reservations", "release_interrupted", "stop_on_signals", "live_connection_ids",
    "job_counts", "job_status", "JobStatus", "Reservation", "ErrorGroup", "JOB_STATUSES", "retry_errors",
    "count_errors", "requeue_on_interrupt", "restricted_jobs", "to_do_source", "run_worker", "check_batch_size",
    "DatabaseConnectionLost", "is_interrupted", "INTERRUPTED_PREFIXES",
    "collect_orphans", "gc_schemas", "OrphanReport", "StoreObject", "GarbageCollectionError", "DEFAULT_GC_MIN_AGE_S",
]
