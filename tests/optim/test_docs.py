"""The examples of docs/feature_visualization.md run as written and write the pictures the page shows.

``python -m tests.optim.test_docs`` (from the repository root) regenerates ``docs/images/optim_*.png`` and
``docs/images/act_max.*``.
"""

import os
import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "feature_visualization.md"


def python_blocks() -> list[str]:
    """The page's python blocks, except those preceded by ``<!-- skip -->``."""
    return [code for skip, code in re.findall(r"(<!-- skip -->\n)?```python\n(.*?)```", DOC.read_text(), re.DOTALL)
            if not skip]


def run_examples(directory: Path) -> dict:
    namespace: dict = {"__name__": "feature_visualization_doc"}
    cwd = os.getcwd()
    os.chdir(directory)
    try:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            for block in python_blocks():
                exec(compile(block, str(DOC), "exec"), namespace)
    finally:
        os.chdir(cwd)
    return namespace


@pytest.fixture(scope="module")
def doc_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("doc")
    return directory, run_examples(directory)


@pytest.mark.slow
def test_doc_examples_run_and_write_the_pictures_they_show(doc_run):
    from PIL import Image

    tmp_path, ns = doc_run
    assert len(python_blocks()) == 12
    assert ns["history"].shape == (128, 8) and (ns["history"][-1] > 20 * ns["history"][0]).all()
    assert ns["picture"].shape == (1, 3, 64, 64)
    assert ns["dataset_image"]().shape == (1, 3, 64, 64)  # "Your dataset's colour correlation"
    assert ns["maps"].shape == (2, 3, 24, 24)  # "Reducing channels"
    assert len(ns["cells"]) == 23 and ns["atlas"].shape == (1, 3, 120, 120)  # "Activation atlases"
    assert ns["history"].shape == (128, 8)
    shown = re.findall(r"\]\((images/[\w.]+\.(?:png|gif))\)", DOC.read_text())
    assert len(shown) == 7
    for name in shown:
        with Image.open(tmp_path / Path(name).name) as written:
            assert min(written.size) >= 64
        assert (ROOT / "docs" / name).exists(), f"docs/{name} is not committed"


@pytest.mark.slow
def test_channel_pictures_follow_their_filters(doc_run):
    """What the page says the first picture shows: picture k drives channel k harder than any other picture."""
    ns = doc_run[1]
    opt, model, pictures = ns["opt"], ns["model"], ns["channel_pictures"]
    activations = opt.collect_activations(model, ["relu"], pictures)["relu"].mean(dim=(2, 3))  # [picture, channel]
    assert torch.equal(activations.argmax(dim=0), torch.arange(8))


if __name__ == "__main__":
    run_examples(ROOT / "docs" / "images")
