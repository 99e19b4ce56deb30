"""Every component on 5-D video ``(N, C, T, H, W)``: known signals, exact values, per-image semantics."""

import math

import pytest
import torch

from mei import initial, postprocessing, preconditioners, reducers, regularizers, transforms
from mei.engine import rng
from mei.engine.resolve import build_component, build_components
from mei.preconditioners import blur1d, gaussian_kernel1d
from mei.transforms import shift_padded

VIDEO = (2, 2, 7, 5, 6)


def pulse(t0: int, shape=VIDEO) -> torch.Tensor:
    """A video that is 0 everywhere but 1 in every pixel of frame ``t0``."""
    x = torch.zeros(shape)
    x[:, :, t0] = 1.0
    return x


def frame_of_pulse(x: torch.Tensor) -> list[int]:
    """For each image, the frame holding a pulse (checks that the frame is full and the others empty)."""
    frames = []
    for image in x:
        per_frame = image.sum(dim=(0, 2, 3))
        (t,) = torch.nonzero(per_frame).flatten().tolist()
        assert per_frame[t] == image[:, t].numel()
        frames.append(t)
    return frames


# ---------------------------------------------------------------------------------------------- transforms


def test_shift_padded_exact_values_for_each_padding():
    x = torch.arange(1.0, 6.0).view(1, 1, 5)  # [1, 2, 3, 4, 5]
    twice = torch.cat([x, x])
    shifts = torch.tensor([2, -1])
    rep = shift_padded(twice, shifts, dim=2, padding="replicate")
    assert rep[0, 0].tolist() == [1, 1, 1, 2, 3] and rep[1, 0].tolist() == [2, 3, 4, 5, 5]
    const = shift_padded(twice, shifts, dim=2, padding="constant", value=-7)
    assert const[0, 0].tolist() == [-7, -7, 1, 2, 3] and const[1, 0].tolist() == [2, 3, 4, 5, -7]
    circ = shift_padded(twice, shifts, dim=-1, padding="circular")
    assert circ[0, 0].tolist() == [4, 5, 1, 2, 3] and circ[1, 0].tolist() == [2, 3, 4, 5, 1]
    with pytest.raises(ValueError, match="dimension 0"):
        shift_padded(twice, shifts, dim=0)


def test_temporal_jitter_moves_a_pulse_by_each_allowed_shift_and_only_in_time():
    jitter = transforms.TemporalJitter(max_shift=2, padding="constant")
    seen = set()
    with rng.seeded([0, 1]):
        for i in range(40):
            out = jitter(pulse(3), i)
            assert out.shape == VIDEO
            seen.update(t - 3 for t in frame_of_pulse(out))
    assert seen == {-2, -1, 0, 1, 2}


def test_temporal_jitter_is_reproducible_per_image_and_keeps_gradients():
    jitter = transforms.TemporalJitter(max_shift=3)
    x = torch.randn(VIDEO, requires_grad=True)
    with rng.seeded([5, 9]):
        both = jitter(x, 0)
    with rng.seeded([9]):
        second = jitter(x[1:], 0)
    assert torch.equal(both[1:], second)
    both.sum().backward()
    assert x.grad is not None and x.grad.sum() == x.numel()  # replicate padding: every output comes from x


def test_spatio_temporal_jitter_shifts_time_and_space_and_validates():
    x = torch.zeros(1, 1, 6, 5, 5)
    x[0, 0, 2, 1, 3] = 1.0
    jitter = transforms.SpatioTemporalJitter(max_shift_time=1, max_shift_space=1, padding="constant")
    moved = set()
    with rng.seeded([0]):
        for i in range(40):
            (t, y, w) = torch.nonzero(jitter(x, i)[0, 0])[0].tolist()
            moved.add((t - 2, y - 1, w - 3))
    assert moved <= {(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)}
    assert {m[0] for m in moved} == {-1, 0, 1} and {m[2] for m in moved} == {-1, 0, 1}
    assert repr(jitter) == ("SpatioTemporalJitter(max_shift_time=1, max_shift_space=[1, 1], time_dim=2, "
                            "padding='constant')")
    with pytest.raises(ValueError, match="padding"):
        transforms.TemporalJitter(1, padding="mirror")
    with pytest.raises(ValueError, match="max_shift"):
        transforms.TemporalJitter(-1)


