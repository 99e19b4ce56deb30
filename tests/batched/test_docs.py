"""docs/batched.md runs as written (its Python blocks, except those marked ``<!-- skip -->``)."""

import re
from pathlib import Path

import pytest
import torch

DOC = Path(__file__).resolve().parents[2] / "docs" / "batched.md"
BLOCK = re.compile(r"(<!-- (?P<marker>skip) -->\n)?```python\n(?P<code>.*?)```", re.S)


def test_batched_page_runs():
    blocks = [m.group("code") for m in BLOCK.finditer(DOC.read_text()) if not m.group("marker")]
    assert len(blocks) == 1 and "gradient_ascent_batched(None, objectives, config, seeds)" in blocks[0]
    namespace: dict = {}
    exec(compile("\n".join(blocks), str(DOC), "exec"), namespace)
    results, objectives = namespace["results"], namespace["objectives"]
    assert len(results) == len(objectives) == 4 and [o.constraint for o in objectives] == [0, 3, 7, 9]
    for (mei, score, _output), objective in zip(results, objectives, strict=True):
        assert tuple(mei.shape) == (1, 1, 16, 16)
        assert float(mei.norm()) == pytest.approx(4.0, rel=1e-4)  # ChangeNorm(4)
        with torch.no_grad():
            assert float(objective(mei)) == pytest.approx(score, rel=1e-4, abs=1e-5)  # the score is the MEI's value
