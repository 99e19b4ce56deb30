"""Where the database tests find their servers: the only code that reads ``MEI_TEST_MYSQL`` / ``MEI_TEST_POSTGRES``.

- ``MEI_TEST_MYSQL``: MySQL/MariaDB, user ``root``, no password; default ``127.0.0.1:3306``.
- ``MEI_TEST_POSTGRES``: PostgreSQL, user ``postgres``, trust authentication; default ``127.0.0.1:5432``.

Each takes ``host:port`` to point the tests at another server, or ``off`` to switch that server's tests
off: they are then skipped with the reason ``MEI_TEST_MYSQL=off ...`` in pytest's summary, and nothing
connects to the server. A server that does not answer is a visible skip naming the address; a malformed
value is an error. The embedded PostgreSQL needs no server and always runs.

A test session starts one embedded PostgreSQL, shared by every suite (the ``embedded_server`` fixture of
``tests/conftest.py``); each test still gets its own schemas. A test that restarts or stops a server gets a
private one (:func:`private_embedded_dir`); the session checks at its end that no other embedded server was
started (:func:`shared_servers_started`).
"""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

OFF = "off"


@dataclass(frozen=True)
class Server:
    """One kind of database server the tests can use."""

    kind: str  # DataJoint's backend name: "mysql" or "postgresql"
    env: str  # the variable that points the tests at it
    default: str  # host:port when the variable is not set
    user: str
    label: str  # how test ids and messages name it

    @property
    def value(self) -> str:
        """The variable's value, or the default."""
        return os.environ.get(self.env, "").strip() or self.default

    @property
    def off(self) -> bool:
        """Whether the variable switches this server off."""
        return self.value.lower() == OFF

    def address(self) -> tuple[str, int]:
        """``(host, port)`` from the variable; ValueError if it is neither ``host:port`` nor ``off``."""
        host, _, port = self.value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{self.env}={self.value!r}: expected host:port (e.g. {self.default}) or {OFF}")
        return host, int(port)

    def problem(self, timeout: float = 2.0) -> str | None:
        """Why this server cannot be used (switched off, or no answer at its address), or None.

        Nothing is opened when the server is switched off.
        """
        if self.off:
            return f"{self.env}={OFF}: the {self.label} tests are switched off"
        host, port = self.address()
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return None
        except OSError as error:
            return (f"{self.label} server at {host}:{port} unreachable ({error.__class__.__name__}: {error}); "
                    f"set {self.env}=host:port to point at one, or {self.env}={OFF}")

    def require(self) -> tuple[str, int]:
        """``(host, port)`` of a server that answers; otherwise ``pytest.skip`` with :meth:`problem`."""
        problem = self.problem()
        if problem:
            pytest.skip(problem)
        return self.address()

    def settings(self) -> dict[str, object]:
        """Connection settings (``host``, ``port``, ``user``, ``password``, ``backend``) of a server that answers."""
        host, port = self.require()
        return {"host": host, "port": port, "user": self.user, "password": "", "backend": self.kind}

    def dj_env(self) -> dict[str, str]:
        """DataJoint's ``DJ_*`` variables for a subprocess that should use this server."""
        settings = self.settings()
        return {"DJ_HOST": str(settings["host"]), "DJ_PORT": str(settings["port"]), "DJ_USER": self.user,
                "DJ_PASS": "", "DJ_BACKEND": self.kind, "DJ_USE_TLS": "false"}


SERVERS = {
    "mysql": Server("mysql", "MEI_TEST_MYSQL", "127.0.0.1:3306", "root", "MySQL/MariaDB"),
    "postgresql": Server("postgresql", "MEI_TEST_POSTGRES", "127.0.0.1:5432", "postgres", "PostgreSQL"),
}
ALIASES = {"mariadb": "mysql", "postgres": "postgresql"}


def server(kind: str) -> Server:
    """The :class:`Server` of ``kind`` (``"mysql"``/``"mariadb"`` or ``"postgresql"``)."""
    return SERVERS[ALIASES.get(kind, kind)]


# ------------------------------------------------------------------ the one embedded server of a test session

_started: list[Path] = []  # data directory of every embedded server this test process started, in order
_private: set[Path] = set()  # those of them that belong to one test (to restart or stop), not to the session


def record_start(pgdata: str | Path) -> None:
    """Note that this process started (or attached to) the embedded server in ``pgdata``."""
    path = Path(pgdata).expanduser().resolve()
    if path not in _started:
        _started.append(path)


def shared_servers_started() -> list[Path]:
    """Data directories of the embedded servers this process started that are not a test's private one."""
    return [path for path in _started if path not in _private]


def private_embedded_dir(label: str) -> Path:
    """A new data directory (``MEI_DATA_DIR``) for a test's private embedded server, outside pytest's own
    temporary root; its ``postgres`` server is not counted as the session's (see :func:`shared_servers_started`)."""
    directory = Path(tempfile.mkdtemp(prefix=f"mei-private-server-{label}-"))
    _private.add((directory / "postgres").resolve())
    return directory


@dataclass
class EmbeddedServer:
    """The session's embedded PostgreSQL: ``data_dir`` is its ``MEI_DATA_DIR``, the server lives in ``pgdata``."""

    data_dir: Path

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    def start(self) -> dict[str, object]:
        """Start it (or reuse it); DataJoint connection settings as :func:`mei.pipeline.database.start_embedded`."""
        from mei.pipeline import database as db

        return db.start_embedded(self.pgdata)

    def stop(self) -> None:
        """Stop it and delete its data directory."""
        from mei.pipeline import database as db

        db.stop_embedded(self.pgdata, delete=True)
