"""Fixtures of the reliability tests: one backend per parameter, its schemas dropped at the end of the session."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from mei import main

from . import lab as lab_module
from .backends import BACKENDS, make_backend


@pytest.fixture(scope="session")
def reliability_tmp():
    """A private temporary folder for the stores, removed at the end.

    Not under pytest's own temporary root: concurrent pytest sessions of the same user reset that root's
    permissions (which the embedded server's system user then cannot enter) and delete old session folders.
    """
    path = Path(tempfile.mkdtemp(prefix="mei-reliability-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


# the server backends are the slow tier; the fast tier runs on the embedded one
BACKEND_PARAMS = [pytest.param(name, marks=() if name == "embedded" else pytest.mark.slow) for name in BACKENDS]


@pytest.fixture(scope="session", params=BACKEND_PARAMS)
def backend(request, reliability_tmp, embedded_server):
    """Each database backend in turn (the session's embedded server, PostgreSQL, MariaDB/MySQL); skips visibly.
    Its schemas are dropped at the end; the embedded server is the session's and stays up."""
    backend = make_backend(request.param, reliability_tmp, embedded=embedded_server)
    yield backend
    backend.cleanup()


@pytest.fixture
def lab(backend):
    """The reliability lab on ``backend``, in fresh schemas (dropped at the end of the session)."""
    instance = backend.connect()
    names = (backend.schema_name("mei"), backend.schema_name("lab"))
    tables = lab_module.bind(instance.connection, *names)
    yield SimpleNamespace(backend=backend, connection=instance.connection, names=names, **vars(tables))
    main.model_cache.clear()
    instance.connection.close()
