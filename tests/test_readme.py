"""The Python examples of the README and of the engine docs run as written and do what the pages say."""

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "docs" / "engine.md", ROOT / "docs" / "sinzlab.md"]
BLOCKS = [block for page in PAGES for block in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)]


def check_engine_example(namespace: dict, printed: str) -> None:
    """README: gradient_ascent on a seeded random model prints the MEI's shape, the evaluation steps and a clear
    increase of the unit's response from the random start."""
    first, second = printed.splitlines()
    assert first == "torch.Size([1, 1, 32, 32]) [0, 10, 20]"
    start, end = re.fullmatch(r"unit 3: (-?[\d.]+) at the start, (-?[\d.]+) after 100 steps", second).groups()
    mei, output, score = namespace["mei"], namespace["output"], namespace["score"]
    assert float(start) == round(output["EvaluationObjective"]["values"][0], 3) and float(end) == round(score, 3)
    assert output["mei.objectives.EvaluationObjective"]["times"] == list(range(0, 100, 10))
    assert output["EvaluationObjective"] is output["mei.objectives.EvaluationObjective"]
    assert float(mei.norm()) == pytest.approx(10.0, rel=1e-4)  # ChangeNorm(10)
    assert score > 10 * float(start) > 0  # the README says "about 18 times"
    objective = namespace["ConstrainedOutputModel"](namespace["model"], 3)
    random = torch.randn(100, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        responses = objective(random * 10 / random.flatten(1).norm(dim=1).view(-1, 1, 1, 1))
    assert score > 2 * float(responses.max())  # ... and above any of 100 random images of the same norm


def check_custom_stopper(namespace: dict, printed: str) -> None:
    """README: the custom stopper stops once the evaluation reaches its threshold."""
    stopper = namespace["EvaluationThreshold"](0.5)
    assert printed == ""
    assert stopper(SimpleNamespace(evaluation=0.4)) == (False, None)
    assert stopper(SimpleNamespace(evaluation=0.5)) == (True, None)


def check_meitorch_example(namespace: dict, printed: str) -> None:
    """README: meitorch's pixel MEI prints the MEIs' shape (2, 1, 16, 16) and the last activation."""
    shape, activation = printed.split(") ")
    assert shape + ")" == "torch.Size([2, 1, 16, 16])"
    result = namespace["result"]
    assert float(activation) == result.losses["activation"][-1] and len(result.losses["activation"]) == 20


def check_optimize_example(namespace: dict, printed: str) -> None:
    """docs/engine.md: optimize reaches the target and logs the evaluation every 50 steps."""
    assert printed == "[0, 50, 100, 150]\n"
    assert torch.allclose(namespace["x"], namespace["target"], atol=1e-4)


def check_component_example(namespace: dict, printed: str) -> None:
    """docs/engine.md: the ClampAbove postprocessing clamps at its ceiling and refuses a non-number."""
    clamp = namespace["ClampAbove"]
    assert printed == ""
    assert torch.equal(clamp(0.5)(torch.tensor([0.0, 1.0]), 0), torch.tensor([0.0, 0.5]))
    with pytest.raises(ValueError, match="ceiling must be a number, got 'high'"):
        clamp("high")


def check_sinzlab_example(namespace: dict, printed: str) -> None:
    """docs/sinzlab.md: sinzlab's MEI with an optimizer instance converges; State lives in the engine."""
    assert printed == "True 0.0 mei.optimization\n"
    assert namespace["optimized"] is not namespace["initial"]


CHECKS = [check_engine_example, check_custom_stopper, check_meitorch_example, check_optimize_example,
          check_component_example, check_sinzlab_example]


def test_readme_has_examples():
    assert len(BLOCKS) == len(CHECKS) == 6


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, capsys):
    namespace = {"__name__": f"readme_example_{index}"}
    exec(compile(BLOCKS[index], f"example {index}", "exec"), namespace)
    CHECKS[index](namespace, capsys.readouterr().out)


def test_readme_import_changes_for_captum_optim_and_act_max_util_hold():
    """README: each named import change gives a module with the other package's API; the model-zoo stand-ins
    keep the examples' layer names, and asking for pretrained weights raises."""
    import mei.act_max_util as amu
    import mei.optim as opt
    from mei.optim.models import PretrainedWeightsUnavailable

    text = re.sub(r"\s+", " ", (ROOT / "README.md").read_text())
    assert "`import captum.optim as opt` -> `import mei.optim as opt`" in text
    assert "`import act_max_util as amu` -> `import mei.act_max_util as amu`" in text
    assert callable(amu.act_max) and callable(amu.layer_hook) and callable(amu.image_converter)
    assert callable(opt.InputOptimization) and callable(opt.images.NaturalImage)
    assert isinstance(opt.models.alexnet().classifier[-1], torch.nn.Linear)
    assert opt.models.alexnet().classifier[-1].out_features == 1000
    with pytest.raises(PretrainedWeightsUnavailable):
        opt.models.googlenet(pretrained=True)
