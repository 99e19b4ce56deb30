"""Looking at results: an image grid (:func:`show`, :func:`save_image`) and weight heatmaps.

Matplotlib and Pillow are imported only when a function needs them (extra ``plot``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def _as_images(x: Tensor) -> Tensor:
    x = x.detach().float().cpu()
    if x.dim() == 2:
        x = x[None, None]
    elif x.dim() == 3:
        x = x[None]
    if x.dim() != 4:
        raise ValueError(f"expected images (N, C, H, W), (C, H, W) or (H, W), got shape {tuple(x.shape)}")
    return x


def make_grid(x: Tensor, images_per_row: int | None = None, padding: int = 2, pad_value: float = 1.0) -> Tensor:
    """Tile images ``(N, C, H, W)`` into one ``(C, H', W')`` picture, row by row.

    Args:
        x (Tensor): the images (``(C, H, W)`` and ``(H, W)`` are one image).
        images_per_row (int, optional): Default: all in one row.
        padding (int, optional): pixels between images. Default: 2.
        pad_value (float, optional): colour of the gaps. Default: 1 (white).
    """
    x = _as_images(x)
    n, channels, height, width = x.shape
    per_row = min(n, images_per_row or n)
    rows = math.ceil(n / per_row)
    grid = torch.full((channels, rows * (height + padding) - padding, per_row * (width + padding) - padding),
                      float(pad_value))
    for k, image in enumerate(x):
        top, left = (k // per_row) * (height + padding), (k % per_row) * (width + padding)
        grid[:, top:top + height, left:left + width] = image
    return grid


def make_grid_image(tiles: Tensor | Sequence[Tensor], images_per_row: int = 4, padding: int = 2,
                    pad_value: float = 0.0) -> Tensor:
    """captum's ``make_grid_image``: tile ``(N, C, H, W)`` images into one ``(1, C, H', W')`` image, row by row,
    with ``padding`` pixels around and between the tiles; on the tiles' device, differentiable.

    Unlike :func:`make_grid` (a picture to look at: detached, on the CPU, gaps only between tiles), the result
    is an image tensor that can go on into a model or a loss.

    Args:
        tiles (Tensor or list of Tensors): ``(N, C, H, W)`` images, or a list of them (concatenated).
        images_per_row (int, optional): Default: 4.
        padding (int, optional): pixels around and between the tiles. Default: 2.
        pad_value (float, optional): the fill of the gaps and of empty cells. Default: 0.
    """
    if isinstance(tiles, (list, tuple)):
        tiles = torch.cat(list(tiles), dim=0)
    if not isinstance(tiles, Tensor) or tiles.dim() != 4:
        raise ValueError("make_grid_image takes (N, C, H, W) images or a list of them")
    if padding < 0 or images_per_row < 1:
        raise ValueError(f"padding must be >= 0 and images_per_row >= 1, got {padding} and {images_per_row}")
    n, channels, height, width = tiles.shape
    per_row = min(images_per_row, n)
    rows = math.ceil(n / per_row)
    empty = tiles.new_full((rows * per_row - n, channels, height, width), float(pad_value))
    cells = torch.nn.functional.pad(torch.cat([tiles, empty]), (padding, 0, padding, 0), value=float(pad_value))
    grid = cells.view(rows, per_row, channels, height + padding, width + padding).permute(2, 0, 3, 1, 4)
    grid = grid.reshape(1, channels, rows * (height + padding), per_row * (width + padding))
    return torch.nn.functional.pad(grid, (0, padding, 0, padding), value=float(pad_value))


def _to_hwc(grid: Tensor, scale: float = 1.0) -> Tensor:
    grid = (grid * scale).clamp(0, 1)
    return grid[0] if grid.shape[0] == 1 else grid[:3].permute(1, 2, 0)


def show(x: Tensor, figsize: tuple[float, float] | None = None, images_per_row: int | None = None,
         scale: float = 1.0) -> None:
    """Plot images in [0, 1] as one grid with matplotlib (a no-op window under a non-interactive backend).

    Args:
        x (Tensor): images ``(N, C, H, W)``, ``(C, H, W)`` or ``(H, W)``.
        figsize (tuple[float, float], optional): matplotlib figure size. Default: matplotlib's.
        images_per_row (int, optional): Default: all in one row.
        scale (float, optional): multiply values by it before clipping to [0, 1]. Default: 1.
    """
    import matplotlib.pyplot as plt

    picture = _to_hwc(make_grid(x, images_per_row), scale).numpy()
    figure = plt.figure(figsize=figsize)
    plt.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=1)
    plt.axis("off")
    plt.show()
    plt.close(figure)


def save_image(x: Tensor, filename: str, images_per_row: int | None = None, scale: float = 1.0,
               upscale: int = 1) -> None:
    """Write images in [0, 1] as one PNG grid (Pillow).

    Args:
        x (Tensor): images ``(N, C, H, W)``, ``(C, H, W)`` or ``(H, W)``.
        filename (str): where to write.
        images_per_row (int, optional): Default: all in one row.
        scale (float, optional): multiply values by it before clipping to [0, 1]. Default: 1.
        upscale (int, optional): enlarge every pixel to an ``upscale`` x ``upscale`` block. Default: 1.
    """
    from PIL import Image

    images = _as_images(x)
    if upscale > 1:
        images = images.repeat_interleave(int(upscale), dim=-2).repeat_interleave(int(upscale), dim=-1)
    picture = (_to_hwc(make_grid(images, images_per_row), scale) * 255).round().to(torch.uint8).numpy()
    Image.fromarray(picture).save(filename)


def weights_to_heatmap_2d(weight: Tensor, colors: Sequence[str] = ("0571b0", "92c5de", "f7f7f7", "f4a582",
                                                                     "ca0020")) -> Tensor:
    """Colour a 2-D map of values in [-1, 1]: negative blue, zero white, positive red (diverging scale).

    Args:
        weight (Tensor): ``(H, W)`` values, e.g. weights divided by their maximum.
        colors (list[str], optional): five hex colours for -1, -0.5, 0, 0.5 and 1. Default: a blue-white-red
            ColorBrewer scale.

    Returns:
        Tensor: ``(3, H, W)`` RGB in [0, 1].
    """
    if weight.dim() != 2:
        raise ValueError(f"weights_to_heatmap_2d takes a 2-D tensor, got shape {tuple(weight.shape)}")
    if len(colors) != 5:
        raise ValueError(f"colors must hold five hex colours, got {len(colors)}")
    palette = torch.tensor([[int(c[i:i + 2], 16) / 255 for i in (0, 2, 4)] for c in colors],
                           dtype=torch.float32, device=weight.device)
    position = (weight.detach().float().clamp(-1, 1) + 1) * 2  # 0..4 over the five colours
    low = position.floor().clamp(max=3).long()
    frac = (position - low).unsqueeze(-1)
    rgb = palette[low] * (1 - frac) + palette[low + 1] * frac
    return rgb.permute(2, 0, 1)


#: The six hues :func:`hue_to_rgb` blends between (every 60 degrees, unit norm): red, yellow, green, cyan, blue,
#: magenta.
HUES = [[1.0, 0.0, 0.0], [0.7071, 0.7071, 0.0], [0.0, 1.0, 0.0], [0.0, 0.7071, 0.7071], [0.0, 0.0, 1.0],
        [0.7071, 0.0, 0.7071]]


def hue_to_rgb(angle: float, device: torch.device | str = "cpu", warp: bool = True) -> Tensor:
    """The unit RGB vector of the hue ``angle`` (degrees): a blend of the two nearest of :data:`HUES`.

    Args:
        angle (float): the hue in degrees (any number; taken modulo 360).
        device (torch.device or str, optional): Default: ``"cpu"``.
        warp (bool, optional): bend the blend towards the six hues (a sine ease), so that neighbouring colours
            are easier to tell apart. Default: True.

    Returns:
        Tensor: shape ``(3,)``, norm 1.
    """
    angle = float(angle) % 360
    index = int(angle // 60)
    d = (angle - 60 * index) / 60
    if warp:
        d = math.sin(d * math.pi / 2) if index % 2 == 0 else 1 - math.sin((1 - d) * math.pi / 2)
    hues = torch.tensor(HUES, device=device)
    vector = (1 - d) * hues[index] + d * hues[(index + 1) % 6]
    return vector / torch.linalg.vector_norm(vector)


def nchannels_to_rgb(x: Tensor, warp: bool = True, eps: float = 1e-4) -> Tensor:
    """Show ``(N, C, H, W)`` activations of any number of channels as RGB: channel ``i`` gets the hue
    ``360 i / C`` (:func:`hue_to_rgb`), grey is added where several channels are active, and each pixel keeps the
    norm of its channel vector.

    With negative values, each channel is split into its positive and negative part first (``2C`` hues). Three
    non-negative channels map red, green and blue to themselves where one channel is active.

    Args:
        x (Tensor): ``(N, C, H, W)``.
        warp (bool, optional): as for :func:`hue_to_rgb`. Default: True.
        eps (float, optional): added to the colour's norm before normalizing. Default: 1e-4.

    Returns:
        Tensor: ``(N, 3, H, W)``.
    """
    if x.dim() != 4:
        raise ValueError(f"nchannels_to_rgb takes (N, C, H, W), got shape {tuple(x.shape)}")
    if (x < 0).any():
        x = torch.cat([x.clamp(min=0), (-x).clamp(min=0)], dim=1)
    n_channels = x.shape[1]
    hues = torch.stack([hue_to_rgb(360 * i / n_channels, x.device, warp) for i in range(n_channels)]).to(x.dtype)
    rgb = torch.einsum("nchw,ck->nkhw", x, hues)
    rgb = rgb + (x.sum(1) - x.amax(1))[:, None]
    rgb = rgb / (eps + torch.linalg.vector_norm(rgb, dim=1, keepdim=True))
    return rgb * torch.linalg.vector_norm(x, dim=1, keepdim=True)


__all__ = ["show", "save_image", "make_grid", "make_grid_image", "weights_to_heatmap_2d", "hue_to_rgb",
           "nchannels_to_rgb", "HUES"]
