"""The ``mei`` command: ``demo``, ``report``, ``check-config``, ``worker`` and ``jobs``.

Exit codes: 0 success; 1 the work ran but found a problem (an invalid config, keys that failed, demo targets
missed); 2 the command could not run as asked (bad arguments, unreadable file, unknown table, a ``--where``
the database refuses, no database server): one line on stderr says what is wrong and what to do, and
``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ENV_WORKER_TABLE = "MEI_WORKER_TABLE"


class UsageError(Exception):
    """The command cannot run as asked; the message says why (exit code 2)."""


# ------------------------------------------------------------------------------------ helpers


def _allow(prefixes: Sequence[str] | None) -> None:
    if prefixes:
        from .engine.resolve import allow_modules

        allow_modules(*prefixes)


def _table(path: str | None) -> Any:
    """An instance of the table class named by dotted path, e.g. ``lab.MEI``.

    The path comes from the operator (the command line or ``$MEI_WORKER_TABLE``), not from a database row, so
    it is imported like ``python -m`` would (the current folder first on ``sys.path``) and does not go through
    the component allowlist of :mod:`mei.engine.resolve`, which never hands out tables. It must name a DataJoint table.
    """
    import importlib

    if not path:
        raise UsageError(f"name the table: --table mymodule.MEI (or set ${ENV_WORKER_TABLE})")
    module_name, _, name = path.rpartition(".")
    if not module_name or not all(part.isidentifier() for part in path.split(".")):
        raise UsageError(f"cannot use table {path!r}: expected a dotted path like mymodule.MEI")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise UsageError(f"cannot use table {path!r}: no module named {error.name!r} in the current folder "
                         f"({os.getcwd()}) or on PYTHONPATH") from error
    table = getattr(module, name, None)
    if table is None:
        raise UsageError(f"cannot use table {path!r}: module {module_name!r} has no {name!r}")
    table = table() if isinstance(table, type) else table
    if not hasattr(table, "populate") and not hasattr(table, "fetch"):
        raise UsageError(f"{path!r} is not a DataJoint table")
    return table


def _restrictions(where: Sequence[str] | None) -> list[Any]:
    """``--where`` values: a JSON object becomes a dict restriction, anything else an SQL condition."""
    restrictions = []
    for text in where or ():
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        restrictions.append(value if isinstance(value, dict) else text)
    return restrictions


def _restricted(table: Any, restrictions: Sequence[Any]) -> Any:
    for restriction in restrictions:
        table = table & restriction
    return table


def _checked_where(table: Any, restrictions: Sequence[Any], source: bool = True) -> list[Any]:
    """``restrictions`` once the database accepts each of them on the table's key source (or, with
    ``source=False``, on the table): a bad ``--where`` is a :class:`UsageError` naming it, before any work."""
    target = table.key_source if source else table
    for restriction in restrictions:
        try:
            len(target & restriction)
        except Exception as error:
            if _unreachable(error):
                raise
            text = json.dumps(restriction) if isinstance(restriction, dict) else str(restriction)
            raise UsageError(f"cannot use --where {text!r}: {_one_line(error)}; give an SQL condition on the "
                             "table's key attributes "
                             "(\"neuron_id < 10\") or a JSON object ('{\"mei_seed\": 0}')") from error
    return list(restrictions)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _add_table_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--table", required=required, help="dotted path of the table class, e.g. mymodule.MEI")
    parser.add_argument("--where", action="append", metavar="RESTRICTION",
                        help="restrict the keys: an SQL condition (\"neuron_id < 10\") or a JSON object "
                             "('{\"mei_seed\": 0}'); repeat to combine")
    parser.add_argument("--allow", action="append", metavar="PREFIX",
                        help="also allow dotted paths under this module prefix (like $MEI_ALLOWED_MODULES)")


# ------------------------------------------------------------------------------------ commands


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the ground-truth demo through the pipeline and write its report."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.engine:
        from .demo.engine_only import run

        grid, losses = run(args.out)
        print(f"MEI grid:   {grid}\nloss curve: {losses}")
        return 0
    from .demo.pipeline import DemoSettings, run_demo
    from .demo.report import demo_report

    settings = DemoSettings.quick() if args.quick else DemoSettings()
    for name in ("n_neurons", "epochs", "steps"):
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    demo_run = run_demo(settings, prefix=args.schema, fresh=args.fresh)
    path, summary = demo_report(demo_run, args.out, command=getattr(args, "command_line", "mei demo"))
    print(_summary_text(summary, demo_run.timings, quick=args.quick))
    print(f"report: {path.resolve()}\n  open it in a browser: {path.resolve().as_uri()}")
    return 0 if summary["targets_met"] or args.quick else 1


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _summary_text(summary: dict[str, Any], timings: dict[str, float], quick: bool = False) -> str:
    """The demo's figures, then each target with its goal, value and verdict, then the seconds per step."""
    lines = ["", "MEI demo: figures"]
    norms = (f" (MEI norm {summary['median_mei_norm']:.2f}, natural images' median norm "
             f"{summary['natural_image_median_norm']:.2f})" if "median_mei_norm" in summary else "")
    for name, value in summary.items():
        if name not in ("targets", "targets_met"):
            ratio = "activation_ratio" in name or "best_natural" in name  # the figures compared with images
            lines.append(f"  {name}: {_number(value)}{norms if ratio else ''}")
    lines.append("targets" + (" (of the full demo; --quick does not enforce them)" if quick else ""))
    for target in summary["targets"]:
        verdict = "met   " if target["met"] else "MISSED"
        lines.append(f"  {verdict} {target['figure']} {target['goal']}: {_number(target['value'])}  "
                     f"({target['meaning']})")
    missed = [target["figure"] for target in summary["targets"] if not target["met"]]
    lines.append("all targets met" if not missed else f"{len(missed)} target(s) missed: {', '.join(missed)}")
    lines.append("seconds per step: " + ", ".join(f"{step} {seconds:.1f}" for step, seconds in timings.items()))
    return "\n".join(lines)


