"""The pipeline test of this folder uses the database fixtures of ``tests/pipeline`` (every backend)."""

from tests.pipeline.conftest import _instances, backend, pipeline  # noqa: F401 - fixtures, found by name
