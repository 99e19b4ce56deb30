"""Activation maximization with Yosinski et al. (2015) regularizers, on the project's engine.

The API of the activation-maximization utility (``act_max_util``): register :func:`layer_hook` on a layer,
call :func:`act_max` for one unit, turn the result into a picture with :func:`image_converter`; with
``gif=...`` the optimization is saved as an animated GIF (:func:`make_gif`). The loop is
:func:`mei.optimization.optimize` with plain gradient ascent (SGD with learning rate ``alpha``) and the
regularizers of :mod:`mei.optim.postprocessing` as postprocessing.

Example:
    >>> import torch, mei.act_max_util as amu
    >>> from mei.optim.models import alexnet
    >>> net = alexnet()
    >>> acts = {}
    >>> handle = net.classifier[-1].register_forward_hook(amu.layer_hook(acts, "out"))
    >>> image = amu.act_max(net, torch.randn(1, 3, 227, 227), acts, "out", unit=130, steps=3)
    >>> handle.remove()
"""

from __future__ import annotations

import functools
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .methods import evaluation_mode
from .objectives import PostProcessedInputObjective
from .optim.loss import reduce_per_image
from .optim.postprocessing import YosinskiRegularization
from .optimization import MEI, optimize
from .stoppers import NumIterations
from .tracking import Tracker

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_hook(act_dict: MutableMapping[str, Tensor], layer_name: str) -> Callable[[nn.Module, Any, Tensor], None]:
    """A forward hook that stores the layer's output (with its graph) in ``act_dict[layer_name]``.

    Args:
        act_dict (dict): where activations go; each forward overwrites the entry.
        layer_name (str): the key.

    Returns:
        Callable: for ``module.register_forward_hook``.
    """

    def hook(module: nn.Module, inputs: Any, output: Tensor) -> None:
        act_dict[layer_name] = output

    return hook


class UnitActivation(nn.Module):
    """The activation of ``unit`` of the layer whose hook fills ``layer_activation[layer_name]``, one value per
    image (averaged over positions for a convolutional layer).

    Args:
        network (nn.Module): the network, with :func:`layer_hook` registered on the layer.
        layer_activation (dict): the hook's dictionary.
        layer_name (str): the hook's key.
        unit (int): index along dimension 1 (a class, a neuron or a channel).
    """

    def __init__(self, network: nn.Module, layer_activation: MutableMapping[str, Tensor], layer_name: str,
                 unit: int) -> None:
        super().__init__()
        self.network, self.layer_activation = network, layer_activation
        self.layer_name, self.unit = layer_name, int(unit)

    def forward(self, x: Tensor) -> Tensor:
        self.layer_activation.pop(self.layer_name, None)
        self.network(x)
        if self.layer_name not in self.layer_activation:
            raise KeyError(f"no activation under {self.layer_name!r} after a forward pass: register "
                           f"layer_hook(activations, {self.layer_name!r}) on the layer first")
        activation = self.layer_activation[self.layer_name]
        if not 0 <= self.unit < activation.shape[1]:
            raise IndexError(f"unit {self.unit} is out of range for a layer with {activation.shape[1]} units")
        return reduce_per_image(activation[:, self.unit])


class _Printer:
    """Tracker objective that prints the activation of every step and records nothing."""

    def __call__(self, state: Any) -> None:
        value = state.evaluation
        value = value if isinstance(value, float) else value.tolist()
        print(f"step {state.i_iter}: activation {value}")


class _BestImage:
    """Tracker objective that keeps, for each image of the batch, the input with the highest activation so far.

    It reads the state's pre-step input and evaluation (the activation of exactly that input) and records
    nothing in the log; :meth:`offer` also takes the final image with its evaluation.
    """

    reads_input = True

    def __init__(self) -> None:
        self.value: Tensor | None = None
        self.image: Tensor | None = None

    def offer(self, value: Tensor, image: Tensor) -> None:
        """Keep ``image`` (per image of the batch) where ``value`` beats the best activation seen so far."""
        value, image = value.detach().reshape(-1).to(image.device), image.detach()
        if self.value is None or self.image is None:
            self.value, self.image = value.clone(), image.clone()
            return
        better = value > self.value
        self.value = torch.where(better, value, self.value)
        self.image = torch.where(better.view(-1, *[1] * (image.dim() - 1)), image, self.image)

    def __call__(self, state: Any) -> None:
        self.offer(state.evaluation_tensor, state.input_)


