"""docs/analyses.md runs as written (its Python blocks, except those marked ``<!-- skip -->``) and prints what its
comments say."""

import contextlib
import io
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "analyses.md"
BLOCK = re.compile(r"(<!-- (?P<marker>skip) -->\n)?```python\n(?P<code>.*?)```", re.S)


def blocks() -> list[str]:
    return [m.group("code") for m in BLOCK.finditer(DOC.read_text()) if not m.group("marker")]


def run(code: str) -> list[str]:
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(code, str(DOC), "exec"), {"__name__": "analyses_doc"})
    return output.getvalue().splitlines()


def test_the_page_has_two_runnable_examples_and_a_tables_sketch():
    assert len(blocks()) == 2
    assert len(BLOCK.findall(DOC.read_text())) == 3


@pytest.mark.slow
def test_mds_example_prints_what_it_says():
    assert run(blocks()[0]) == ["(5, 1, 20, 20)", "1.0", "True"]


@pytest.mark.slow
def test_tuning_example_prints_what_it_says():
    lines = run(blocks()[1])
    assert lines[:2] == ["24 24", "0.136 0.136"]
    assert lines[2] == str([0.0] * 7 + [1.0] * 3 + [0.0] * 2)
    assert lines[3] == "[0.84, 0.84]"
