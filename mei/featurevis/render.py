"""The one-liner: ``render_vis(model, "layer:channel")`` (lucent's call), on the project's one engine.

It builds an image parameterization, the standard robustness transforms, several views per step
(:class:`mei.transforms.Views`), the objective from a target string (:mod:`mei.featurevis.targets`), and runs
:func:`mei.optimization.optimize` on a :class:`~mei.optim.optimization.RenderedMEI` — one forward (of all views)
and one backward per step, seeded per image, the caller's RNG untouched.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, cast

import torch
from torch import Tensor, nn

from ..engine import rng
from ..methods import evaluation_mode
from ..optim.images import FFTImage, ImageParameterization, NaturalImage, PixelImage
from ..optim.optimization import RenderedMEI
from ..optimization import State, optimize
from ..stoppers import NumIterations
from ..transforms import GaussianNoise, Jitter, RandomAffine, Views
from .cppn import CPPNImage
from .maco import MACOImage
from .targets import TargetObjective

__all__ = ["render_vis", "Visualization", "make_parameterization", "standard_transforms", "PARAMETERIZATIONS",
           "DEFAULT_LR"]

PARAMETERIZATIONS: tuple[str, ...] = ("fft", "maco", "pixel", "cppn")
"""Names :func:`render_vis` accepts for ``param``."""

DEFAULT_LR: dict[str, float] = {"fft": 0.1, "maco": 0.5, "pixel": 0.05, "cppn": 0.005}
"""Adam's learning rate per parameterization when ``lr`` is not given. fft: lucent's 0.05 times the ratio of its
1/f scale to this package's (``FFTImage`` normalizes the scale to RMS 1; lucent's is about 1.5 at 128 x 128);
maco: the phase in radians; cppn: lucent's 5e-3."""


class Visualization(NamedTuple):
    """What :func:`render_vis` returns.

    Attributes:
        images (Tensor): ``(batch, C, H, W)`` in [0, 1], on the CPU.
        history (Tensor): the objective of every step and image (mean over the views), ``(steps, batch)``.
        transparency (Tensor | None): MACO's accumulated gradient magnitude ``(batch, C, H, W)`` (``None`` for
            other parameterizations).
        parameterization (nn.Module): the parameterization, holding the optimized ``param``.
    """

    images: Tensor
    history: Tensor
    transparency: Tensor | None
    parameterization: nn.Module


def make_parameterization(param: str, size: tuple[int, int], channels: int, batch: int) -> ImageParameterization:
    """A fresh parameterization by name (``"fft"``, ``"maco"``, ``"pixel"``, ``"cppn"``); draws from the engine's
    per-image streams (:mod:`mei.engine.rng`) where the caller seeded them."""
    if param == "maco":
        return MACOImage(size, channels=channels, batch=batch)
    if param == "cppn":
        return CPPNImage(size, channels=channels, batch=batch)
    if param in ("fft", "pixel"):
        parameterization = FFTImage if param == "fft" else PixelImage
        image = NaturalImage(size, channels=channels, batch=batch, parameterization=parameterization)
        with torch.no_grad():  # start from the engine's seeded streams, not the global RNG
            image.param.copy_(0.01 * rng.randn(image.param.shape))
        return image
    raise ValueError(f"param must be one of {list(PARAMETERIZATIONS)} or an image parameterization, got {param!r}")


