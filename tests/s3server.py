"""A real S3 server for the tests: moto's server mode (``moto[server]``, the ``dev`` extra) in its own process.

:class:`S3Server` starts ``python -m moto.server`` on 127.0.0.1 at a free port, creates an IAM user with an
access key allowed ``s3:*`` and then turns authentication on, so that requests signed with any other key are
refused as a real S3 or MinIO refuses them. Every S3 request after that is recorded (moto's recorder) to a file,
so :meth:`S3Server.restart` can bring a stopped server back with its buckets and objects: the new process
replays the recording. The restarted process no longer checks credentials (its IAM user would get a new
random key), which the tests that restart it do not need.

Buckets are made with :meth:`S3Server.new_bucket` and emptied and removed with :meth:`S3Server.drop_bucket`;
:meth:`S3Server.store` gives the DataJoint store spec of a bucket.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

REGION = "us-east-1"
POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class S3Server:
    """One moto S3 server process (see the module docstring).

    Args:
        directory (Path): where its log and request recording go (the caller removes it).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.recording = self.directory / "recording.jsonl"
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.access_key = ""
        self.secret_key = ""
        self.checks_credentials = False
        self._start()
        atexit.register(self.stop)  # never left running, even when the test session ends without teardown
        self._make_user()
        self._post("/moto-api/reset-auth", b"0")  # from now on every request must be signed with the user's key
        self.checks_credentials = True
        self._post("/moto-api/recorder/reset-recording")
        self._post("/moto-api/recorder/start-recording")

    # ------------------------------------------------------------------ process

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def _start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
        env["MOTO_RECORDER_FILEPATH"] = str(self.recording)
        log = open(self.directory / "server.log", "ab")  # noqa: SIM115 - handed to the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode}: "
                                   + (self.directory / "server.log").read_text()[-2000:])
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.endpoint} within 60 s")

    def stop(self) -> None:
        """Stop the server process (SIGTERM, then SIGKILL); its port refuses connections afterwards."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def restart(self) -> None:
        """Start a new server process on the same port and replay every recorded S3 request into it."""
        self.stop()
        self._start()
        self.checks_credentials = False
        self._post("/moto-api/recorder/replay-recording")
        self._post("/moto-api/recorder/start-recording")

    def _post(self, path: str, data: bytes = b"") -> bytes:
        request = urllib.request.Request(f"{self.endpoint}{path}", data=data, method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.read()

    # ------------------------------------------------------------------ clients

    def client(self, service: str = "s3", access_key: str | None = None, secret_key: str | None = None) -> Any:
        """A boto3 client of this server (the IAM user's key unless another is given)."""
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=access_key or self.access_key or "setup",
                            aws_secret_access_key=secret_key or self.secret_key or "setup")

    def _make_user(self) -> None:
        iam = self.client("iam")
        iam.create_user(UserName="mei-tests")
        iam.put_user_policy(UserName="mei-tests", PolicyName="s3", PolicyDocument=json.dumps(POLICY))
        key = iam.create_access_key(UserName="mei-tests")["AccessKey"]
        self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]

    def new_bucket(self, label: str = "mei") -> str:
        """Create a bucket with a unique name; returns the name."""
        name = f"meitest-{label}-{uuid.uuid4().hex[:10]}"
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str, prefix: str = "") -> dict[str, int]:
        """Every object in ``bucket`` under ``prefix``: ``{key: size}``, listed with boto3."""
        paginator = self.client().get_paginator("list_objects_v2")
        return {item["Key"]: item["Size"] for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
                for item in page.get("Contents", [])}

    def read(self, bucket: str, key: str) -> bytes:
        """The bytes of one object, read with boto3."""
        return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()

    def drop_bucket(self, bucket: str) -> None:
        """Delete every object of ``bucket`` and the bucket (nothing if the server is down)."""
        if not self.running:
            return
        client = self.client()
        for key in self.objects(bucket):
            client.delete_object(Bucket=bucket, Key=key)
        client.delete_bucket(Bucket=bucket)

    def store(self, bucket: str, location: str = "lab", **changes: Any) -> dict[str, Any]:
        """The DataJoint store spec of ``bucket`` on this server (``changes`` replace or add keys)."""
        spec = {"protocol": "s3", "endpoint": f"127.0.0.1:{self.port}", "secure": False, "bucket": bucket,
                "location": location, "access_key": self.access_key, "secret_key": self.secret_key}
        spec.update(changes)
        return spec
