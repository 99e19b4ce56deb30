"""The engine's internals, below everything else: the component base and its declaration
(:mod:`~mei.engine.component`), the errors (:mod:`~mei.engine.errors`), per-image random streams
(:mod:`~mei.engine.rng`), the options of batched runs (:mod:`~mei.engine.options`) and the one resolver of dotted
paths with config validation (:mod:`~mei.engine.resolve`). Nothing here imports torch at import time but
:mod:`~mei.engine.rng`, and nothing imports DataJoint. See ``docs/architecture.md``."""
