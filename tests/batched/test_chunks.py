"""Chunking, out-of-memory halving, the batch options and the batched objectives."""

import pytest
import torch

from mei.batched import (
    AutocastModel,
    BatchedConstrainedOutputModel,
    BatchOptions,
    PerImageModel,
    batch_objectives,
    gradient_ascent_batched,
    wrap_objective,
)
from mei.engine.resolve import ConfigError
from mei.methods import recording
from mei.modules import ConstrainedOutputModel
from tests.batched.helpers import TOLERANCE, OutOfMemoryAbove, config, tiny_cnn, unit_models

UNITS = [0, 1, 2, 3, 4, 2, 0]
SEEDS = [3, 1, 4, 1, 5, 9, 2]
JITTER = {"transform": {"path": "mei.transforms.Jitter", "kwargs": {"max_shift": 1}}}


def run(chunk_size, model=None):
    return run_with({"chunk_size": chunk_size}, model)


def run_with(batch, model=None):
    models = model or unit_models(tiny_cnn(), UNITS)
    with recording() as info:
        results = gradient_ascent_batched(None, models, config(batch=batch, **JITTER), SEEDS)
    return results, info


@pytest.mark.parametrize("chunk_size", [1, 3])
def test_chunks_give_the_one_chunk_result(chunk_size):
    whole, info = run(64)
    chunked, chunked_info = run(chunk_size)
    assert info["chunk_size"] == 64 and chunked_info["chunk_size"] == chunk_size
    for (mei, score, _), (c_mei, c_score, _) in zip(whole, chunked, strict=True):
        torch.testing.assert_close(c_mei, mei, **TOLERANCE)
        assert c_score == pytest.approx(score, rel=1e-5, abs=1e-5)


def test_out_of_memory_halves_the_chunk_and_retries():
    net = tiny_cnn()
    limited = OutOfMemoryAbove(net, limit=3)
    models = [ConstrainedOutputModel(limited, unit) for unit in UNITS]
    results, info = run(8, models)
    reference, _ = run(64)
    assert info["chunk_size"] == 3
    assert limited.batch_sizes[0] == 7 and sorted(set(limited.batch_sizes)) == [1, 3, 7]  # 7 fails, then 3 + 3 + 1
    for (mei, _score, _), (r_mei, _r_score, _) in zip(results, reference, strict=True):
        torch.testing.assert_close(mei, r_mei, **TOLERANCE)


def test_out_of_memory_with_one_image_is_raised():
    limited = OutOfMemoryAbove(tiny_cnn(), limit=0)
    with pytest.raises(torch.OutOfMemoryError, match="pretend: 1 images"):
        run(4, [ConstrainedOutputModel(limited, unit) for unit in UNITS])


@pytest.mark.parametrize("batch,key,message", [
    ({"chunk_size": 0}, "batch.chunk_size", "must be an int from 1 to 100000, got 0"),
    ({"chunk_size": True}, "batch.chunk_size", "must be an int"),
    ({"autocast": "int8"}, "batch.autocast", "must be null, 'bfloat16' or 'float16'"),
    ({"compile": "yes"}, "batch.compile", "must be true, false or a mode (default, reduce-overhead, max-autotune, "
                                          "max-autotune-no-cudagraphs), got 'yes'"),
    ({"compile": 1}, "batch.compile", "must be true, false or a mode"),
    ({"chunks": 4}, "batch", "unknown batch option(s) ['chunks']; known: chunk_size, autocast, compile, channels_last"),
    ({"channels_last": 1}, "batch.channels_last", "must be true or false, got 1"),
    ({"cudnn_benchmark": None}, "batch.cudnn_benchmark", "must be true or false, got None"),
    ([4], "batch", "must be a dict of batch options"),
])
def test_bad_batch_options_name_their_key(batch, key, message):
    with pytest.raises(ConfigError) as error:
        BatchOptions.from_config({"batch": batch})
    assert error.value.key == key and message in error.value.message


