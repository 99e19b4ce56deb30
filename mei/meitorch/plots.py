"""Plots of meitorch results (matplotlib, imported on first use; the Agg backend works headless).

Every function returns the figure; ``save_path`` writes it (PNG by the file's suffix), ``show`` shows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from ..analysis.spectra import radial_power_spectrum

Ranges = Mapping[str, Sequence[float]] | Sequence[float] | None


def pyplot() -> Any:
    """``matplotlib.pyplot``, imported lazily."""
    import matplotlib.pyplot as plt

    return plt


def finish(fig: Any, save_path: str | None, show: bool) -> Any:
    """Lay out, save and/or show ``fig``; returns it."""
    fig.tight_layout()
    if save_path is not None:
        fig.savefig(save_path, dpi=100)
    if show:
        pyplot().show()
    return fig


def _limits(ranges: Ranges, name: str) -> Sequence[float] | None:
    if ranges is None:
        return None
    if isinstance(ranges, Mapping):
        return ranges.get(name)
    return ranges


def draw_losses(axes: Sequence[Any], steps: Sequence[int], losses: Mapping[str, Sequence[float]],
                ranges: Ranges = None) -> None:
    """One loss curve per axis, y-limits from ``ranges`` (a ``(low, high)`` for all, or per loss name)."""
    # not strict: a figure may have more axes than losses
    for ax, (name, values) in zip(axes, losses.items(), strict=False):
        ax.plot(steps[: len(values)], values)
        ax.set(title=name, xlabel="step")
        limits = _limits(ranges, name)
        if limits is not None:
            ax.set_ylim(*limits)


def plot_losses(steps: Sequence[int], losses: Mapping[str, Sequence[float]], show: bool = False,
                save_path: str | None = None, ranges: Ranges = None) -> Any:
    """A row of loss curves, one per loss name."""
    plt = pyplot()
    n = max(len(losses), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 2.8), squeeze=False)
    draw_losses(axes[0], steps, losses, ranges)
    return finish(fig, save_path, show)


def _as_picture(image: Tensor) -> Any:
    image = image.detach().float().cpu()
    if image.dim() == 3 and image.shape[0] in (3, 4):
        image = image.permute(1, 2, 0)
        image = (image - image.min()) / (image.max() - image.min()).clamp_min(1e-12)
    elif image.dim() == 3:
        image = image[0]
    return image.numpy()


def draw_images(axes: Sequence[Any], images: Tensor, titles: Sequence[str] = ()) -> None:
    """The first images of a batch ``(N, C, H, W)``, grey scale (colour for 3 channels), one per axis."""
    for i, (ax, image) in enumerate(zip(axes, images, strict=False)):  # not strict: the first len(axes) images
        ax.imshow(_as_picture(image), cmap="gray")
        ax.axis("off")
        if i < len(titles):
            ax.set_title(titles[i])


def plot_images(images: Tensor, save_path: str | None = None, show: bool = False) -> Any:
    """The images of a batch ``(N, C, H, W)`` side by side (each scaled to its own range)."""
    fig, axes = pyplot().subplots(1, len(images), figsize=(2 * len(images), 2.2), squeeze=False)
    draw_images(list(axes[0]), images)
    return finish(fig, save_path, show)


def plot_image_and_losses(images: Tensor, steps: Sequence[int], losses: Mapping[str, Sequence[float]],
                          save_path: str | None = None, ranges: Ranges = None, show: bool = False,
                          max_images: int = 4, titles: Sequence[str] = ()) -> Any:
    """Up to ``max_images`` images in the top row (with ``titles``), the loss curves below."""
    plt = pyplot()
    n_images = min(len(images), max_images)
    n_cols = max(n_images, len(losses), 1)
    fig, axes = plt.subplots(2, n_cols, figsize=(2.8 * n_cols, 5.6), squeeze=False)
    draw_images(axes[0][:n_images], images, titles)
    draw_losses(axes[1], steps, losses, ranges)
    for ax in list(axes[0][n_images:]) + list(axes[1][len(losses):]):
        ax.axis("off")
    return finish(fig, save_path, show)


def plot_spectrum(images: Tensor, save_path: str | None = None, show: bool = False) -> Any:
    """Radial power spectrum of ``images`` on log-log axes (DC left out)."""
    plt = pyplot()
    freqs, power = radial_power_spectrum(images)
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.loglog(freqs[1:].numpy(), power[1:].clamp_min(1e-30).numpy())
    ax.set(xlabel="spatial frequency (cycles / image)", ylabel="power", title="spatial frequency spectrum")
    return finish(fig, save_path, show)
