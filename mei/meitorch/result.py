"""The result of one generation: the MEI(s), the loss history, snapshots, and plots."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..engine import rng
from . import plots


def _loss_history(log: Mapping[str, Any]) -> tuple[list[int], dict[str, list[float]]]:
    steps, records = log["losses"]["times"], log["losses"]["values"]
    names = list(dict.fromkeys(name for record in records for name in record))
    history = {}
    for name in names:
        values = [record[name].reshape(()).float() for record in records if name in record]
        history[name] = torch.stack([v.to(values[0].device) for v in values]).cpu().tolist() if values else []
    return list(steps), history


class MEIResult:
    """What a ``generate_*_mei`` call returns.

    Attributes:
        mode (str): ``"pixel"``, ``"variational"`` or ``"transformation"``.
        mei (Tensor): the final images on the CPU: the ``n_samples`` images (pixel), the mean image
            ``(1, C, H, W)`` (variational), or one batch of ``n_samples`` samples (transformation).
        losses (dict[str, list[float]]): every scalar the operation returned (``objective`` first), plus
            ``diversity`` when ``diverse`` is on, one value per step.
        steps (list[int]): the step of each loss value.
        images (list[Tensor]): snapshots every ``save_every`` steps (and at the last step).
        image_steps (list[int]): their steps.
        params (Tensor): the optimized tensor itself, as the engine held it.
        config (dict): the complete config used (defaults filled in, schedules bound).
        seed (int): the seed of the run.
        stddev (Tensor | None): the standard deviation image (variational only).
        transform (nn.Module | None): the trained generative network (transformation only).
        pointrf (Tensor | None): with ``gradient_rf``, the gradient of the operation's objective at a blank
            image ``(C, H, W)``, the linear model that was optimized.
    """

    def __init__(self, mode: str, mei: Tensor, losses: dict[str, list[float]], steps: list[int],
                 images: list[Tensor], image_steps: list[int], params: Tensor, config: dict[str, Any],
                 seed: int, parameterization: Any = None) -> None:
        self.mode, self.mei, self.losses, self.steps = mode, mei, losses, steps
        self.images, self.image_steps, self.params, self.config, self.seed = images, image_steps, params, config, seed
        self._parameterization = parameterization
        self.stddev: Tensor | None = None
        self.transform: nn.Module | None = None
        self.pointrf: Tensor | None = None
        if mode == "variational":
            self.stddev = parameterization.stddev(params, config["iter_n"] - 1).detach().cpu()
        elif mode == "transformation":
            self.transform = parameterization.trained_network(params)

    @classmethod
    def from_run(cls, mode: str, settings: dict[str, Any], parameterization: Any, params: Tensor,
                 log: Mapping[str, Any], seed: int) -> "MEIResult":
        """Collect a finished engine run (``params`` = its final input, ``log`` = its tracker's log)."""
        steps, losses = _loss_history(log)
        with rng.seeded([seed]):
            with torch.no_grad():
                mei = parameterization.point(params).detach().cpu()
        return cls(mode, mei, losses, steps, list(log["images"]["values"]), list(log["images"]["times"]),
                   params, settings, seed, parameterization)

    @property
    def mean(self) -> Tensor:
        """The mean image (variational) or the mean of :attr:`mei` over its images."""
        return self.mei if self.mode == "variational" else self.mei.mean(dim=0, keepdim=True)

    def sample(self, n: int, seed: int = 0) -> Tensor:
        """``n`` new samples from the learned distribution (variational, transformation modes)."""
        if self.mode == "pixel":
            raise ValueError("a pixel MEI is not a distribution; use result.mei")
        with rng.seeded([seed]), torch.no_grad():
            return self._parameterization.decode(self.params, self.config["iter_n"] - 1, n).detach().cpu()

    def plot_losses(self, show: bool = False, save_path: str | None = None, ranges: plots.Ranges = None) -> Any:
        """Loss curves, one panel per loss. ``ranges``: ``(low, high)`` y-limits for all panels, or a dict
        loss name -> ``(low, high)``. Returns the matplotlib figure."""
        return plots.plot_losses(self.steps, self.losses, show, save_path, ranges)

    def plot_image_and_losses(self, save_path: str | None = None, ranges: plots.Ranges = None,
                              show: bool = False) -> Any:
        """The MEI(s) above the loss curves (variational: the mean and the standard deviation). Returns the
        matplotlib figure."""
        if self.stddev is not None:
            return plots.plot_image_and_losses(torch.cat([self.mei, self.stddev]), self.steps, self.losses,
                                               save_path, ranges, show, titles=("mean", "stddev"))
        return plots.plot_image_and_losses(self.mei, self.steps, self.losses, save_path, ranges, show)

    def plot_spatial_frequency_spectrum(self, save_path: str | None = None, show: bool = False) -> Any:
        """Radial power spectrum of the MEI(s), log-log. Returns the matplotlib figure."""
        return plots.plot_spectrum(self.mei, save_path, show)

    def __repr__(self) -> str:
        final = self.losses.get("objective", [float("nan")])[-1] if self.losses.get("objective") else float("nan")
        return (f"MEIResult(mode={self.mode!r}, mei shape={tuple(self.mei.shape)}, steps={len(self.steps)}, "
                f"final objective={final:.4g})")
