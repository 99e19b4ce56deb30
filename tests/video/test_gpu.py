"""Video components and objectives on a CUDA GPU give the CPU's results (skipped, visibly, without one)."""

import pytest
import torch

from mei.methods import gradient_ascent
from mei.modules import ConstrainedOutputModel
from mei.reducers import MeanOverWindow
from mei.targets.contrastive import ContrastiveObjective
from mei.targets.video import correlation, video_config

from .models import SHAPE, LinearFilterModel, session_filters

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")

FILTERS = session_filters()["session-a"]
FULL = dict(shape=list(SHAPE), steps=40, lr=0.5, norm=5.0, sigma=0.5, sigma_time=0.5, max_shift_space=1,
            max_shift_time=1, smoothness=0.01, x_min=[-0.6, -0.9], x_max=[0.6, 0.9])


@pytest.fixture
def exact_convolutions():
    """cuDNN convolutions in full float32 (PyTorch lets them use TF32 on Ampere and later by default)."""
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = before


@pytest.mark.parametrize("make", [
    lambda m: ConstrainedOutputModel(m, 0, target_fn=MeanOverWindow(start=-1)),
    lambda m: ContrastiveObjective(m, 1, temperature=2.0, reducer=MeanOverWindow(start=-1)),
], ids=["unit", "contrastive"])
def test_every_video_component_gives_the_cpu_result_on_the_gpu(make, exact_convolutions):
    cpu, cpu_score, _ = gradient_ascent(None, make(LinearFilterModel(FILTERS)), video_config(**FULL), 5)
    gpu, gpu_score, _ = gradient_ascent(None, make(LinearFilterModel(FILTERS)), video_config(device="cuda", **FULL), 5)
    assert gpu.device.type == "cpu" and gpu.shape == SHAPE
    # Same seeded jitter on both devices; float sums differ in order only.
    assert (gpu - cpu).abs().max() <= 1e-3 * cpu.abs().max()
    assert gpu_score == pytest.approx(cpu_score, rel=1e-4)


def test_the_filter_is_the_mei_on_the_gpu():
    objective = ConstrainedOutputModel(LinearFilterModel(FILTERS), 2, target_fn=MeanOverWindow())
    mei, _, _ = gradient_ascent(None, objective, video_config(shape=list(SHAPE), steps=40, lr=0.5, norm=5.0,
                                                              device="cuda"), 1)
    assert correlation(mei, FILTERS[2]) >= 0.99
