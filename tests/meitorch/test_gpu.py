"""The meitorch modes on a CUDA GPU give the CPU's results (skipped, visibly, where there is no GPU)."""

import pytest
import torch

from mei.meitorch.mei import MEI
from mei.meitorch.methods import variational_mei
from mei.meitorch.tools.schedules import LinearSchedule, RandomSchedule
from mei.meitorch.tools.transformations import GenerativeConvNet

from .helpers import SHAPE, target

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")

T = target()
COMMON = dict(iter_n=20, optimizer="adam", optimizer_params=dict(lr=LinearSchedule(0.1, 0.01)), precond=0.2,
              jitter=1, scaler=RandomSchedule(1.0, 1.05), save_every=5)


def run(mode, device, **keys):
    t = T.to(device)

    def operation(inputs):
        assert inputs.device.type == torch.device(device).type
        loss = ((inputs - t) ** 2).flatten(1).sum(1).mean()
        return dict(objective=loss)

    mei = MEI(operation, shape=SHAPE, device=device)
    return getattr(mei, f"generate_{mode}_mei")({**COMMON, **keys}, seed=0)


@pytest.mark.parametrize("mode, keys", [
    ("pixel", dict(n_samples=3, diverse=True, blur="bilateral", norm=8.0)),
    ("pixel", dict(n_samples=2, blur="tv", optimizer="mei")),
    ("variational", dict(n_samples_per_batch=(4, 2), distribution="laplace", blur="gaussian")),
    ("transformation", dict(n_samples=4, train_norm=5.0)),
])
def test_every_mode_on_the_gpu_matches_the_cpu(mode, keys):
    if mode == "transformation":
        keys["transform"] = GenerativeConvNet(hidden_sizes=[3], fixed_stddev=None, shape=SHAPE)
    cpu, gpu = run(mode, "cpu", **keys), run(mode, "cuda", **keys)
    assert gpu.mei.device.type == "cpu" and gpu.mei.shape == cpu.mei.shape
    assert torch.allclose(gpu.mei, cpu.mei, atol=2e-3)
    assert gpu.losses["objective"] == pytest.approx(cpu.losses["objective"], rel=1e-3)
    assert len(gpu.images) == len(cpu.images) == 5


def test_pipeline_method_on_the_gpu():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 1), torch.nn.Flatten(0))
    mean, score, output = variational_mei(None, model, {"device": "cuda", "shape": [1, 1, 8, 8], "iter_n": 5,
                                                        "train_norm": 1.0}, 0)
    assert mean.device.type == "cpu" and output["stddev"].shape == (1, 1, 8, 8)