def test_existing_jitter_shifts_the_time_dimension_of_a_video():
    jitter = transforms.Jitter(max_shift=2, dims=[2])
    with rng.seeded([3]):
        shifts = {frame_of_pulse(jitter(pulse(0, (1, 2, 7, 3, 3)), i))[0] for i in range(40)}
    assert shifts == {0, 1, 2, 5, 6}  # circular: -1 and -2 wrap to the end


# ---------------------------------------------------------------------------------------------- preconditioners


def test_temporal_blur_of_an_impulse_is_the_gaussian_kernel_in_time_only():
    x = pulse(5, (1, 1, 11, 2, 2))
    out = preconditioners.TemporalGaussianBlur(sigma=1.0, truncate=3.0)(x, 0)
    kernel = gaussian_kernel1d(1.0, truncate=3.0)  # 7 taps, centred on frame 5: frames 2..8
    assert torch.allclose(out[0, 0, 2:9, 0, 0], kernel, atol=1e-6)
    assert out[0, 0, [0, 1, 9, 10]].abs().max() == 0
    assert torch.equal(out[0, 0, :, 0, 0], out[0, 0, :, 1, 1])  # every pixel alike: nothing mixes across space


def test_temporal_blur_keeps_constants_and_kills_the_highest_temporal_frequency():
    blur = preconditioners.TemporalGaussianBlur(sigma=2.0)
    constant = torch.full(VIDEO, 3.0)
    assert torch.allclose(blur(constant, 0), constant, atol=1e-5)
    flicker = torch.ones(1, 1, 64, 2, 2) * torch.tensor([(-1.0) ** t for t in range(64)]).view(1, 1, 64, 1, 1)
    slow = torch.sin(torch.arange(64.0) * 2 * math.pi / 64).view(1, 1, 64, 1, 1).expand(1, 1, 64, 2, 2)
    inner = slice(16, 48)  # away from the reflected edges
    assert blur(flicker, 0)[:, :, inner].abs().max() < 1e-4  # gain exp(-pi^2 sigma^2 / 2) + truncation
    assert torch.allclose(blur(slow.contiguous(), 0)[:, :, inner], slow[:, :, inner], atol=0.05)


def test_spatial_blur_acts_on_each_frame_and_spatiotemporal_is_both():
    x = torch.randn(VIDEO)
    space = preconditioners.GaussianBlur(sigma=1.0)(x, 0)
    per_frame = torch.stack([preconditioners.blur2d(x[:, :, t], 1.0) for t in range(VIDEO[2])], dim=2)
    assert torch.allclose(space, per_frame, atol=1e-6)
    both = preconditioners.SpatioTemporalGaussianBlur(sigma=1.0, sigma_time=1.5)(x, 0)
    assert torch.allclose(both, blur1d(space, 1.5, dim=2), atol=1e-6)
    time_only = preconditioners.SpatioTemporalGaussianBlur(sigma=0.0, sigma_time=1.5)(x, 0)
    assert torch.allclose(time_only, blur1d(x, 1.5, dim=2), atol=1e-6)
    assert torch.equal(preconditioners.TemporalGaussianBlur(0.0)(x, 0), x)  # what a schedule may anneal to


@pytest.mark.parametrize("padding", ["reflect", "replicate", "circular"])
def test_blur_as_one_cached_matrix_product_equals_the_padded_convolution(padding):
    x = torch.randn(VIDEO)
    temporal = preconditioners.TemporalGaussianBlur(sigma=1.2, padding=padding)
    assert torch.allclose(temporal(x, 0), blur1d(x, 1.2, dim=2, padding=padding), atol=1e-6)
    assert torch.allclose(temporal(2 * x, 1), 2 * blur1d(x, 1.2, dim=2, padding=padding), atol=1e-5)
    assert len(temporal._blur._cache) == 1  # built once, reused
    if padding != "circular":  # circular needs radius <= size; sigma 2 has radius 8 > 6 pixels
        both = preconditioners.SpatioTemporalGaussianBlur(sigma=2.0, sigma_time=0.0, padding=padding)
        space = preconditioners.GaussianBlur(sigma=2.0, padding=padding)  # radius 8 > 5: replicate fallback
        assert torch.allclose(both(x, 0), space(x, 0), atol=1e-6)


