"""Layering: the engine and its components never import DataJoint."""

import subprocess
import sys

ENGINE_MODULES = [
    "mei", "mei.optimization", "mei.methods", "mei.resolve", "mei.rng", "mei.initial", "mei.stoppers",
    "mei.tracking", "mei.objectives", "mei.transforms", "mei.regularizers", "mei.preconditioners",
    "mei.postprocessing", "mei.modules",
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
