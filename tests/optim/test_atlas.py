"""Activation atlases: layout normalization, grid cells, cell averages, atlas assembly and the direction losses."""

import pytest
import torch
from torch import nn

from mei.optim import InputOptimization, atlas, collect_activations, images, loss
from mei.optim.optimization import n_steps


# ------------------------------------------------------------------------------------------ normalize_grid
def test_normalize_grid_rescales_each_axis_to_the_unit_interval():
    xy = torch.tensor([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0], [4.0, 50.0]])
    out = atlas.normalize_grid(xy, min_percentile=0.0, max_percentile=1.0, relative_margin=0.0)
    expected = torch.tensor([[0.0, 0.0], [0.25, 0.25], [0.5, 0.5], [1.0, 1.0]])
    torch.testing.assert_close(out, expected)


def test_normalize_grid_clips_outliers_beyond_the_quantiles_and_margin():
    x = torch.cat([torch.arange(11.0), torch.tensor([1000.0])])  # 0..10 and one far outlier
    xy = torch.stack([x, x], dim=1)
    out = atlas.normalize_grid(xy, min_percentile=0.0, max_percentile=10 / 11, relative_margin=0.1)
    high = torch.quantile(x, 10 / 11)  # 10.0 (0..10 and the outlier at the 12th place)
    bound = high + 0.1 * (high - 0.0)
    # the outlier is clipped to quantile + margin and becomes 1; the others keep their spacing
    torch.testing.assert_close(out[:, 0], torch.minimum(x, bound) / bound)
    assert out[-1, 0] == 1.0 and out[:, 0].min() == 0.0
    assert out[10, 0] < 1.0  # 10 lies inside the margin, below the clipped outlier


def test_normalize_grid_keeps_a_single_valued_axis_at_zero_and_accepts_integers():
    out = atlas.normalize_grid(torch.tensor([[3, 7], [5, 7], [4, 7]]), 0.0, 1.0, 0.0)
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, 0.0]]))


@pytest.mark.parametrize("kwargs, message", [
    ({"min_percentile": 0.6, "max_percentile": 0.5}, "0 <= min_percentile < max_percentile <= 1"),
    ({"max_percentile": 1.5}, "0 <= min_percentile < max_percentile <= 1"),
    ({"relative_margin": -0.1}, "relative_margin must be >= 0"),
])
def test_normalize_grid_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        atlas.normalize_grid(torch.rand(10, 2), **kwargs)


def test_layouts_must_be_two_columns():
    with pytest.raises(ValueError, match=r"\(samples, 2\) tensor of \(x, y\) coordinates, got \(10, 3\)"):
        atlas.normalize_grid(torch.rand(10, 3))
    with pytest.raises(ValueError, match="xy_grid has 10 samples but the activations have 9"):
        atlas.create_atlas_vectors(torch.rand(10, 2), torch.rand(9, 4), (2, 2))


# --------------------------------------------------------------------------------------- calc_grid_indices
def test_grid_indices_are_row_by_y_and_column_by_x():
    xy = torch.tensor([
        [0.1, 0.1],   # row 0, col 0
        [0.9, 0.1],   # row 0, col 2 (x decides the column)
        [0.1, 0.6],   # row 1, col 0 (y decides the row)
        [1.0, 1.0],   # the upper edge belongs to the last cell: row 1, col 2
        [0.5, 0.2],   # row 0, col 1
        [1.2, 0.5],   # outside the x extent: no cell
        [0.3, -0.1],  # outside the y extent: no cell
        [0.4, 0.3],   # row 0, col 1
    ])
    indices = atlas.calc_grid_indices(xy, grid_size=(2, 3))
    found = [[cell.tolist() for cell in row] for row in indices]
    assert found == [[[0], [4, 7], [1]], [[2], [], [3]]]


