"""The examples of docs/security.md and docs/deployment.md run, and what they name exists."""

from __future__ import annotations

import re
from pathlib import Path

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
    out = capsys.readouterr().out.splitlines()
    assert out[1:3] == ["<class 'torch.optim.sgd.SGD'>", "<class 'mei.stoppers.NumIterations'>"]
    assert out[3:7] == [
        "refused: 'os.system' is outside the allowed modules; 'os' can never be allowed ",
        "refused: 'mei.demo.tables.drop' is not a component: 'mei.demo.tables' holds no ",
        "refused: 'mei.initial.torch.load' is not a component: it names an attribute of ",
        "refused: 'mei.cli.main' is not a component: 'mei.cli' holds no components (the ",
    ]
    assert out[7].startswith("cannot allow module prefix 'os': ")


def test_security_doc_states_the_catalogue_size():
    from .bad_configs import CASES

    text = " ".join(SECURITY.split())
    assert f"The catalogue of {len(CASES)} malformed and malicious" in text
    assert f"the catalogue of {len(CASES)} malformed and malicious configs is refused" in text


def test_security_doc_lists_the_component_modules():
    from mei.engine.resolve import COMPONENT_MODULES

    listed = re.search(r"component modules\s+\(`mei.engine.resolve.COMPONENT_MODULES`: (.*?)\) and is named",
                       SECURITY, re.S)
    assert listed and re.findall(r"`([\w.]+)`", listed[1]) == list(COMPONENT_MODULES)


def test_security_doc_names_tests_that_exist():
    for path in re.findall(r"`(tests/[\w/]+\.py)", SECURITY):
        assert (ROOT / path).is_file(), path
    for module, name in re.findall(r"`(?:tests/reliability/)?(\w+\.py)::(\w+)`", SECURITY):
        assert f"def {name}(" in (ROOT / "tests" / "reliability" / module).read_text(), name


def test_deployment_recovery_example_runs(backend, capsys):
    instance = backend.connect()
    lab = lab_module.bind(instance.connection, backend.schema_name("mei"), backend.schema_name("lab"))
    lab_module.fill(lab, n_units=2, seeds=[1], nan_unit=1)
    lab.MEI.jobs.refresh()
    (example,) = blocks(DEPLOYMENT, "python")
    from mei.pipeline import jobs as reliability

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
