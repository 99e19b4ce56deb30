"""Batched generation: K MEIs in one forward/backward per step (:mod:`~mei.batched.run`), one objective for the
batch (:mod:`~mei.batched.objectives`) and ensemble fusion (:mod:`~mei.batched.fusion`). See ``docs/batched.md``."""

from ..engine.options import BatchOptions
from .fusion import FusedEnsembleModel, fuse_ensembles
from .objectives import BatchedConstrainedOutputModel, PerImageModel, batch_objectives
from .run import (
    AutocastModel,
    PerImageTracker,
    cudnn_benchmark,
    gradient_ascent_batched,
    run_chunk,
    run_in_chunks,
    wrap_objective,
)

__all__ = ["BatchOptions", "FusedEnsembleModel", "fuse_ensembles", "BatchedConstrainedOutputModel", "PerImageModel",
           "batch_objectives", "AutocastModel", "PerImageTracker", "cudnn_benchmark", "gradient_ascent_batched",
           "run_chunk", "run_in_chunks", "wrap_objective"]
