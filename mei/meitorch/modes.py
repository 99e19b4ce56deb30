"""What the engine optimizes in each mode, and how that becomes the images the operation sees.

The engine optimizes one tensor whose first dimension is "images"; here it always holds one entry, the
parameters of the whole batch, and the operation returns one objective for the batch:

* pixel: ``(1, n_samples, C, H, W)`` — the images themselves;
* variational: ``(1, 1 or 2, C, H, W)`` — the mean image (and the log of a learned standard deviation);
  every step draws ``n_samples_per_batch`` samples with the reparameterization trick;
* transformation: ``(1, P)`` — the P parameters of the generative network, flattened; every step feeds
  ``n_samples`` noise images through the network (with those parameters, via ``torch.func``).

Each parameterization gives ``initial()``, ``decode(x, i_iter)`` (differentiable: parameters -> images),
``point(x)`` (the images the result reports), ``precondition(grad, i_iter)`` and ``postprocess(x, i_iter)``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ..engine.component import Component
from ..engine.resolve import ConfigError
from .augment import FourierPrecondition, rescale_norm
from .noise import draw as _noise
from .tools.schedules import check_schedulable, value_at

Step = Callable[[Tensor, int], Tensor]


class ImagePostprocessing(Component):
    """``blur`` (a denoiser), then ``norm`` (rescale each image to that L2 norm), then ``clip`` (clamp to
    ``[bias - scale, bias + scale]``), applied after each step.

    Args:
        denoiser (Callable | None): one of :mod:`mei.meitorch.denoisers`, or None.
        norm (float | Schedule | None): L2 norm of each image after the step, > 0 (None: unchanged).
        clip (tuple | None): ``(bias, scale)`` (numbers or schedules) of the clamp range, or None for no clamp.
    """

    def __init__(self, denoiser: Step | None, norm: Any, clip: tuple[Any, Any] | None = None) -> None:
        self.denoiser = denoiser
        self.norm = check_schedulable("norm", norm, minimum=0, strict_minimum=True, optional=True)
        self.clip = clip

    @property
    def active(self) -> bool:
        """Whether there is anything to do (otherwise the step's result is left untouched)."""
        return self.denoiser is not None or self.norm is not None or self.clip is not None

    def __call__(self, images: Tensor, i_iter: int) -> Tensor:
        if self.denoiser is not None:
            images = self.denoiser(images, i_iter)
        norm = value_at(self.norm, i_iter)
        if norm is not None:
            images = rescale_norm(images, float(norm))
        if self.clip is not None:
            bias, scale = (float(value_at(v, i_iter)) for v in self.clip)
            images = images.clamp(bias - scale, bias + scale)
        return images


def start_images(init: Tensor, shape: tuple[int, ...]) -> Tensor:
    """The ``init`` key as a batch of ``shape`` = ``(n, C, H, W)``: one image ``(C, H, W)`` (or ``(1, C, H, W)``)
    for every sample, or exactly ``n`` of them. Raises :class:`~mei.engine.resolve.ConfigError` otherwise."""
    images = init[None] if init.dim() == len(shape) - 1 else init
    if images.dim() != len(shape) or images.shape[1:] != shape[1:] or images.shape[0] not in (1, shape[0]):
        raise ConfigError("init", f"must be one image of shape {tuple(shape[1:])} or {shape[0]} of them "
                                  f"{tuple(shape)}, got {tuple(init.shape)}")
    return images.expand(shape).clone()


class PixelImages:
    """``n_samples`` images optimized pixel by pixel, starting from ``bias + scale * N(0, 1)``."""

    def __init__(self, shape: tuple[int, ...], settings: dict[str, Any], postprocessing: ImagePostprocessing) -> None:
        self.shape, self.settings = (settings["n_samples"], *shape), settings
        self.preconditioner, self.postprocessing = FourierPrecondition(settings["precond"]), postprocessing

    def initial(self) -> Tensor:
        if self.settings.get("init") is not None:
            return start_images(self.settings["init"], self.shape)[None]
        bias, scale = value_at(self.settings["bias"], 0), value_at(self.settings["scale"], 0)
        return bias + scale * _noise((1, *self.shape), torch.device("cpu"))

    def decode(self, x: Tensor, i_iter: int) -> Tensor:
        return x[0]

    def point(self, x: Tensor) -> Tensor:
        return x[0]

    def precondition(self, grad: Tensor, i_iter: int) -> Tensor:
        return self.preconditioner(grad, i_iter)

    def postprocess(self, x: Tensor, i_iter: int) -> Tensor:
        if not self.postprocessing.active:
            return x
        return self.postprocessing(x[0], i_iter)[None]


class VariationalImages:
    """A normal or Laplace distribution over images: a mean image and a fixed or learned standard deviation.

    The learned standard deviation is parameterized by its log (so it stays positive) and starts at
    ``scale``; the mean starts at ``bias + scale * N(0, 1)``. A Laplace distribution of standard deviation
    ``s`` has scale ``s / sqrt(2)``.
    """

    def __init__(self, shape: tuple[int, ...], settings: dict[str, Any], postprocessing: ImagePostprocessing) -> None:
        self.shape, self.settings = tuple(shape), settings
        self.learned = settings["fixed_stddev"] is None
        self.laplace = settings["distribution"] == "laplace"
        self.preconditioner, self.postprocessing = FourierPrecondition(settings["precond"]), postprocessing

    def initial(self) -> Tensor:
        bias, scale = value_at(self.settings["bias"], 0), value_at(self.settings["scale"], 0)
        if self.settings.get("init") is not None:
            mean = start_images(self.settings["init"], (1, *self.shape))[None]
        else:
            mean = bias + scale * _noise((1, 1, *self.shape), torch.device("cpu"))
        if not self.learned:
            return mean
        log_std = torch.full_like(mean, math.log(max(float(scale), 1e-3)))
        return torch.cat([mean, log_std], dim=1)

    def mean(self, x: Tensor) -> Tensor:
        return x[0, :1]

    def stddev(self, x: Tensor, i_iter: int = 0) -> Tensor:
        if self.learned:
            return x[0, 1:].exp()
        return torch.full_like(x[0, :1], float(value_at(self.settings["fixed_stddev"], i_iter)))

    def decode(self, x: Tensor, i_iter: int, n_samples: int | None = None) -> Tensor:
        n_samples = n_samples or math.prod(self.settings["n_samples_per_batch"])
        noise = _noise((n_samples, *self.shape), x.device, self.laplace).to(x.dtype)
        scale = self.stddev(x, i_iter) / (math.sqrt(2) if self.laplace else 1.0)
        return self.mean(x) + scale * noise

    def point(self, x: Tensor) -> Tensor:
        return self.mean(x)

    def precondition(self, grad: Tensor, i_iter: int) -> Tensor:
        return self.preconditioner(grad, i_iter)

    def postprocess(self, x: Tensor, i_iter: int) -> Tensor:
        if not self.postprocessing.active:
            return x
        mean = self.postprocessing(x[0, :1], i_iter)
        return torch.cat([mean, x[0, 1:]], dim=0)[None]


class TransformedNoise:
    """A generative network's parameters; each step maps ``n_samples`` noise images through it.

    The network is deep-copied (the caller's module is never changed). Preconditioning acts on the
    spatial (last two) dimensions of each convolution kernel's gradient; biases are left as they are.
    """

    def __init__(self, shape: tuple[int, ...], settings: dict[str, Any], network: nn.Module) -> None:
        if not isinstance(network, nn.Module) or not any(p.requires_grad for p in network.parameters()):
            raise TypeError("transform must be a torch.nn.Module with trainable parameters, e.g. GenerativeConvNet")
        declared = getattr(network, "shape", None)
        if isinstance(declared, tuple) and declared != tuple(shape):
            raise TypeError(f"transform makes images of shape {declared}, but the MEI's shape is {tuple(shape)}")
        self.shape, self.settings = (settings["n_samples"], *shape), settings
        self.network = copy.deepcopy(network)
        self.names = [name for name, p in self.network.named_parameters() if p.requires_grad]
        params = dict(self.network.named_parameters())
        self.shapes = [params[name].shape for name in self.names]
        self.preconditioner = FourierPrecondition(settings["precond"])

    def unflatten(self, flat: Tensor) -> list[Tensor]:
        parts = flat.split([s.numel() for s in self.shapes])
        return [part.view(shape) for part, shape in zip(parts, self.shapes, strict=True)]

    def initial(self) -> Tensor:
        params = dict(self.network.named_parameters())
        return torch.cat([params[name].detach().reshape(-1).cpu() for name in self.names])[None]

    def decode(self, x: Tensor, i_iter: int, n_samples: int | None = None) -> Tensor:
        self.network.to(x.device)
        bias, scale = value_at(self.settings["bias"], i_iter), value_at(self.settings["scale"], i_iter)
        noise = bias + scale * _noise((n_samples or self.shape[0], *self.shape[1:]), x.device)
        weights = dict(zip(self.names, self.unflatten(x[0]), strict=True))
        return torch.func.functional_call(self.network, weights, (noise.to(x.dtype),))

    def point(self, x: Tensor) -> Tensor:
        return self.decode(x, 0)

    def precondition(self, grad: Tensor, i_iter: int) -> Tensor:
        parts = [self.preconditioner(g, i_iter) if g.dim() >= 3 else g for g in self.unflatten(grad[0])]
        return torch.cat([p.reshape(-1) for p in parts])[None]

    def postprocess(self, x: Tensor, i_iter: int) -> Tensor:
        return x

    def trained_network(self, x: Tensor) -> nn.Module:
        """A copy of the network holding the optimized parameters ``x``."""
        network = copy.deepcopy(self.network)
        params = dict(network.named_parameters())
        with torch.no_grad():
            for name, value in zip(self.names, self.unflatten(x[0]), strict=True):
                params[name].copy_(value)
        return network
