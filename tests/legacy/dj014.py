"""DataJoint 0.14 for the legacy-bridge tests: a virtual environment of its own, made once and cached.

The environment lies in ``$MEI_TEST_CACHE`` (default ``$XDG_CACHE_HOME/mei-tests`` or ``~/.cache/mei-tests``)
under ``datajoint-0.14-py<major><minor>``; a second test session (or a concurrent one, behind a file lock)
reuses it. It holds DataJoint 0.14 and its dependencies only (no torch): the tests' DataJoint 0.14 scripts
exchange files and pickles with the test process. If it cannot be made, :func:`python_014` says why and the
tests skip with that reason.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REQUIREMENT = "datajoint==0.14.*"
SCRIPT = Path(__file__).with_name("script_014.py")


def cache_dir() -> Path:
    """Where the cached environments live."""
    if os.environ.get("MEI_TEST_CACHE"):
        return Path(os.environ["MEI_TEST_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "mei-tests"


def venv_dir() -> Path:
    return cache_dir() / f"datajoint-0.14-py{sys.version_info.major}{sys.version_info.minor}"


def python_014(timeout: float = 1200.0) -> tuple[Path | None, str]:
    """``(python of the DataJoint 0.14 environment, version)``, making it first if needed; ``(None, reason)``
    if it cannot be made on this Python."""
    directory = venv_dir()
    python = directory / "bin" / "python"
    marker = directory / ".complete"
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(str(directory) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one maker at a time; the others wait and reuse its result
        if not marker.is_file():
            if directory.exists():
                subprocess.run(["rm", "-rf", str(directory)], check=False)
            steps = [[sys.executable, "-m", "venv", str(directory)],
                     [str(python), "-m", "pip", "install", "--quiet", REQUIREMENT]]
            for step in steps:
                try:
                    done = subprocess.run(step, capture_output=True, text=True, timeout=timeout)
                except (OSError, subprocess.TimeoutExpired) as error:
                    return None, f"cannot make a DataJoint 0.14 environment ({' '.join(step[:3])}): {error}"
                if done.returncode != 0:
                    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                    return None, (f"pip cannot install {REQUIREMENT} on Python {sys.version.split()[0]}: "
                                  + " | ".join(tail))
            version = subprocess.run([str(python), "-c", "import datajoint; print(datajoint.__version__)"],
                                     capture_output=True, text=True)
            if version.returncode != 0:
                return None, f"DataJoint 0.14 does not import: {version.stderr[-300:]}"
            marker.write_text(version.stdout.strip())
    return python, marker.read_text().strip()


def run_014(python: Path, task: str, args: dict[str, Any], work: Path, timeout: float = 300.0) -> Any:
    """Run ``task`` of :mod:`tests.legacy.script_014` with DataJoint 0.14; returns what it wrote as JSON."""
    request = work / f"{task}-request.json"
    result = work / f"{task}-result.json"
    request.write_text(json.dumps({**args, "task": task, "result": str(result)}))
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJ_", "PYTHON"))}
    done = subprocess.run([str(python), str(SCRIPT), str(request)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=str(work))
    if done.returncode != 0:
        raise RuntimeError(f"DataJoint 0.14 task {task!r} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(result.read_text())
