"""The result of one generation: the MEI(s), the loss history, snapshots, and plots.

:class:`MEIResult` is the package's result; meitorch's result classes are its subclasses of the same names,
one per mode: :class:`MEI_image` (pixel), :class:`MEI_variational`, :class:`MEI_transformation`, with
meitorch's accessors (``get_image``, ``get_samples``, ``get_activation``, ``result_dict``, ``loss_history``,
``image_history``, ``param_dict``, ``spatial_frequency``). ``MEI_result`` is meitorch's name of the base.
As in meitorch, a result class constructed with meitorch's arguments (``MEI_image(shape, n_samples, init=...,
**config)``) is an optimization not yet run, which :func:`mei.meitorch.objective.deepdraw.deepdraw` runs on the
engine and fills in; the engine holds the parameters and the optimizer while it runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..analysis.spectra import radial_power_spectrum
from ..engine import rng
from ..engine.schedule import value_at
from . import plots
from .plan import start
from .tools.base_transforms import spatial_frequency


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
        result_dict (dict): meitorch's summary of the final MEI: the operation's ``activation`` (and every
            other scalar it returns) on :attr:`mei`, ``img_mean``, ``img_std`` (and ``pointrf``).
    """

    def __init__(self, mode: str, mei: Tensor, losses: dict[str, list[float]], steps: list[int],
                 images: list[Tensor], image_steps: list[int], params: Tensor, config: dict[str, Any],
                 seed: int, parameterization: Any = None) -> None:
        self.mode, self.mei, self.losses, self.steps = mode, mei, losses, steps
        self.images, self.image_steps, self.params, self.config, self.seed = images, image_steps, params, config, seed
        self._parameterization = parameterization
        self.result_dict: dict[str, Any] = {}
        self.stddev: Tensor | None = None
        self.transform: nn.Module | None = None
        self.pointrf: Tensor | None = None
        self.device = torch.device("cpu")  # where the operation ran (set by the run)
        if mode == "variational":
            self.stddev = parameterization.stddev(params, config["iter_n"] - 1).detach().cpu()
        elif mode == "transformation":
            self.transform = parameterization.trained_network(params)

    @classmethod
    def _finished(cls, *args: Any, **kwargs: Any) -> "MEIResult":
        """An instance of ``cls`` built by :class:`MEIResult`'s constructor (the subclasses' own constructors
        take meitorch's arguments and make an optimization not yet run)."""
        result = cls.__new__(cls)
        MEIResult.__init__(result, *args, **kwargs)
        return result

    def _pending(self, mode: str, shape: Sequence[int], device: str | torch.device, config: Mapping[str, Any],
                 seed: int | None) -> None:
        """Make this object the optimization ``config`` describes, not yet run: ``mei`` is its start, the
        config is checked and complete, ``losses`` are empty; :func:`~mei.meitorch.objective.deepdraw.deepdraw`
        runs it."""
        shape, device = tuple(shape), torch.device(device)
        if len(shape) != 3:
            raise ValueError(f"shape must be one image (channels, height, width), got {shape}")
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
        settings, parameterization, initial = start(shape, device, mode, config, int(seed))
        with rng.seeded([int(seed)]), torch.no_grad():
            first = parameterization.point(initial).detach().cpu()
        MEIResult.__init__(self, mode, first, {}, [], [], [], initial, settings, int(seed), parameterization)
        self.device = device
        self.request: tuple[tuple[int, ...], torch.device, dict[str, Any]] | None = (shape, device, dict(config))

    @property
    def done(self) -> bool:
        """Whether this result holds a finished run (False for an optimization constructed and not yet run)."""
        return bool(self.steps) or getattr(self, "request", None) is None

    @classmethod
    def from_run(cls, mode: str, settings: dict[str, Any], parameterization: Any, params: Tensor,
                 log: Mapping[str, Any], seed: int) -> "MEIResult":
        """Collect a finished engine run (``params`` = its final input, ``log`` = its tracker's log); the
        result is of the mode's class (:data:`RESULT_CLASSES`) when called on :class:`MEIResult`."""
        steps, losses = _loss_history(log)
        with rng.seeded([seed]):
            with torch.no_grad():
                mei = parameterization.point(params).detach().cpu()
        result_class = RESULT_CLASSES[mode] if cls is MEIResult else cls
        return result_class._finished(mode, mei, losses, steps, list(log["images"]["values"]),
                                      list(log["images"]["times"]), params, settings, seed, parameterization)

    # ------------------------------------------------------------------------------ meitorch's accessors

    @property
    def loss_history(self) -> dict[str, list[float]]:
        """meitorch's name of :attr:`losses`."""
        return self.losses

    @property
    def image_history(self) -> list[Tensor]:
        """meitorch's name of :attr:`images`."""
        return self.images

    @property
    def param_dict(self) -> dict[str, Any]:
        """meitorch's name of :attr:`config`."""
        return self.config

    @property
    def img_shape(self) -> tuple[int, ...]:
        """One image's shape ``(C, H, W)``."""
        return tuple(self.mei.shape[1:])

    @property
    def n_samples(self) -> Any:
        """Samples per step: ``n_samples`` (pixel, transformation) or ``n_samples_per_batch`` (variational)."""
        return self.config.get("n_samples", self.config.get("n_samples_per_batch"))

    def get_image(self) -> Tensor:
        """The MEI: the images (pixel), the mean (variational), one batch of samples (transformation)."""
        return self.mei

    def get_samples(self) -> Tensor:
        """Samples as one step drew them: the images (pixel), ``n_samples_per_batch`` new samples (variational),
        ``n_samples`` new samples (transformation); seeded by the run's seed."""
        if self.mode == "pixel":
            return self.mei
        return self.sample(math.prod(_as_tuple(self.n_samples)), seed=self.seed)

    def get_activation(self) -> Any:
        """The operation's ``activation`` on the final MEI (None if the operation returns none)."""
        return self.result_dict.get("activation")

    def update_loss_history(self, loss_dict: Mapping[str, Any]) -> None:
        """Append one step's losses (numbers or tensors, a tensor by its mean) to :attr:`losses`, as meitorch's
        loop does after each step (the engine's runs record them themselves)."""
        for name, value in loss_dict.items():
            if isinstance(value, Tensor):
                value = value.detach().float().mean()
            self.losses.setdefault(name, []).append(float(value))

    def generate_random_noise(self, shape: Sequence[int], seed: int | None = None) -> Tensor:
        """meitorch's start image: ``N(bias, scale / 16)`` noise of ``shape``, clipped to ``[-1, 1]`` (the runs
        of this package start from ``bias + scale * N(0, 1)`` instead); ``seed`` seeds it (None: torch's global
        generator)."""
        bias = float(value_at(self.config.get("bias", 0.0), 0))
        scale = float(value_at(self.config.get("scale", 1.0), 0))
        generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        return (bias + scale / 16 * torch.randn(tuple(shape), generator=generator)).clamp(-1, 1)

    def show_results(self) -> None:
        """Print :attr:`result_dict`, one entry a line."""
        for key, value in self.result_dict.items():
            print(key, value)

    def show_image(self, save_path: str | None = None, show: bool = True) -> Any:
        """Show the MEI(s) side by side (meitorch's ``show_image``); returns the matplotlib figure."""
        return plots.plot_images(self.mei, save_path, show)

    def save_image(self, path: str) -> Any:
        """Write the MEI(s) side by side as a PNG to ``path`` (meitorch's ``save_image``, which writes one file
        per image over the same path); returns the figure."""
        return plots.plot_images(self.mei, path, False)

    def spatial_frequency(self) -> tuple[Tensor, Tensor, Tensor]:
        """meitorch's ``spatial_frequency``: the centred 2-D Fourier magnitude of the first MEI, ``(freq_cols,
        freq_rows, magnitude (C, H, W))`` (:func:`~mei.meitorch.tools.base_transforms.spatial_frequency`; no
        plot). :meth:`radial_spectrum` is the radial power spectrum of all of them."""
        return spatial_frequency(self.mei[0])

    def radial_spectrum(self) -> tuple[Tensor, Tensor]:
        """Radial power spectrum of the MEI(s): ``(frequencies, power)``
        (:func:`mei.meitorch.analyze.radial_power_spectrum`)."""
        return radial_power_spectrum(self.mei)

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
        return (f"{type(self).__name__}(mode={self.mode!r}, mei shape={tuple(self.mei.shape)}, "
                f"steps={len(self.steps)}, final objective={final:.4g})")