def cmd_report(args: argparse.Namespace) -> int:
    """Write the HTML report of the MEIs a restriction selects."""
    from .demo.report import write_report

    _allow(args.allow)
    table = _table(args.table)
    table = _restricted(table, _checked_where(table, _restrictions(args.where), source=False))
    card = _table(args.card) if args.card else None
    extra = {name: _table(path) for name, path in (("mds_table", args.mds), ("tuning_table", args.tuning)) if path}
    try:
        path = write_report(table, args.out, card_table=card, title=args.title,
                            command=getattr(args, "command_line", None), **extra)
    except ValueError as error:
        print(f"mei report: {error}", file=sys.stderr)
        return 1
    print(f"report: {path.resolve()}")
    return 0


def load_config_file(path: str) -> tuple[str, Any]:
    """``(method_fn, config)`` from a JSON file: a bare config, or ``{"method_fn": ..., "method_config": ...}``."""
    try:
        content = json.loads(Path(path).read_text())
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from error
    except ValueError as error:
        raise UsageError(f"{path} is not valid JSON: {error}") from error
    if isinstance(content, dict) and "method_config" in content:
        return content.get("method_fn", "mei.methods.gradient_ascent"), content["method_config"]
    return "mei.methods.gradient_ascent", content


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a method config file without a database."""
    from .engine.resolve import ConfigError
    from .pipeline.generation import validate_method

    _allow(args.allow)
    method_fn, config = load_config_file(args.file)
    method_fn = args.method or method_fn
    try:
        validate_method(method_fn, config)
    except ConfigError as error:
        where = f" at '{error.key}'" if error.key else ""
        print(f"{args.file}: invalid config{where}: {error.message}", file=sys.stderr)
        return 1
    print(f"{args.file}: valid config for {method_fn}")
    device = config.get("device") if isinstance(config, dict) else None
    if isinstance(device, str) and device.startswith("cuda"):
        print(f"note: device {device!r} is not checked against this machine (the one that runs the MEIs may "
              "differ); a run where it is missing stops with an error that says so")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Make pending keys of a table with reserved jobs until none is left."""
    from .pipeline.jobs import DatabaseConnectionLost, check_batch_size, run_worker

    _allow(args.allow)
    table = _table(args.table or os.environ.get(ENV_WORKER_TABLE))
    if args.batch_size is not None:
        try:
            check_batch_size(table, args.batch_size)
        except (TypeError, ValueError) as error:
            print(f"mei worker: {error}", file=sys.stderr)
            return 2
    restrictions = _checked_where(table, _restrictions(args.where))
    try:
        report = run_worker(table, *restrictions, max_passes=args.max_passes, batch_size=args.batch_size)
    except DatabaseConnectionLost as error:
        print(f"mei worker: {error}", file=sys.stderr)
        return 1
    print(f"mei worker: made {report['made']} key(s), {len(report['errors'])} failed"
          + (f", stopped ({report['stopped']})" if report["stopped"] else ""))
    return 1 if report["errors"] else 0