def test_blur_along_a_short_time_axis_falls_back_to_replicate_padding():
    x = torch.randn(1, 1, 3, 2, 2)
    out = preconditioners.TemporalGaussianBlur(sigma=2.0)(x, 0)  # radius 8 > 3 frames
    assert out.shape == x.shape and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="circular padding"):
        preconditioners.TemporalGaussianBlur(sigma=2.0, padding="circular")(x, 0)


# ---------------------------------------------------------------------------------------------- regularizers


def test_range_penalty_exact_value():
    x = torch.tensor([-3.0, -1.0, 0.0, 1.0, 2.5]).view(1, 1, 5, 1, 1)
    penalty = regularizers.RangePenalty(x_min=-1.0, x_max=1.0, weight=2.0)
    assert penalty(x, 0).item() == pytest.approx(2.0 * (2.0**2 + 1.5**2))
    assert regularizers.RangePenalty(-1, 1, p=1)(x, 0).item() == pytest.approx(3.5)


def test_temporal_smoothness_exact_values_and_zero_for_static_movies():
    x = torch.tensor([0.0, 1.0, 3.0, 6.0]).view(1, 1, 4, 1, 1).repeat(2, 1, 1, 2, 1)
    first = regularizers.TemporalSmoothness(weight=0.5)
    assert first(x, 0).item() == pytest.approx(0.5 * 4 * (1 + 4 + 9))  # 2 images x 2 pixels
    assert regularizers.TemporalSmoothness(order=2)(x, 0).item() == pytest.approx(4 * (1 + 1))
    static = torch.randn(1, 2, 1, 3, 3).repeat(1, 1, 6, 1, 1)
    assert first(static, 0).item() == 0.0


def test_total_variation_on_video_is_the_sum_over_frames():
    x = torch.randn(VIDEO)
    tv = regularizers.TotalVariation(weight=1.0)
    per_frame = sum(tv(x[:, :, t], 0) for t in range(VIDEO[2]))
    assert tv(x, 0).item() == pytest.approx(per_frame.item(), rel=1e-5)
    iso = regularizers.TotalVariation(isotropic=True)
    assert iso(x, 0).item() == pytest.approx(sum(iso(x[:, :, t], 0) for t in range(VIDEO[2])).item(), rel=1e-5)


def test_sum_of_regularizers_by_spec():
    x = torch.randn(VIDEO)
    total = build_component({"path": "mei.regularizers.Sum", "kwargs": {"regularizers": [
        {"path": "mei.regularizers.TotalVariation", "kwargs": {"weight": 0.1}},
        {"path": "mei.regularizers.TemporalSmoothness", "kwargs": {"weight": 0.2}},
    ]}}, "regularization")
    expected = regularizers.TotalVariation(0.1)(x, 0) + regularizers.TemporalSmoothness(0.2)(x, 0)
    assert total(x, 0).item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="non-empty"):
        regularizers.Sum([])


# ---------------------------------------------------------------------------------------------- postprocessing


def test_change_norm_is_joint_over_channels_and_frames_per_video():
    x = torch.randn(VIDEO)
    x[1] *= 10
    out = postprocessing.ChangeNorm(4.0)(x, 0)
    assert torch.allclose(out.flatten(1).norm(dim=1), torch.tensor([4.0, 4.0]))
    ratio = out / x  # one factor per video: the movie's shape is kept
    assert torch.allclose(ratio[0], ratio[0].flatten()[0].expand_as(ratio[0]))


def test_clip_range_per_channel():
    x = torch.linspace(-3, 3, 4 * 3 * 3).view(1, 1, 4, 3, 3).repeat(2, 2, 1, 1, 1)  # each channel spans [-3, 3]
    out = postprocessing.ClipRangePerChannel(x_min=[-1.0, 0.0], x_max=[2.0, 0.5])(x, 0)
    assert (out[:, 0].min(), out[:, 0].max(), out[:, 1].min(), out[:, 1].max()) == (-1.0, 2.0, 0.0, 0.5)
    inside = (x[:, 0] >= -1) & (x[:, 0] <= 2)
    assert torch.equal(out[:, 0][inside], x[:, 0][inside])
    assert torch.equal(out[:, 1], x[:, 1].clamp(0.0, 0.5))
    same = postprocessing.ClipRangePerChannel(-1.0, 1.0)(x, 0)
    assert torch.equal(same, x.clamp(-1, 1))
    with pytest.raises(ValueError, match="2 channel ranges"):
        postprocessing.ClipRangePerChannel([0, 0], [1, 1])(torch.zeros(1, 3, 2, 2, 2), 0)
    with pytest.raises(ValueError, match="x_max must be >= 1"):
        postprocessing.ClipRangePerChannel([0, 1], [1, 0.5])