def test_grid_indices_over_other_extents():
    xy = torch.tensor([[-1.0, 5.0], [0.5, 9.0], [0.99, 5.5]])
    indices = atlas.calc_grid_indices(xy, (2, 2), x_extent=(-1.0, 1.0), y_extent=(5.0, 10.0))
    assert [[cell.tolist() for cell in row] for row in indices] == [[[0], [2]], [[], [1]]]


@pytest.mark.parametrize("grid_size", [(0, 2), (2,), (2, 2, 2)])
def test_grid_size_must_be_two_positive_integers(grid_size):
    with pytest.raises(ValueError, match=r"grid_size must be \(rows, cols\) of positive integers"):
        atlas.calc_grid_indices(torch.rand(4, 2), grid_size)


def test_extents_must_be_increasing():
    with pytest.raises(ValueError, match=r"x_extent must be \(low, high\) with high > low, got \(1.0, 0.0\)"):
        atlas.calc_grid_indices(torch.rand(4, 2), (2, 2), x_extent=(1.0, 0.0))


# -------------------------------------------------------------------------------- compute_avg_cell_samples
def test_cell_averages_are_the_means_of_dense_enough_cells_in_row_major_order():
    samples = torch.arange(12.0).reshape(6, 2)
    indices = [[torch.tensor([0, 1, 2]), torch.tensor([3])], [torch.tensor([], dtype=torch.long), torch.tensor([4, 5])]]
    vectors, cells = atlas.compute_avg_cell_samples(indices, samples, (2, 2), min_density=2)
    assert cells == [(0, 0), (1, 1)]
    torch.testing.assert_close(vectors, torch.stack([samples[:3].mean(0), samples[4:].mean(0)]))
    vectors, cells = atlas.compute_avg_cell_samples(indices, samples, (2, 2), min_density=1)
    assert cells == [(0, 0), (0, 1), (1, 1)] and vectors.shape == (3, 2)
    vectors, cells = atlas.compute_avg_cell_samples(indices, samples, (2, 2), min_density=4)
    assert cells == [] and vectors.shape == (0, 2)


def test_cell_averages_check_their_inputs():
    indices = atlas.calc_grid_indices(torch.rand(8, 2), (2, 2))
    with pytest.raises(ValueError, match="min_density must be >= 1, got 0"):
        atlas.compute_avg_cell_samples(indices, torch.rand(8, 3), (2, 2), min_density=0)
    with pytest.raises(ValueError, match=r"grid_indices does not have the grid_size \(3, 2\)"):
        atlas.compute_avg_cell_samples(indices, torch.rand(8, 3), (3, 2))
    with pytest.raises(ValueError, match=r"raw_samples must be \(samples, channels\)"):
        atlas.compute_avg_cell_samples(indices, torch.rand(8), (2, 2))


def test_atlas_vectors_of_two_clusters():
    generator = torch.Generator().manual_seed(0)
    # two clusters in the layout, at the left-top and the right-bottom, with distinct activation vectors
    left_top = 0.1 + 0.05 * torch.rand(50, 2, generator=generator)
    right_bottom = 0.85 + 0.05 * torch.rand(30, 2, generator=generator)
    xy = torch.cat([left_top, right_bottom])
    activations = torch.cat([torch.tensor([1.0, 0.0, 2.0]).expand(50, 3), torch.tensor([0.0, 3.0, 0.0]).expand(30, 3)])
    vectors, cells = atlas.create_atlas_vectors(xy, activations, (4, 4), min_density=10, normalize=False)
    assert cells == [(0, 0), (3, 3)]
    torch.testing.assert_close(vectors, torch.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]]))
    # normalized, the clusters span the square: the same two cells, at its corners
    vectors, cells = atlas.create_atlas_vectors(xy, activations, (4, 4), min_density=10)
    assert cells == [(0, 0), (3, 3)]


