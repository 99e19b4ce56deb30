"""docs/batched.md runs as written (its Python blocks, except those marked ``<!-- skip -->``)."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "batched.md"
BLOCK = re.compile(r"(<!-- (?P<marker>skip) -->\n)?```python\n(?P<code>.*?)```", re.S)


def test_batched_page_runs():
    blocks = [m.group("code") for m in BLOCK.finditer(DOC.read_text()) if not m.group("marker")]
    assert len(blocks) == 1 and "gradient_ascent_batched(None, objectives, config, seeds)" in blocks[0]
    namespace: dict = {}
    exec(compile("\n".join(blocks), str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    assert len(namespace["results"]) == 4
