"""Batched many-unit generation: K MEIs (K units, or K seeds of one unit) in one forward/backward per step.

The engine already takes inputs whose first dimension is images and every built-in component acts per
image, drawing its randomness from the image's own seeded stream (:mod:`mei.engine.rng`). This module adds what a
batch needs on top, without a second optimization loop (everything runs through
:func:`mei.methods.run_engine`, i.e. :class:`mei.optimization.MEI` and :func:`mei.optimization.optimize`):

* one objective for the batch (:func:`mei.batched.batch_objectives`: image ``k`` scored by unit ``k``);
* one stopper and one tracker per image (:class:`mei.stoppers.PerImageStopper`, :class:`PerImageTracker`);
  an image whose stopper says stop is frozen while the others go on;
* chunks of at most ``chunk_size`` keys; on CUDA an out-of-memory error halves the chunk and retries;
* optional bfloat16 autocast of the forward pass, ``torch.compile`` of the objective, channels-last
  weights and cuDNN autotuning (measured in ``benchmarks/batched.py``; all off by default).

The options live under the method config's ``"batch"`` key (plain :func:`mei.methods.gradient_ascent`
ignores it), e.g. ``{"batch": {"chunk_size": 64, "autocast": "bfloat16", "compile": false}}``.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn

from ..engine.options import BatchOptions
from ..engine.resolve import Components, build_components
from ..methods import get_device, input_shape_from_dataloaders, record, run_engine
from ..stoppers import PerImageStopper
from ..tracking import Tracker
from .fusion import fuse_ensembles
from .objectives import batch_objectives

Result = tuple[Tensor, float, dict[str, Any]]
_AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


class AutocastModel(nn.Module):
    """Runs ``model`` under ``torch.autocast`` and returns float32 values (the backward runs outside).

    Args:
        model (nn.Module): the objective.
        dtype (torch.dtype, optional): the autocast dtype. Default: ``torch.bfloat16``.
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        self.model = model
        self.dtype = dtype

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(device_type=x.device.type, dtype=self.dtype):
            output = self.model(x)
        return output.float()


class PerImageTracker:
    """One :class:`~mei.tracking.Tracker` per image; image ``k`` is tracked while it is optimized.

    Args:
        objectives (dict): name -> objective, copied for every image.
        stopper (PerImageStopper): says which images were still running at a step.
    """

    def __init__(self, objectives: Mapping[str, Any], stopper: PerImageStopper) -> None:
        self.stopper = stopper
        n_images = len(stopper.stoppers)
        self.trackers = [Tracker(**copy.deepcopy(dict(objectives))) for _ in range(n_images)]
        self.active = bool(objectives)

    def track(self, current_state: Any) -> None:
        """Let image ``k``'s tracker see image ``k``'s view of ``current_state`` (if it ran this step)."""
        if not self.active:
            return
        for k, running in enumerate(self.stopper.running_at(current_state.i_iter)):
            if running:
                self.trackers[k].track(current_state.image(k))

    @property
    def log(self) -> list[dict[str, dict[str, list[Any]]]]:
        """Each image's log, as :attr:`mei.tracking.Tracker.log` of a single run."""
        return [tracker.log for tracker in self.trackers]


def wrap_objective(objective: nn.Module, options: BatchOptions) -> nn.Module:
    """The objective with the options' ensemble fusion, memory format, autocast and compilation applied.

    With ``fuse_ensemble``, an objective without an ensemble of two or more members runs as it is.

    Raises:
        ValueError: ``fuse_ensemble`` is set and the ensemble's members differ in architecture.
    """
    if options.fuse_ensemble:
        objective, _ = fuse_ensembles(objective, dense=options.fuse_ensemble == "dense")
    if options.channels_last:
        cast(Any, objective).to(memory_format=torch.channels_last)  # documented, but not in every version of the stubs
    if options.autocast is not None:
        objective = AutocastModel(objective, _AUTOCAST_DTYPES[options.autocast])
    if options.compile:
        objective = cast(nn.Module, torch.compile(objective, mode=options.compile if isinstance(options.compile, str)
                                                  else None))
    return objective


@contextlib.contextmanager
def cudnn_benchmark(enabled: bool) -> Iterator[None]:
    """Set ``torch.backends.cudnn.benchmark`` to ``enabled`` for the block (left alone when False)."""
    previous = torch.backends.cudnn.benchmark
    if enabled:
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


