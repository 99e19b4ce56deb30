"""The pipeline with its ``mei`` store on a real S3 server (moto's server mode), on every backend.

MEIs, method outputs and trained weights go to the bucket and come back equal; the objects are listed in the
bucket with boto3. Faults: the S3 server stopped in the middle of a populate (a clear error naming the store,
no row without its objects, a rerun after the restart makes every key) and wrong credentials (a clear error
when connecting or activating, nothing written to the database or the bucket).
"""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from mei import main
from mei.main import MEIMethod, MEISeed
from mei.pipeline import database as db
from mei.pipeline.values import from_bytes

from .conftest import Backend, _make_instance
from .lab_tables import METHOD_CONFIG, declare_lab, fill_upstream

pytestmark = pytest.mark.slow  # every test here runs against a real S3 server process

ROOT = Path(__file__).resolve().parents[2]


def _populate_lab(backend: Backend, seeds: tuple[int, ...] = (42,)) -> SimpleNamespace:
    """The README's flow up to the MEIs: package tables, lab tables, 2 trained models, 3 objectives, a method."""
    backend.activate_package()
    lab = declare_lab(backend.schema("lab"))
    fill_upstream(lab)
    lab.Objective().populate()
    MEIMethod().add_method("mei.methods.gradient_ascent", METHOD_CONFIG, comment="S3")
    MEISeed().insert([{"mei_seed": seed} for seed in seeds])
    return lab


def _stored_paths(table: Any, attribute: str) -> set[str]:
    """The store paths of ``attribute`` in every row of ``table`` (what DataJoint keeps in the database)."""
    return {str(row[attribute].path) for row in table.proj(attribute).to_dicts()}


def _objects(server: Any, spec: dict) -> dict[str, int]:
    """The bucket's objects under the store's location, keys relative to the location."""
    prefix = f"{spec['location']}/"
    return {key[len(prefix):]: size for key, size in server.objects(spec["bucket"], prefix).items()}


def _check_round_trips(lab: SimpleNamespace, server: Any, spec: dict, n_meis: int) -> None:
    """Every MEI, output and weight in the tables equals its object in the bucket; nothing else is there."""
    objects = _objects(server, spec)
    weights = _stored_paths(lab.TrainedModel.ModelStorage(), "model_state")
    meis, outputs = _stored_paths(lab.MEI(), "mei"), _stored_paths(lab.MEI(), "output")
    assert (len(weights), len(meis), len(outputs)) == (2, n_meis, n_meis)
    assert set(objects) == weights | meis | outputs, sorted(objects)  # every object a row points to, no other
    ensemble = lab.TrainedEnsembleModel().load_model(lab.TrainedEnsembleModel.fetch1("KEY"), include_dataloader=False)
    ensemble.eval()
    for key in lab.MEI.keys():
        row = (lab.MEI & key).fetch1()
        mei = lab.MEI().fetch_mei(key)
        raw = np.load(io.BytesIO(server.read(spec["bucket"], f"{spec['location']}/{row['mei'].path}")))
        assert mei.shape == (1, 1, 5, 5) and np.array_equal(mei.numpy(), raw)
        with torch.no_grad():  # the fetched MEI is the one the method scored
            evaluation = float(lab.Objective().get_objective(ensemble, key)(mei.float()))
        assert math.isclose(row["score"], evaluation, rel_tol=1e-5, abs_tol=1e-6)
        output = lab.MEI().fetch_output(key)
        raw_output = from_bytes(server.read(spec["bucket"], f"{spec['location']}/{row['output'].path}"))
        assert output["EvaluationObjective"]["times"] == [0, 4, 8]
        path = "mei.objectives.EvaluationObjective"  # the stored object is keyed by the config's path
        assert raw_output[path]["times"] == [0, 4, 8]
        assert output["EvaluationObjective"]["values"] == raw_output[path]["values"]


def test_meis_outputs_and_weights_round_trip_through_s3(s3_backend, s3_server, allow_tests_modules):
    spec = s3_backend.store_spec
    lab = _populate_lab(s3_backend, seeds=(42, 43))
    result = lab.MEI().populate()
    assert result["success_count"] == 6 and not result["error_list"]
    assert len(lab.MEI()) == 6
    _check_round_trips(lab, s3_server, spec, n_meis=6)
    objects = _objects(s3_server, spec)
    assert len(objects) == 2 + 6 + 6 and all(size > 0 for size in objects.values())

    trained = lab.TrainedModel()
    for key in trained.keys():  # the weights in the bucket are what the trainer makes, exactly
        stored = from_bytes((lab.TrainedModel.ModelStorage & key).fetch1("model_state"))
        seed = (lab.Seed & key).fetch1("seed")
        dataloaders, model, trainer = trained.load_model(key, include_trainer=True, include_state_dict=False,
                                                         seed=seed)
        _, _, state = trainer(model=model, dataloaders=dataloaders, seed=seed, uid=key, cb=None)
        assert set(stored) == set(state) == {"readout.weight", "readout.bias"}
        for name in state:
            assert torch.equal(stored[name], state[name].cpu()), name
        loaded = trained.load_model(key, include_dataloader=False)  # load_model reads them from S3
        assert all(torch.equal(loaded.state_dict()[name], stored[name]) for name in stored)
    main.model_cache.clear()
    print(f"\n[{s3_backend.name}] S3 bucket {spec['bucket']}: 6 MEIs, 6 outputs, 2 weights round-tripped")


