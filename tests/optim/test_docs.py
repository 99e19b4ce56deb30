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
    # captum's history: the loss (minus the sum of the eight channels' means) before every step, falling
    assert ns["history"].shape == (128,) and ns["history"][-1] < ns["history"][0] - 1
    assert ns["picture"].shape == (1, 3, 64, 64)
    assert ns["dataset_image"]().shape == (1, 3, 64, 64)  # "Your dataset's colour correlation"
    assert ns["maps"].shape == (2, 3, 24, 24)  # "Reducing channels"
    assert len(ns["cells"]) == 23 and ns["atlas"].shape == (1, 3, 120, 120)  # "Activation atlases"
    assert ns["history"].shape == (128,)
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


@pytest.mark.slow
def test_diversity_keeps_every_image_on_the_channel_and_makes_them_differ(doc_run):
    """What the page says of the Diversity example (weight 0.1): every image drives the channel well above a grey
    image, and the images' Gram matrices are no longer alike."""
    ns = doc_run[1]
    opt, model, diverse = ns["opt"], ns["model"], ns["diverse"]
    channel = opt.loss.ChannelActivation("combine", 1)
    grey = channel.per_image(opt.collect_activations(model, "combine", torch.full((1, 3, 64, 64), 0.5)))
    values = channel.per_image(opt.collect_activations(model, "combine", diverse))
    assert (values > grey + 1.0).all(), (values, grey)
    relu = opt.collect_activations(model, "relu", diverse)["relu"].flatten(2)
    gram = torch.nn.functional.normalize((relu @ relu.transpose(1, 2)).flatten(1), dim=1)
    similarity = gram @ gram.T
    assert (similarity.sum() - similarity.diagonal().sum()) / 12 < 0.95


if __name__ == "__main__":
    run_examples(ROOT / "docs" / "images")
