"""meitorch's ``LinearMEI`` (``meitorch.linearmei``): the most exciting Gabor of a grid (:meth:`best_gabor`), the
Gabor of optimal parameters (:meth:`optimal_gabor`) and the white-noise receptive field
(:meth:`white_noise_analysis`). :class:`~mei.meitorch.mei.MEI` is a ``LinearMEI`` too, as in meitorch.

The operation takes a batch ``(N, C, H, W)`` and returns the activation: one value per image, one value for
the batch (then the images are evaluated one at a time), or meitorch's dict of losses (its ``activation``,
else minus its ``objective``). Gabors are evaluated many per forward, without gradient.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..engine import rng
from ..engine.kernels import gaussian_blur
from ..optimization import MEI as Engine
from ..optimization import optimize
from ..stoppers import NumIterations
from .objective.gabor import (
    PARAMETERS,
    default_gabor_limits,
    default_gabor_ranges,
    gabors,
    grid,
    grid_size,
    match_stats,
)
from .result import MEI_image

CHUNK = 512
"""Gabors (or noise images) per forward."""


def activations(operation: Callable[[Tensor], Any], images: Tensor) -> Tensor:
    """The operation's activation of each image of ``images`` ``(N, C, H, W)``, as a float tensor ``(N,)``.

    An output with one value per image is used as it is; a single value for a batch of several images means
    the operation reduces over the batch, and the images are evaluated one at a time.
    """
    out = activation_tensor(operation(images))
    if out.numel() == images.shape[0]:
        return out.reshape(-1)
    if out.numel() == 1:
        return torch.stack([activation_tensor(operation(image[None])).reshape(()) for image in images])
    raise ValueError(f"the operation returned {out.numel()} values for {images.shape[0]} images; return one per "
                     "image or one for the batch")


def activation_tensor(out: Any) -> Tensor:
    """An operation's output as a detached float CPU tensor: a tensor as it is, a dict's ``activation`` (else
    minus its ``objective``, meitorch's minimized loss)."""
    if isinstance(out, Mapping):
        if "activation" in out:
            out = out["activation"]
        elif "objective" in out:
            out = -torch.as_tensor(out["objective"])
        else:
            raise TypeError(f"the operation returned a dict without 'activation' or 'objective': {sorted(out)}")
    if not isinstance(out, Tensor):
        out = torch.as_tensor(out)
    return out.detach().float().cpu()


class LinearMEI:
    """Gabor and white-noise analyses of an operation (meitorch's ``LinearMEI``).

    Args:
        operation (Callable): ``batch (N, C, H, W) -> activation`` (see the module docs).
        shape (tuple[int, int, int], optional): one image ``(C, H, W)``. Default: ``(1, 28, 28)``.
        bias, scale (float, optional): a Gabor ``g`` is shown as ``(g - bias) / scale``. Default: 0, 1.
        device (str | torch.device, optional): where the operation runs. Default: ``"cpu"``.

    Attributes:
        ranges (dict): the grid of :meth:`best_gabor` (meitorch's default, ``height``/``width`` of ``shape``).
        limits (list): the bounds of :meth:`optimal_gabor`, one ``(low, high)`` per Gabor parameter.
    """

    def __init__(self, operation: Callable[[Tensor], Any], shape: Sequence[int] = (1, 28, 28), bias: float = 0,
                 scale: float = 1, device: str | torch.device = "cpu") -> None:
        if not callable(operation):
            raise TypeError(
                f"operation must be a callable taking a batch of inputs, got {type(operation).__name__}; "
                "pass the function itself (MEI(operation=operation, ...)), not operation()"
            )
        shape = tuple(shape)
        if len(shape) != 3 or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape):
            raise ValueError(f"shape must be (channels, height, width) of positive ints, got {shape}")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale == 0:
            raise ValueError(f"scale must be a non-zero number, got {scale!r}")
        self.operation, self.shape, self.device = operation, shape, torch.device(device)
        self.bias, self.scale = bias, scale
        self.ranges: dict[str, Any] = copy.deepcopy(default_gabor_ranges)
        self.limits: list[tuple[float, float]] = list(default_gabor_limits)
        self.set_gabor_ranges(height=[shape[-2]], width=[shape[-1]])

    @property
    def img_shape(self) -> tuple[int, ...]:
        """meitorch's name of :attr:`shape`."""
        return self.shape

    # ---------------------------------------------------------------------------------------------- Gabors

    def _shown(self, images: Tensor) -> Tensor:
        """Gabors ``(N, H, W)`` as the operation sees them: ``(N, 1, H, W)``, ``(g - bias) / scale``."""
        return ((images - self.bias) / self.scale)[:, None].to(self.device)

    def _evaluate(self, images: Tensor) -> Tensor:
        with torch.no_grad():
            return activations(self.operation, self._shown(images))

    def _check_grey(self, what: str) -> None:
        if self.shape[0] != 1:
            raise ValueError(f"Only grayscale images (1 channel) are supported for {what}; the shape is {self.shape}")

    def best_gabor(self, gabor_loader: Sequence[Mapping[str, Any]] | None = None) -> MEI_image:
        """The most exciting Gabor of a grid.

        Args:
            gabor_loader (list, optional): Gabors ``{"image": (H, W), "params": {...}}`` (e.g. of
                :func:`~mei.meitorch.objective.gabor.create_gabor_loader`). Default: the grid :attr:`ranges`,
                generated and evaluated :data:`CHUNK` at a time.

        Returns:
            MEI_image: ``mei`` is the best Gabor as the operation saw it, ``(1, 1, H, W)``; ``result_dict`` holds
            its ``activation`` and parameters (``phase``, ``wavelength``, ``orientation``, ``sigma``, ``dy``,
            ``dx``) and the raw ``gabor``.

        Raises:
            ValueError: the images have more than one channel (as in meitorch).
        """
        self._check_grey("best_gabor")
        best: tuple[float, Tensor, dict[str, Any]] | None = None
        n = len(gabor_loader) if gabor_loader is not None else grid_size(self.ranges)
        for images, params in tqdm(self._chunks(gabor_loader), desc="Evaluating gabors", leave=False,
                                   total=-(-n // CHUNK)):
            values = self._evaluate(images)
            k = int(torch.argmax(values))
            if best is None or float(values[k]) > best[0]:
                best = (float(values[k]), images[k], params[k])
        if best is None:
            raise ValueError("the Gabor grid is empty")
        activation, image, params = best
        info = {"activation": activation, **{name: params[name] for name in PARAMETERS if name in params},
                "gabor": image.clone()}
        return MEI_image.from_image(self._shown(image[None])[0].cpu(), info)

    def _chunks(self, loader: Sequence[Mapping[str, Any]] | None) -> Iterable[tuple[Tensor, list[dict[str, Any]]]]:
        if loader is not None:
            items = list(loader)
            for start in range(0, len(items), CHUNK):
                part = items[start:start + CHUNK]
                yield (torch.stack([torch.as_tensor(item["image"], dtype=torch.float32) for item in part]),
                       [dict(item["params"]) for item in part])
            return
        height, width = int(self.ranges["height"][0]), int(self.ranges["width"][0])
        if list(self.ranges["height"]) != [height] or list(self.ranges["width"]) != [width]:
            raise ValueError("the grid's height and width must be single values (the image's)")
        combos = grid({k: v for k, v in self.ranges.items() if k not in ("height", "width")})
        total = grid_size(self.ranges)
        for start in range(0, total, CHUNK):
            chunk = [next(combos) for _ in range(min(CHUNK, total - start))]
            table = torch.tensor([[float(p[name]) for name in PARAMETERS] for p in chunk], dtype=torch.float64)
            for p in chunk:
                p.update(height=height, width=width)
            yield gabors(table, height, width), chunk

    def optimal_gabor(self, target_mean: float | None = None, target_contrast: float | None = None,
                      iter_n: int = 200, lr: float = 0.05) -> MEI_image:
        """The Gabor of locally optimal parameters within :attr:`limits`.

        meitorch searches the parameters with simulated annealing and Nelder-Mead (SciPy). Here the search starts
        from :meth:`best_gabor` of the grid and climbs the activation's gradient with respect to the six
        parameters (the Gabor is differentiable in them; the translation is continuous during the search) on
        the package's engine, with Adam, each parameter scaled to its range and clamped to its limits.

        Args:
            target_mean, target_contrast (float, optional): give both to search among Gabors of this mean and
                standard deviation (each Gabor adjusted by
                :func:`~mei.meitorch.objective.gabor.match_stats` within ``[-1, 1]``, as ``create_gabor``
                does); the returned image has them too. Default: None (the Gabors as they are).
            iter_n (int, optional): steps of the search. Default: 200.
            lr (float, optional): Adam's rate in units of each parameter's range. Default: 0.05.

        Returns:
            MEI_image: as :meth:`best_gabor`'s, with the optimized parameters (and ``target_mean`` /
            ``target_contrast`` in ``result_dict`` when given).

        Raises:
            ValueError: only one of ``target_mean`` / ``target_contrast`` (as ``create_gabor``), or more than
                one channel.
        """
        self._check_grey("optimal_gabor")
        if (target_mean is None) != (target_contrast is None):
            raise ValueError("If you want to adjust the mean or contrast, you must specify both.")
        targets = None if target_mean is None else (float(target_mean), float(target_contrast))  # type: ignore[arg-type]
        height, width = self.shape[-2:]

        def adjusted(images: Tensor) -> Tensor:
            if targets is None:
                return images
            return torch.stack([match_stats(image, *targets) for image in images])

        def result(params: Tensor, quantize: bool) -> MEI_image:
            image = adjusted(gabors(params[None], height, width, quantize=quantize))[0].detach()
            info = {"activation": float(self._evaluate(image[None])[0]),
                    **dict(zip(PARAMETERS, params.tolist(), strict=True)), "gabor": image}
            if targets is not None:
                info.update(target_mean=targets[0], target_contrast=targets[1])
            return MEI_image.from_image(self._shown(image[None])[0].cpu(), info)

        grid_best = self.best_gabor()
        first = torch.tensor([float(grid_best.result_dict[name]) for name in PARAMETERS], dtype=torch.float64)
        start = grid_best if targets is None else result(first, quantize=True)
        low = torch.tensor([lo for lo, _ in self.limits], dtype=torch.float64)
        span = torch.tensor([hi - lo for lo, hi in self.limits], dtype=torch.float64)

        def to_params(u: Tensor) -> Tensor:
            return low + span * u.clamp(0, 1)

        def objective(u: Tensor) -> Tensor:
            images = adjusted(gabors(to_params(u.reshape(-1, len(PARAMETERS))), height, width, quantize=False))
            return torch.as_tensor(self._differentiable(self._shown(images))).reshape(-1).mean().reshape(1).cpu()

        initial = ((first - low) / span).clamp(0, 1)[None]
        engine = Engine(objective, initial, lambda params: torch.optim.Adam(params, lr=lr),
                        postprocessing=lambda u, i_iter: u.clamp(0, 1))
        with rng.seeded([0]):
            optimize(engine, NumIterations(int(iter_n)))
        found = result(to_params(engine.current_input.to(torch.float64)[0]), quantize=False)
        if found.get_activation() < start.get_activation():  # the climb never ends below its start
            return start
        return found

    def _differentiable(self, images: Tensor) -> Any:
        out = self.operation(images)
        if isinstance(out, Mapping):
            return out["activation"] if "activation" in out else -out["objective"]
        return out

    # ---------------------------------------------------------------------------------------- white noise

    @staticmethod
    def white_noise_analysis(operation: Callable[[Tensor], Any], shape: Sequence[int], n_samples: int = 1000,
                             sigma: float = 0.6, device: str | torch.device = "cpu",
                             seed: int | None = None) -> Tensor:
        """The white-noise (reverse-correlation) receptive field of the operation.

        ``n_samples`` images of N(0, 1) noise, each smoothed by a Gaussian of ``sigma`` pixels, go through the
        operation 128 at a time; the receptive field is ``values.T @ noise / sqrt(n_samples)`` (the noise
        flattened), as meitorch computes it. For a linear operation ``<w, x>`` and ``sigma = 0`` it is
        ``sqrt(n_samples) * w`` up to sampling noise.

        Args:
            operation: ``batch (N, C, H, W) -> values`` ``(N,)`` or ``(N, K)`` (K units); meitorch drops a single
                channel and passes ``(N, H, W)``, here the batch keeps the image shape.
            shape (tuple): one image ``(C, H, W)``.
            n_samples (int, optional): number of noise images. Default: 1000.
            sigma (float, optional): smoothing of the noise in pixels (0: none). Default: 0.6.
            device (str | torch.device, optional): where the operation runs. Default: ``"cpu"``.
            seed (int, optional): seeds the noise; None draws from torch's global generator. Default: None.

        Returns:
            Tensor: ``(prod(shape),)`` for one value per image, ``(K, prod(shape))`` for K.
        """
        shape = tuple(shape)
        if int(n_samples) < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        noise = torch.randn((int(n_samples), *shape), generator=generator)
        noise = gaussian_blur(noise, float(sigma), (-1, -2), padding="reflect")
        values = []
        with torch.no_grad():
            for start in range(0, int(n_samples), 128):
                out = activation_tensor(operation(noise[start:start + 128].to(device)))
                values.append(out.reshape(min(128, int(n_samples) - start), -1))
        table = torch.cat(values).to(torch.float64)
        flat = noise.reshape(int(n_samples), -1).to(torch.float64)
        field = table.T @ flat / float(n_samples) ** 0.5
        return (field[0] if field.shape[0] == 1 else field).to(torch.float32)

    # ------------------------------------------------------------------------------------------- settings

    def set_gabor_ranges(self, **ranges: Sequence[Any]) -> None:
        """Set entries of the grid of :meth:`best_gabor`, e.g. ``set_gabor_ranges(orientation=[0, 45, 90])``."""
        unknown = sorted(set(ranges) - set(default_gabor_ranges))
        if unknown:
            raise ValueError(f"unknown Gabor parameter(s) {unknown}; known: {list(default_gabor_ranges)}")
        for key, value in ranges.items():
            self.ranges[key] = list(value)

    def set_gabor_limits(self, **limits: tuple[float, float]) -> None:
        """Set the bounds of :meth:`optimal_gabor`, e.g. ``set_gabor_limits(wavelength=(4, 12))``.

        meitorch looks the name up among the grid's keys, which start with ``height`` and ``width``, so its
        indices are off by two; here each name sets its own parameter's bound.
        """
        for key, value in limits.items():
            if key not in PARAMETERS:
                raise ValueError(f"Invalid key {key!r}; the limits are of {list(PARAMETERS)}")
            low, high = (float(v) for v in value)
            if not low < high:
                raise ValueError(f"{key}: the limits must be (low, high) with low < high, got {value!r}")
            self.limits[PARAMETERS.index(key)] = (low, high)


__all__ = ["LinearMEI", "activations", "CHUNK"]
