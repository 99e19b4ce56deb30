"""Layering: every import in the package (deferred ones included) goes down the layers of docs/architecture.md,
there are no import cycles, nothing imports the re-export shims, and the engine never imports DataJoint."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mei"

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("engine", ("mei", "mei.engine")),
    ("components", ("mei.initial", "mei.stoppers", "mei.transforms", "mei.regularizers", "mei.preconditioners",
                    "mei.postprocessing", "mei.objectives", "mei.tracking", "mei.reducers", "mei.schedules",
                    "mei.optimizers",
                    "mei.legacy")),
    ("loop", ("mei.optimization", "mei.modules", "mei.methods", "mei.domain", "mei.import_helpers",
              "mei.legacy.core")),
    ("batched", ("mei.batched",)),
    ("targets", ("mei.targets",)),
    ("analysis", ("mei.analysis",)),
    ("front ends", ("mei.optim", "mei.meitorch", "mei.act_max_util", "mei.featurevis")),
    ("pipeline", ("mei.pipeline", "mei.fabrik", "mei.main", "mei.mixins", "mei.integration")),
    ("demo", ("mei.demo",)),
    ("cli", ("mei.cli",)),
    ("re-exports", ("mei.resolve", "mei.db")),
]
"""Lowest first. A module may import from its own layer and the layers below, never from one above."""

SHIMS = ("mei.resolve", "mei.db")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def exists(name: str) -> bool:
    base = ROOT / Path(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(path: Path) -> set[str]:
    """The package's modules that ``path`` imports anywhere (top level, functions, ``TYPE_CHECKING`` blocks).

    ``from . import x`` counts as an import of module ``x``, not of the package's ``__init__``.
    """
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            if not module.startswith("mei"):
                continue
            submodules = [f"{module}.{alias.name}" for alias in node.names if exists(f"{module}.{alias.name}")]
            found.update(submodules if submodules and len(submodules) == len(node.names) else [module])
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("mei"))
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(name: str) -> int:
    matches = [(len(prefix), rank) for rank, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if name == prefix or name.startswith(prefix + ".")]
    assert matches, f"{name} belongs to no layer: add it to LAYERS and docs/architecture.md"
    return max(matches)[1]


def test_every_module_has_a_layer_and_imports_only_downwards():
    upward = []
    for name, deps in graph().items():
        for dep in deps:
            if layer_of(dep) > layer_of(name):
                upward.append(f"{name} ({LAYERS[layer_of(name)][0]}) imports {dep} ({LAYERS[layer_of(dep)][0]})")
    assert upward == []


def test_there_are_no_import_cycles():
    edges = graph()
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == "open":
                cycles.append(stack[stack.index(dep):] + [dep] if dep in stack else [node, dep])
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_nothing_in_the_package_imports_a_re_export_shim():
    assert [name for name, deps in graph().items() if set(deps) & set(SHIMS)] == []


def test_the_shims_re_export_their_new_home():
    import mei.db
    import mei.engine.resolve
    import mei.pipeline.database
    import mei.resolve

    assert mei.resolve.allow_modules is mei.engine.resolve.allow_modules
    assert mei.resolve.ConfigError is mei.engine.resolve.ConfigError
    assert mei.db.connect is mei.pipeline.database.connect


def test_the_layer_test_sees_deferred_and_relative_imports(tmp_path):
    """The import scan is what the other tests rest on: check it on the modules that used to hide cycles."""
    deps = graph()
    assert "mei.engine.options" in deps["mei.engine.resolve"]  # a top-level relative import
    assert "mei.pipeline.database" in deps["mei.pipeline.jobs"]  # a deferred import inside a function
    assert "mei.pipeline.jobs" in deps["mei.pipeline.batched_populate"]  # the other way round it would be a cycle
    assert "mei.engine.rng" in deps["mei.initial"]  # `from .engine import rng`: the module, not the package


ENGINE_MODULES = [
    "mei", "mei.optimization", "mei.methods", "mei.engine.resolve", "mei.engine.rng", "mei.engine.hooks",
    "mei.initial", "mei.stoppers", "mei.tracking", "mei.objectives", "mei.transforms", "mei.regularizers",
    "mei.preconditioners", "mei.postprocessing", "mei.modules", "mei.batched", "mei.targets.layers",
    "mei.targets.contrastive", "mei.targets.clusters", "mei.analysis.report_card", "mei.analysis.mds",
    "mei.analysis.stimuli", "mei.analysis.tuning",
]


def test_engine_modules_do_not_import_datajoint():
    code = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in ENGINE_MODULES)
        + "leaked = sorted(m for m in sys.modules if m == 'datajoint' or m.startswith('datajoint.'))\n"
        + "print(leaked)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()


def test_architecture_doc_shows_the_layers_of_this_test_in_order():
    diagram = ARCHITECTURE.split("```")[1]
    names = [line[2:17].strip() for line in diagram.splitlines() if line[2:17].strip()]
    assert names == [name for name, _ in reversed(LAYERS) if name != "re-exports"]
    for path in re.findall(r"(mei/[\w/]+(?:\.py|/))", diagram):
        assert (ROOT / path).exists(), path


def test_architecture_doc_example_runs(capsys):
    (example,) = re.findall(r"```python\n(.*?)```", ARCHITECTURE, flags=re.S)
    exec(compile(example, "docs/architecture.md", "exec"), {"__name__": "architecture_example"})
    assert capsys.readouterr().out == "Halve(0.25)\n"