def test_batch_options_defaults_and_plain_runs_accept_the_key():
    assert BatchOptions.from_config({}) == BatchOptions(64, None, False, False, False)
    from mei.methods import gradient_ascent

    [model] = unit_models(tiny_cnn(), [0])
    mei, _, _ = gradient_ascent(None, model, config(batch={"chunk_size": 4}), 0)
    assert mei.shape == (1, 1, 8, 8)


def test_one_seed_per_model_is_required():
    with pytest.raises(ValueError, match="one model per seed"):
        gradient_ascent_batched(None, unit_models(tiny_cnn(), [0, 1]), config(), [1, 2, 3])


def test_batch_objectives_merges_units_of_one_model():
    net = tiny_cnn()
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    models = unit_models(net, [4, 0, 4])
    merged = batch_objectives(models)
    assert isinstance(merged, BatchedConstrainedOutputModel) and merged.units.tolist() == [4, 0, 4]
    expected = torch.cat([m(x[k:k + 1]) for k, m in enumerate(models)])
    torch.testing.assert_close(merged(x), expected, **TOLERANCE)
    assert batch_objectives([models[0]] * 3) is models[0]
    other = ConstrainedOutputModel(tiny_cnn(seed=1), 0)
    mixed = batch_objectives([models[0], other])
    assert isinstance(mixed, PerImageModel)
    torch.testing.assert_close(mixed(x[:2]), torch.cat([models[0](x[:1]), other(x[1:2])]))
    with pytest.raises(ValueError, match="holds 2 images for 3 units"):
        merged(x[:2])


def test_autocast_and_compile_wrap_the_objective():
    net = tiny_cnn()
    objective = BatchedConstrainedOutputModel(net, [0, 1])
    wrapped = wrap_objective(objective, BatchOptions(autocast="bfloat16"))
    assert isinstance(wrapped, AutocastModel) and wrapped.dtype == torch.bfloat16
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    out = wrapped(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, objective(x), atol=0.1, rtol=0.03)  # bfloat16: ~3 significant digits
    compiled = wrap_objective(objective, BatchOptions(compile=True))
    assert type(compiled).__name__ == "OptimizedModule" and compiled._orig_mod is objective


def test_channels_last_and_cudnn_benchmark_keep_the_result():
    plain, _ = run(64)
    fast, _ = run_with({"chunk_size": 64, "channels_last": True, "cudnn_benchmark": True})
    for (mei, _score, _), (f_mei, _f_score, _) in zip(plain, fast, strict=True):
        torch.testing.assert_close(f_mei, mei, **TOLERANCE)
    assert torch.backends.cudnn.benchmark is False  # restored after the run


def test_bad_batch_options_are_refused_when_a_method_is_validated():
    from mei.engine.resolve import validate_config

    with pytest.raises(ConfigError) as error:
        validate_config(config(batch={"chunk_size": 0}))
    assert error.value.key == "batch.chunk_size"
    validate_config(config(batch={"chunk_size": 8, "autocast": "bfloat16"}))
    validate_config(config(batch={"compile": "max-autotune", "fuse_ensemble": True}))
    assert BatchOptions.from_config({"batch": {"compile": "reduce-overhead"}}).compile == "reduce-overhead"


class NaNForImage(torch.nn.Module):
    """``-(x**2).sum()`` per image, NaN for image ``bad`` from the ``after``-th call on."""

    def __init__(self, bad: int, after: int) -> None:
        super().__init__()
        self.bad, self.after, self.calls = bad, after, 0

    def forward(self, x):
        self.calls += 1
        value = -(x**2).flatten(1).sum(dim=1)
        if self.calls > self.after:
            value = value.clone()
            value[self.bad] = float("nan")
        return value


def test_a_non_finite_image_fails_its_whole_chunk():
    from mei.optimization import NonFiniteError

    with pytest.raises(NonFiniteError, match="at optimization step 3"):
        gradient_ascent_batched(None, NaNForImage(bad=1, after=3), config(), [1, 2, 3])
