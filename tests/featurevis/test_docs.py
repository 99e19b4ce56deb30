"""The examples of docs/feature_visualization.md's `mei.featurevis` section run as written."""

import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "feature_visualization.md").read_text()
SECTION = DOC[DOC.index("## Beyond captum.optim: `mei.featurevis`"):]
SECTION = SECTION[:SECTION.index("\n## ")]


@pytest.mark.slow
def test_the_section_examples_run_and_print_what_they_say(capsys):
    blocks = re.findall(r"```python\n(.*?)```", SECTION, flags=re.S)
    assert len(blocks) == 5
    namespace: dict = {"__name__": "featurevis_doc"}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        for block in blocks:
            exec(compile(block, "docs/feature_visualization.md", "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["torch.Size([1, 3, 32, 32]) torch.Size([16, 1])", "torch.Size([1, 3, 32, 32]) True",
                       "torch.Size([1, 3, 32, 32]) True", "torch.Size([8, 1]) True"]
    assert namespace["config"]["transform"]["kwargs"]["n_views"] == 6


def test_the_section_shows_the_regenerated_figure():
    (name,) = re.findall(r'<img src="(images/featurevis_[\w.]+\.png)"', SECTION)
    assert (ROOT / "docs" / name).is_file()
    assert (ROOT / "docs" / "featurevis_figure.py").is_file()
