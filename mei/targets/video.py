"""Spatio-temporal (video) MEIs: a ready method config and a picture of a movie as frames in a row.

Videos are inputs ``(images, channels, time, height, width)``. Every component of the package works on
them: spatial ones act on the last two dimensions of every frame, temporal ones on the time dimension
(2 by default). The config from :func:`video_config` is an ordinary gradient-ascent config, so it runs
through :func:`mei.methods.gradient_ascent` and ``MEI().populate()`` exactly like an image config::

    config = video_config(shape=[1, 2, 20, 18, 18], norm=10.0, steps=200)
    mei, score, output = gradient_ascent(None, objective, config, seed=42)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor


def _spec(path: str, **kwargs: Any) -> dict[str, Any]:
    return {"path": path, "kwargs": kwargs}


def video_config(*, steps: int = 200, lr: float = 1.0, norm: float = 10.0,
                 x_min: float | Sequence[float] | None = None, x_max: float | Sequence[float] | None = None,
                 sigma: float = 0.0, sigma_time: float = 0.0, max_shift_space: int = 0, max_shift_time: int = 0,
                 smoothness: float = 0.0, time_dim: int = 2, shape: Sequence[int] | None = None,
                 device: str = "cpu", minimize: bool = False, optimizer: str = "torch.optim.SGD",
                 track_interval: int | None = None) -> dict[str, Any]:
    """A gradient-ascent method config (plain JSON) for video MEIs.

    The input starts as small noise; each step jitters it in time and space (if asked), low-passes the
    gradient in space and time (if asked), penalizes frame-to-frame change (if asked), and rescales every
    video to L2 norm ``norm`` (then clips each channel into ``[x_min, x_max]`` if given).

    Args:
        steps (int, optional): number of steps. Default: 200.
        lr (float, optional): learning rate. Default: 1.
        norm (float, optional): L2 norm of each video (all channels and frames jointly). Default: 10.
        x_min, x_max (float | list[float], optional): per-channel value range. Default: no clipping.
        sigma (float, optional): spatial Gaussian low-pass of the gradient, pixels. Default: 0 (none).
        sigma_time (float, optional): temporal Gaussian low-pass of the gradient, frames. Default: 0.
        max_shift_space (int, optional): random circular shift in space, pixels. Default: 0.
        max_shift_time (int, optional): random shift in time (edge frames repeated). Default: 0.
        smoothness (float, optional): weight of the temporal smoothness penalty. Default: 0 (none).
        time_dim (int, optional): the time dimension of the input. Default: 2.
        shape (list[int], optional): input shape ``(1, C, T, H, W)`` when there are no dataloaders.
        device (str, optional): ``"cpu"`` or ``"cuda"``. Default: ``"cpu"``.
        minimize (bool, optional): find the least-exciting video instead. Default: False.
        optimizer (str, optional): dotted path of a torch optimizer. Default: ``"torch.optim.SGD"``.
        track_interval (int, optional): record the evaluation every so many steps. Default: no tracking.
    """
    config: dict[str, Any] = {
        "device": device,
        "initial": _spec("mei.initial.RandomNormal", std=0.1),
        "optimizer": _spec(optimizer, lr=lr),
        "stopper": _spec("mei.stoppers.NumIterations", num_iterations=steps),
        "postprocessing": _spec("mei.postprocessing.ChangeNorm", norm=norm),
    }
    if x_min is not None or x_max is not None:
        if x_min is None or x_max is None:
            raise ValueError("give both x_min and x_max, or neither")
        config["postprocessing"] = _spec("mei.postprocessing.ChangeNormAndClipPerChannel", norm=norm,
                                         x_min=x_min, x_max=x_max)
    if max_shift_space or max_shift_time:
        config["transform"] = _spec("mei.transforms.SpatioTemporalJitter", max_shift_time=max_shift_time,
                                    max_shift_space=max_shift_space, time_dim=time_dim)
    if sigma or sigma_time:
        config["precondition"] = _spec("mei.preconditioners.SpatioTemporalGaussianBlur", sigma=sigma,
                                       sigma_time=sigma_time, time_dim=time_dim)
    if smoothness:
        config["regularization"] = _spec("mei.regularizers.TemporalSmoothness", weight=smoothness, dim=time_dim)
    if track_interval:
        config["objectives"] = [_spec("mei.objectives.EvaluationObjective", interval=track_interval)]
    if shape is not None:
        config["shape"] = [int(s) for s in shape]
    if minimize:
        config["minimize"] = True
    return config


def save_frames(video: Tensor, path: str | Path, *, time_dim: int = 1, every: int = 1,
                title: str | None = None, frame_seconds: float | None = None,
                row_labels: Sequence[str] | None = None) -> Path:
    """Save a movie as a PNG: its frames in a row, one row per channel, one shared symmetric colour scale.

    Args:
        video (Tensor): ``(C, T, H, W)`` (or ``(1, C, T, H, W)``) on any device.
        path (str | Path): where to write the PNG.
        time_dim (int, optional): the time dimension of the ``(C, T, H, W)`` video. Default: 1.
        every (int, optional): show every ``every``-th frame. Default: 1.
        title (str, optional): figure title. Default: none.
        frame_seconds (float, optional): duration of a frame, to label frames in seconds. Default: frame index.
        row_labels (list[str], optional): one label per channel row. Default: ``"channel c"``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    frames = video.detach().float().cpu()
    frames = frames[0] if frames.dim() == 5 else frames
    frames = frames.movedim(time_dim, 1)[:, ::max(1, int(every))]
    n_channels, n_frames = frames.shape[:2]
    if row_labels is not None and len(row_labels) != n_channels:
        raise ValueError(f"{len(row_labels)} row labels for {n_channels} channels")
    limit = float(frames.abs().max()) or 1.0
    fig, axes = plt.subplots(n_channels, n_frames, figsize=(1.1 * n_frames, 1.2 * n_channels + 0.4),
                             squeeze=False)
    for c in range(n_channels):
        for t in range(n_frames):
            ax = axes[c][t]
            ax.imshow(frames[c, t].numpy(), cmap="gray", vmin=-limit, vmax=limit)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                index = t * max(1, int(every))
                ax.set_title(f"{index * frame_seconds:.2f} s" if frame_seconds else f"t={index}", fontsize=8)
            if t == 0:
                ax.set_ylabel(row_labels[c] if row_labels else f"channel {c}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def correlation(a: Tensor, b: Tensor) -> float:
    """Pearson correlation of two tensors of the same number of entries (flattened)."""
    a, b = a.detach().flatten().double(), b.detach().flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a @ b) / (a.norm() * b.norm()).clamp_min(1e-12))


__all__ = ["video_config", "save_frames", "correlation"]
