"""meitorch's image statistics tools (mei.meitorch.tools.base_transforms) on images whose answer is known."""

import math

import numpy as np
import pytest
import torch

from mei.meitorch.tools.base_transforms import (
    adjust_contrast,
    adjust_contrast_with_mask,
    adjust_img_stats,
    fit_gain_offset,
    gauss2d,
    roll,
)


def noise(low, high, shape=(24, 32), seed=0):
    return np.random.default_rng(seed).uniform(low, high, shape)


def test_adjust_img_stats_without_clipping_is_the_closed_form():
    image = noise(100, 150)
    adjusted, unmasked = adjust_img_stats(image, mu=128, sigma=10)
    assert isinstance(adjusted, np.ndarray) and adjusted.shape == image.shape
    assert adjusted.mean() == pytest.approx(128, abs=1e-9) and adjusted.std() == pytest.approx(10, abs=1e-9)
    expected = 128 + 10 * (image - image.mean()) / image.std()
    assert np.allclose(adjusted, expected, atol=1e-9) and np.array_equal(adjusted, unmasked)  # no mask


def test_adjust_img_stats_meets_both_targets_when_the_bounds_clip():
    image = noise(0, 255)
    adjusted, _ = adjust_img_stats(image, mu=100, sigma=90)  # a plain scaling would cross 0 and 255
    assert adjusted.min() == 0 and adjusted.max() == 255  # some pixels saturate at each bound
    assert adjusted.mean() == pytest.approx(100, abs=1e-6) and adjusted.std() == pytest.approx(90, abs=1e-6)
    closest, _ = adjust_img_stats(image, mu=128, sigma=200)  # out of reach: a 0/255 image has std <= 127.5
    assert 125 < closest.std() <= 127.5 + 1e-9 and closest.mean() == pytest.approx(128, abs=0.5)


def test_adjust_img_stats_with_a_mask_keeps_the_background_flat_and_warns_on_a_flat_image():
    image = torch.as_tensor(noise(0, 1, (16, 16)), dtype=torch.float32)
    mask = torch.zeros(16, 16)
    mask[4:12, 4:12] = 1
    adjusted, unmasked = adjust_img_stats(image, mu=0.5, sigma=0.1, img_min=0, img_max=1, mask=mask)
    assert adjusted.dtype == torch.float32 and adjusted.shape == (16, 16)
    outside = adjusted[mask == 0]
    assert float(outside.max() - outside.min()) < 1e-6  # the background is one value
    assert float(adjusted.mean()) == pytest.approx(0.5, abs=1e-5)
    assert float(adjusted.std(unbiased=False)) == pytest.approx(0.1, abs=1e-5)
    assert float((unmasked - adjusted)[mask == 0].abs().max()) > 0.01  # the unmasked version keeps the texture
    with pytest.warns(UserWarning, match="Zero standard deviation"):
        flat, _ = adjust_img_stats(np.full((4, 4), 3.0), mu=7, sigma=2)
    assert np.array_equal(flat, np.full((4, 4), 7.0))
    with pytest.raises(ValueError, match="base_ratio"):
        adjust_img_stats(image, 0.5, 0.1, base_ratio=1.0)


def test_adjust_contrast_plain_forced_and_unchanged():
    image = noise(90, 110)
    same, clipped, contrast = adjust_contrast(image)  # contrast=-1, mu=-1: nothing to change
    assert np.allclose(same, image, atol=1e-12) and not clipped and contrast == pytest.approx(image.std())
    plain, clipped, contrast = adjust_contrast(image, contrast=20, mu=100)
    assert not clipped and contrast == pytest.approx(20, abs=1e-9) and plain.mean() == pytest.approx(100, abs=1e-9)
    forced, clipped, contrast = adjust_contrast(image, contrast=100, mu=80)
    assert clipped and contrast == pytest.approx(100, abs=1e-6) and forced.mean() == pytest.approx(80, abs=1e-6)
    cut, clipped, contrast = adjust_contrast(image, contrast=100, mu=80, force=False)  # scaled, then clipped
    assert clipped and contrast < 100 and cut.min() == 0
    assert np.allclose(cut, np.clip(80 + 100 / image.std() * (image - image.mean()), 0, 255))


def test_adjust_contrast_with_a_mask_sets_the_masked_statistics():
    image = noise(0, 1, (20, 20))
    mask = np.zeros((20, 20))
    mask[5:15, 3:17] = 1
    adjusted, clipped, _ = adjust_contrast_with_mask(image, mask, contrast=0.2, mu=0.4, img_min=0, img_max=1)
    inside = adjusted[mask == 1]
    assert clipped and np.all(adjusted[mask == 0] == 0.4)  # outside the mask: the mean luminance
    assert inside.mean() == pytest.approx(0.4, abs=1e-6)
    assert math.sqrt(((inside - 0.4) ** 2).sum() / image.size) == pytest.approx(0.2, abs=1e-6)  # meitorch's contrast


def test_fit_gain_offset_solves_the_clipped_statistics():
    delta = torch.linspace(-1, 1, 101, dtype=torch.float64)
    gain, offset, clipped = fit_gain_offset(delta, torch.ones(101, dtype=torch.float64), 0.2, 0.5, -1, 1)
    image = (0.2 + offset + gain * delta).clamp(-1, 1)
    assert clipped and float(image.mean()) == pytest.approx(0.2, abs=1e-9)
    assert float(image.std(unbiased=False)) == pytest.approx(0.5, abs=1e-9)


def test_roll_there_and_back_is_the_identity():
    t = torch.arange(24.0).reshape(2, 3, 4)
    assert torch.equal(roll(roll(t, 3, -1), -3, -1), t)
    assert torch.equal(roll(t, 1, 1), torch.cat([t[:, 2:], t[:, :2]], dim=1))  # the last entry comes first
    assert torch.equal(roll(t, 5, 2), roll(t, 1, 2)) and roll(t, 0, 0) is not None  # wraps around the axis
    array = np.arange(5)
    assert roll(array, -2, 0).tolist() == [2, 3, 4, 0, 1]


def test_gauss2d_is_one_at_the_mean_and_exp_minus_half_one_deviation_away():
    vx, vy = np.meshgrid(np.arange(7.0), np.arange(5.0))
    g = gauss2d(vx, vy, (3, 2), np.array([[4.0, 0.0], [0.0, 1.0]]))
    assert g.shape == (5, 7) and g[2, 3] == pytest.approx(1.0)
    assert g[2, 5] == pytest.approx(math.exp(-0.5)) and g[3, 3] == pytest.approx(math.exp(-0.5))