def _gc_lines(report: Any) -> list[str]:
    """What ``mei jobs --gc`` prints: a summary, one line per orphan, then what was kept or failed."""
    where = "; ".join(f"store {name!r} at {url}" for name, url in report.stores.items())
    lines = [f"schemas: {', '.join(report.schemas)}; {where}"]
    verb = "deleted" if not report.dry_run else "would delete"
    listed = report.deleted if not report.dry_run else report.orphans
    lines.append(f"{verb} {len(listed)} orphaned object(s), {sum(item.size for item in listed)} bytes"
                 + (" (dry run: nothing deleted; --delete removes them)" if report.dry_run and listed else ""))
    for item in listed:
        age = "" if item.age is None else f"  {item.age:.0f} s old"
        lines.append(f"  {item.store}:{item.path}  {item.size} bytes{age}")
    if report.recent:
        lines.append(f"kept {len(report.recent)} unreferenced object(s) younger than {report.min_age:g} s, "
                     f"{sum(item.size for item in report.recent)} bytes (a make may still commit them; "
                     "--min-age 0 includes them once no worker runs)")
        lines += [f"  {item.store}:{item.path}  {item.size} bytes  {item.age:.0f} s old" for item in report.recent]
    if report.failed:
        lines.append(f"could not delete {len(report.failed)} object(s):")
        lines += [f"  {item.store}:{item.path}" for item in report.failed]
    return lines


def cmd_jobs(args: argparse.Namespace) -> int:
    """Show where a table's work stands for a restriction: rows done, keys to do, reservations by worker, job
    errors by message. Optionally first re-queue stale reservations (--clear-stale) or errored keys
    (--retry-errors), and list (or, with --delete, remove) store objects of rolled-back or killed makes that no
    row references (--gc)."""
    from .pipeline.jobs import (
        GarbageCollectionError,
        clear_stale,
        collect_orphans,
        job_status,
        retry_errors,
    )

    if args.delete and not args.gc:
        raise UsageError("--delete only goes with --gc")
    for name, value in (("--min-age", args.min_age), ("--store", args.store)):
        if value is not None and not args.gc:
            raise UsageError(f"{name} only goes with --gc")
    if args.min_age is not None and not args.min_age >= 0:
        raise UsageError(f"--min-age must be a number of seconds >= 0, got {args.min_age:g}")
    if args.clear_stale is not None and not args.clear_stale >= 0:
        raise UsageError(f"--clear-stale must be a number of seconds >= 0 (0: no age limit), got {args.clear_stale:g}")
    _allow(args.allow)
    table = _table(args.table or os.environ.get(ENV_WORKER_TABLE))
    restrictions = _checked_where(table, _restrictions(args.where))
    say = (lambda line: print(line, file=sys.stderr)) if args.json else print
    if args.clear_stale is not None:
        cleared = clear_stale(table, older_than=args.clear_stale, restrictions=restrictions)
        say(f"re-queued {len(cleared)} stale reservation(s)")
    if args.retry_errors:
        retried = retry_errors(table, *restrictions)
        say(f"put {len(retried)} errored key(s) back in the queue")
    code = 0
    if args.gc:
        options = {} if args.min_age is None else {"min_age": args.min_age}
        try:
            report = collect_orphans(table, delete=args.delete, stores=args.store, **options)
        except ValueError as error:
            raise UsageError(str(error)) from error
        except GarbageCollectionError as error:
            print(f"mei jobs: {error}", file=sys.stderr)
            return 1
        say("\n".join(_gc_lines(report)))
        code = 1 if report.failed else 0
    status = job_status(table, *restrictions)
    if args.json:
        print(json.dumps(status.as_dict(), default=str))
    else:
        print("\n".join(status.lines()))
    return code


