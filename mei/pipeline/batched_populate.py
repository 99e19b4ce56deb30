"""Batched populate of MEI tables: up to K pending keys that share a model and a method in one batched run.

:class:`BatchedPopulateMixin` gives :class:`mei.main.MEITemplate` a ``batch_size`` option on ``populate``::

    MEI().populate(batch_size=64)                     # one process
    MEI().populate(batch_size=64, reserve_jobs=True)  # many workers on one server

Pending keys are grouped by trained model, method (and its run config, e.g. the input shape) and objective
kind; each group is optimized ``batch_size`` keys at a time by the method's batched counterpart
(:func:`mei.batched.gradient_ascent_batched` for :func:`mei.methods.gradient_ascent`, or a method's own
``batched`` attribute). Every key still gets its own row with its own provenance (``steps``, ``device``,
``config_hash``, ``versions``; ``wall_time`` is the batch's time divided among its keys), the same row
plain ``populate()`` writes, within float rounding. With ``reserve_jobs=True`` each key is reserved in
the job table before any work on it; keys another worker holds are skipped, a failed batch marks each of
its keys as an error. Keys whose method has no batched counterpart go through the plain ``populate``, and so
do all keys of a table that overrides ``MEITemplate._compute`` (its own compute runs, key by key).

Uses DataJoint's public key source and job-table API.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..batched import gradient_ascent_batched
from ..methods import gradient_ascent, recording
from ..modules import ConstrainedOutputModel
from . import database as db
from .generation import run_config
from .jobs import requeue_on_interrupt
from .model_cache import freeze_model
from .part_tables import primary_key_of


def batched_counterpart(method: Callable[..., Any]) -> Callable[..., Any] | None:
    """The batched version of ``method`` (``(dataloaders, models, config, seeds) -> [result, ...]``), if any."""
    if method is gradient_ascent:
        return gradient_ascent_batched
    return getattr(method, "batched", None)


@dataclasses.dataclass
class Prepared:
    """What one pending key needs for its run (fetched once, before any batch runs)."""

    key: dict[str, Any]
    method: Callable[..., Any]
    stored_config: dict[str, Any]
    config: dict[str, Any]
    seed: int
    objective: Any
    needs_data: bool

    def group(self, table: Any) -> tuple[Any, ...]:
        """Keys with equal groups can share one batched call (and one forward per step)."""
        model_key = primary_key_of(table.trained_model_table(), self.key)
        objective = self.objective
        kind = (("unit", id(objective.model), repr(sorted(objective.forward_kwargs.items())), id(objective.target_fn))
                if isinstance(objective, ConstrainedOutputModel) else ("other",))
        return (tuple(sorted(model_key.items())), self.key["method_fn"], self.key["method_hash"],
                repr(sorted(self.config.items())), self.needs_data, kind)


def prepare(table: Any, key: Mapping[str, Any]) -> Prepared:
    """Fetch method, seed, model and objective of ``key`` the way ``MEITemplate.make`` does."""
    key = dict(key)
    method, stored_config = table.method_table().fetch_method(key)
    seed = int((table.seed_table() & key).fetch1("mei_seed"))
    objective = freeze_model(table.get_objective(table.load_model(key), key))
    config = run_config(method, stored_config, table.input_shape(key))
    needs_data = table.include_dataloader or getattr(method, "needs_dataloaders", "shape" not in config)
    return Prepared(key, method, stored_config, config, seed, objective, needs_data)


def to_do(table: Any, restrictions: tuple) -> Any:
    """The keys of ``table.key_source`` under ``restrictions`` (what ``populate`` considers), from the public API."""
    import datajoint as dj

    source = table.key_source
    return (source & dj.AndList(restrictions)).proj()


def pending_keys(table: Any, restrictions: tuple, reserve_jobs: bool, max_calls: int | None,
                 priority: int | None, refresh: bool | None) -> list[dict[str, Any]]:
    """The keys plain ``populate`` would work on: unpopulated ones, or pending jobs with ``reserve_jobs``."""
    if not reserve_jobs:
        return (to_do(table, restrictions) - table.proj()).keys()[:max_calls]
    if refresh is None:
        refresh = db.config_of(table.connection).jobs.auto_refresh
    if refresh:
        table.jobs.refresh(*restrictions, priority=priority, delay=-1)
    pending = table.jobs.pending & "scheduled_time <= CURRENT_TIMESTAMP(3)"
    if restrictions:
        pending = pending.restrict(to_do(table, restrictions), semantic_check=False)
    if priority is not None:
        pending = pending & f"priority <= {int(priority)}"
    return pending.keys(order_by="priority ASC, scheduled_time ASC", limit=max_calls)


class BatchRun:
    """Runs prepared batches for one ``populate`` call and keeps its tally (``success_count``, ``error_list``)."""

    def __init__(self, table: Any, jobs: Any, suppress_errors: bool, return_exception_objects: bool) -> None:
        self.table = table
        self.jobs = jobs
        self.suppress_errors = suppress_errors
        self.return_exception_objects = return_exception_objects
        self.success_count = 0
        self.error_list: list[tuple[dict[str, Any], Any]] = []

    def run(self, batch: Sequence[Prepared]) -> None:
        """Reserve (with jobs), compute the batch in one call, insert one row per key.

        A stop (SIGTERM, Ctrl-C) or any error that ends the populate marks every key of the batch that has
        no row yet as an error with that message, so none is left reserved: a stopped worker's keys are
        interrupted ones that :func:`mei.pipeline.jobs.release_interrupted` puts back in the queue.
        """
        reserved = self._reserve(batch)
        if reserved is None:
            return
        todo = [prepared for prepared in reserved if not self._already_done(prepared.key)]
        if not todo:
            return
        computed = self._compute(todo)
        if computed is not None:
            self._insert_all(todo, *computed)

    def _reserve(self, batch: Sequence[Prepared]) -> list[Prepared] | None:
        """The keys of ``batch`` this worker holds (all of them without jobs); None when reserving failed
        (the keys reserved so far are then marked as errors)."""
        reserved: list[Prepared] = []
        try:
            for prepared in batch:
                if self.jobs is None or self.jobs.reserve(prepared.key):
                    reserved.append(prepared)
        except BaseException as error:  # noqa: BLE001 - a stop too: the keys reserved so far are marked, then re-raised
            self._fail(reserved, error)
            return None
        return reserved

    def _compute(self, batch: Sequence[Prepared]) -> tuple[list[dict[str, Any]], float] | None:
        """One batched call for ``batch``: a result per key (as ``MEITemplate._row`` takes it) and each key's
        share of the wall time; None when the call failed (every key of the batch is then marked)."""
        first = batch[0]
        start = time.perf_counter()
        try:
            dataloaders = self.table._dataloaders(first.key) if first.needs_data else None
            batched = batched_counterpart(first.method)
            assert batched is not None  # _split batches only the keys whose method has a batched counterpart
            with recording() as info:
                results = batched(dataloaders, [p.objective for p in batch], first.config, [p.seed for p in batch])
            share = (time.perf_counter() - start) / len(batch)
            rows = self._results(batch, results, info, share)
        except BaseException as error:  # noqa: BLE001 - a stop too: every key of the batch is marked, then re-raised
            self._fail(batch, error)
            return None
        return rows, share

    @staticmethod
    def _results(batch: Sequence[Prepared], results: Sequence[Any], info: Mapping[str, Any],
                 share: float) -> list[dict[str, Any]]:
        """One result dict per key from the batched method's ``(mei, score, output)`` triples and what
        :func:`mei.methods.recording` saw; ValueError when the method returned another number of results."""
        results = list(results)
        if len(results) != len(batch):
            raise ValueError(f"the batched method of {batch[0].key['method_fn']} returned {len(results)} "
                             f"results for {len(batch)} keys")
        steps = info.get("steps") or [None] * len(batch)
        device = info.get("device") or batch[0].config.get("device", "cpu")
        return [{"mei": mei, "score": float(score), "output": output, "steps": n_steps, "device": device,
                 "wall_time": share} for (mei, score, output), n_steps in zip(results, steps, strict=True)]

    def _insert_all(self, batch: Sequence[Prepared], results: Sequence[dict[str, Any]], share: float) -> None:
        """Insert one row per key; an error that ends the populate marks the keys not reached yet."""
        done = 0
        try:
            for prepared, result in zip(batch, results, strict=True):
                self._insert(prepared, result, share)
                done += 1
        except BaseException as error:  # the key being inserted is marked already; the rest are not
            self._record(batch[done + 1:], error)
            raise

    def _already_done(self, key: dict[str, Any]) -> bool:
        if key in self.table:
            if self.jobs is not None:
                self.jobs.complete(key)
            return True
        return False

    def _insert(self, prepared: Prepared, result: dict[str, Any], duration: float) -> None:
        try:
            with self.table.connection.transaction:
                if prepared.key not in self.table:
                    row = self.table._row(prepared.key, result, prepared.stored_config)
                    with db.store_errors(db.config_of(self.table.connection), hint=db.POPULATE_HINT):
                        self.table.insert1(row, allow_direct_insert=True)
        except BaseException as error:  # noqa: BLE001 - a stop too: the key is marked, then re-raised or recorded
            self._fail([prepared], error)
            return
        if self.jobs is not None:
            self.jobs.complete(prepared.key, duration=duration)
        self.success_count += 1

    def _fail(self, batch: Sequence[Prepared], error: BaseException) -> None:
        """Mark every key of a failed batch as an error (job table) and raise or collect, as populate does."""
        self._record(batch, error)
        if not self.suppress_errors or not isinstance(error, Exception):
            raise error

    def _record(self, batch: Sequence[Prepared], error: BaseException) -> None:
        """Mark each key of ``batch`` as an error with ``error``'s message (job table and ``error_list``)."""
        message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        stack = traceback.format_exc()
        for prepared in batch:
            if self.jobs is not None:
                self.jobs.error(prepared.key, error_message=message, error_stack=stack)
            self.error_list.append((prepared.key, error if self.return_exception_objects else message))


