"""The database tests go where ``MEI_TEST_MYSQL`` / ``MEI_TEST_POSTGRES`` point them, and nowhere else.

Unit checks of :mod:`tests.servers`, then two runs of real database tests of ``tests/pipeline`` and
``tests/reliability`` in a pytest subprocess: one pointed at TCP proxies in front of the servers (every test
passes and its connections arrive at the proxies, not at the default ports), one pointed at an unused port and
with PostgreSQL switched off (every server test is a visible skip naming that port or the switch).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import servers
from tests.reliability.proxy import TcpProxy
from tests.s3server import free_port

ROOT = Path(__file__).resolve().parents[1]
SELECTION = ["tests/pipeline/test_roundtrip.py",
             "tests/pipeline/test_db.py::test_connect_uses_the_server_datajoint_is_configured_for",
             "tests/reliability/test_recovery.py::test_stale_reservations_are_requeued_and_live_ones_kept"]
SERVER_TESTS = 6  # 2 round trips + 2 connects + 2 reliability tests, one of each per server


def test_addresses_come_from_the_variables(monkeypatch):
    monkeypatch.delenv("MEI_TEST_MYSQL", raising=False)
    monkeypatch.setenv("MEI_TEST_POSTGRES", "db.example:6543")
    assert servers.server("mariadb").address() == ("127.0.0.1", 3306)
    assert servers.server("mysql") is servers.server("mariadb")
    assert servers.server("postgresql").address() == ("db.example", 6543)
    monkeypatch.setenv("MEI_TEST_POSTGRES", "6543")
    with pytest.raises(ValueError, match=r"MEI_TEST_POSTGRES='6543': expected host:port \(e\.g\. 127\.0\.0\.1:5432\)"):
        servers.server("postgresql").address()


def test_off_and_unused_ports_are_visible_skips_that_name_them(monkeypatch):
    monkeypatch.setenv("MEI_TEST_MYSQL", "OFF")
    mysql = servers.server("mysql")
    assert mysql.off and mysql.problem() == "MEI_TEST_MYSQL=off: the MySQL/MariaDB tests are switched off"
    with pytest.raises(pytest.skip.Exception, match="MEI_TEST_MYSQL=off"):
        mysql.require()
    unused = free_port()
    monkeypatch.setenv("MEI_TEST_POSTGRES", f"127.0.0.1:{unused}")
    problem = servers.server("postgresql").problem()
    assert problem.startswith(f"PostgreSQL server at 127.0.0.1:{unused} unreachable (ConnectionRefusedError: ")
    assert problem.endswith("set MEI_TEST_POSTGRES=host:port to point at one, or MEI_TEST_POSTGRES=off")
    with pytest.raises(pytest.skip.Exception, match=f"127.0.0.1:{unused} unreachable"):
        servers.server("postgresql").settings()


def _run_selection(env_changes: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEI_TEST_", "DJ_"))}
    env.update(env_changes, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                             "-k", "mariadb or mysql or postgresql", *SELECTION],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode in (0, 5), output[-4000:]
    return output


@pytest.mark.slow
def test_the_suite_connects_where_the_variables_point(monkeypatch):
    targets = {kind: servers.server(kind).require() for kind in ("mysql", "postgresql")}  # skips visibly if absent
    proxies = {kind: TcpProxy(address) for kind, address in targets.items()}
    try:
        output = _run_selection({"MEI_TEST_MYSQL": f"127.0.0.1:{proxies['mysql'].port}",
                                 "MEI_TEST_POSTGRES": f"127.0.0.1:{proxies['postgresql'].port}"})
        counts = {kind: proxy.cut() for kind, proxy in proxies.items()}  # connections that went through each
    finally:
        for proxy in proxies.values():
            proxy.close()
    assert re.search(rf"\b{SERVER_TESTS} passed\b", output) and "skipped" not in output, output[-4000:]
    assert counts["mysql"] >= 3 and counts["postgresql"] >= 3, counts  # every test's connections came this way
    print(f"\nthrough the proxies: {counts} connections, {SERVER_TESTS} tests passed")


@pytest.mark.slow
def test_an_unused_port_or_off_skips_every_server_test_visibly():
    unused = free_port()
    output = _run_selection({"MEI_TEST_MYSQL": f"127.0.0.1:{unused}", "MEI_TEST_POSTGRES": "off"})
    skips = [line for line in output.splitlines() if line.startswith("SKIPPED")]
    assert re.search(rf"\b{SERVER_TESTS} skipped\b", output) and "passed" not in output, output[-4000:]
    mysql = [line for line in skips if f"MySQL/MariaDB server at 127.0.0.1:{unused} unreachable" in line]
    postgres = [line for line in skips if "MEI_TEST_POSTGRES=off: the PostgreSQL tests are switched off" in line]
    count = sum(int(re.match(r"SKIPPED \[(\d+)\]", line).group(1)) for line in mysql + postgres)
    assert count == SERVER_TESTS and len(mysql + postgres) == len(skips), skips
    assert not any(":3306" in line or ":5432" in line for line in skips), skips
    print("\n" + "\n".join(skips))


def test_the_session_shares_one_embedded_server(embedded_server, tmp_path):
    """Every suite's embedded backend is the session's one server (the session also checks this at its end);
    only a test's private server may be stopped, never the shared one."""
    from tests.reliability.backends import make_backend, stop_embedded

    shared = make_backend("embedded", tmp_path, embedded=embedded_server)
    assert servers.shared_servers_started() == [embedded_server.pgdata.resolve()]
    assert shared.data_dir == embedded_server.data_dir and not shared.private
    with pytest.raises(ValueError, match="the session's shared embedded server: only a private one is stopped"):
        stop_embedded(shared)
    connection = shared.connect().connection
    assert connection.query("SELECT 1").fetchone()[0] == 1  # still up
    connection.close()
