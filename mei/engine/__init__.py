"""The engine's internals, below everything else: the component base and its declaration
(:mod:`~mei.engine.component`, and :mod:`~mei.engine.module_component` for ``nn.Module`` components), the errors
(:mod:`~mei.engine.errors`), per-image random streams (:mod:`~mei.engine.rng`), forward hooks
(:mod:`~mei.engine.hooks`), the options of batched runs (:mod:`~mei.engine.options`), the one resolver of dotted
paths with config validation (:mod:`~mei.engine.resolve`), the application of schedules to optimizers and
components (:mod:`~mei.engine.schedule`) and the signal kernels every layer uses (blur, resampling, frequency
grids, total variation, L2 rescaling: :mod:`~mei.engine.kernels`). The component base, the errors, the options,
the schedules and the resolver import no torch at import time; nothing here imports DataJoint.
See ``docs/architecture.md``."""
