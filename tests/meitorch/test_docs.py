"""The examples of docs/meitorch.md run as written and write the pictures the page shows.

``python -m tests.meitorch.test_docs`` (from the repository root) regenerates ``docs/images/meitorch_*.png``.
"""

import os
import re
from pathlib import Path

import matplotlib.image
import matplotlib.pyplot as plt
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "meitorch.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)


def run_examples(directory: Path) -> dict:
    namespace: dict = {}
    cwd = os.getcwd()
    os.chdir(directory)
    try:
        for block in python_blocks():
            exec(compile(block, str(DOC), "exec"), namespace)
    finally:
        os.chdir(cwd)
        plt.close("all")
    return namespace


@pytest.mark.slow
def test_doc_examples_run_and_write_the_pictures_it_shows(tmp_path):
    namespace = run_examples(tmp_path)
    assert tuple(namespace["result"].mei.shape) == (8, 1, 32, 32)
    assert namespace["pixel"].losses["activation"][-1] > namespace["pixel"].losses["activation"][0]
    shown = re.findall(r"\]\((images/meitorch_\w+\.png)\)", DOC.read_text())
    assert len(shown) == 5
    for name in shown:
        written = tmp_path / Path(name).name
        assert matplotlib.image.imread(written).shape[0] > 100
        assert (ROOT / "docs" / name).exists(), f"docs/{name} is not committed"


if __name__ == "__main__":
    run_examples(ROOT / "docs" / "images")
