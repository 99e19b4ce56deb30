"""The MEI masks on images whose answer is known: a disk, two lobes, a speck, a Gaussian blob."""

import numpy as np
import pytest
import torch

from mei.meitorch.tools.masks import (
    binary_erosion,
    convex_hull_image,
    fit_gauss_envelope,
    gaussian_mask,
    label,
    mask_image,
    mei_mask,
    mei_tight_mask,
    remove_small_area,
)

yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")


def disk(row, col, radius):
    return (((yy - row) ** 2 + (xx - col) ** 2) <= radius ** 2).float()


def test_mei_mask_of_a_disk_covers_it_and_drops_a_speck():
    image = disk(16, 16, 6) + disk(3, 28, 1)  # a blob of 113 pixels and a speck of 5
    mask = mei_mask(image[None, None])
    assert mask.shape == (32, 32) and mask.dtype == torch.float32
    assert float(mask[16, 16]) > 0.99 and float(mask[16, 12]) > 0.9  # inside the disk
    assert 0.3 < float(mask[16, 8]) < 0.9 and float(mask[16, 2]) < 0.02  # a smooth edge just outside it
    assert float(mask[3, 28]) < 0.01 and float(mask[0, 0]) < 0.01  # the speck is gone, the corner is out
    assert 0.0 <= float(mask.min()) and float(mask.max()) <= 1.0
    kept = mei_mask(image, size_thr=3)  # a smaller size threshold keeps the speck (and the hull joins them)
    assert float(kept[3, 28]) > 0.5 and float(kept[10, 22]) > 0.5
    assert float(mei_mask(torch.zeros(32, 32)).max()) == 0.0  # nothing deviates: an empty mask


def test_mei_mask_fills_the_gap_between_lobes_and_returns_an_array_for_an_array():
    image = (disk(16, 8, 5) - disk(16, 24, 5)).numpy()  # an ON and an OFF lobe of 81 pixels, 6 pixels apart
    mask = mei_mask(image, expansion_sigma=1, filter_sigma=1)
    assert isinstance(mask, np.ndarray) and mask.shape == (32, 32)
    assert mask[16, 16] > 0.9  # the convex hull spans the gap
    assert mask[4, 16] < 0.05


def test_mei_tight_mask_erodes_until_the_activation_falls_below_the_ratio():
    image = disk(16, 16, 8)
    weights = disk(16, 16, 8)

    def operation(x):  # the unit sums the image over the disk: eroding the mask lowers its drive
        return (x[:, 0] * weights).flatten(1).sum(1)

    mask, ratio = mei_tight_mask(image, operation, target_reduction_ratio=0.9)
    loose = mei_mask(image)
    assert ratio <= 0.9 and ratio > 0.5
    assert float(mask.sum()) < float(loose.sum())
    masked = mask * image + (1 - mask) * image.mean()
    tighter, tighter_ratio = mei_tight_mask(image, operation, target_reduction_ratio=0.5)
    assert float(operation(masked[None, None])) > 0
    assert tighter_ratio <= 0.5 and float(tighter.sum()) < float(mask.sum())  # a lower ratio erodes further
    with pytest.raises(ValueError, match="does not reduce"):  # even an empty mask keeps the mean's drive (0.2)
        mei_tight_mask(image, operation, target_reduction_ratio=0.1)
    with pytest.raises(ValueError, match="must drive the operation"):
        mei_tight_mask(image, lambda x: -operation(x))
    dict_mask, dict_ratio = mei_tight_mask(image, lambda x: {"objective": -operation(x).mean()})
    assert dict_ratio == pytest.approx(ratio) and torch.equal(dict_mask, mask)


def test_gaussian_mask_fits_the_energy_of_an_on_off_pair():
    def blob(row, col):
        return torch.exp(-((yy - row) ** 2 + (xx - col) ** 2) / (2 * 2.0 ** 2))

    pair = blob(10, 17) - blob(10, 23)  # zero mean: its energy is symmetric about (row 10, col 20)
    (mu_x, mu_y), cov, envelope = fit_gauss_envelope(pair)
    assert (mu_x, mu_y) == pytest.approx((20, 10), abs=1e-3)
    assert abs(float(cov[0, 1])) < 1e-3 and float(cov[0, 0]) > 2 * float(cov[1, 1])  # elongated along x
    assert float(envelope[10, 20]) == pytest.approx(1.0) and float(envelope[30, 2]) < 1e-3
    assert torch.allclose(gaussian_mask(pair, 2.0), envelope ** 2)
    masked = mask_image(pair.numpy(), mask="gaussian", background=0.5)
    assert masked[30, 2] == pytest.approx(0.5, abs=1e-3) and masked[10, 17] == pytest.approx(
        float(pair[10, 17] * envelope[10, 17] ** 0.25 + 0.5 * (1 - envelope[10, 17] ** 0.25)), rel=1e-5)
    with pytest.raises(ValueError, match="Unknown mask type"):
        mask_image(pair, mask="square")


def test_the_image_operations():
    m = torch.zeros(6, 6, dtype=torch.bool)
    m[0, 0] = m[0, 1] = True  # a pair
    m[2:5, 2:5] = True  # a 3x3 square
    m[5, 0] = True  # a single pixel, touching nothing along the 4 neighbours
    labels, count = label(m)
    assert count == 3 and labels[0, 1] == 1 and labels[3, 3] == 2 and labels[5, 0] == 3
    assert remove_small_area(m, 2).sum() == 11 and remove_small_area(m, 9).sum() == 9
    assert binary_erosion(m).sum() == 1 and binary_erosion(m)[3, 3]
    corners = torch.zeros(5, 5, dtype=torch.bool)
    corners[0, 0] = corners[0, 4] = corners[4, 0] = True
    hull = convex_hull_image(corners)
    # the hull of the three pixel squares: the centres with row + col <= 5
    assert hull[3, 2] and not hull[3, 3] and hull.sum() == 19