def _as_tuple(value: Any) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),)


class MEI_image(MEIResult):  # noqa: N801 - meitorch's name
    """A pixel MEI (meitorch's ``MEI_image``): :attr:`mei` holds the ``n_samples`` images.

    ``MEI_image(shape, n_samples=1, init=None, device="cpu", seed=None, **config)`` is, as in meitorch, the
    optimization of ``n_samples`` images of ``shape`` with the pixel mode's config keys (``docs/meitorch.md``),
    not yet run: :attr:`mei` (meitorch's :attr:`image`) is the start, ``init`` or noise;
    :func:`~mei.meitorch.objective.deepdraw.deepdraw` runs it. ``generate_pixel_mei`` and :meth:`from_image`
    return finished ones.
    """

    def __init__(self, shape: Sequence[int], n_samples: int = 1, init: Any = None, device: str | torch.device = "cpu",
                 seed: int | None = None, **config: Any) -> None:
        self._pending("pixel", shape, device, {**config, "n_samples": n_samples,
                                               **({} if init is None else {"init": init})}, seed)

    @property
    def image(self) -> Tensor:
        """meitorch's name of :attr:`mei`."""
        return self.mei

    @classmethod
    def from_image(cls, image: Tensor, result_dict: Mapping[str, Any] | None = None,
                   config: Mapping[str, Any] | None = None) -> "MEI_image":
        """A result holding ``image`` (``(C, H, W)`` or ``(n, C, H, W)``) without an optimization run (no losses)."""
        images = image[None] if image.dim() == 3 else image
        images = images.detach().cpu().to(torch.float32)
        result = cls._finished("pixel", images, {}, [], [], [], images[None].clone(), dict(config or {}), 0)
        result.result_dict = dict(result_dict or {})
        return result  # type: ignore[return-value]