# ------------------------------------------------------------------------------------------- create_atlas
def test_create_atlas_puts_each_image_in_its_cell_on_a_white_ground():
    cells = torch.stack([torch.full((3, 2, 2), 0.25), torch.full((3, 2, 2), 0.5)])
    out = atlas.create_atlas(cells, [(0, 1), (2, 0)], grid_size=(3, 2))
    assert out.shape == (1, 3, 6, 4)
    expected = torch.ones(1, 3, 6, 4)
    expected[..., 0:2, 2:4] = 0.25
    expected[..., 4:6, 0:2] = 0.5
    torch.testing.assert_close(out, expected)


def test_create_atlas_takes_a_list_and_another_ground():
    pieces = [torch.full((1, 1, 2, 3), 7.0), torch.full((1, 2, 3), 9.0)]
    out = atlas.create_atlas(pieces, [(0, 0), (1, 1)], (2, 2), base_tensor=torch.zeros)
    assert out.shape == (1, 1, 4, 6)
    assert out[0, 0, :2, :3].eq(7).all() and out[0, 0, 2:, 3:].eq(9).all()
    assert out[0, 0, :2, 3:].eq(0).all() and out[0, 0, 2:, :3].eq(0).all()


def test_create_atlas_refuses_mismatched_or_outside_cells():
    cells = torch.rand(2, 3, 4, 4)
    with pytest.raises(ValueError, match="2 cell images but 1 coords"):
        atlas.create_atlas(cells, [(0, 0)], (2, 2))
    with pytest.raises(ValueError, match=r"cell \(2, 0\) is outside the grid \(2, 2\)"):
        atlas.create_atlas(cells, [(0, 0), (2, 0)], (2, 2))
    with pytest.raises(ValueError, match=r"cells must be \(n, C, h, w\) images"):
        atlas.create_atlas(torch.rand(3, 4, 4), [(0, 0)] * 3, (2, 2))


