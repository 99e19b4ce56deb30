"""captum's image helpers in mei.optim.visualize: grid images, hues, many channels as RGB."""

import math

import pytest
import torch

import mei.optim as opt
from mei.optim import visualize


def test_make_grid_image_tiles_with_padding_around_and_between():
    tiles = torch.arange(1.0, 5.0).view(4, 1, 1, 1).expand(4, 1, 2, 2).contiguous()
    grid = visualize.make_grid_image(tiles, images_per_row=3, padding=1, pad_value=-1.0)
    assert grid.shape == (1, 1, 7, 10)
    expected = torch.full((7, 10), -1.0)
    for k in range(4):
        top, left = 1 + 3 * (k // 3), 1 + 3 * (k % 3)
        expected[top:top + 2, left:left + 2] = k + 1
    assert torch.equal(grid[0, 0], expected)  # the two empty cells of the second row are filled too
    assert torch.equal(visualize.make_grid_image(list(tiles.split(1)), 3, 1, -1.0), grid)
    assert visualize.make_grid_image(tiles, padding=0).shape == (1, 1, 2, 8)  # default: 4 per row


def test_make_grid_image_is_differentiable_and_checks_its_arguments():
    tiles = torch.rand(3, 2, 4, 5, requires_grad=True)
    visualize.make_grid_image(tiles, 2).sum().backward()
    assert torch.equal(tiles.grad, torch.ones_like(tiles))
    with pytest.raises(ValueError, match="padding"):
        visualize.make_grid_image(tiles, padding=-1)
    with pytest.raises(ValueError, match="N, C, H, W"):
        visualize.make_grid_image(torch.rand(2, 4, 5))


def test_hue_to_rgb_hits_the_six_hues_and_is_a_unit_vector():
    torch.testing.assert_close(visualize.hue_to_rgb(120.0), torch.tensor([0.0, 1.0, 0.0]))
    torch.testing.assert_close(visualize.hue_to_rgb(-60.0), torch.tensor([0.7071, 0.0, 0.7071]) / 0.99998, atol=1e-4,
                               rtol=0)
    half = visualize.hue_to_rgb(30.0, warp=False)  # halfway red -> yellow
    torch.testing.assert_close(half, torch.tensor([1.7071, 0.7071, 0.0]) / math.hypot(1.7071, 0.7071), atol=1e-4,
                               rtol=0)
    assert abs(float(visualize.hue_to_rgb(200.0).norm()) - 1) < 1e-6
    assert opt.hue_to_rgb is visualize.hue_to_rgb and opt.nchannels_to_rgb is visualize.nchannels_to_rgb
