"""meitorch's Analyze static methods on images whose responses are known: a unit whose weight is a blob."""

from types import SimpleNamespace

import pytest
import torch

from mei.meitorch.analyze import Analyze, response
from mei.meitorch.result import MEI_image

yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
BLOB = torch.exp(-((yy - 8) ** 2 + (xx - 6) ** 2) / 8)[None]  # (1, 16, 16), centred at row 8, column 6


def unit(x):  # a linear unit whose weight is the blob: its response to the blob is |blob|^2
    return (x * BLOB).flatten(1).sum(1)


def test_jittered_and_shifted_responses_peak_at_no_shift():
    process = MEI_image.from_image(BLOB)
    values, images = Analyze.jittered_responses(process, unit, 2)
    assert values.shape == (5, 5) and len(images) == 25
    assert int(values.argmax()) == 12 and float(values[2, 2]) == pytest.approx(float((BLOB ** 2).sum()), rel=1e-5)
    assert torch.equal(images[12], process.mei)  # the middle one is unshifted
    value, shifted = Analyze.shifted_response(process, unit, 3, -1)
    assert torch.equal(shifted, torch.roll(process.mei, (3, -1), dims=(-1, -2)))
    assert value == pytest.approx(float((torch.roll(BLOB, (3, -1), dims=(-1, -2)) * BLOB).sum()), rel=1e-5)
    assert value < float(values[2, 2])
    _, right = Analyze.shifted_response(process, lambda x: x[:, 0, 8, 7], 1, 0)  # column 6 moves to 7
    assert float(right[0, 0, 8, 7]) == pytest.approx(1.0)


def test_masked_responses_and_best_match():
    process = MEI_image.from_image(BLOB)
    assert torch.equal(Analyze.masked(process, None), process.mei)
    value, masked = Analyze.masked_responses_process(process, unit, mask="gaussian", factor=0.25)
    assert 0.9 * response(unit, BLOB) < value <= response(unit, BLOB) * 1.0001  # the mask keeps the blob
    originals, masked_values, images = Analyze.masked_responses([BLOB, -BLOB], unit, mask=None)
    assert originals == pytest.approx([response(unit, BLOB), -response(unit, BLOB)]) and masked_values == originals
    noise = torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.1
    dataset = [(noise[0], 0), (BLOB, 1), (noise[1], 2)]
    activation, image = Analyze.best_match(process, unit, SimpleNamespace(dataset=dataset))
    assert activation == pytest.approx(response(unit, BLOB)) and torch.equal(image, BLOB[0])


def test_compute_spatial_frequency_finds_a_gratings_frequency():
    grating = torch.cos(2 * torch.pi * 3 * xx / 16)  # 3 cycles across the width
    freq_cols, freq_rows, magnitude = Analyze.compute_spatial_frequency(grating)
    assert magnitude.shape == (16, 16) and len(freq_cols) == len(freq_rows) == 16
    row, col = divmod(int(magnitude.argmax()), 16)
    assert row == 8 and abs(col - 8) == 3  # centred spectrum: zero vertical frequency, +-3 cycles horizontally