def _split(table: Any, keys: list[dict[str, Any]]) -> tuple[list[Prepared], list[dict[str, Any]]]:
    """Prepared keys for batches, and keys for the plain populate: no batched method, or failing to
    prepare (the plain populate then records the error the way it records any ``make`` error)."""
    batchable, plain = [], []
    for key in keys:
        try:
            prepared = prepare(table, key)
        except Exception:  # noqa: BLE001 - reported by the plain populate, key by key
            plain.append(key)
            continue
        if batched_counterpart(prepared.method) is None:
            plain.append(key)
        else:
            batchable.append(prepared)
    return batchable, plain


def _batches(table: Any, prepared: list[Prepared], batch_size: int) -> list[list[Prepared]]:
    groups: dict[tuple[Any, ...], list[Prepared]] = {}
    for item in prepared:
        groups.setdefault(item.group(table), []).append(item)
    return [items[i:i + batch_size] for items in groups.values() for i in range(0, len(items), batch_size)]


def _custom_compute(table: Any) -> bool:
    """Whether the table overrides ``MEITemplate._compute`` (then its own compute runs, key by key): the class
    that defines the table's ``_compute`` does not declare ``batched_compute = True`` as ``MEITemplate`` does."""
    owner = next((c for c in type(table).__mro__ if "_compute" in vars(c)), None)
    return owner is not None and not vars(owner).get("batched_compute", False)


