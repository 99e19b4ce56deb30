"""Fixtures of the reliability tests: one backend per parameter, cleaned up after the module."""

from __future__ import annotations

import pytest

from .backends import BACKENDS, make_backend, stop_embedded


@pytest.fixture(scope="session")
def reliability_tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("reliability")


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request, reliability_tmp):
    """Each database backend in turn (the embedded default, PostgreSQL, MariaDB/MySQL); skips visibly."""
    backend = make_backend(request.param, reliability_tmp)
    yield backend
    try:
        backend.cleanup()
    finally:
        if backend.data_dir is not None:
            stop_embedded(backend)
