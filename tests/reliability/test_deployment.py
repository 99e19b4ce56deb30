"""Static checks of docker/Dockerfile and docker-compose.yml (no Docker engine runs on the test machines).

The compose file must parse, its services, volumes and dependencies must agree, and the environment it
gives the workers must configure DataJoint and :mod:`mei.pipeline.database` the way a worker needs: the database
service, the MinIO store under the package's store name, never the embedded database. The image must
install torch and the package the way the Makefile does.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
_VARIABLE = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")
USER_ENV = {"MEI_WORKER_TABLE": "lab_pipeline.MEI", "MEI_ALLOWED_MODULES": "lab_pipeline"}
"""What a lab sets in its .env file; every other variable keeps the compose file's default."""


def interpolate(value: str) -> str:
    """Compose's ``${NAME:-default}`` / ``${NAME:?error}`` with :data:`USER_ENV` (``$$`` is a literal ``$``)."""

    def substitute(match: re.Match) -> str:
        name, kind, text = match.groups()
        if name in USER_ENV:
            return USER_ENV[name]
        assert kind != "?", f"compose requires {name}: {text}"
        return text or ""

    return _VARIABLE.sub(substitute, value).replace("$$", "$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def worker_env(compose) -> dict[str, str]:
    return {k: interpolate(str(v)) for k, v in compose["services"]["worker"]["environment"].items()}


def package_env_vars() -> set[str]:
    """Every ``MEI_*`` environment variable named in the package's source."""
    return {m for f in (ROOT / "mei").rglob("*.py") for m in re.findall(r"\bMEI_[A-Z_]+\b", f.read_text())}


def test_services_volumes_and_dependencies_agree(compose):
    services = compose["services"]
    assert {"db", "minio", "minio-init", "worker"} <= set(services)
    declared = set(compose["volumes"])
    used = {v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if v[0].isalpha()}
    assert used == declared
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
    assert services["worker"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["worker"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    assert (ROOT / services["worker"]["build"]["context"] / services["worker"]["build"]["dockerfile"]).is_file()
    assert int(interpolate(str(services["worker"]["deploy"]["replicas"]))) >= 2


def test_worker_environment_configures_datajoint(worker_env, compose, monkeypatch):
    import datajoint.settings

    from mei.pipeline import database as db

    services = compose["services"]
    for name, value in worker_env.items():
        monkeypatch.setenv(name, value)
    config = datajoint.settings._create_config()
    assert config.database.host == "db" and "db" in services
    assert config.database.backend == "postgresql" and services["db"]["image"].startswith("postgres:")
    assert config.database.port == 5432 and config.database.user == "postgres"
    assert worker_env["DJ_PASS"] == interpolate(services["db"]["environment"]["POSTGRES_PASSWORD"])
    assert db.choose_backend(config) == "server"
    store = db.store_name()
    assert store == worker_env["MEI_STORE"]
    assert db.ensure_store(config, check=False) == store  # a config check: nothing listens at minio:9000 here
    spec = config.get_store_spec(store)
    assert spec["protocol"] == "s3" and spec["secure"] is False
    host, port = spec["endpoint"].split(":")
    assert host == "minio" and port == "9000" and "minio" in services
    minio_env = {k: interpolate(v) for k, v in services["minio"]["environment"].items()}
    assert (spec["access_key"], spec["secret_key"]) == (minio_env["MINIO_ROOT_USER"], minio_env["MINIO_ROOT_PASSWORD"])
    bucket_command = interpolate(" ".join(services["minio-init"]["command"]))
    assert f"mc mb --ignore-existing store/{spec['bucket']}" in bucket_command


def test_worker_environment_names_only_variables_the_package_reads(worker_env):
    known_dj = {"DJ_HOST", "DJ_PORT", "DJ_USER", "DJ_PASS", "DJ_BACKEND", "DJ_STORES"}
    mei_vars = {name for name in worker_env if name.startswith("MEI_")}
    assert mei_vars <= package_env_vars(), mei_vars - package_env_vars()
    assert {"MEI_DATABASE", "MEI_STORE", "MEI_ALLOWED_MODULES", "MEI_WORKER_TABLE"} <= mei_vars
    assert {name for name in worker_env if name.startswith("DJ_")} == known_dj
    assert worker_env["MEI_DATABASE"] == "server"


def test_worker_finds_the_labs_table(compose, worker_env):
    """The table's module is on PYTHONPATH (the mounted lab folder) and its prefix is allowed."""
    from mei.engine.resolve import is_allowed_module

    mounts = [interpolate(v).split(":") for v in compose["services"]["worker"]["volumes"]]
    lab_mount = [target for source, target, *_ in mounts if source.startswith(".")]
    assert lab_mount == [worker_env["PYTHONPATH"]]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEI_ALLOWED_MODULES", worker_env["MEI_ALLOWED_MODULES"])
        assert is_allowed_module(worker_env["MEI_WORKER_TABLE"].rsplit(".", 1)[0])
    with pytest.raises(AssertionError, match="compose requires MEI_WORKER_TABLE"):
        USER_ENV.pop("MEI_WORKER_TABLE")
        try:
            interpolate(COMPOSE.read_text())
        finally:
            USER_ENV["MEI_WORKER_TABLE"] = "lab_pipeline.MEI"


def dockerfile_args() -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=?\"?([^\"\n]*)\"?$", DOCKERFILE.read_text(), flags=re.M))


def test_image_installs_the_way_the_makefile_does():
    text = DOCKERFILE.read_text()
    makefile = (ROOT / "Makefile").read_text()
    torch_pin = re.search(r"pip install --quiet (torch==[\d.]+)", makefile).group(1)
    args = dockerfile_args()
    assert f"torch=={args['TORCH_VERSION']}" == torch_pin
    assert "torch==${TORCH_VERSION}" in text
    assert re.search(r'pip install .*-e "\.\[all,dev\]" ' + torch_pin, makefile), "the package install keeps the pin"
    assert args["EXTRAS"] == "all" and 'pip install --no-cache-dir ".[${EXTRAS}]"' in text
    assert text.index("torch==${TORCH_VERSION}") < text.index('".[${EXTRAS}]"'), "torch must be pinned first"
    pinned_install = '".[${EXTRAS}]" "datajoint[s3]>=2.3,<3" "torch==${TORCH_VERSION}"'
    assert pinned_install in text, "the package install keeps the pin"
    setup = (ROOT / "setup.py").read_text()
    assert '"mei = mei.cli:main"' in setup and 'ENTRYPOINT ["mei"]' in text


def test_image_variants_and_build_context():
    text = DOCKERFILE.read_text()
    args = dockerfile_args()
    assert args["VARIANT"] == "cpu"
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", text, flags=re.M))
    assert {"base-cpu", "base-cuda"} <= stages and "FROM base-${VARIANT} AS image" in text
    python = re.search(r"python:(\d+)\.(\d+)", args["PYTHON_IMAGE"]).groups()
    required = re.search(r'python_requires=">=(\d+)\.(\d+)"', (ROOT / "setup.py").read_text()).groups()
    assert tuple(map(int, python)) >= tuple(map(int, required))
    ignore = (ROOT / "docker" / "Dockerfile.dockerignore").read_text().split()
    for line in re.findall(r"^COPY (.+) \S+$", text, flags=re.M):
        for source in line.split():
            assert (ROOT / source).exists() and f"!{source.rstrip('/')}" in [i.rstrip("/") for i in ignore], source


def test_worker_command_is_a_cli_subcommand(compose):
    from mei import cli

    command = compose["services"]["worker"]["command"]
    with pytest.raises(SystemExit) as caught:
        cli.main([*command, "--help"])
    assert caught.value.code == 0
