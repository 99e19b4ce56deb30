"""Fixtures of the pipeline tests: a ``backend`` per database, unique schemas dropped afterwards.

Backends: ``embedded`` (always; a private PostgreSQL in a temporary directory), ``mariadb``
(``$MEI_TEST_MYSQL``, default 127.0.0.1:3306, root, no password) and ``postgresql`` (``$MEI_TEST_POSTGRES``,
default 127.0.0.1:5432, trust). A server that cannot be reached is a visible skip with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

BACKENDS = ("embedded", "mariadb", "postgresql")
_SERVERS = {"mariadb": ("MEI_TEST_MYSQL", "mysql", "127.0.0.1:3306"),
            "postgresql": ("MEI_TEST_POSTGRES", "postgresql", "127.0.0.1:5432")}


@dataclass
class Backend:
    """One database for a test: its DataJoint connection and helpers for unique, dropped-after schemas."""

    name: str
    instance: Any
    root: Path
    schemas: list = field(default_factory=list)

    @property
    def store(self) -> Path:
        """Directory of this backend's ``mei`` file store."""
        return self.root / f"store_{self.name}"

    @property
    def embedded_dir(self) -> Path:
        """Data directory of the embedded server (shared by the test session)."""
        return self.root / "postgres"

    @property
    def connection(self) -> Any:
        return self.instance.connection

    @property
    def config(self) -> Any:
        return self.instance.config

    def unique_name(self, label: str) -> str:
        return f"meitest_{uuid.uuid4().hex[:10]}_{label}"

    def schema(self, label: str = "lab") -> Any:
        """A new ``dj.Schema`` with a unique name on this backend, dropped when the test ends."""
        import datajoint as dj

        schema = dj.Schema(self.unique_name(label), connection=self.connection)
        self.schemas.append(schema)
        return schema

    def activate_package(self) -> None:
        """Bind the package's tables (mei.fabrik, mei.main) to fresh schemas on this backend."""
        from mei import fabrik, main

        self.schemas.append(fabrik.activate(self.unique_name("fabrik"), connection=self.connection))
        self.schemas.append(main.activate(self.unique_name("mei"), connection=self.connection))

    def drop_all(self) -> None:
        for schema in reversed(self.schemas):
            if schema.database is not None and schema.connection is self.connection:
                schema.drop(prompt=False)
        self.schemas.clear()


def _reachable(address: str) -> str | None:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return None
    except OSError as error:
        return f"{error.__class__.__name__}: {error}"


def _make_instance(name: str, store: Path, embedded_dir: Path) -> Any:
    from mei import db

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "embedded":
            return db.instance("embedded", store_location=store, embedded_dir=embedded_dir, safemode=False)
        env, backend, default = _SERVERS[name]
        address = os.environ.get(env, default)
        problem = _reachable(address)
        if problem:
            pytest.skip(f"{name} at {address} unreachable ({problem}); set {env}=host:port to point at one")
        host, port = address.rsplit(":", 1)
        try:
            return db.instance(backend, host=host, port=int(port), store_location=store, safemode=False)
        except Exception as error:  # noqa: BLE001 - any connection failure is reported as the skip reason
            pytest.skip(f"{name} at {address} unreachable ({error.__class__.__name__}: {error})")


@pytest.fixture(scope="session")
def _instances() -> dict[str, Any]:
    """Connections made so far (or the reason a backend is skipped); the embedded server is stopped and its
    directory deleted at the end of the session."""
    from mei import db

    root = Path(tempfile.mkdtemp(prefix="mei-pipeline-tests-"))
    instances: dict[str, Any] = {"root": root}
    yield instances
    db.stop_embedded(root / "postgres", delete=True)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def private_tmp() -> Path:
    """A temporary directory outside pytest's shared base (which concurrent sessions prune), removed after."""
    path = Path(tempfile.mkdtemp(prefix="mei-pipeline-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, _instances: dict[str, Any]) -> Backend:
    """A :class:`Backend` per database; its schemas are dropped after the test."""
    name = request.param
    if name not in _instances:
        root = _instances["root"]
        try:
            _instances[name] = _make_instance(name, root / f"store_{name}", root / "postgres")
        except pytest.skip.Exception as skip:
            _instances[name] = skip
    if isinstance(_instances[name], pytest.skip.Exception):
        pytest.skip(str(_instances[name]))
    db_backend = Backend(name, _instances[name], _instances["root"])
    yield db_backend
    db_backend.drop_all()


@pytest.fixture
def pipeline(backend: Backend, allow_tests_modules: None) -> Backend:
    """``backend`` with the package's tables bound to fresh schemas and ``tests`` modules allowed."""
    backend.activate_package()
    return backend
