"""Connection choice, data directory, store and config hashing, without a database."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from mei.pipeline import database as db
from mei.pipeline.values import make_hash
from tests import servers

ROOT = Path(__file__).resolve().parents[2]


class FakeConfig(dict):
    """The two things ``mei.pipeline.database`` reads from a DataJoint config: items and ``_config_path``."""

    def __init__(self, host: str = "localhost", path: Path | None = None, stores: dict | None = None) -> None:
        super().__init__({"database.host": host, "stores": stores if stores is not None else {}})
        self._config_path = path


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("MEI_DATABASE", "DJ_HOST", "MEI_DATA_DIR", "XDG_DATA_HOME", "MEI_STORE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_embedded_unless_a_server_is_configured(clean_env, tmp_path):
    assert db.choose_backend(FakeConfig()) == "embedded"
    assert db.choose_backend(FakeConfig(host="db.lab.org")) == "server"  # set at run time
    only_stores = tmp_path / "stores.json"
    only_stores.write_text(json.dumps({"stores": {"mei": {"protocol": "file", "location": "x"}}}))
    assert db.choose_backend(FakeConfig(path=only_stores)) == "embedded"
    with_host = tmp_path / "datajoint.json"
    with_host.write_text(json.dumps({"database": {"host": "localhost", "backend": "mysql"}}))
    assert db.choose_backend(FakeConfig(path=with_host)) == "server"  # the file names a host, even localhost
    clean_env.setenv("DJ_HOST", "127.0.0.1")
    assert db.choose_backend(FakeConfig()) == "server"
    clean_env.setenv("MEI_DATABASE", "embedded")
    assert db.choose_backend(FakeConfig(host="db.lab.org")) == "embedded"
    clean_env.setenv("MEI_DATABASE", "cloud")
    with pytest.raises(ValueError, match="expected 'embedded' or 'server'"):
        db.choose_backend(FakeConfig())


def test_data_dir_and_store(clean_env, tmp_path):
    assert db.data_dir() == Path.home() / ".local" / "share" / "mei"
    clean_env.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert db.data_dir() == tmp_path / "xdg" / "mei"
    clean_env.setenv("MEI_DATA_DIR", str(tmp_path / "data"))
    assert db.data_dir() == tmp_path / "data"
    config = FakeConfig()
    assert db.ensure_store(config, check=False) == "mei"
    assert config["stores"]["mei"] == {"protocol": "file", "location": str(tmp_path / "data" / "store")}
    assert (tmp_path / "data" / "store").is_dir()
    s3 = {"protocol": "s3", "endpoint": "minio:9000", "bucket": "meis", "location": "lab"}
    configured = FakeConfig(stores={"mei": dict(s3)})
    db.ensure_store(configured, check=False)  # not checked: nothing listens at minio:9000
    assert configured["stores"]["mei"] == s3
    clean_env.setenv("MEI_STORE", "no good")
    with pytest.raises(ValueError, match="not a valid store name"):
        db.store_name()


def test_importing_opens_no_connection():
    code = ("import mei, mei.pipeline.database, mei.fabrik, mei.main, datajoint.instance as i; "
            "assert i._singleton_connection is None; assert mei.main.schema.database is None; "
            "assert mei.fabrik.schema.database is None; assert mei.pipeline.database._embedded == {}; print('quiet')")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "quiet"


def _md5(*parts: str) -> str:
    digest = hashlib.md5()
    for part in parts:
        digest.update(part.encode())
    return digest.hexdigest()


def test_make_hash_is_nnfabriks():
    assert make_hash("abc") == _md5("abc")
    assert make_hash(3) == _md5("3")
    assert make_hash({"b": 2, "a": 1.5}) == _md5("a", _md5("1.5"), "b", _md5("2"))
    assert make_hash({"a": 1.5, "b": 2}) == make_hash({"b": 2, "a": 1.5})
    assert make_hash(OrderedDict([("b", 2), ("a", 1.5)])) == _md5("b", _md5("2"), "a", _md5("1.5"))
    assert make_hash([1, "x"]) == _md5(_md5("1"), _md5("x"))
    assert make_hash({"k": {"n": [True, None]}}) == _md5("k", _md5("n", _md5(_md5("True"), _md5("None"))))
    assert make_hash(np.float32(2.5)) == _md5("2.5")
    assert make_hash({"a": [1, 2]}) != make_hash({"a": [2, 1]})


SERVER = """
import sys, mei.pipeline.database, datajoint as dj
connection = mei.pipeline.database.connect()
schema = dj.Schema(sys.argv[1], connection=connection)
print("AT", connection.conn_info["host"], connection.conn_info["port"], dj.config["database.backend"], schema.exists)
schema.drop(prompt=False)
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mysql", "postgresql"])
def test_connect_uses_the_server_datajoint_is_configured_for(kind, private_tmp):
    server = servers.server(kind)
    host, port = server.require()  # the address MEI_TEST_MYSQL / MEI_TEST_POSTGRES names; a visible skip if off
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJ_", "MEI_"))}
    env.update(server.dj_env(), MEI_DATA_DIR=str(private_tmp), PYTHONPATH=str(ROOT))
    probe = f"meitest_{uuid.uuid4().hex[:10]}_connect"
    result = subprocess.run([sys.executable, "-c", SERVER, probe], cwd=private_tmp, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1].split() == ["AT", host, str(port), kind, "True"]
    assert not (private_tmp / "postgres").exists()  # no embedded server was started
