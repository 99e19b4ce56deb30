"""Batched generation on a CUDA GPU (skipped, visibly, where there is none)."""

import pytest
import torch

from mei.batched import gradient_ascent_batched
from mei.methods import gradient_ascent, recording
from tests.batched.helpers import config, tiny_cnn, unit_models

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")

# fixed step counts: with TF32 convolutions a plateau stopper could decide one step apart batched vs alone
JITTER = {"transform": {"path": "mei.transforms.Jitter", "kwargs": {"max_shift": 2}}}


def test_batched_equals_unbatched_on_the_gpu():
    net = tiny_cnn()
    models = unit_models(net, [0, 1, 2, 3])
    cfg = config(steps=20, optimizer="torch.optim.Adam", lr=0.05, device="cuda", **JITTER)
    with recording() as info:
        batched = gradient_ascent_batched(None, models, cfg, [1, 2, 3, 4])
    assert info["device"].startswith("cuda")
    for model, seed, (mei, _score, _) in zip(models, [1, 2, 3, 4], batched, strict=True):
        single, single_score, _ = gradient_ascent(None, model, cfg, seed)
        assert mei.device.type == "cpu"
        torch.testing.assert_close(mei, single, atol=1e-4, rtol=1e-4)  # TF32 convolutions: looser than CPU


def test_bfloat16_channels_last_and_autotuning_run_on_the_gpu():
    net = tiny_cnn()
    cfg = config(device="cuda", batch={"autocast": "bfloat16", "channels_last": True, "cudnn_benchmark": True})
    results = gradient_ascent_batched(None, unit_models(net, [0, 1]), cfg, [1, 2])
    plain = gradient_ascent_batched(None, unit_models(net, [0, 1]), config(device="cuda"), [1, 2])
    for (mei, score, _), (_p_mei, p_score, _) in zip(results, plain, strict=True):
        assert torch.isfinite(mei).all()
        assert score == pytest.approx(p_score, rel=0.1, abs=0.1)  # bfloat16 rounding, not equality


@pytest.mark.parametrize("fuse", [True, "dense"])
def test_fused_ensemble_equals_the_ensemble_on_the_gpu(fuse):
    from mei.modules import ConstrainedOutputModel, EnsembleModel

    model = EnsembleModel(*[tiny_cnn(seed=m) for m in range(3)])
    objectives = [ConstrainedOutputModel(model, unit) for unit in [0, 1, 2, 3]]
    fused = gradient_ascent_batched(None, objectives, config(device="cuda", **JITTER,
                                                             batch={"fuse_ensemble": fuse}), [1, 2, 3, 4])
    plain = gradient_ascent_batched(None, objectives, config(device="cuda", **JITTER), [1, 2, 3, 4])
    for (mei, _score, _), (p_mei, _p_score, _) in zip(fused, plain, strict=True):
        torch.testing.assert_close(mei, p_mei, atol=1e-4, rtol=1e-4)  # TF32 convolutions: looser than CPU
