"""Feature accentuation (Hamblin et al. 2024, "Feature accentuation: revealing 'what' features respond to in
natural images"): start from a real image and drive a feature while staying close to the image *in a layer's
space*.

The objective of each image is ``target(x) - penalty * d(x)^2`` with ``d(x)`` the root-mean-square difference
between the activations of ``layer`` for ``x`` and for the seed image. With ``bound`` the distance is also a
hard constraint: after every step the image is pulled back along the segment towards the seed image (a
bisection on the largest feasible fraction of the step, a few forwards without gradient), so ``d(x) <= bound``
holds at every step, not only on average. Everything runs as one engine run (:func:`mei.optimization.optimize`):
the objective reads the target and the layer in the same forward pass, the bound is the run's postprocessing.

With robustness transforms (Hamblin et al. apply them during accentuation), each step draws random transforms
(and several views, :class:`mei.transforms.Views`) and applies the *same* draw to the image and to the seed
image (they are stacked along the channels, so every spatial transform moves both alike): the target is read
on the transformed image and the penalty compares the transformed image with the equally transformed seed, in
one forward of both. The bound and the reported distance stay those of the untransformed image.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple, cast

import torch
from torch import Tensor, nn

from ..engine import rng
from ..engine.hooks import ModuleOutputs, capture
from ..methods import evaluation_mode
from ..optim.images import FFTImage, ImageParameterization, NaturalImage, PixelImage, _squash
from ..optim.optimization import RenderedMEI
from ..optimization import State, optimize
from ..stoppers import NumIterations
from ..transforms import Views
from .targets import TargetObjective

__all__ = ["accentuate", "Accentuation", "LayerDistance", "AccentuationObjective", "PairedTransform"]


class Accentuation(NamedTuple):
    """What :func:`accentuate` returns.

    Attributes:
        images (Tensor): the accentuated images ``(N, C, H, W)`` on the CPU.
        history (Tensor): the target's value per step and image ``(steps, N)`` (without the penalty).
        distance (Tensor): the layer distance ``d`` to the seed image per step and image ``(steps, N)``
            (after the step and the bound).
    """

    images: Tensor
    history: Tensor
    distance: Tensor


class LayerDistance(nn.Module):
    """Root-mean-square difference of ``layer``'s activations from those of a reference input, per image.

    Args:
        model (nn.Module): the network.
        layer (str): the layer's name (``"input"``: the model's input).
        reference (Tensor): the reference input ``(N, ...)``; its activations are computed once.
    """

    reference_activation: Tensor

    def __init__(self, model: nn.Module, layer: str, reference: Tensor) -> None:
        super().__init__()
        self.model, self.layer = model, layer
        with torch.no_grad():
            self.register_buffer("reference_activation", self.activation(reference).detach().clone())

    def activation(self, x: Tensor) -> Tensor:
        with capture(self.model, [self.layer]) as outputs:
            self.model(x)
        return outputs[self.layer]

    def squared(self, activation: Tensor, reference: Tensor | None = None) -> Tensor:
        """``d^2`` from an activation of ``layer`` (rows = images) to the seed's, or to ``reference`` (the
        activation of the seed as transformed alike, same rows); differentiable also where ``d = 0``."""
        reference = self.reference_activation if reference is None else reference
        return (activation - reference).reshape(activation.shape[0], -1).pow(2).mean(dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.squared(self.activation(x)).sqrt()


class AccentuationObjective(nn.Module):
    """``target(x) - penalty * d(x)^2`` per image, from one forward pass that reads both layers.

    Its input is either the images ``(rows, C, H, W)`` (``d`` to the seed image's activation; the final score)
    or, with robustness transforms, the images and the seed images as transformed alike, stacked along the
    channels ``(rows, 2 C, H, W)`` (:class:`PairedTransform`): then both halves run in one forward and ``d``
    compares each transformed image with its transformed seed.

    Args:
        target (TargetObjective): the feature.
        distance (LayerDistance): the layer distance to the seed image.
        penalty (float): weight of the squared distance, >= 0.
        channels (int, optional): the images' channels when the input holds stacked pairs (robustness
            transforms, :class:`PairedTransform`). Default: none (the input holds the images only).
    """

    def __init__(self, target: TargetObjective, distance: LayerDistance, penalty: float,
                 channels: int | None = None) -> None:
        super().__init__()
        self.target, self.distance, self.penalty = target, distance, float(penalty)
        self.channels = channels
        self.last: tuple[Tensor, Tensor] | None = None  # (target value, distance) of the latest forward, per row

    def forward(self, x: Tensor) -> Tensor:
        layers = [*self.target.layers, self.distance.layer]
        rows = x.shape[0]
        # stacked pairs (a training step with transforms), or the images alone (the final score)
        paired = self.channels is not None and x.dim() > 1 and x.shape[1] == 2 * self.channels
        if paired:  # image and seed transformed alike: one forward of both
            x = torch.cat([x[:, :self.channels], x[:, self.channels:]], dim=0)
        with capture(self.target.model, layers) as outputs:
            self.target.model(x)
        if paired:
            seeds = outputs[self.distance.layer][rows:].detach()
            outputs = ModuleOutputs(self.target.model, {key: value[:rows] for key, value in outputs.items()})
            squared = self.distance.squared(outputs[self.distance.layer], seeds)
        else:
            squared = self.distance.squared(outputs[self.distance.layer])
        value = self.target.from_outputs(outputs, x.device)
        self.last = (value.detach(), squared.detach().sqrt())
        return value - self.penalty * squared if self.penalty else value


class PairedTransform:
    """The robustness transforms applied to each image and its seed image alike: both are stacked along the
    channels (``(N, 2 C, H, W)``), so one random draw moves both, and ``Views`` tiles both; the objective splits
    them again (:class:`AccentuationObjective`).

    Args:
        views (Views): the views and the transforms (spatial ones: jitter, affine, crops; channel-wise ones
            would mix image and seed).
        seed_images (Tensor): the seed images as rendered ``(N, C, H, W)``.
    """

    def __init__(self, views: Views, seed_images: Tensor) -> None:
        self.views, self.seed_images = views, seed_images.detach()

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        return self.views(torch.cat([x, self.seed_images.to(x.dtype)], dim=1), i_iter)


class _Bound:
    """Postprocessing that keeps ``d(render(p)) <= bound``: each image too far from the seed is moved back to
    ``p0 + t (p - p0)`` with the largest feasible ``t`` of a bisection (``d`` is 0 at ``t = 0``)."""

    def __init__(self, render: Callable[[Tensor], Tensor], distance: LayerDistance, start: Tensor, bound: float,
                 iterations: int = 20) -> None:
        self.render, self.distance, self.start, self.bound = render, distance, start.detach().clone(), bound
        self.iterations = iterations

    def __call__(self, p: Tensor, i_iter: int) -> Tensor:
        with torch.no_grad():
            over = self.distance(self.render(p)) > self.bound
            if not bool(over.any()):
                return p
            shape = (-1, *([1] * (p.dim() - 1)))
            low, high = torch.zeros(p.shape[0], device=p.device), torch.ones(p.shape[0], device=p.device)
            for _ in range(self.iterations):
                middle = (low + high) / 2
                fine = self.distance(self.render(self.start + middle.view(shape) * (p - self.start))) <= self.bound
                low, high = torch.where(fine, middle, low), torch.where(fine, high, middle)
            fraction = torch.where(over, low, torch.ones_like(low)).view(shape)
            return self.start + fraction * (p - self.start)


class _Log:
    reads_input = False

    def __init__(self, objective: AccentuationObjective, distance: LayerDistance, render: Callable) -> None:
        self.objective, self.distance, self.render = objective, distance, render
        self.values: list[Tensor] = []
        self.distances: list[Tensor] = []

    def track(self, state: State) -> None:
        assert self.objective.last is not None
        value, n_images = self.objective.last[0], state.n_images
        self.values.append(value.reshape(-1, n_images).mean(dim=0))  # the mean over the views
        with torch.no_grad():
            self.distances.append(self.distance(self.render(state.post_processed_input)))


def accentuate(model: nn.Module, image: Tensor, target: str, *, layer: str, penalty: float = 1.0,
               bound: float | None = None, steps: int = 128, lr: float = 0.02, optimizer: Any = None,
               param: str = "fft", squash: str = "sigmoid", decorrelate: bool = True,
               transforms: Sequence[Callable[[Tensor, int], Tensor]] | None = None, views: int = 1,
               seed: int = 0, device: str | torch.device | None = None) -> Accentuation:
    """Accentuate ``target`` in the real ``image`` while staying close to it in ``layer``'s space.

    Args:
        model (nn.Module): the network (eval mode during the run, restored afterwards).
        image (Tensor): seed image(s) ``(N, C, H, W)`` (or ``(C, H, W)``) in the range of the squash
            ([0, 1] for ``"sigmoid"``/``"clamp"``).
        target (str): the feature, a target string (:mod:`mei.featurevis.targets`), e.g. ``"conv3:12"``.
        layer (str): the layer whose activations must stay close to the seed's (Hamblin et al. use an
            intermediate layer; ``"input"`` means pixel space).
        penalty (float, optional): weight of the squared layer distance. Default: 1.
        bound (float, optional): largest layer distance allowed at any step (a hard constraint). Default: none.
        steps (int, optional): Default: 128.
        lr (float, optional): learning rate. Default: 0.02.
        optimizer (optional): a torch optimizer class (given ``lr``) or a factory. Default: Adam.
        param (str, optional): ``"fft"`` (the seed's spectrum, 1/f-scaled steps, as Hamblin et al.) or
            ``"pixel"``. Default: ``"fft"``.
        squash (str, optional): ``"sigmoid"``, ``"clamp"`` or ``"none"``. Default: ``"sigmoid"``.
        decorrelate (bool, optional): KLT colour decorrelation for 3-channel images. Default: True.
        transforms (list, optional): robustness transforms ``(x, i_iter) -> x`` applied at every step to the
            image and to the seed image alike (spatial ones, e.g. ``mei.transforms.Jitter``,
            ``mei.transforms.RandomAffine``, or :func:`~mei.featurevis.render.standard_transforms`); the target is
            read on the transformed image and the penalty compares it with the transformed seed. The bound and
            the reported distance are of the untransformed image. Default: none.
        views (int, optional): transformed views per step, averaged (:class:`mei.transforms.Views`). Default: 1.
        seed (int, optional): the random transforms of image ``k`` draw from the stream seeded ``seed + k``; the
            caller's RNG is untouched. Default: 0.
        device (str or torch.device, optional): Default: the model's device.

    Returns:
        Accentuation: ``(images, history, distance)``.
    """
    if penalty < 0 or (bound is not None and bound <= 0):
        raise ValueError(f"penalty must be >= 0 and bound > 0, got penalty={penalty}, bound={bound}")
    if param not in ("fft", "pixel"):
        raise ValueError(f"param must be 'fft' or 'pixel', got {param!r}")
    chain = list(transforms or ())
    view = Views(views, cast(Any, chain)) if chain or views != 1 else None
    originals = (image.unsqueeze(0) if image.dim() == 3 else image).detach().float()
    if device is None:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
    originals = originals.to(device)
    n_images, channels = originals.shape[:2]
    streams = rng.seeded([int(seed) + k for k in range(n_images)], devices=[torch.device(device)])
    with streams, evaluation_mode(model):
        colour: Literal["default"] | None = "default" if decorrelate else None
        inverse = _squash(squash)[1]  # NaturalImage takes init as captum does (squash not inverted)
        assert inverse is not None
        module = NaturalImage(tuple(originals.shape[-2:]), channels=channels, batch=n_images, init=inverse(originals),
                              parameterization=FFTImage if param == "fft" else PixelImage, squash_func=squash,
                              decorrelation_module=colour).to(device)
        parameterization: ImageParameterization = module
        render = parameterization.render
        start = parameterization.param.detach().clone()
        with torch.no_grad():
            reference = render(start)  # the seed as the chain renders it (the squash's inverse is clipped)
        distance = LayerDistance(model, layer, reference)
        objective = AccentuationObjective(TargetObjective(model, target), distance, penalty,
                                          channels=channels if view is not None else None)
        factory = (functools.partial(torch.optim.Adam, lr=lr) if optimizer is None else
                   functools.partial(optimizer, lr=lr) if isinstance(optimizer, type) else optimizer)
        postprocessing = _Bound(render, distance, start, float(bound)) if bound is not None else None
        parts: dict[str, Any] = {} if postprocessing is None else {"postprocessing": postprocessing}
        if view is not None:
            parts["transform"] = PairedTransform(view, reference)
        mei = RenderedMEI(objective, start, factory, render=render, **parts)
        log = _Log(objective, distance, render)
        optimize(mei, NumIterations(int(steps)), tracker=log)  # type: ignore[arg-type]
        with torch.no_grad():
            images = render(mei.current_input).detach().cpu()
    return Accentuation(images, torch.stack(log.values).cpu(), torch.stack(log.distances).cpu())
