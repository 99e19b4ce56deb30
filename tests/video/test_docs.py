"""The examples of docs/video.md run as written, in order, and print what the page says they print."""

import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "video.md"


def test_video_page_examples_run_and_print_what_the_page_says(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    assert len(blocks) == 4
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "video_docs"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/video.md example {i}", "exec"), namespace)
    printed = capsys.readouterr().out.split("\n")
    assert printed[:5] == ["(1, 2, 16, 18, 18) [0, 50, 100]", "0.98", "True", "True", "True"]
    assert (tmp_path / "video_mei.png").stat().st_size > 10_000
    assert (PAGE.parent / "images" / "video_mei.png").exists()
