"""Fixtures of the reliability tests: one backend per parameter, cleaned up after the module."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from .backends import BACKENDS, make_backend, stop_embedded


@pytest.fixture(scope="session")
def reliability_tmp():
    """A private temporary folder for the embedded servers and stores, removed at the end.

    Not under pytest's own temporary root: concurrent pytest sessions of the same user reset that root's
    permissions (which the embedded server's system user then cannot enter) and delete old session folders.
    """
    path = Path(tempfile.mkdtemp(prefix="mei-reliability-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


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
