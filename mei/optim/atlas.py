"""Activation atlases (Carter et al. 2019): a map of what a layer responds to, one picture per grid cell.

The recipe, each step a small function here:

1. collect a layer's activation vectors over many inputs (:func:`mei.optim.collect_activations`), one
   ``(samples, channels)`` matrix;
2. lay the samples out in two dimensions (UMAP or t-SNE through :class:`mei.optim.reducer.ChannelReducer`, or
   PCA), an ``(samples, 2)`` matrix of ``(x, y)`` coordinates;
3. :func:`create_atlas_vectors`: rescale the layout to the unit square (:func:`normalize_grid`), cut it into a
   grid (:func:`calc_grid_indices`) and average the activation vectors of each cell that holds enough samples
   (:func:`compute_avg_cell_samples`);
4. render one image per averaged vector (a batch, objective
   :class:`mei.optim.loss.NeuronDirection` with ``batch_index=i``) and put the images where their cells are
   (:func:`create_atlas`).

Grids are ``(rows, cols)``; a cell is ``(row, col)``; row ``r`` holds ``y`` in ``[r, r + 1) / rows`` of the
y extent and column ``c`` holds ``x`` in ``[c, c + 1) / cols`` of the x extent (the last row and column
include their upper edge). As in an image, row 0 is at the top, so the atlas shows the layout with ``y``
growing downwards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

GridSize = tuple[int, int]
Extent = tuple[float, float]


def _grid_size(grid_size: Sequence[int]) -> GridSize:
    size = tuple(int(n) for n in grid_size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"grid_size must be (rows, cols) of positive integers, got {tuple(grid_size)}")
    return size


def _layout(xy_grid: Tensor, n_samples: int | None = None) -> Tensor:
    if not isinstance(xy_grid, Tensor) or xy_grid.dim() != 2 or xy_grid.shape[1] != 2:
        shape = tuple(xy_grid.shape) if isinstance(xy_grid, Tensor) else type(xy_grid).__name__
        raise ValueError(f"xy_grid must be a (samples, 2) tensor of (x, y) coordinates, got {shape}")
    if n_samples is not None and xy_grid.shape[0] != n_samples:
        raise ValueError(f"xy_grid has {xy_grid.shape[0]} samples but the activations have {n_samples}")
    return xy_grid


def _quantile(values: Tensor, q: float) -> Tensor:
    """Per column, the ``q`` quantile with linear interpolation (``torch.quantile``'s default), by sorting, so
    that layouts of any size work (``torch.quantile`` refuses inputs of more than 2**24 values)."""
    ordered = values.sort(dim=0).values
    position = q * (values.shape[0] - 1)
    below = int(position)
    above = min(below + 1, values.shape[0] - 1)
    return ordered[below] + (position - below) * (ordered[above] - ordered[below])


def normalize_grid(xy_grid: Tensor, min_percentile: float = 0.01, max_percentile: float = 0.99,
                   relative_margin: float = 0.1) -> Tensor:
    """Clip a layout's outliers and rescale each axis to ``[0, 1]``.

    Per axis, values below the ``min_percentile`` quantile or above the ``max_percentile`` quantile, widened by
    ``relative_margin`` times the distance between the two, are clipped to those bounds; then the axis is
    rescaled so that its smallest value is 0 and its largest 1 (an axis with a single value becomes all 0).

    Args:
        xy_grid (Tensor): ``(samples, 2)`` coordinates.
        min_percentile (float, optional): lower quantile, in ``[0, 1]``. Default: 0.01.
        max_percentile (float, optional): upper quantile, in ``[0, 1]``, above ``min_percentile``.
            Default: 0.99.
        relative_margin (float, optional): how far beyond the quantiles values are kept, as a fraction of
            their distance; ``>= 0``. Default: 0.1.

    Returns:
        Tensor: the rescaled ``(samples, 2)`` layout, same dtype (floating) and device.
    """
    xy = _layout(xy_grid).float() if not xy_grid.is_floating_point() else _layout(xy_grid)
    if not 0.0 <= min_percentile < max_percentile <= 1.0:
        raise ValueError(f"need 0 <= min_percentile < max_percentile <= 1, got {min_percentile}, {max_percentile}")
    if relative_margin < 0:
        raise ValueError(f"relative_margin must be >= 0, got {relative_margin}")
    low, high = _quantile(xy, min_percentile), _quantile(xy, max_percentile)
    margin = relative_margin * (high - low)
    clipped = torch.minimum(torch.maximum(xy, low - margin), high + margin)
    shifted = clipped - clipped.amin(dim=0)
    span = shifted.amax(dim=0)
    return shifted / torch.where(span > 0, span, torch.ones_like(span))  # a single-valued axis stays all 0


def calc_grid_indices(xy_grid: Tensor, grid_size: Sequence[int], x_extent: Extent = (0.0, 1.0),
                      y_extent: Extent = (0.0, 1.0)) -> list[list[Tensor]]:
    """The samples in each cell of a ``rows x cols`` grid laid over ``x_extent x y_extent``.

    Args:
        xy_grid (Tensor): ``(samples, 2)`` coordinates.
        grid_size (tuple[int, int]): ``(rows, cols)``.
        x_extent (tuple[float, float], optional): the x range the columns cover. Default: ``(0, 1)``.
        y_extent (tuple[float, float], optional): the y range the rows cover. Default: ``(0, 1)``.

    Returns:
        list[list[Tensor]]: ``indices[row][col]``, the (sorted) sample indices in that cell; samples outside
        the extents are in no cell.
    """
    xy = _layout(xy_grid)
    rows, cols = _grid_size(grid_size)
    for name, (low, high) in (("x_extent", x_extent), ("y_extent", y_extent)):
        if not high > low:
            raise ValueError(f"{name} must be (low, high) with high > low, got {(low, high)}")

    def cells(values: Tensor, extent: Extent, n: int) -> Tensor:
        position = (values - extent[0]) / (extent[1] - extent[0]) * n
        index = position.floor().long().clamp(max=n - 1)  # the upper edge belongs to the last cell
        return torch.where((values >= extent[0]) & (values <= extent[1]), index, torch.full_like(index, -1))

    col_of, row_of = cells(xy[:, 0], x_extent, cols), cells(xy[:, 1], y_extent, rows)
    flat = torch.where((col_of >= 0) & (row_of >= 0), row_of * cols + col_of, torch.full_like(col_of, -1))
    # one stable sort instead of a scan per cell: each cell's indices come out contiguous and ascending
    order = torch.argsort(flat, stable=True)
    counts = torch.bincount(flat + 1, minlength=rows * cols + 1).tolist()  # bin 0: outside the extents
    per_cell = list(torch.split(order, counts))[1:]
    return [per_cell[row * cols:(row + 1) * cols] for row in range(rows)]


def compute_avg_cell_samples(grid_indices: Sequence[Sequence[Tensor]], raw_samples: Tensor, grid_size: Sequence[int],
                             min_density: int = 8) -> tuple[Tensor, list[tuple[int, int]]]:
    """The mean sample of every cell holding at least ``min_density`` samples.

    Args:
        grid_indices (list[list[Tensor]]): from :func:`calc_grid_indices`, ``[row][col]``.
        raw_samples (Tensor): ``(samples, channels)`` activation vectors.
        grid_size (tuple[int, int]): ``(rows, cols)``, as given to :func:`calc_grid_indices`.
        min_density (int, optional): fewest samples a cell needs to be kept, ``>= 1``. Default: 8.

    Returns:
        tuple[Tensor, list[tuple[int, int]]]: ``(vectors, cells)``: one mean vector per kept cell,
        ``(kept, channels)``, and those cells' ``(row, col)``, in row-major order.
    """
    rows, cols = _grid_size(grid_size)
    if int(min_density) < 1:
        raise ValueError(f"min_density must be >= 1, got {min_density}")
    if len(grid_indices) != rows or any(len(row) != cols for row in grid_indices):
        raise ValueError(f"grid_indices does not have the grid_size {(rows, cols)}")
    if raw_samples.dim() != 2:
        raise ValueError(f"raw_samples must be (samples, channels), got shape {tuple(raw_samples.shape)}")
    vectors, cells = [], []
    for row in range(rows):
        for col in range(cols):
            members = grid_indices[row][col]
            if members.numel() >= int(min_density):
                vectors.append(raw_samples[members.to(raw_samples.device)].mean(dim=0))
                cells.append((row, col))
    if not vectors:
        return raw_samples.new_zeros((0, raw_samples.shape[1])), []
    return torch.stack(vectors), cells


def create_atlas_vectors(xy_grid: Tensor, raw_activations: Tensor, grid_size: Sequence[int], min_density: int = 8,
                         normalize: bool = True, x_extent: Extent = (0.0, 1.0),
                         y_extent: Extent = (0.0, 1.0)) -> tuple[Tensor, list[tuple[int, int]]]:
    """Average activation vectors over the cells of a layout: the directions an atlas renders.

    Args:
        xy_grid (Tensor): ``(samples, 2)`` layout of the samples.
        raw_activations (Tensor): ``(samples, channels)`` activation vectors, in the layout's order.
        grid_size (tuple[int, int]): ``(rows, cols)``.
        min_density (int, optional): fewest samples a cell needs to get a vector. Default: 8.
        normalize (bool, optional): rescale the layout with :func:`normalize_grid` first (then the default
            extents cover it). Default: True.
        x_extent, y_extent (tuple[float, float], optional): the ranges the grid covers. Default: ``(0, 1)``.

    Returns:
        tuple[Tensor, list[tuple[int, int]]]: as :func:`compute_avg_cell_samples`.
    """
    if raw_activations.dim() != 2:
        raise ValueError(f"raw_activations must be (samples, channels), got shape {tuple(raw_activations.shape)}")
    xy = _layout(xy_grid, raw_activations.shape[0])
    if normalize:
        xy = normalize_grid(xy)
    indices = calc_grid_indices(xy, grid_size, x_extent, y_extent)
    return compute_avg_cell_samples(indices, raw_activations, grid_size, min_density)


def create_atlas(cells: Tensor | Sequence[Tensor], coords: Sequence[tuple[int, int]], grid_size: Sequence[int],
                 base_tensor: Callable[..., Tensor] = torch.ones) -> Tensor:
    """Put one image per cell into a single atlas image.

    Args:
        cells (Tensor or list[Tensor]): ``(n, C, h, w)`` images, or a list of ``(C, h, w)`` / ``(1, C, h, w)``
            images of one size, in the order of ``coords``.
        coords (list[tuple[int, int]]): each image's cell ``(row, col)``.
        grid_size (tuple[int, int]): ``(rows, cols)``.
        base_tensor (callable, optional): fills the empty cells, called like ``torch.ones(shape, dtype=...,
            device=...)``. Default: ``torch.ones`` (white).

    Returns:
        Tensor: ``(1, C, rows * h, cols * w)``.
    """
    images = cells if isinstance(cells, Tensor) else torch.stack([image.reshape(image.shape[-3:]) for image in cells])
    if images.dim() != 4:
        raise ValueError(f"cells must be (n, C, h, w) images, got shape {tuple(images.shape)}")
    rows, cols = _grid_size(grid_size)
    if len(coords) != images.shape[0]:
        raise ValueError(f"{images.shape[0]} cell images but {len(coords)} coords")
    _, channels, height, width = images.shape
    atlas = base_tensor((1, channels, rows * height, cols * width), dtype=images.dtype, device=images.device)
    for image, (row, col) in zip(images, coords, strict=True):
        if not (0 <= row < rows and 0 <= col < cols):
            raise ValueError(f"cell {(row, col)} is outside the grid {(rows, cols)}")
        atlas[0, :, row * height:(row + 1) * height, col * width:(col + 1) * width] = image
    return atlas


__all__ = ["normalize_grid", "calc_grid_indices", "compute_avg_cell_samples", "create_atlas_vectors", "create_atlas"]
