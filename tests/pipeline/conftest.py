"""Fixtures of the pipeline tests: a ``backend`` per database, unique schemas dropped afterwards.

Backends: ``embedded`` (always; the session's one embedded PostgreSQL, ``embedded_server`` of
``tests/conftest.py``), ``mariadb`` and
``postgresql``: the servers :mod:`tests.servers` names (``$MEI_TEST_MYSQL`` / ``$MEI_TEST_POSTGRES`` =
``host:port`` or ``off``; defaults 127.0.0.1:3306, root, no password, and 127.0.0.1:5432, trust). A server
switched off or not answering is a visible skip with the reason.

S3: ``s3_server`` is a real S3 server process (moto's server mode, :mod:`tests.s3server`) for the session,
``s3_bucket`` a fresh bucket of it per test, and ``s3_backend`` the test's ``backend`` with its ``mei`` store
in that bucket.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import servers

BACKENDS = ("embedded", "mariadb", "postgresql")
# the server backends are the slow tier (round trips to three databases); the fast tier runs on the embedded one
BACKEND_PARAMS = [pytest.param(name, marks=() if name == "embedded" else pytest.mark.slow) for name in BACKENDS]


@dataclass
class Backend:
    """One database for a test: its DataJoint connection and helpers for unique, dropped-after schemas."""

    name: str
    instance: Any
    root: Path
    embedded_dir: Path  # data directory of the session's embedded server
    schemas: list = field(default_factory=list)
    store_spec: dict | None = None  # the ``mei`` store's spec when it is not the file store (S3)

    @property
    def store(self) -> Path:
        """Directory of this backend's ``mei`` file store."""
        return self.root / f"store_{self.name}"

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


def _make_instance(name: str, store: Path | dict, embedded_dir: Path) -> Any:
    """A DataJoint instance of backend ``name`` whose ``mei`` store is the directory ``store`` (or the spec)."""
    from mei.pipeline import database as db

    store_args = {"store": store} if isinstance(store, dict) else {"store_location": store}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "embedded":
            return db.instance("embedded", embedded_dir=embedded_dir, safemode=False, **store_args)
        server = servers.server(name)
        host, port = server.require()
        try:
            return db.instance(server.kind, host=host, port=port, user=server.user, safemode=False, **store_args)
        except db.StoreError:
            raise
        except Exception as error:  # noqa: BLE001 - any connection failure is reported as the skip reason
            pytest.skip(f"{name} at {host}:{port} unreachable ({error.__class__.__name__}: {error})")


@pytest.fixture(scope="session")
def _instances(embedded_server: Any) -> dict[str, Any]:
    """Connections made so far (or the reason a backend is skipped), and the stores' folder (removed at the end);
    the embedded backend is the session's one embedded server."""
    root = Path(tempfile.mkdtemp(prefix="mei-pipeline-tests-"))
    instances: dict[str, Any] = {"root": root, "embedded_dir": embedded_server.pgdata}
    yield instances
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def private_tmp() -> Path:
    """A temporary directory outside pytest's shared base (which concurrent sessions prune), removed after."""
    path = Path(tempfile.mkdtemp(prefix="mei-pipeline-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request: pytest.FixtureRequest, _instances: dict[str, Any]) -> Backend:
    """A :class:`Backend` per database; its schemas are dropped after the test."""
    name = request.param
    if name not in _instances:
        root = _instances["root"]
        try:
            _instances[name] = _make_instance(name, root / f"store_{name}", _instances["embedded_dir"])
        except pytest.skip.Exception as skip:
            _instances[name] = skip
    if isinstance(_instances[name], pytest.skip.Exception):
        pytest.skip(str(_instances[name]))
    db_backend = Backend(name, _instances[name], _instances["root"], _instances["embedded_dir"])
    yield db_backend
    db_backend.drop_all()


@pytest.fixture
def pipeline(backend: Backend, allow_tests_modules: None) -> Backend:
    """``backend`` with the package's tables bound to fresh schemas and ``tests`` modules allowed."""
    backend.activate_package()
    return backend


@pytest.fixture
def s3_bucket(s3_server: Any) -> str:
    """A fresh bucket on :func:`s3_server`, emptied and removed after the test."""
    bucket = s3_server.new_bucket()
    yield bucket
    s3_server.drop_bucket(bucket)


@pytest.fixture
def s3_backend(backend: Backend, s3_server: Any, s3_bucket: str) -> Backend:
    """``backend``'s database with the ``mei`` store in ``s3_bucket`` (its own connection, closed after)."""
    spec = s3_server.store(s3_bucket, location=f"lab-{backend.name}")
    instance = _make_instance(backend.name, spec, backend.embedded_dir)
    s3 = Backend(backend.name, instance, backend.root, backend.embedded_dir, store_spec=spec)
    yield s3
    try:
        s3.drop_all()
    finally:
        instance.connection.close()