def cmd_legacy_import(args: argparse.Namespace) -> int:
    """Copy a DataJoint 0.14 nnfabrik schema into the package's DataJoint 2 fabrik tables (idempotent, resumable)."""
    from .pipeline.legacy_bridge import importer

    _allow(args.allow)
    return importer.run(args)


# ------------------------------------------------------------------------------------ parser


def _doc(command: Any) -> str:
    """The first line of a command function's docstring, for its ``--help``."""
    return (command.__doc__ or "").strip()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mei`` command (one sub-parser per command)."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="mei", description="Most exciting inputs for PyTorch models of neurons")
    parser.add_argument("--version", action="version", version=f"mei {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback when a command fails")
    debug = argparse.ArgumentParser(add_help=False)  # --debug also after the command (mei jobs --debug ...)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the traceback when the command fails")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", parents=[debug],
                          help="the ground-truth demo: synthetic V1 population -> ensemble -> MEIs -> report",
                          description=_doc(cmd_demo))
    demo.add_argument("--out", default="mei_output", help="folder of the report (default: mei_output)")
    demo.add_argument("--fresh", action="store_true", help="drop the demo's schemas first instead of reusing rows")
    demo.add_argument("--quick", action="store_true", help="a small, fast run (12 neurons); targets not enforced")
    demo.add_argument("--neurons", dest="n_neurons", type=int, help="number of model neurons (default 48)")
    demo.add_argument("--epochs", type=int, help="training epochs per member (default 5)")
    demo.add_argument("--steps", type=int, help="gradient-ascent steps per MEI (default 50)")
    demo.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    demo.add_argument("--schema", default="mei_demo", help="the demo's schema name (default: mei_demo)")
    demo.add_argument("--engine", action="store_true", help="the small engine-only demo instead (no database)")
    demo.set_defaults(func=cmd_demo)

    report = sub.add_parser("report", parents=[debug], help="HTML report of the MEIs in a table restriction",
                            description=_doc(cmd_report))
    _add_table_arguments(report)
    report.add_argument("--card", help="dotted path of a report-card table to include, e.g. mymodule.ReportCard")
    report.add_argument("--mds", help="dotted path of an MDS table to include, e.g. mymodule.MDS")
    report.add_argument("--tuning", help="dotted path of a tuning table to include, e.g. mymodule.Tuning")
    report.add_argument("--out", default="mei_report", help="output folder (default: mei_report)")
    report.add_argument("--title", default="MEI report", help="page title")
    report.set_defaults(func=cmd_report)

    check = sub.add_parser("check-config", parents=[debug],
                           help="validate a method config JSON file (no database needed)",
                           description=_doc(cmd_check_config) + " Exit code 0: valid, 1: invalid, 2: unreadable.")
    check.add_argument("file", help="JSON file: a method config, or {\"method_fn\": ..., \"method_config\": ...}")
    check.add_argument("--method", help="dotted path of the method (default: the file's, else gradient_ascent)")
    check.add_argument("--allow", action="append", metavar="PREFIX", help="also allow dotted paths under PREFIX")
    check.set_defaults(func=cmd_check_config)

    worker = sub.add_parser("worker", parents=[debug], help="populate a table with reserved jobs until no work is left",
                            description=_doc(cmd_worker) + f" The table defaults to ${ENV_WORKER_TABLE}.")
    _add_table_arguments(worker, required=False)
    worker.add_argument("--max-passes", type=int, default=100, help="passes over the queue at most (default 100)")
    worker.add_argument("--batch-size", type=int, default=None, metavar="K",
                        help="fill up to K keys sharing a model and method in one batched run (MEI tables)")
    worker.set_defaults(func=cmd_worker)

    jobs = sub.add_parser("jobs", parents=[debug], help="where a table's work stands: done, to do, reserved, errors",
                          description=_doc(cmd_jobs) + f" The table defaults to ${ENV_WORKER_TABLE}.")
    _add_table_arguments(jobs, required=False)
    jobs.add_argument("--json", action="store_true",
                      help="print the status as one JSON object (done, to_do, reserved, error, reservations, "
                           "errors, jobs); other messages go to stderr")
    jobs.add_argument("--retry-errors", action="store_true",
                      help="first put the keys whose make failed (job errors) back in the queue, once the cause "
                           "is fixed: no worker retries them otherwise")
    jobs.add_argument("--clear-stale", type=float, metavar="SECONDS",
                      help="first re-queue reservations of dead workers (0), or also those older than SECONDS")
    jobs.add_argument("--gc", action="store_true",
                      help="list store objects that no row references (left by rolled-back or killed makes) in the "
                           "table's schema and the schemas upstream of it (all of them: --where does not apply); "
                           "a dry run unless --delete")
    jobs.add_argument("--delete", action="store_true", help="with --gc: delete the objects it lists")
    jobs.add_argument("--min-age", type=float, metavar="SECONDS",
                      help="with --gc: keep unreferenced objects younger than SECONDS, a make on a running worker "
                           "may still commit them (default 3600; 0 once no worker runs)")
    jobs.add_argument("--store", action="append", metavar="NAME",
                      help="with --gc: the store to collect (default: the MEI store, $MEI_STORE or 'mei'); repeat")
    jobs.set_defaults(func=cmd_jobs)

    legacy = sub.add_parser("legacy", parents=[debug], help="DataJoint 0.14 / nnfabrik schemas (docs/legacy.md)")
    legacy_import = legacy.add_subparsers(dest="legacy_command", required=True, metavar="ACTION").add_parser(
        "import", parents=[debug], help="copy a legacy nnfabrik schema into DataJoint 2 tables, keeping every hash",
        description=_doc(cmd_legacy_import))
    from .pipeline.legacy_bridge import importer

    importer.add_arguments(legacy_import)
    legacy_import.add_argument("--allow", action="append", help="module prefix of the lab's functions to allow")
    legacy_import.set_defaults(func=cmd_legacy_import)
    return parser