def test_change_norm_and_clip_per_channel_and_compose_aliases_in_a_config():
    config = {
        "device": "cpu",
        "initial": {"path": "mei.initial.RandomNormal"},
        "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": 0.1}},
        "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": 1}},
        "precondition": {"path": "mei.preconditioners.Compose", "kwargs": {"transforms": [
            {"path": "mei.preconditioners.GaussianBlur", "kwargs": {"sigma": 1.0}},
            {"path": "mei.preconditioners.TemporalGaussianBlur", "kwargs": {"sigma": 1.0}}]}},
        "postprocessing": {"path": "mei.postprocessing.Compose", "kwargs": {"transforms": [
            {"path": "mei.postprocessing.ChangeNorm", "kwargs": {"norm": 3.0}},
            {"path": "mei.postprocessing.ClipRangePerChannel", "kwargs": {"x_min": [-0.1, -1], "x_max": [0.1, 1]}}]}},
    }
    parts = build_components(config)
    x = torch.randn(VIDEO)
    chained = parts.postprocessing(x, 0)
    single = postprocessing.ChangeNormAndClipPerChannel(3.0, [-0.1, -1], [0.1, 1])(x, 0)
    assert torch.equal(chained, single) and chained[:, 0].abs().max() <= 0.1
    expected = preconditioners.SpatioTemporalGaussianBlur(1.0, 1.0)(x, 0)
    assert torch.allclose(parts.precondition(x, 0), expected, atol=1e-6)


# ---------------------------------------------------------------------------------------------- initial, reducers


def test_initial_video_noise_is_per_video_reproducible():
    with rng.seeded([4, 8]):
        both = initial.RandomNormal(std=0.5)(VIDEO)
    with rng.seeded([8]):
        second = initial.RandomNormal(std=0.5)((1, *VIDEO[1:]))
    assert both.shape == VIDEO and torch.equal(both[1:], second)
    assert initial.RandomNormalSelectedChannels([1])(VIDEO)[:, 0].abs().sum() == 0


def test_per_image_semantics_two_videos_together_equal_each_alone():
    x = torch.randn(VIDEO)
    components = [
        transforms.SpatioTemporalJitter(2, 1), preconditioners.SpatioTemporalGaussianBlur(1.0, 1.0),
        postprocessing.ChangeNormAndClipPerChannel(2.0, -0.3, 0.3),
    ]
    for component in components:
        with rng.seeded([1, 2]):
            together = component(x, 0)
        for k, seed in enumerate([1, 2]):
            with rng.seeded([seed]):
                assert torch.allclose(together[k:k + 1], component(x[k:k + 1], 0), atol=1e-6), component
    for penalty in [regularizers.TemporalSmoothness(), regularizers.RangePenalty(-0.5, 0.5)]:
        alone = sum(penalty(x[k:k + 1], 0) for k in range(2))
        assert penalty(x, 0).item() == pytest.approx(alone.item(), rel=1e-6)


def test_reducers_exact_values_windows_and_errors():
    response = torch.arange(12.0).view(2, 6)  # (images, time)
    assert reducers.MeanOverTime()(response).tolist() == [2.5, 8.5]
    assert reducers.MeanOverWindow(start=-2)(response).tolist() == [4.5, 10.5]
    assert reducers.MeanOverWindow(1, 3)(response).tolist() == [1.5, 7.5]
    assert reducers.MeanOverWindow(1, 3).window(6) == range(1, 3)
    assert reducers.MeanOverTime(dim=1)(torch.ones(2, 3, 4)).shape == (2, 4)
    with pytest.raises(ValueError, match="is empty"):
        reducers.MeanOverWindow(3, 2)
    with pytest.raises(ValueError, match="holds no bin"):
        reducers.MeanOverWindow(8, 10)(response)
    built = reducers.build_reducer({"path": "mei.reducers.MeanOverWindow", "kwargs": {"start": -3}})
    assert repr(built) == "MeanOverWindow(start=-3, stop=None, dim=-1)"
    assert reducers.build_reducer(None) is None