@pytest.fixture
def own_s3_server(private_tmp, monkeypatch):
    """An S3 server of this test alone, which it may stop and restart (the session's server stays up)."""
    pytest.importorskip("moto.server", reason="the S3 tests need moto[server] (the dev extra)")
    from tests.s3server import S3Server

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # botocore retries a refused connection 5 times by default
    server = S3Server(private_tmp / "s3")
    yield server
    server.stop()


def test_s3_server_stopped_mid_populate_is_a_clear_error_and_a_rerun_completes(backend, own_s3_server,
                                                                               allow_tests_modules):
    server = own_s3_server
    spec = server.store(server.new_bucket("stop"), location=f"lab-{backend.name}")
    instance = _make_instance(backend.name, spec, backend.embedded_dir)
    s3 = Backend(backend.name, instance, backend.root, backend.embedded_dir, store_spec=spec)
    try:
        lab = _populate_lab(s3, seeds=(42, 43))
        n_keys = 6
        computed = []

        class MEI(lab.MEI):  # the lab's own MEI table; its third make stops the S3 server before inserting
            def _compute(self, key, *args, **kwargs):
                result = super()._compute(key, *args, **kwargs)
                computed.append(key)
                if len(computed) == 3:
                    server.stop()
                return result

        result = MEI().populate(suppress_errors=True)
        assert result["success_count"] == 2 and len(result["error_list"]) == n_keys - 2
        assert len(MEI()) == 2 and not server.running
        endpoint = f"http://127.0.0.1:{server.port}"
        for _, message in result["error_list"]:
            assert message.startswith(f"StoreError: the S3 store 'mei' (bucket '{spec['bucket']}', location "
                                      f"'{spec['location']}' at {endpoint}) is unreachable ("), message
            assert "check that the S3 server is running" in message and "rerun populate" in message, message
        print(f"\n[{backend.name}] {result['error_list'][0][1][:200]}...")

        server.restart()  # a new process; the recorded requests bring back buckets and objects
        objects = _objects(server, spec)
        assert len(objects) == 2 + 2 * 2  # the weights and the 2 rows' objects; nothing of the failed keys
        assert set(objects) == (_stored_paths(lab.TrainedModel.ModelStorage(), "model_state")
                                | _stored_paths(MEI(), "mei") | _stored_paths(MEI(), "output"))

        rerun = MEI().populate(suppress_errors=True)
        assert rerun["success_count"] == n_keys - 2 and not rerun["error_list"]
        assert len(MEI()) == n_keys
        _check_round_trips(lab, server, spec, n_meis=n_keys)
        assert len(_objects(server, spec)) == 2 + 2 * n_keys
        print(f"[{backend.name}] S3 server restarted: rerun made {n_keys - 2} keys, {n_keys} rows, "
              f"{2 + 2 * n_keys} objects")
    finally:
        main.model_cache.clear()
        s3.drop_all()
        instance.connection.close()


def _schema_exists(connection: Any, name: str) -> bool:
    query = "SELECT schema_name FROM information_schema.schemata WHERE schema_name = %s"
    return bool(connection.query(query, args=(name,)).fetchall())


def _where(spec: dict) -> str:
    return (f"the S3 store 'mei' (bucket '{spec['bucket']}', location '{spec['location']}' at "
            f"{db.endpoint_url(spec)})")