class MEI_variational(MEIResult):  # noqa: N801 - meitorch's name
    """A variational MEI (meitorch's ``MEI_variational``): :attr:`mei` is the mean, :attr:`stddev` the standard
    deviation, :meth:`sample` draws from the distribution.

    ``MEI_variational(distribution, img_shape, init=None, device="cpu", seed=None, **config)``: the optimization
    of a ``distribution`` (``"normal"`` or ``"laplace"``) over images, not yet run (see :class:`MEI_image`).
    """

    def __init__(self, distribution: str, img_shape: Sequence[int], init: Any = None,
                 device: str | torch.device = "cpu", seed: int | None = None, **config: Any) -> None:
        self._pending("variational", img_shape, device, {**config, "distribution": distribution,
                                                         **({} if init is None else {"init": init})}, seed)


class MEI_transformation(MEIResult):  # noqa: N801 - meitorch's name
    """A transformation MEI (meitorch's ``MEI_transformation``): :attr:`transform` is the trained network,
    :attr:`mei` one batch of its samples, :meth:`sample` draws more.

    ``MEI_transformation(transform, img_shape, device="cpu", seed=None, **config)``: the training of the
    generative network ``transform`` (copied, never changed), not yet run (see :class:`MEI_image`).
    """

    def __init__(self, transform: nn.Module, img_shape: Sequence[int], device: str | torch.device = "cpu",
                 seed: int | None = None, **config: Any) -> None:
        self._pending("transformation", img_shape, device, {**config, "transform": transform}, seed)


MEI_result = MEIResult
"""meitorch's name of the results' base class."""

RESULT_CLASSES: dict[str, type[MEIResult]] = {
    "pixel": MEI_image, "variational": MEI_variational, "transformation": MEI_transformation,
}

__all__ = ["MEIResult", "MEI_result", "MEI_image", "MEI_variational", "MEI_transformation", "RESULT_CLASSES"]