def standard_transforms(size: tuple[int, int]) -> list[Callable[[Tensor, int], Tensor]]:
    """Robustness transforms after lucent's ``standard_transforms`` (jitter, scale, rotate, jitter), as two
    engine components: a circular :class:`~mei.transforms.Jitter` of 1/16 of the size and one batched
    :class:`~mei.transforms.RandomAffine` (zoom 0.9-1.1, rotation +-10 degrees, shift 1/32 of the size),
    then a little :class:`~mei.transforms.GaussianNoise` (0.02, as Horama's noise)."""
    side = min(size)
    return [Jitter(max(1, side // 16)), RandomAffine(0.9, 1.1, 10.0, max_shift=max(1, side // 32)),
            GaussianNoise(0.02)]


class _History:
    """The objective of every step as device tensors (one host copy at the end), and the progress bar."""

    reads_input = False  # so the engine skips its per-step copy of the input

    def __init__(self, steps: int, show: bool) -> None:
        self.values: list[Tensor] = []
        self.bar: Any = None
        if show:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=steps, desc="render_vis", unit="step", leave=False)

    def track(self, state: State) -> None:
        self.values.append(state.evaluation_tensor.reshape(-1))
        if self.bar is not None:
            self.bar.update(1)
            if state.i_iter % 16 == 0:
                self.bar.set_postfix(objective=f"{float(self.values[-1].mean()):.4g}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _optimizer(optimizer: Any, lr: float) -> Callable[[list[Tensor]], torch.optim.Optimizer]:
    if optimizer is None:
        return functools.partial(torch.optim.Adam, lr=lr)
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return functools.partial(cast(Any, optimizer), lr=lr)
    return optimizer


def _device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def render_vis(model: nn.Module, target: str | Sequence[str], *, param: str | ImageParameterization = "fft",
               size: int | tuple[int, int] = 128, channels: int = 3, batch: int | None = None, steps: int = 256,
               lr: float | None = None, optimizer: Any = None, views: int = 4,
               transforms: str | Sequence[Callable[[Tensor, int], Tensor]] | None = "standard",
               preprocess: Callable[[Tensor], Tensor] | None = None, seed: int = 0, progress: bool = True,
               device: str | torch.device | None = None) -> Visualization:
    """Visualize what ``target`` of ``model`` responds to, in one call.

    Args:
        model (nn.Module): the network (evaluated in eval mode, its training flag restored; not changed).
        target (str or list[str]): a target string (:mod:`mei.featurevis.targets`: ``"layer:channel"``,
            ``"layer:channel:center"``, ``"layer"``, ``"a:1 - 0.5*b:2"``), or one per image.
        param (str or ImageParameterization, optional): ``"fft"`` (decorrelated colour, 1/f-scaled spectrum,
            sigmoid), ``"maco"`` (:class:`~mei.featurevis.maco.MACOImage`), ``"pixel"``, ``"cppn"``
            (:class:`~mei.featurevis.cppn.CPPNImage`), or a module with ``param`` and ``render(param)``.
            Default: ``"fft"``.
        size (int or tuple[int, int], optional): image height and width. Default: 128.
        channels (int, optional): image channels. Default: 3.
        batch (int, optional): images; default one per target (several images of one target differ by seed).
        steps (int, optional): optimization steps. Default: 256.
        lr (float, optional): learning rate. Default: :data:`DEFAULT_LR` of the parameterization (0.05 otherwise).
        optimizer (optional): a torch optimizer class (given ``lr``) or a factory ``(params) -> Optimizer``.
            Default: Adam.
        views (int, optional): random views of each image per step, scored in one batched forward and
            averaged (:class:`mei.transforms.Views`). Default: 4.
        transforms (str, list or None, optional): ``"standard"`` (:func:`standard_transforms`), a list of
            ``(x, i_iter) -> x`` callables, or ``None``. Default: ``"standard"``.
        preprocess (Callable, optional): applied last, e.g. the model's input normalization. Default: none.
        seed (int, optional): image ``k`` draws from the stream seeded ``seed + k``; the caller's RNG is
            untouched and the run is bit-identical on the CPU. Default: 0.
        progress (bool, optional): show a progress bar with the objective. Default: True.
        device (str or torch.device, optional): Default: the model's device.

    Returns:
        Visualization: ``(images, history, transparency, parameterization)``.
    """
    targets = [target] if isinstance(target, str) else list(target)
    batch = len(targets) if batch is None else int(batch)
    if len(targets) not in (1, batch):
        raise ValueError(f"{len(targets)} targets for a batch of {batch}: give one target, or one per image")
    if int(steps) < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    hw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    device = _device(model, device)
    objective = TargetObjective(model, targets if len(targets) > 1 else targets[0])
    if isinstance(transforms, str) and transforms != "standard":
        raise ValueError(f"transforms must be 'standard', a list of callables or None, got {transforms!r}")
    chain: list[Callable[[Tensor, int], Tensor]] = (
        standard_transforms(hw) if isinstance(transforms, str) else [] if transforms is None else list(transforms))
    if preprocess is not None:
        chain.append(lambda x, i_iter: preprocess(x))
    view = Views(views, cast(Any, chain))
    with rng.seeded([int(seed) + k for k in range(batch)], devices=[device]), evaluation_mode(model):
        image = make_parameterization(param, hw, channels, batch) if isinstance(param, str) else param
        image = image.to(device)
        name = param if isinstance(param, str) else ""
        render = image.render
        mei = RenderedMEI(objective, image.param.detach(), _optimizer(optimizer, DEFAULT_LR.get(name, 0.05)
                                                                       if lr is None else float(lr)),
                          transform=view, render=render)
        history = _History(int(steps), progress)
        try:
            optimize(mei, NumIterations(int(steps)), tracker=history)  # type: ignore[arg-type]
        finally:
            history.close()
        with torch.no_grad():
            image.param.copy_(mei.current_input)
            images = render(image.param).detach().cpu()
    transparency = getattr(image, "transparency", None)
    return Visualization(images, torch.stack(history.values).detach().cpu(),
                         None if transparency is None else transparency.detach().cpu().clone(), image)
