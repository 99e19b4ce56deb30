"""Small composable objectives on layer activations, one value per image.

Each objective names its layer(s) by module object or by name (``"features.3"``), reads them from a
:class:`~mei.optim.hooks.ModuleOutputs` mapping, and returns a tensor of shape ``(images,)``: the engine
maximizes the sum over images. Objectives combine with ``+ - * /``, unary ``-``, ``**`` and ``abs``, with
each other and with numbers, through one helper (:func:`combine`); an activation becomes a per-image value
through one helper (:func:`reduce_per_image`). Because every part is per image, a composed objective is
exactly the arithmetic of its parts, image by image.

Example:
    >>> obj = ChannelActivation("features.3", 5) - 0.1 * DeepDream("features.0")
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, Union

import torch
from torch import Tensor

from ..engine.component import Component, check_choice, check_number, component
from ..engine.kernels import total_variation
from ._typing import BatchIndex, Target
from .hooks import ModuleOutputs

Operand = Union["Loss", int, float]
REDUCTIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "mean": lambda t: t.mean(dim=1),
    "sum": lambda t: t.sum(dim=1),
    "max": lambda t: t.amax(dim=1),
}


def reduce_per_image(values: Tensor, how: str = "mean") -> Tensor:
    """Reduce every dimension but the first (images): ``(N, ...) -> (N,)``.

    Args:
        values (Tensor): at least one dimension, images first.
        how (str, optional): ``"mean"``, ``"sum"`` or ``"max"``. Default: ``"mean"``.
    """
    if how not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {sorted(REDUCTIONS)}, got {how!r}")
    if values.dim() == 1:
        return values
    return REDUCTIONS[how](values.reshape(values.shape[0], -1))


def batch_mask(batch_index: BatchIndex, n_images: int, like: Tensor) -> Tensor | None:
    """A ``(n_images,)`` 0/1 mask selecting ``batch_index`` (``None`` = all images, no mask)."""
    if batch_index is None:
        return None
    indices = [batch_index] if isinstance(batch_index, int) else list(batch_index)
    for index in indices:
        if not -n_images <= index < n_images:
            raise IndexError(f"batch_index {index} is out of range for {n_images} images")
    mask = torch.zeros(n_images, dtype=like.dtype, device=like.device)
    mask[indices] = 1
    return mask


def _format(operand: Any) -> str:
    return repr(operand) if isinstance(operand, Loss) else f"{operand:g}"


class Loss(Component):
    """Base class: an objective over the activations of ``targets`` (a :class:`~mei.engine.component.Component`:
    the constructor checks the hyperparameters and records them in ``defaults``; the ``repr`` is the loss's own).

    Subclasses implement :meth:`compute` (activations -> ``(images,)``); the base applies ``batch_index``.

    Args:
        targets (list of nn.Module or str): the layers read.
        batch_index (int or list[int], optional): images this objective applies to; the others get 0.
            Default: ``None`` (all images).
    """

    def __init__(self, targets: Sequence[Target], batch_index: BatchIndex = None) -> None:
        self.targets = list(targets)
        self.batch_index = batch_index

    def compute(self, activations: ModuleOutputs) -> Tensor:
        """Per-image values before ``batch_index`` is applied."""
        raise NotImplementedError

    def __call__(self, activations: ModuleOutputs) -> Tensor:
        values = self.compute(activations)
        mask = batch_mask(self.batch_index, values.shape[0], values)
        return values if mask is None else values * mask

    def _describe(self) -> str:
        return ", ".join(str(t) if isinstance(t, str) else type(t).__name__ for t in self.targets)

    def __repr__(self) -> str:
        batch = "" if self.batch_index is None else f", batch_index={self.batch_index}"
        return f"{type(self).__name__}({self._describe()}{batch})"

    # ---------------------------------------------------------------------------------------- operators
    def __add__(self, other: Operand) -> Loss:
        return combine(operator.add, self, other, "+")

    def __radd__(self, other: Operand) -> Loss:
        return combine(operator.add, other, self, "+")

    def __sub__(self, other: Operand) -> Loss:
        return combine(operator.sub, self, other, "-")

    def __rsub__(self, other: Operand) -> Loss:
        return combine(operator.sub, other, self, "-")

    def __mul__(self, other: Operand) -> Loss:
        return combine(operator.mul, self, other, "*")

    def __rmul__(self, other: Operand) -> Loss:
        return combine(operator.mul, other, self, "*")

    def __truediv__(self, other: Operand) -> Loss:
        return combine(operator.truediv, self, other, "/")

    def __rtruediv__(self, other: Operand) -> Loss:
        return combine(operator.truediv, other, self, "/")

    def __pow__(self, other: Operand) -> Loss:
        return combine(operator.pow, self, other, "**")

    def __neg__(self) -> Loss:
        return combine(operator.mul, -1, self, "*")

    def __abs__(self) -> Loss:
        return CompositeLoss(torch.abs, [self], f"abs({self!r})")


class CompositeLoss(Loss):
    """``fn`` of other objectives' per-image values (built by :func:`combine`; rarely made by hand).

    Args:
        fn (Callable): takes the operands' values (numbers stay numbers) and returns ``(images,)``.
        operands (list of Loss or numbers): at least one :class:`Loss`.
        name (str): how the composition prints.
    """

    def __init__(self, fn: Callable[..., Tensor], operands: Sequence[Operand], name: str) -> None:
        losses = [op for op in operands if isinstance(op, Loss)]
        if not losses:
            raise TypeError("a composite objective needs at least one objective among its operands")
        targets: list[Target] = []
        for loss in losses:
            targets += [t for t in loss.targets if not any(t is seen for seen in targets)]
        super().__init__(targets)
        self.fn, self.operands, self.name = fn, list(operands), name

    def compute(self, activations: ModuleOutputs) -> Tensor:
        return self.fn(*(op(activations) if isinstance(op, Loss) else op for op in self.operands))

    def __repr__(self) -> str:
        return self.name


def combine(op: Callable[[Any, Any], Any], left: Operand, right: Operand, symbol: str) -> Loss:
    """The one operator helper: ``op(left, right)`` image by image, where either side may be a number.

    Args:
        op (Callable): a binary function such as :func:`operator.add`.
        left, right (Loss or number): the operands; at least one is a :class:`Loss`.
        symbol (str): the operator as printed.
    """
    for operand in (left, right):
        if not isinstance(operand, (Loss, int, float)) or isinstance(operand, bool):
            raise TypeError(f"objectives combine with objectives and numbers, not {type(operand).__name__}")
    return CompositeLoss(op, [left, right], f"({_format(left)} {symbol} {_format(right)})")


def sum_loss_list(losses: Sequence[Loss]) -> Loss:
    """The sum of several objectives (one composite, however many parts)."""
    if not losses:
        raise ValueError("sum_loss_list needs at least one objective")
    return CompositeLoss(lambda *values: sum(values[1:], values[0]), list(losses),
                         "(" + " + ".join(repr(loss) for loss in losses) + ")")


# -------------------------------------------------------------------------------------- single-layer losses


class _LayerLoss(Loss):
    def __init__(self, target: Target, batch_index: BatchIndex = None, reduction: str = "mean") -> None:
        super().__init__([target], batch_index)
        self.target = target
        self.reduction = check_choice("reduction", reduction, tuple(REDUCTIONS),
                                      expected=f"one of {sorted(REDUCTIONS)}")

    def activation(self, activations: ModuleOutputs) -> Tensor:
        return activations[self.target]


@component("loss")
class LayerActivation(_LayerLoss):
    """Mean activation of a whole layer.

    Args:
        target (nn.Module or str): the layer.
        batch_index (int or list[int], optional): images it applies to. Default: all.
        reduction (str, optional): ``"mean"``, ``"sum"`` or ``"max"`` over the layer. Default: ``"mean"``.
    """

    def compute(self, activations: ModuleOutputs) -> Tensor:
        return reduce_per_image(self.activation(activations), self.reduction)


@component("loss")
class ChannelActivation(_LayerLoss):
    """Mean activation of one channel (dimension 1) of a layer.

    Args:
        target (nn.Module or str): the layer, output ``(images, channels, ...)``.
        channel_index (int): the channel.
        batch_index (int or list[int], optional): images it applies to. Default: all.
        reduction (str, optional): ``"mean"``, ``"sum"`` or ``"max"`` over positions. Default: ``"mean"``.
    """

    def __init__(self, target: Target, channel_index: int, batch_index: BatchIndex = None,
                 reduction: str = "mean") -> None:
        super().__init__(target, batch_index, reduction)
        self.channel_index = check_number("channel_index", channel_index, integer=True)

    def compute(self, activations: ModuleOutputs) -> Tensor:
        activation = self.activation(activations)
        return reduce_per_image(activation[:, self.channel_index], self.reduction)

    def _describe(self) -> str:
        return f"{super()._describe()}, {self.channel_index}"


def _centre(activation: Tensor, x: int | None, y: int | None) -> tuple[int, int]:
    """``(y, x)``, each defaulting to the centre of the last two dimensions (``height // 2``, ``width // 2``)."""
    height, width = activation.shape[-2:]
    return (height // 2 if y is None else y), (width // 2 if x is None else x)


def _at_position(activation: Tensor, x: int | None, y: int | None, owner: Loss) -> Tensor:
    """``activation[..., y, x]``, ``x`` and ``y`` defaulting to the centre (:func:`_centre`)."""
    height, width = activation.shape[-2:]
    y, x = _centre(activation, x, y)
    if not (-height <= y < height and -width <= x < width):
        raise IndexError(f"{owner!r}: position (y={y}, x={x}) is outside the {height} x {width} layer")
    return activation[..., y, x]


def _where(x: int | None, y: int | None) -> str:
    return "" if x is None and y is None else f", x={x}, y={y}"


@component("loss")
class NeuronActivation(ChannelActivation):
    """Activation of one unit: channel ``channel_index`` at spatial position ``(y, x)``.

    Args:
        target (nn.Module or str): the layer, output ``(images, channels, height, width)`` (or
            ``(images, units)`` for a linear layer, where ``x``/``y`` must be ``None``).
        channel_index (int): the channel.
        x (int, optional): column. Default: the centre, ``width // 2``.
        y (int, optional): row. Default: the centre, ``height // 2``.
        batch_index (int or list[int], optional): images it applies to. Default: all.
    """

    def __init__(self, target: Target, channel_index: int, x: int | None = None, y: int | None = None,
                 batch_index: BatchIndex = None) -> None:
        super().__init__(target, channel_index, batch_index)
        self.x, self.y = x, y

    def compute(self, activations: ModuleOutputs) -> Tensor:
        channel = self.activation(activations)[:, self.channel_index]
        if channel.dim() == 1:
            if self.x is not None or self.y is not None:
                raise ValueError(f"{self!r}: the layer has no spatial dimensions, so x and y must be None")
            return channel
        return reduce_per_image(_at_position(channel, self.x, self.y, self))

    def _describe(self) -> str:
        return f"{super()._describe()}{_where(self.x, self.y)}"


@component("loss")
class DeepDream(_LayerLoss):
    """Mean squared activation of a layer (amplify whatever the layer already sees).

    Args:
        target (nn.Module or str): the layer.
        batch_index (int or list[int], optional): images it applies to. Default: all.
        reduction (str, optional): ``"mean"``, ``"sum"`` or ``"max"`` over the layer. Default: ``"mean"``.
    """

    def compute(self, activations: ModuleOutputs) -> Tensor:
        return reduce_per_image(self.activation(activations) ** 2, self.reduction)


@component("loss")
class L2(_LayerLoss):
    """``sqrt(sum((activation - constant)^2) + epsilon)`` per image; subtract it to keep a layer small.

    Args:
        target (nn.Module or str): the layer (or the input module).
        constant (float, optional): Default: 0.
        epsilon (float, optional): keeps the root differentiable at 0. Default: 1e-6.
        batch_index (int or list[int], optional): images it applies to. Default: all.
    """

    def __init__(self, target: Target, constant: float = 0.0, epsilon: float = 1e-6,
                 batch_index: BatchIndex = None) -> None:
        super().__init__(target, batch_index)
        self.constant = float(check_number("constant", constant))
        self.epsilon = float(check_number("epsilon", epsilon, minimum=0))

    def compute(self, activations: ModuleOutputs) -> Tensor:
        squared = reduce_per_image((self.activation(activations) - self.constant) ** 2, "sum")
        return torch.sqrt(squared + self.epsilon)


@component("loss")
class TotalVariation(_LayerLoss):
    """Total variation (sum of absolute neighbour differences over the last two dimensions) per image.

    Args:
        target (nn.Module or str): the layer.
        batch_index (int or list[int], optional): images it applies to. Default: all.
    """

    def compute(self, activations: ModuleOutputs) -> Tensor:
        return total_variation(self.activation(activations), (-2, -1))


def direction_value(activation: Tensor, vec: Tensor, cossim_pow: float) -> Tensor:
    """Per position, ``dot(a, vec) * max(cos(a, vec), 0.1) ** cossim_pow`` over dimension 1 (channels).

    With ``cossim_pow=0`` this is the plain dot product; a positive power favours activation vectors that point
    along ``vec`` over ones that are merely large (the cosine is floored at 0.1, as in lucid, so the factor stays
    positive and differentiable).
    """
    if activation.shape[1] != vec.numel():
        raise ValueError(f"vec has {vec.numel()} entries, the layer {activation.shape[1]} channels")
    vec = vec.to(activation).view(1, -1, *([1] * (activation.dim() - 2)))
    dot = (activation * vec).sum(dim=1)
    if cossim_pow == 0:
        return dot
    cossim = dot / (activation.norm(dim=1) * vec.norm() + 1e-8)
    return dot * cossim.clamp(min=0.1) ** cossim_pow


@component("loss")
class Direction(_LayerLoss):
    """Mean over positions of the activation vector's dot product with ``vec`` (a direction in channels).

    Args:
        target (nn.Module or str): the layer, output ``(images, channels, ...)``.
        vec (list[float] or Tensor): one weight per channel.
        batch_index (int or list[int], optional): images it applies to. Default: all.
        cossim_pow (float, optional): weight each position's dot product by its cosine similarity with ``vec``
            (floored at 0.1) to this power (:func:`direction_value`). Default: 0, the plain dot product.
    """

    def __init__(self, target: Target, vec: Sequence[float] | Tensor, batch_index: BatchIndex = None,
                 cossim_pow: float = 0.0) -> None:
        super().__init__(target, batch_index)
        self.vec = torch.as_tensor(vec, dtype=torch.float32).flatten()
        self.cossim_pow = float(check_number("cossim_pow", cossim_pow))

    def compute(self, activations: ModuleOutputs) -> Tensor:
        try:
            return reduce_per_image(direction_value(self.activation(activations), self.vec, self.cossim_pow))
        except ValueError as error:
            raise ValueError(f"{self!r}: {error}") from None


@component("loss")
class NeuronDirection(Direction):
    """The activation vector at one position, dotted with ``vec`` (what an activation atlas renders per cell).

    Args:
        target (nn.Module or str): the layer, output ``(images, channels, height, width)``.
        vec (list[float] or Tensor): one weight per channel.
        x (int, optional): column. Default: the centre, ``width // 2``.
        y (int, optional): row. Default: the centre, ``height // 2``.
        cossim_pow (float, optional): as for :class:`Direction`. Default: 0.
        batch_index (int or list[int], optional): images it applies to. Default: all.
    """

    def __init__(self, target: Target, vec: Sequence[float] | Tensor, x: int | None = None, y: int | None = None,
                 cossim_pow: float = 0.0, batch_index: BatchIndex = None) -> None:
        super().__init__(target, vec, batch_index, cossim_pow)
        self.x, self.y = x, y

    def activation(self, activations: ModuleOutputs) -> Tensor:
        activation = super().activation(activations)
        if activation.dim() != 4:
            raise ValueError(f"{self!r}: needs a (images, channels, height, width) layer, got shape "
                             f"{tuple(activation.shape)}")
        return _at_position(activation, self.x, self.y, self)

    def _describe(self) -> str:
        return f"{super()._describe()}{_where(self.x, self.y)}"


@component("loss")
class TensorDirection(_LayerLoss):
    """A patch of the activation, centred at ``(y, x)``, dotted with a ``(channels, h, w)`` direction ``vec``.

    Args:
        target (nn.Module or str): the layer, output ``(images, channels, height, width)``.
        vec (Tensor): ``(channels, h, w)`` (or ``(1, channels, h, w)``), at most the layer's size.
        x (int, optional): column of the patch centre. Default: the centre, ``width // 2``.
        y (int, optional): row of the patch centre. Default: the centre, ``height // 2``.
        cossim_pow (float, optional): weight the dot product by its cosine similarity with ``vec`` (floored
            at 0.1) to this power. Default: 0.
        batch_index (int or list[int], optional): images it applies to. Default: all.
    """

    def __init__(self, target: Target, vec: Tensor, x: int | None = None, y: int | None = None,
                 cossim_pow: float = 0.0, batch_index: BatchIndex = None) -> None:
        super().__init__(target, batch_index)
        vec = torch.as_tensor(vec, dtype=torch.float32)
        self.vec = vec[0] if vec.dim() == 4 and vec.shape[0] == 1 else vec
        if self.vec.dim() != 3:
            raise ValueError(f"vec must be (channels, h, w), got shape {tuple(vec.shape)}")
        self.x, self.y, self.cossim_pow = x, y, float(check_number("cossim_pow", cossim_pow))

    def compute(self, activations: ModuleOutputs) -> Tensor:
        activation = self.activation(activations)
        channels, h, w = self.vec.shape
        if activation.dim() != 4 or activation.shape[1] != channels or h > activation.shape[2] or \
                w > activation.shape[3]:
            raise ValueError(f"{self!r}: vec of shape {tuple(self.vec.shape)} does not fit the layer's "
                             f"{tuple(activation.shape[1:])}")
        height, width = activation.shape[-2:]
        y, x = _centre(activation, self.x, self.y)
        top, left = y - h // 2, x - w // 2
        if not (0 <= top <= height - h and 0 <= left <= width - w):
            raise IndexError(f"{self!r}: a {h} x {w} patch at (y={self.y}, x={self.x}) leaves the "
                             f"{height} x {width} layer")
        patch = activation[:, :, top:top + h, left:left + w].reshape(activation.shape[0], -1)
        return direction_value(patch[:, :, None], self.vec.reshape(-1), self.cossim_pow)[:, 0]

    def _describe(self) -> str:
        return f"{super()._describe()}{_where(self.x, self.y)}"


@component("loss")
class L1(_LayerLoss):
    """Sum of ``|activation - constant|`` per image; subtract it to keep a layer sparse.

    Args:
        target (nn.Module or str): the layer (or the input module).
        constant (float, optional): Default: 0.
        batch_index (int or list[int], optional): images it applies to. Default: all.
    """

    def __init__(self, target: Target, constant: float = 0.0, batch_index: BatchIndex = None) -> None:
        super().__init__(target, batch_index)
        self.constant = float(check_number("constant", constant))

    def compute(self, activations: ModuleOutputs) -> Tensor:
        return reduce_per_image((self.activation(activations) - self.constant).abs(), "sum")


@component("loss")
class ActivationInterpolation(Loss):
    """Interpolate between two channels across the batch: image ``i`` of ``N`` maximizes
    ``(1 - t) * mean(channel 1) + t * mean(channel 2)`` with ``t = i / (N - 1)``.

    Usually combined with :class:`Alignment`, so that neighbouring images stay alike and the batch reads as a
    smooth transition.

    Args:
        target1 (nn.Module or str): the first layer, output ``(images, channels, ...)``.
        channel_index1 (int): its channel.
        target2 (nn.Module or str): the second layer (may be the first).
        channel_index2 (int): its channel.
    """

    def __init__(self, target1: Target, channel_index1: int, target2: Target, channel_index2: int) -> None:
        super().__init__([target1, target2])
        self.channels = (check_number("channel_index1", channel_index1, integer=True),
                         check_number("channel_index2", channel_index2, integer=True))

    def compute(self, activations: ModuleOutputs) -> Tensor:
        first = reduce_per_image(activations[self.targets[0]][:, self.channels[0]])
        second = reduce_per_image(activations[self.targets[1]][:, self.channels[1]])
        t = torch.linspace(0, 1, first.shape[0], dtype=first.dtype, device=first.device)  # one image: t = 0
        return (1 - t) * first + t * second

    def _describe(self) -> str:
        return f"{super()._describe()}, {self.channels[0]}, {self.channels[1]}"


@component("loss")
class Alignment(_LayerLoss):
    """Keep neighbouring images of a batch alike: minus the mean squared difference of the layer's activations
    between images ``i`` and ``i + d`` for ``d = 1 .. 4``, weighted by ``decay_ratio ** -d``; each pair's term is
    split equally between its two images.

    Args:
        target (nn.Module or str): the layer.
        decay_ratio (float, optional): how fast the weight falls with the distance ``d``. Default: 2.
        batch_index (int or list[int], optional): images it applies to. Default: all.
    """

    def __init__(self, target: Target, decay_ratio: float = 2.0, batch_index: BatchIndex = None) -> None:
        super().__init__(target, batch_index)
        self.decay_ratio = float(check_number("decay_ratio", decay_ratio, minimum=0, strict_minimum=True))

    def compute(self, activations: ModuleOutputs) -> Tensor:
        flat = self.activation(activations).flatten(1)
        values = flat.new_zeros(flat.shape[0])
        for distance in range(1, min(4, flat.shape[0] - 1) + 1):
            term = (flat[:-distance] - flat[distance:]).pow(2).mean(dim=1) / self.decay_ratio**distance
            values = values - 0.5 * torch.nn.functional.pad(term, (0, distance))
            values = values - 0.5 * torch.nn.functional.pad(term, (distance, 0))
        return values


@component("loss")
class Diversity(_LayerLoss):
    """Reward images of a batch for differing in style: minus the mean cosine similarity of each image's
    channel Gram matrix with the other images' (as in Olah et al. 2017). Needs two or more images.

    Args:
        target (nn.Module or str): the layer, output ``(images, channels, ...)``.
        batch_index (int or list[int], optional): images it applies to. Default: all.
    """

    def compute(self, activations: ModuleOutputs) -> Tensor:
        activation = self.activation(activations)
        n_images = activation.shape[0]
        if n_images < 2:
            raise ValueError("Diversity needs a batch of at least two images")
        flat = activation.reshape(n_images, activation.shape[1], -1)
        gram = torch.bmm(flat, flat.transpose(1, 2)).reshape(n_images, -1)
        gram = torch.nn.functional.normalize(gram, dim=1)
        similarity = gram @ gram.T
        others = similarity.sum(dim=1) - similarity.diagonal()
        return -others / (n_images - 1)


__all__ = [
    "Loss", "CompositeLoss", "combine", "sum_loss_list", "reduce_per_image", "batch_mask", "LayerActivation",
    "ChannelActivation", "NeuronActivation", "DeepDream", "L2", "TotalVariation", "Direction", "NeuronDirection",
    "TensorDirection", "L1", "ActivationInterpolation", "Alignment", "Diversity", "direction_value",
]
