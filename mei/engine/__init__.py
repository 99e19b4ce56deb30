"""The engine's internals, below everything else: the component base and its declaration
(:mod:`~mei.engine.component`), the errors (:mod:`~mei.engine.errors`), per-image random streams
(:mod:`~mei.engine.rng`), the options of batched runs (:mod:`~mei.engine.options`), the one resolver of dotted
paths with config validation (:mod:`~mei.engine.resolve`) and the signal kernels every layer uses (blur,
resampling, frequency grids, total variation, L2 rescaling: :mod:`~mei.engine.kernels`). Nothing here imports
torch at import time but :mod:`~mei.engine.rng` and :mod:`~mei.engine.kernels`, and nothing imports DataJoint.
See ``docs/architecture.md``."""