# -------------------------------------------------------------------------- Direction and NeuronDirection
class Layer(nn.Module):
    """``features``: a fixed 1x1 convolution, so the layer's activation is a known linear map of the input."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv2d(3, 4, 1, bias=False)
        with torch.no_grad():
            self.features.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]]).view(4, 3, 1, 1))

    def forward(self, x):
        return self.features(x)


def test_neuron_direction_is_the_dot_product_at_one_position_weighted_by_the_cosine():
    model = Layer()
    x = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(1))
    vec = torch.tensor([1.0, -2.0, 0.5, 1.0])
    acts = collect_activations(model, "features", x)
    a = acts["features"]
    centre, corner = a[:, :, 2, 2], a[:, :, 0, 4]
    torch.testing.assert_close(loss.NeuronDirection("features", vec).per_image(acts), centre @ vec)
    torch.testing.assert_close(loss.NeuronDirection("features", vec, x=4, y=0).per_image(acts), corner @ vec)
    cos = (centre @ vec) / (centre.norm(dim=1) * vec.norm())
    torch.testing.assert_close(loss.NeuronDirection("features", vec, cossim_pow=2.0).per_image(acts),
                               (centre @ vec) * cos.clamp(min=0.1) ** 2)
    # Direction: the same per position, averaged over positions
    per_position = torch.einsum("nchw,c->nhw", a, vec)
    torch.testing.assert_close(loss.Direction("features", vec).per_image(acts), per_position.mean(dim=(1, 2)))
    assert repr(loss.NeuronDirection("features", vec, x=4, y=0, batch_index=1)) == \
        "NeuronDirection(features, x=4, y=0, batch_index=1)"


def test_direction_losses_check_the_layer():
    acts = collect_activations(Layer(), "features", torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"NeuronDirection\(features\): vec has 3 entries, the layer 4 channels"):
        loss.NeuronDirection("features", [1.0, 2.0, 3.0]).per_image(acts)
    with pytest.raises(ValueError, match=r"Direction\(features\): vec has 2 entries, the layer 4 channels"):
        loss.Direction("features", [1.0, 2.0]).per_image(acts)
    with pytest.raises(IndexError, match=r"position \(y=0, x=9\) is outside the 4 x 4 layer"):
        loss.NeuronDirection("features", torch.ones(4), x=9, y=0).per_image(acts)
    flat = collect_activations(nn.Sequential(nn.Flatten(), nn.Linear(48, 4)), "1", torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"needs a \(images, channels, height, width\) layer, got shape \(1, 4\)"):
        loss.NeuronDirection("1", torch.ones(4)).per_image(flat)


@pytest.mark.parametrize("cossim_pow", [0.0, 1.0])
def test_neuron_direction_known_optimum(cossim_pow):
    """Identity layer: maximizing ``direction(a, v) - |a|^2 / 2`` has its optimum at ``a = v`` for both powers."""
    model = nn.Sequential(nn.Identity())
    vec = torch.tensor([0.6, -0.3, 0.9])
    image = images.NaturalImage((1, 1), parameterization=images.PixelImage, squash_func="none",
                                decorrelation_module=None, init=torch.tensor([0.2, 0.4, -0.1]).view(3, 1, 1))
    objective = loss.NeuronDirection("0", vec, cossim_pow=cossim_pow) - 0.5 * loss.L2("0", epsilon=0.0) ** 2
    InputOptimization(model, objective, image, nn.Identity()).optimize(n_steps(600, False), lr=0.02)
    torch.testing.assert_close(image().detach().flatten(), vec, atol=2e-3, rtol=0)


def render_cells(model, vectors, cossim_pow):
    image = images.NaturalImage((3, 3), batch=len(vectors), parameterization=images.PixelImage, squash_func="none",
                                decorrelation_module=None)
    objective = loss.sum_loss_list([loss.NeuronDirection("features", v, cossim_pow=cossim_pow, batch_index=i)
                                    for i, v in enumerate(vectors)]) - 0.5 * loss.L2("input", epsilon=0.0) ** 2
    InputOptimization(model, objective, image, nn.Identity()).optimize(n_steps(300, False), lr=0.05, seed=0)
    return image().detach()


def test_an_atlas_of_a_linear_layer_renders_each_cell_along_its_vector():
    """End to end on a 1x1-conv layer (3 -> 4 channels, the 4th = red + green): with a cosine power, every cell's
    rendered centre activation points along that cell's vector and no other; the plain dot product does not.
    """
    model = Layer()
    generator = torch.Generator().manual_seed(0)
    samples = collect_activations(model, "features", torch.randn(8, 3, 6, 6, generator=generator))["features"]
    samples = samples.movedim(1, -1).reshape(-1, 4)
    vectors, cells = atlas.create_atlas_vectors(samples[:, :2], samples, (3, 3), min_density=5)
    assert len(cells) == 9
    for cossim_pow, aligned in ((4.0, True), (0.0, False)):
        rendered = render_cells(model, vectors, cossim_pow)
        centres = collect_activations(model, "features", rendered)["features"][:, :, 1, 1]
        cos = torch.nn.functional.cosine_similarity(centres[:, None], vectors[None], dim=2)
        own_best = bool((cos.argmax(dim=1) == torch.arange(len(cells))).all())
        assert own_best == aligned and bool((cos.diagonal() > 0.99).all()) == aligned, (cossim_pow, cos)
    picture = atlas.create_atlas(rendered, cells, (3, 3))
    assert picture.shape == (1, 3, 9, 9)
    row, col = cells[5]
    torch.testing.assert_close(picture[0, :, 3 * row:3 * row + 3, 3 * col:3 * col + 3], rendered[5])


@pytest.mark.slow
def test_quantiles_match_torch_and_large_layouts_work():
    from mei.optim.atlas import _quantile

    xy = torch.randn(101, 2, generator=torch.Generator().manual_seed(5))
    for q in (0.0, 0.01, 0.37, 0.99, 1.0):
        torch.testing.assert_close(_quantile(xy, q), torch.quantile(xy, q, dim=0))
    big = torch.rand(9_000_000, 2, generator=torch.Generator().manual_seed(6))  # 18M values: over quantile's limit
    out = atlas.normalize_grid(big)
    assert out.min() == 0 and out.max() == 1
