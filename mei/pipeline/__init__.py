"""The DataJoint pipeline's machinery (no connection at import): the database and store
(:mod:`~mei.pipeline.database`), job handling and recovery (:mod:`~mei.pipeline.jobs`), batched populate
(:mod:`~mei.pipeline.batched_populate`), the objective and report-card table templates, and the pieces the
tables of :mod:`mei.fabrik` and :mod:`mei.main` are built from: config values and hashes
(:mod:`~mei.pipeline.values`), schema binding (:mod:`~mei.pipeline.schemas`), nnfabrik-protocol builders
(:mod:`~mei.pipeline.builders`), the model cache (:mod:`~mei.pipeline.model_cache`), MEI generation
(:mod:`~mei.pipeline.generation`) and per-subclass part tables (:mod:`~mei.pipeline.part_tables`)."""