def act_max(network: nn.Module, input: Tensor, layer_activation: MutableMapping[str, Tensor], layer_name: str,
            unit: int, steps: int = 5, alpha: float | Tensor = 100.0, verbose: bool = False,
            L2_Decay: bool = False, theta_decay: float = 0.1,  # noqa: N803 - the utility's names
            Gaussian_Blur: bool = False, theta_every: int = 4, theta_width: float = 1.0,  # noqa: N803
            Norm_Crop: bool = False, theta_n_crop: float = 30.0,  # noqa: N803
            Contrib_Crop: bool = False, theta_c_crop: float = 30.0,  # noqa: N803
            gif: str | None = None, gif_every: int = 1, gif_duration: int = 100, keep_best: bool = True) -> Tensor:
    """Gradient ascent on ``input`` to maximize one unit, with optional Yosinski regularizers.

    Args:
        network (nn.Module): the network (put in eval mode during the run, then restored).
        input (Tensor): starting image(s) ``(N, C, H, W)``; not modified.
        layer_activation (dict): the dictionary a :func:`layer_hook` on the layer fills.
        layer_name (str): the hook's key.
        unit (int): the unit (dimension 1 of the layer's output).
        steps (int, optional): gradient steps. Default: 5.
        alpha (float or Tensor, optional): step size. Default: 100.
        verbose (bool, optional): print the activation every step. Default: False.
        L2_Decay (bool, optional): multiply the image by ``1 - theta_decay`` each step. Default: False.
        theta_decay (float, optional): Default: 0.1.
        Gaussian_Blur (bool, optional): blur every ``theta_every`` steps with sigma ``theta_width``. Default: False.
        theta_every (int, optional): Default: 4.
        theta_width (float, optional): Default: 1.
        Norm_Crop (bool, optional): zero pixels whose norm is below the ``theta_n_crop`` percentile. Default: False.
        theta_n_crop (float, optional): percentile in [0, 100]. Default: 30.
        Contrib_Crop (bool, optional): zero pixels whose contribution is below the ``theta_c_crop`` percentile.
            Default: False.
        theta_c_crop (float, optional): percentile in [0, 100]. Default: 30.
        gif (str, optional): write the optimization as an animated GIF to this path. Default: none.
        gif_every (int, optional): steps between GIF frames. Default: 1.
        gif_duration (int, optional): milliseconds per frame. Default: 100.
        keep_best (bool, optional): return, for each image, the one with the highest activation among the start,
            every step's image and the final image, as the utility does (its result is the best image seen, so
            a late step that lowers the activation is not what you get back); ``False`` returns the final image.
            Default: True.

    Returns:
        Tensor: the optimized image(s), same shape as ``input``, detached.
    """
    regularization = YosinskiRegularization(
        theta_decay=theta_decay if L2_Decay else None, blur_every=theta_every if Gaussian_Blur else None,
        blur_width=theta_width, norm_percentile=theta_n_crop if Norm_Crop else None,
        contribution_percentile=theta_c_crop if Contrib_Crop else None,
    )
    start = input.detach()
    regularization.start(start)
    mei = MEI(UnitActivation(network, layer_activation, layer_name, unit), start,
              functools.partial(torch.optim.SGD, lr=float(alpha)), postprocessing=regularization)
    objectives: dict[str, Any] = {"frames": PostProcessedInputObjective(gif_every)} if gif else {}
    if verbose:
        objectives["print"] = _Printer()
    best = _BestImage()
    if keep_best:
        objectives["best"] = best
    tracker = Tracker(**objectives)
    with evaluation_mode(network):
        evaluation, final = optimize(mei, NumIterations(steps), tracker)
    if gif:
        make_gif([start.cpu(), *tracker.log["frames"]["values"]], gif, duration=gif_duration)
    if not keep_best:
        return final
    best.offer(torch.as_tensor(evaluation), final)
    assert best.image is not None  # at least one step and the final image were offered
    return best.image.to(final.device)


def image_converter(im: Tensor, mean: Sequence[float] | None = IMAGENET_MEAN,
                    std: Sequence[float] | None = IMAGENET_STD) -> np.ndarray:
    """An image tensor ``(C, H, W)`` as a NumPy array ``(H, W, C)`` with values in [0, 1] for display.

    Args:
        im (Tensor): the image (any device; gradients are dropped).
        mean (list[float], optional): per-channel mean to add back after multiplying by ``std`` (the inverse
            of the usual input normalization); ``None`` (or a channel count that does not match) rescales the
            image's own range to [0, 1] instead. Default: ImageNet's.
        std (list[float], optional): per-channel standard deviation. Default: ImageNet's.
    """
    image = im.detach().float().cpu()
    if image.dim() != 3:
        raise ValueError(f"image_converter takes one image (C, H, W), got shape {tuple(image.shape)}")
    channels = image.shape[0]
    if mean is not None and std is not None and len(mean) == channels == len(std):
        image = image * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)
    else:
        low, high = image.min(), image.max()
        image = (image - low) / (high - low) if high > low else torch.zeros_like(image)
    return image.permute(1, 2, 0).clamp(0, 1).numpy()


def make_gif(frames: Sequence[Tensor], path: str, duration: int = 100,
             converter: Callable[[Tensor], np.ndarray] = image_converter) -> None:
    """Write images as an animated GIF that loops forever.

    Args:
        frames (list[Tensor]): images ``(C, H, W)`` or ``(1, C, H, W)`` (the first image of a batch is used).
        path (str): the ``.gif`` file to write.
        duration (int, optional): milliseconds per frame. Default: 100.
        converter (Callable, optional): tensor -> ``(H, W, C)`` array in [0, 1]. Default: :func:`image_converter`.
    """
    from PIL import Image

    if not frames:
        raise ValueError("make_gif needs at least one frame")
    pictures = []
    for frame in frames:
        array = converter(frame[0] if frame.dim() == 4 else frame)
        array = (array[..., 0] if array.shape[-1] == 1 else array[..., :3]) * 255
        pictures.append(Image.fromarray(np.round(array).astype(np.uint8)))
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=int(duration), loop=0)


__all__ = ["layer_hook", "act_max", "image_converter", "make_gif", "UnitActivation", "IMAGENET_MEAN", "IMAGENET_STD"]
