"""The positive allowlist: every public callable of the package is a documented component or refused by name,
and validating configs that name all of them touches no file, process, socket or database."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mei.engine.resolve import (
    COMPONENT_MODULES,
    KINDS,
    ComponentNotAllowedError,
    ConfigError,
    component_catalogue,
    package_components,
    resolve,
)

from .validate_everything import public_paths

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS_DOC = (ROOT / "docs" / "components.md").read_text()
MACHINERY = ("mei.main", "mei.fabrik", "mei.pipeline.database", "mei.cli", "mei.pipeline.jobs", "mei.demo.engine_only",
             "mei.pipeline.builders", "mei.demo.tables", "mei.demo.pipeline", "mei.demo.report",
             "mei.pipeline.batched_populate", "mei.pipeline.report_card_table", "mei.pipeline.objective_templates")


def documented() -> set[str]:
    return set(re.findall(r"^\| [^|]+ \| `([\w.]+)` \|", COMPONENTS_DOC, flags=re.M))


def test_every_public_callable_is_a_documented_component_or_refused():
    """Adding a component without documenting it, or making anything else resolvable, fails here."""
    paths = public_paths()
    assert len(paths) > 1000, len(paths)  # every module of the package, their classes' attributes included
    handed_out, refused = set(), 0
    for path, _ in paths:
        private = any(part.startswith("_") for part in path.split("."))
        try:
            resolve(path, kinds=KINDS)
        except ComponentNotAllowedError:
            refused += 1
        except ConfigError as error:  # a private part: refused by its shape, before anything is looked up
            assert private and "invalid part" in error.message, (path, error)
            refused += 1
        else:
            handed_out.add(path)
    assert handed_out == documented() == set(package_components())
    assert {path.rsplit(".", 1)[0] for path in handed_out} == set(COMPONENT_MODULES)
    for machinery in MACHINERY:
        assert not [p for p in handed_out if p.startswith(machinery + ".")]
    print(f"\npositive allowlist: {len(paths)} public callables, {len(handed_out)} components, {refused} refused")


def test_components_doc_is_the_generated_catalogue():
    assert component_catalogue() in COMPONENTS_DOC, (
        "docs/components.md is stale: paste mei.engine.resolve.component_catalogue()")


def test_each_documented_component_has_kinds_and_a_docstring():
    for path, kinds in package_components().items():
        assert kinds and kinds <= set(KINDS), path
        assert (resolve(path).__doc__ or "").strip(), f"{path} has no docstring"


@pytest.fixture(scope="module")
def validation_report():
    """``validate_everything`` in a fresh interpreter: lists the paths in one, validates them in another."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg"}
    env.pop("MEI_ALLOWED_MODULES", None)
    command = [sys.executable, "-m", "tests.reliability.validate_everything"]
    listing = subprocess.run([*command, "--list"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                             check=True).stdout
    result = subprocess.run(command, input=listing, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    closure = subprocess.run(  # what importing the component modules imports of the package by itself
        [sys.executable, "-c", "import importlib, sys\nfrom mei.pipeline.generation import validate_method\n"
         f"for m in {COMPONENT_MODULES!r}: importlib.import_module(m)\n"
         "print(' '.join(m for m in sys.modules if m == 'mei' or m.startswith('mei.')))"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=True).stdout.split()
    return json.loads(result.stdout.strip().splitlines()[-1]), set(closure)


@pytest.mark.slow
def test_validating_every_public_callable_touches_nothing(validation_report):
    report, closure = validation_report
    assert report["touched"] == [], report["touched"]
    assert report["paths"] > 1000 and report["configs"] == 8 * report["paths"]
    assert report["valid"] + report["refused"] == report["configs"]
    # real instantiation happened under the sentinels: most components built from plausible kwargs
    assert report["valid"] >= 40, report["valid"]
    print(f"\nsentinels: {report['configs']} configs over {report['paths']} paths validated, {report['valid']} valid "
          f"(components instantiated), 0 files / processes / sockets / databases touched")


@pytest.mark.slow
def test_validation_imports_only_component_modules_and_their_dependencies(validation_report):
    report, closure = validation_report
    assert set(report["imported"]) <= closure, sorted(set(report["imported"]) - closure)
    for machinery in MACHINERY:
        assert machinery not in report["imported"]
