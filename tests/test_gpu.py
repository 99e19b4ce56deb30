"""The engine on a CUDA GPU (skipped, visibly, where there is none)."""

import pytest
import torch

from mei.methods import gradient_ascent
from mei.optimization import NonFiniteError
from tests.components import TARGET, NaNAfter, QuadraticModel

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


def config(steps=300, **extra):
    return {
        "device": "cuda", "shape": list(TARGET.shape),
        "initial": {"path": "mei.initial.RandomNormal"},
        "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": 0.1}},
        "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": steps}},
        **extra,
    }


def test_reaches_the_optimum_on_the_gpu_and_returns_a_cpu_tensor():
    mei, score, _ = gradient_ascent(None, QuadraticModel(), config(), 0)
    assert mei.device.type == "cpu"
    assert torch.allclose(mei, TARGET, atol=1e-5)


def test_gpu_and_cpu_start_from_the_same_seeded_initial():
    gpu = gradient_ascent(None, QuadraticModel(), config(steps=1, optimizer={"path": "torch.optim.SGD",
                                                                             "kwargs": {"lr": 0.0}}), 3)[0]
    cpu_config = config(steps=1, optimizer={"path": "torch.optim.SGD", "kwargs": {"lr": 0.0}})
    cpu_config["device"] = "cpu"
    cpu = gradient_ascent(None, QuadraticModel(), cpu_config, 3)[0]
    assert torch.equal(gpu, cpu)


def test_nan_on_the_gpu_names_the_step_despite_deferred_checks():
    with pytest.raises(NonFiniteError, match="step 7"):
        gradient_ascent(None, NaNAfter(7), config(steps=100), 0)


def test_same_seed_same_mei_on_the_gpu():
    cfg = config(steps=50, transform={"path": "mei.transforms.Jitter", "kwargs": {"max_shift": 2}})
    a = gradient_ascent(None, QuadraticModel(), cfg, 1)[0]
    b = gradient_ascent(None, QuadraticModel(), cfg, 1)[0]
    assert torch.allclose(a, b, atol=1e-6)
