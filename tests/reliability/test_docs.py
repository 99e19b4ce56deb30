"""The examples of docs/security.md and docs/deployment.md run, and what they name exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from . import lab as lab_module
from .test_deployment import COMPOSE, interpolate

ROOT = Path(__file__).resolve().parents[2]
SECURITY = (ROOT / "docs" / "security.md").read_text()
DEPLOYMENT = (ROOT / "docs" / "deployment.md").read_text()


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_security_examples_run(capsys):
    (example,) = blocks(SECURITY, "python")
    exec(compile(example, "docs/security.md", "exec"), {"__name__": "security_example"})
    out = capsys.readouterr().out
    assert out.count("refused:") == 4 and "<class 'json.decoder.JSONDecoder'>" in out


def test_security_doc_states_the_catalogue_size():
    from .bad_configs import CASES

    assert f"The catalogue of {len(CASES)} malformed and malicious" in " ".join(SECURITY.split())


def test_security_doc_lists_the_internal_modules():
    from mei.resolve import INTERNAL_MODULES

    for module in INTERNAL_MODULES:
        assert f"`{module}`" in SECURITY


def test_deployment_recovery_example_runs(backend, capsys):
    instance = backend.connect()
    lab = lab_module.bind(instance.connection, backend.schema_name("mei"), backend.schema_name("lab"))
    lab_module.fill(lab, n_units=2, seeds=[1], nan_unit=1)
    lab.MEI.jobs.refresh()
    (example,) = blocks(DEPLOYMENT, "python")
    from mei import reliability

    reliability.run_worker(lab.MEI, say=lambda line: None)
    exec(compile(example, "docs/deployment.md", "exec"), {"__name__": "deployment_example", "MEI": lab.MEI})
    out = capsys.readouterr().out
    assert "'error': 1" in out and "NonFiniteError: non-finite (NaN or Inf)" in out
    lab.MEI.jobs.errors.delete_quick()  # the doc's retry step
    assert len(lab.MEI.jobs.errors) == 0
    instance.connection.close()


def test_deployment_env_file_and_override_agree_with_the_compose_file():
    compose_text = COMPOSE.read_text()
    env_block = next(b for b in blocks(DEPLOYMENT, "sh") if "MEI_WORKER_TABLE=" in b)
    for name in re.findall(r"^(\w+)=", env_block, flags=re.M):
        assert "${" + name in compose_text, name
    (override,) = blocks(DEPLOYMENT, "yaml")
    services = yaml.safe_load(override)["services"]
    compose = yaml.safe_load(interpolate(compose_text))
    assert set(services) <= set(compose["services"])
    assert "deploy" in compose["services"]["worker"]
    for command in re.findall(r"^docker compose (?:run --rm(?: --entrypoint \w+)? |up -d |logs -f |stop )(\S+)",
                              DEPLOYMENT, flags=re.M):
        assert command in compose["services"] or command.startswith("--"), command