class BatchedPopulateMixin:
    """Adds ``populate(..., batch_size=K)``: up to K keys sharing model and method per batched run."""

    def populate(self, *restrictions: Any, batch_size: int | None = None, **kwargs: Any) -> dict[str, Any]:
        """DataJoint's ``populate``, or with ``batch_size`` > 1 the batched populate of this module.

        Args:
            *restrictions: restrict the keys to populate, as for DataJoint's ``populate``.
            batch_size (int, optional): most keys per batched run; ``None`` or 1 is the plain populate.
                Default: None.
            **kwargs: DataJoint's populate options (``reserve_jobs``, ``suppress_errors``,
                ``return_exception_objects``, ``max_calls``, ``display_progress``, ``priority``, ``refresh``);
                ``processes`` > 1 and ``make_kwargs`` are not supported with ``batch_size``.

        Returns:
            dict: ``{"success_count": int, "error_list": [(key, error), ...]}``.

        With ``reserve_jobs=True``, Ctrl-C stops the populate and puts the key in progress back in the queue
        (:func:`mei.pipeline.jobs.requeue_on_interrupt`) instead of leaving it a ``KeyboardInterrupt`` job error
        that no later populate retries.
        """
        guard = requeue_on_interrupt(self) if kwargs.get("reserve_jobs") else contextlib.nullcontext()
        with guard:
            if batch_size is None or batch_size == 1:
                return super().populate(*restrictions, **kwargs)  # type: ignore[misc]
            return populate_batched(self, restrictions, batch_size, **kwargs)


def populate_batched(table: Any, restrictions: tuple, batch_size: int, *, suppress_errors: bool = False,
                     return_exception_objects: bool = False, reserve_jobs: bool = False, max_calls: int | None = None,
                     display_progress: bool = False, processes: int = 1, make_kwargs: Any = None,
                     priority: int | None = None, refresh: bool | None = None) -> dict[str, Any]:
    """Populate ``table`` (a :class:`~mei.main.MEITemplate` table) in batches; see the module docstring."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if processes != 1 or make_kwargs:
        raise ValueError("populate(batch_size=...) runs in one process without make_kwargs; "
                         "start several workers with reserve_jobs=True instead")
    if table.connection.in_transaction:
        raise RuntimeError("populate cannot be called during a transaction")
    options = {"suppress_errors": suppress_errors, "return_exception_objects": return_exception_objects,
               "reserve_jobs": reserve_jobs, "display_progress": display_progress, "priority": priority}
    if _custom_compute(table):
        return super(BatchedPopulateMixin, table).populate(*restrictions, max_calls=max_calls, refresh=refresh,
                                                           **options)
    keys = pending_keys(table, restrictions, reserve_jobs, max_calls, priority, refresh)
    batchable, plain = _split(table, keys)
    runner = BatchRun(table, table.jobs if reserve_jobs else None, suppress_errors, return_exception_objects)
    batches = _batches(table, batchable, batch_size)
    if display_progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc=f"{type(table).__name__} batches")
    for batch in batches:
        runner.run(batch)
    if plain:
        rest = super(BatchedPopulateMixin, table).populate(plain, refresh=False, **options)
        runner.success_count += rest["success_count"]
        runner.error_list += rest["error_list"]
    return {"success_count": runner.success_count, "error_list": runner.error_list}
