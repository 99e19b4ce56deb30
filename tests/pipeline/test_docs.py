"""docs/pipeline.md runs as written, on a fresh embedded database (the default with nothing configured);
afterwards ``mei.pipeline.database.connect()`` keeps returning that one connection."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "pipeline.md"
BLOCK = re.compile(r"(<!-- (?P<marker>skip|file: [\w.]+) -->\n)?```(?P<lang>\w+)\n(?P<code>.*?)```", re.S)
TEARDOWN = """
import datajoint as dj, mei.pipeline.database
assert mei.pipeline.database.connect() is dj.conn()
assert mei.pipeline.database.connect(reset=True).conn_info["host"] == connection.conn_info["host"]
print("WHERE", connection.conn_info["host"], dj.config["database.backend"], dj.config["stores"]["mei"]["location"])
mei.pipeline.database.stop_embedded(delete=True)
print("DOCS OK")
"""


def doc_programs() -> tuple[dict[str, str], str]:
    """The files the page defines (``<!-- file: name -->``) and its other Python blocks, joined in order."""
    files, script = {}, []
    for match in BLOCK.finditer(DOC.read_text()):
        marker = match.group("marker") or ""
        if marker == "skip" or match.group("lang") != "python":
            continue
        if marker.startswith("file: "):
            files[marker[len("file: "):]] = match.group("code")
        else:
            script.append(match.group("code"))
    return files, "\n".join(script)


@pytest.mark.slow
def test_pipeline_page_runs(private_tmp):
    tmp_path = private_tmp
    files, script = doc_programs()
    assert set(files) == {"mylab.py"} and "MEI().populate(display_progress=True)" in script
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    (tmp_path / "run_docs.py").write_text(script + TEARDOWN)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJ_", "MEI_"))}
    env.update(MEI_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    result = subprocess.run([sys.executable, "run_docs.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 trained models" in result.stdout and "4 neurons" in result.stdout
    assert "(1, 1, 8, 8)" in result.stdout and result.stdout.rstrip().endswith("DOCS OK")
    where = next(line for line in result.stdout.splitlines() if line.startswith("WHERE")).split()[1:]
    assert where == [str(tmp_path / "data" / "postgres"), "postgresql", str(tmp_path / "data" / "store")]
    assert (tmp_path / "data" / "postgres").exists() is False  # stopped and deleted by the teardown
    assert any((tmp_path / "data" / "store").rglob("*.npy"))