def test_wrong_credentials_fail_at_connect_and_nothing_is_written(backend, s3_server, s3_bucket):
    good = s3_server.store(s3_bucket, location=f"lab-{backend.name}")
    wrong_key = "AKIA" + "X" * 16
    for changes, code in (({"secret_key": "not-the-secret"}, "SignatureDoesNotMatch"),
                          ({"access_key": wrong_key}, "InvalidAccessKeyId")):
        with pytest.raises(db.StoreError) as caught:
            _make_instance(backend.name, {**good, **changes}, backend.embedded_dir)
        message = str(caught.value)
        assert caught.value.reason == "credentials" and caught.value.store == "mei"
        assert message.startswith(f"{_where(good)} refused the credentials ({code}: "), message
        assert message.endswith("); check its access_key and secret_key"), message
    print(f"\n[{backend.name}] {message}")

    instance = _make_instance(backend.name, good, backend.embedded_dir)  # the right key: connects
    try:
        instance.config.stores["mei"]["secret_key"] = "not-the-secret"  # then the secret goes wrong
        name = f"meitest_{uuid.uuid4().hex[:10]}_fabrik"
        from mei import fabrik

        with pytest.raises(db.StoreError, match=r"refused the credentials \(SignatureDoesNotMatch: "):
            fabrik.activate(name, connection=instance.connection)
        assert not _schema_exists(instance.connection, name)  # nothing declared
    finally:
        instance.connection.close()
    assert s3_server.objects(s3_bucket) == {}  # nothing in the bucket


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_unreachable_endpoint_and_missing_bucket_fail_at_connect(backend, s3_server, s3_bucket):
    from tests.s3server import free_port

    unused = free_port()
    spec = s3_server.store(s3_bucket, endpoint=f"127.0.0.1:{unused}")
    with pytest.raises(db.StoreError) as caught:
        _make_instance(backend.name, spec, backend.embedded_dir)
    assert caught.value.reason == "unreachable"
    assert str(caught.value).startswith(f"{_where(spec)} is unreachable (EndpointConnectionError: "), caught.value
    assert f"http://127.0.0.1:{unused}/..." in str(caught.value)  # the endpoint, not a path
    print(f"\n{caught.value}")
    missing = s3_server.store(f"{s3_bucket}-missing")
    with pytest.raises(db.StoreError) as caught:
        _make_instance(backend.name, missing, backend.embedded_dir)
    assert caught.value.reason == "bucket"
    assert str(caught.value) == f"{_where(missing)} has no bucket '{s3_bucket}-missing'; create it first"
    keyless = {k: v for k, v in s3_server.store(s3_bucket).items() if k not in ("access_key", "secret_key")}
    with pytest.MonkeyPatch.context() as env:  # no key in the spec and none in the environment
        for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.delenv(variable, raising=False)
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        env.setenv("AWS_CONFIG_FILE", os.devnull)
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        with pytest.raises(db.StoreError) as caught:
            _make_instance(backend.name, keyless, backend.embedded_dir)
    assert caught.value.reason == "credentials"
    assert str(caught.value) == (f"{_where(keyless)} has no credentials (NoCredentialsError: Unable to locate "
                                 "credentials); set its access_key and secret_key, or AWS credentials in the "
                                 "environment")
    plain_http = s3_server.store(s3_bucket)
    del plain_http["secure"]  # DataJoint's default for S3 is secure=True: https to a plain-HTTP server
    with pytest.raises(db.StoreError, match=r"at https://127\.0\.0\.1:\d+\) is unreachable \(") as caught:
        _make_instance(backend.name, plain_http, backend.embedded_dir)


CONNECT = """
import sys, mei.pipeline.database, mei.fabrik
mei.pipeline.database.connect()
mei.fabrik.activate(sys.argv[1])
print("connected")
"""


def test_a_lab_with_wrong_credentials_in_dj_stores_gets_the_error_from_connect(backend, s3_server, s3_bucket,
                                                                                private_tmp):
    """The deployment's way (``DJ_STORES``): ``mei.pipeline.database.connect()`` stops before any database or store
    is written."""
    import json

    from tests import servers

    spec = s3_server.store(s3_bucket, location=f"lab-{backend.name}", secret_key="not-the-secret")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJ_", "MEI_", "AWS_"))}
    env.update(DJ_STORES=json.dumps({"mei": spec}), MEI_DATA_DIR=str(private_tmp / "data"), PYTHONPATH=str(ROOT))
    if backend.name == "embedded":
        env["MEI_DATABASE"] = "embedded"
    else:
        env.update(servers.server(backend.name).dj_env(), MEI_DATABASE="server")
    name = f"meitest_{uuid.uuid4().hex[:10]}_fabrik"
    result = subprocess.run([sys.executable, "-c", CONNECT, name], cwd=private_tmp, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    expected = f"mei.pipeline.database.StoreError: {_where(spec)} refused the credentials (SignatureDoesNotMatch: "
    assert last.startswith(expected), last
    assert "connected" not in result.stdout
    assert not (private_tmp / "data" / "postgres").exists()  # not even the embedded database was started
    assert not _schema_exists(backend.connection, name)
    assert s3_server.objects(s3_bucket) == {}
    print(f"\n[{backend.name}] {last[:160]}...")


def test_store_errors_names_only_errors_of_the_store(s3_server, s3_bucket):
    config = {"stores": {"mei": s3_server.store(s3_bucket)}}
    with pytest.raises(ValueError, match="^not the store$"):  # anything else passes unchanged
        with db.store_errors(config):
            raise ValueError("not the store")
    with pytest.raises(db.StoreError) as caught:
        with db.store_errors(config, hint="rerun it"):
            s3_server.client(access_key="AKIA" + "Y" * 16).list_objects_v2(Bucket=s3_bucket)
    assert str(caught.value) == (f"{_where(config['stores']['mei'])} refused the credentials (InvalidAccessKeyId: "
                                 "The AWS Access Key Id you provided does not exist in our records.); check its "
                                 "access_key and secret_key; rerun it")
    assert type(caught.value.__cause__).__name__ == "ClientError"  # the original error stays attached