def run_chunk(objective: nn.Module, components: Components, shape: tuple[int, ...], seeds: Sequence[int],
              device: torch.device, options: BatchOptions) -> list[tuple[Tensor, float, dict[str, Any], int]]:
    """Optimize one image per seed in one batch; returns ``(mei, score, output, steps)`` per seed."""
    stopper = PerImageStopper([copy.deepcopy(components.stopper) for _ in seeds])
    tracker = PerImageTracker(components.objectives, stopper)
    batch = copy.copy(components)
    batch.stopper = stopper
    with cudnn_benchmark(options.cudnn_benchmark):
        final, score, _, _ = run_engine(wrap_objective(objective, options), batch, shape, list(seeds), device,
                                        tracker=tracker)
    scores = torch.as_tensor(score).reshape(-1).tolist()
    return [
        (final[k:k + 1].clone(), float(scores[k]), log, _steps(stopper.stopped_at[k]))
        for k, log in enumerate(tracker.log)
    ]


def _steps(stopped_at: int | None) -> int:
    """Steps run by an image that stopped at step ``stopped_at`` (every image has stopped when the run ends)."""
    if stopped_at is None:
        raise RuntimeError("a batched run ended with an image that never stopped")
    return int(stopped_at) + 1


def run_in_chunks(run: Callable[[int, int], list[Any]], n_keys: int, chunk_size: int) -> tuple[list[Any], int]:
    """Call ``run(start, stop)`` over ``[0, n_keys)`` in chunks; halve the chunk on out-of-memory errors.

    Returns the concatenated results and the chunk size that worked last. A chunk of one that runs out of
    memory re-raises the error.
    """
    results: list[Any] = []
    start = 0
    while start < n_keys:
        stop = min(n_keys, start + chunk_size)
        out_of_memory = False
        try:
            results.extend(run(start, stop))
        except torch.OutOfMemoryError:
            if stop - start == 1:
                raise
            out_of_memory = True  # retried outside the handler, so the failed chunk's tensors are freed
        if out_of_memory:
            chunk_size = max(1, (stop - start) // 2)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            continue
        start = stop
    return results, chunk_size


def gradient_ascent_batched(dataloaders: Any, models: nn.Module | Sequence[nn.Module], config: Mapping[str, Any],
                            seeds: Sequence[int]) -> list[Result]:
    """Generate one MEI per seed by batched gradient ascent; the same result as one run per seed.

    ``result[k]`` equals ``gradient_ascent(dataloaders, models[k], config, seeds[k])`` within float
    rounding (about 1e-5 relative on the CPU; batched kernels sum in another order), including random
    initial inputs and transforms, which draw from image ``k``'s own stream seeded with ``seeds[k]``.

    Args:
        dataloaders (dict | None): as for :func:`mei.methods.gradient_ascent`.
        models (nn.Module | list[nn.Module]): one objective for every seed (K seeds of one unit), or one per
            seed; :class:`~mei.modules.ConstrainedOutputModel` s of one shared model run as one forward.
        config (dict): a gradient-ascent config, optionally with ``"batch"`` options (:class:`BatchOptions`).
        seeds (list[int]): one seed per MEI.

    Returns:
        list[tuple]: ``(mei, score, output)`` per seed, as :func:`mei.methods.gradient_ascent` returns them.
    """
    seeds = [int(seed) for seed in seeds]
    objectives = list(models) if isinstance(models, (Sequence, nn.ModuleList)) else [models] * len(seeds)
    if not seeds or len(objectives) != len(seeds):
        raise ValueError(f"need one model per seed (or one model), got {len(objectives)} for {len(seeds)} seeds")
    options = BatchOptions.from_config(config)
    components = build_components(config, extra_keys=("batch",))
    device = get_device(components.device)
    shape = components.shape or input_shape_from_dataloaders(dataloaders)

    def run(start: int, stop: int) -> list[tuple[Tensor, float, dict[str, Any], int]]:
        objective = batch_objectives(objectives[start:stop])
        return run_chunk(objective, components, shape, seeds[start:stop], device, options)

    results, chunk_size = run_in_chunks(run, len(seeds), options.chunk_size)
    record(steps=[r[3] for r in results], device=str(device), chunk_size=chunk_size)
    return [(mei, score, output) for mei, score, output, _ in results]