QUIET_WARNINGS: tuple[str, ...] = ("No datajoint.json found", "XDG_RUNTIME_DIR")
"""Warnings the command silences (their message starts or contains these): DataJoint's note that it found no
configuration file, which the command needs none of, and the one about ``XDG_RUNTIME_DIR``. Library users keep
them."""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Within the command only: :data:`QUIET_WARNINGS` are not shown."""
    with warnings.catch_warnings():
        for text in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=f".*{text}")
        yield


def _unreachable(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) says the database server cannot be reached."""
    from .pipeline.jobs import CONNECTION_MARKERS, _is_connection_error

    seen: set[int] = set()
    item: BaseException | None = error
    while item is not None and id(item) not in seen:
        seen.add(id(item))
        if _is_connection_error(item) and (type(item).__name__ == "LostConnectionError"
                                           or any(marker in str(item) for marker in CONNECTION_MARKERS)):
            return True
        item = item.__cause__ or item.__context__
    return False


def _failure(error: BaseException) -> str:
    """One line for an error that stopped the command: what is wrong and what to do."""
    if _unreachable(error):
        return (f"cannot reach the database ({_one_line(error)}); check that the server is running and that "
                "DJ_HOST, DJ_PORT, DJ_USER, DJ_PASS and DJ_BACKEND (or datajoint.json) point at it, then rerun")
    return f"{_one_line(error)} (rerun with --debug for the traceback)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mei`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    args.command_line = shlex.join(["mei", *(sys.argv[1:] if argv is None else argv)])  # shown on reports
    debug = getattr(args, "debug", False)
    with _quiet():
        try:
            return args.func(args)
        except UsageError as error:
            if debug:
                traceback.print_exc()
            print(f"mei {args.command}: {error}", file=sys.stderr)
            return 2
        except Exception as error:  # noqa: BLE001 - one line (the traceback with --debug), exit code 2
            if debug:
                traceback.print_exc()
            print(f"mei {args.command}: {_failure(error)}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
