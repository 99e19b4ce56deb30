"""Small composable objectives on layer activations, with captum.optim's contract and a per-image view.

Each objective names its layer(s) by module object or by name (``"features.3"``) and reads them from a
:class:`~mei.optim.hooks.ModuleOutputs` mapping. It answers two questions:

* ``loss(activations)`` — what captum.optim's loss of the same name returns: the *unreduced* target (e.g.
  ``ChannelActivation``: ``activations[:, channel]``, shape ``(images, H, W)``) or a batch scalar (``L1``,
  ``L2``, ``TotalVariation``, ``Diversity``, ``Alignment``, ``ActivationInterpolation``). An
  :class:`~mei.optim.optimization.InputOptimization` summarizes it with ``loss_summarize_fn`` (default
  :func:`default_loss_summarize`, ``-mean``) and minimizes that, as captum does. Every loss, composites
  included, has captum's ``.target`` (a module/name, or a list of them).
* ``loss.per_image(activations)`` — one value per image, shape ``(images,)``: the engine's objective (the
  pipeline's ``get_objective`` and :class:`~mei.optim.hooks.ObjectiveModel` maximize their sum). This is the
  meaning the stored component paths (``mei.optim.loss.ChannelActivation`` …) have always had.

Objectives combine with ``+ - * /``, unary ``-``, ``**`` and ``abs``, with each other and with numbers, through
one helper (:func:`combine`). The captum value of a composite follows captum: with a number the operation is
elementwise on the unreduced value; between two losses it applies to their means (captum resolves shape
mismatches so). The per-image value of a composite is the same arithmetic on the parts' per-image values,
image by image.

Example:
    >>> obj = ChannelActivation("features.3", 5) - 0.1 * DeepDream("features.0")
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, Union

import torch
from torch import Tensor

from ..engine.component import Component, check_bool, check_choice, check_number, component
from ..engine.hooks import image_rows
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


def _indices(batch_index: BatchIndex, n_rows: int) -> list[int]:
    """The rows of a batch of ``n_rows`` that hold the images ``batch_index`` names: with several views per image
    in the batch (:class:`mei.transforms.Views`), all views of each."""
    indices = [batch_index] if isinstance(batch_index, int) else list(batch_index or [])
    return image_rows(indices, n_rows)


def batch_mask(batch_index: BatchIndex, n_images: int, like: Tensor) -> Tensor | None:
    """A ``(n_images,)`` 0/1 mask selecting ``batch_index`` (``None`` = all images, no mask; rows of all views of
    those images when the batch holds several views)."""
    if batch_index is None:
        return None
    mask = torch.zeros(n_images, dtype=like.dtype, device=like.device)
    mask[_indices(batch_index, n_images)] = 1
    return mask


def select_batch(activation: Tensor, batch_index: BatchIndex) -> Tensor:
    """The images ``batch_index`` names, batch dimension kept (captum's ``activation[i:i + 1]`` for an int; all
    views of image ``i``, view-major, when the batch holds several views of each image)."""
    if batch_index is None:
        return activation
    return activation[_indices(batch_index, activation.shape[0])]


def default_loss_summarize(loss_value: Tensor) -> Tensor:
    """captum's default summary of a loss value: ``-mean``, so that minimizing it maximizes the activation."""
    return -1 * loss_value.mean()


def _format(operand: Any) -> str:
    return repr(operand) if isinstance(operand, Loss) else f"{operand:g}"


def _unique(targets: Sequence[Target]) -> list[Target]:
    out: list[Target] = []
    for target in targets:
        if not any(target is seen or (isinstance(target, str) and target == seen) for seen in out):
            out.append(target)
    return out


class Loss(Component):
    """Base class: an objective over the activations of ``targets`` (a :class:`~mei.engine.component.Component`:
    the constructor checks the hyperparameters and records them in ``defaults``; the ``repr`` is the loss's own).

    Subclasses implement :meth:`value` (captum's value, before ``batch_index``) and :meth:`compute` (one value
    per image, before ``batch_index``).

    Args:
        targets (list of nn.Module or str): the layers read.
        batch_index (int or list[int], optional): images this objective applies to. captum's value keeps only
            those images; the per-image value gives the others 0. Default: ``None`` (all images).
    """

    def __init__(self, targets: Sequence[Target], batch_index: BatchIndex = None) -> None:
        self.targets = list(targets)
        self.batch_index = batch_index

    @property
    def target(self) -> Target | list[Target]:
        """captum's ``target``: the one layer, or the list of layers of a multi-target or composite loss."""
        return self.targets[0] if len(self.targets) == 1 else list(self.targets)

    @property
    def __name__(self) -> str:  # captum names every loss
        return repr(self)

    def value(self, activations: ModuleOutputs) -> Tensor:
        """captum's value of this loss on all images (``batch_index`` is applied by :meth:`__call__`)."""
        raise NotImplementedError

    def compute(self, activations: ModuleOutputs) -> Tensor:
        """Per-image values before ``batch_index`` is applied."""
        raise NotImplementedError

    def __call__(self, activations: ModuleOutputs) -> Tensor:
        """captum's value: the unreduced target of the images ``batch_index`` names, or a batch scalar."""
        return self.value(activations)

    def per_image(self, activations: ModuleOutputs) -> Tensor:
        """One value per image, shape ``(images,)`` (images outside ``batch_index`` get 0): what the engine
        maximizes."""
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

    def __rpow__(self, other: Operand) -> Loss:
        return combine(operator.pow, other, self, "**")

    def __neg__(self) -> Loss:
        return CompositeLoss(operator.neg, [self], f"-{self!r}", loss_fn=lambda m: -self(m))

    def __abs__(self) -> Loss:
        return CompositeLoss(torch.abs, [self], f"abs({self!r})", loss_fn=lambda m: torch.abs(self(m)))


#: captum's ``BaseLoss``: every loss of this module derives from it.
BaseLoss = Loss


class CompositeLoss(Loss):
    """``fn`` of other objectives' values (built by :func:`combine`; rarely made by hand).

    Args:
        fn (Callable): takes the operands' per-image values (numbers stay numbers) and returns ``(images,)``.
        operands (list of Loss or numbers): at least one :class:`Loss`.
        name (str): how the composition prints.
        loss_fn (Callable, optional): ``activations -> captum value`` of the composition. Default: ``fn`` of
            the operands' captum values, each loss reduced to its mean when more than one loss takes part.
    """

    def __init__(self, fn: Callable[..., Tensor], operands: Sequence[Operand], name: str,
                 loss_fn: Callable[[ModuleOutputs], Tensor] | None = None) -> None:
        losses = [op for op in operands if isinstance(op, Loss)]
        if not losses:
            raise TypeError("a composite objective needs at least one objective among its operands")
        targets: list[Target] = []
        for loss in losses:
            targets += loss.targets
        super().__init__(_unique(targets))
        self.fn, self.operands, self.name, self.loss_fn = fn, list(operands), name, loss_fn
        self._single = losses[0] if len(losses) == 1 else None

    @property
    def target(self) -> Target | list[Target]:
        # captum: loss op number keeps the loss's target; loss op loss lists both losses' targets
        return self._single.target if self._single is not None else list(self.targets)

    def value(self, activations: ModuleOutputs) -> Tensor:
        if self.loss_fn is not None:
            return self.loss_fn(activations)
        several = self._single is None
        values = [(op(activations).mean() if several else op(activations)) if isinstance(op, Loss) else op
                  for op in self.operands]
        return self.fn(*values)

    def compute(self, activations: ModuleOutputs) -> Tensor:
        return self.fn(*(op.per_image(activations) if isinstance(op, Loss) else op for op in self.operands))

    def __repr__(self) -> str:
        return self.name


def combine(op: Callable[[Any, Any], Any], left: Operand, right: Operand, symbol: str) -> Loss:
    """The one operator helper: ``op(left, right)``, where either side may be a number.

    captum's value: elementwise with a number (``number / loss`` and ``number ** loss`` use the loss's mean, as
    captum does); between two losses, ``op`` of their means. Per image: ``op`` of the per-image values.

    Args:
        op (Callable): a binary function such as :func:`operator.add`.
        left, right (Loss or number): the operands; at least one is a :class:`Loss`.
        symbol (str): the operator as printed.
    """
    for operand in (left, right):
        if not isinstance(operand, (Loss, int, float)) or isinstance(operand, bool):
            raise TypeError(f"objectives combine with objectives and numbers, not {type(operand).__name__}")
    loss_fn = None
    if isinstance(right, Loss) and not isinstance(left, Loss) and op in (operator.truediv, operator.pow):
        loss_fn = lambda m: op(left, right(m).mean())  # noqa: E731 - captum's __rtruediv__ / __rpow__
    return CompositeLoss(op, [left, right], f"({_format(left)} {symbol} {_format(right)})", loss_fn=loss_fn)


def sum_loss_list(loss_list: Sequence[Loss], to_scalar_fn: Callable[[Tensor], Tensor] = torch.mean) -> Loss:
    """The sum of several objectives, one composite however many parts (no recursion limit).

    Args:
        loss_list (list of Loss): the objectives.
        to_scalar_fn (Callable, optional): captum's value is ``sum(to_scalar_fn(loss(activations)))``.
            Default: :func:`torch.mean`.

    The per-image value is the sum of the parts' per-image values.
    """
    losses = list(loss_list)
    if not losses:
        raise ValueError("sum_loss_list needs at least one objective")
    return CompositeLoss(lambda *values: sum(values[1:], values[0]), losses,
                         "(" + " + ".join(repr(loss) for loss in losses) + ")",
                         loss_fn=lambda m: torch.stack([to_scalar_fn(loss(m)).reshape(()) for loss in losses]).sum())


# -------------------------------------------------------------------------------------- single-layer losses


class _LayerLoss(Loss):
    def __init__(self, target: Target, batch_index: BatchIndex = None, reduction: str = "mean") -> None:
        super().__init__([target], batch_index)
        self.reduction = check_choice("reduction", reduction, tuple(REDUCTIONS),
                                      expected=f"one of {sorted(REDUCTIONS)}")

    @property
    def target(self) -> Target:
        return self.targets[0]

    def activation(self, activations: ModuleOutputs) -> Tensor:
        return activations[self.targets[0]]

    def selected(self, activations: ModuleOutputs) -> Tensor:
        """The activation of the images ``batch_index`` names (captum's slice)."""
        return select_batch(self.activation(activations), self.batch_index)

    def value(self, activations: ModuleOutputs) -> Tensor:
        return self.selected(activations)


@component("loss")
class LayerActivation(_LayerLoss):
    """A whole layer: captum's value is the activation itself; per image, its mean.

    Args:
        target (nn.Module or str): the layer.
        batch_index (int or list[int], optional): images it applies to. Default: all.
        reduction (str, optional): per image, ``"mean"``, ``"sum"`` or ``"max"`` over the layer. Default: ``"mean"``.
    """

    def compute(self, activations: ModuleOutputs) -> Tensor:
        return reduce_per_image(self.activation(activations), self.reduction)


@component("loss")
class ChannelActivation(_LayerLoss):
    """One channel (dimension 1) of a layer: captum's value is ``activation[:, channel_index]``; per image, its
    mean activation.

    Args:
        target (nn.Module or str): the layer, output ``(images, channels, ...)``.
        channel_index (int): the channel.
        batch_index (int or list[int], optional): images it applies to. Default: all.
        reduction (str, optional): per image, ``"mean"``, ``"sum"`` or ``"max"`` over positions. Default: ``"mean"``.
    """

    def __init__(self, target: Target, channel_index: int, batch_index: BatchIndex = None,
                 reduction: str = "mean") -> None:
        super().__init__(target, batch_index, reduction)
        self.channel_index = check_number("channel_index", channel_index, integer=True)

    def _channel(self, activation: Tensor) -> Tensor:
        if not -activation.shape[1] <= self.channel_index < activation.shape[1]:
            raise IndexError(f"{self!r}: channel {self.channel_index} is out of range for the layer's "
                             f"{activation.shape[1]} channels")
        return activation[:, self.channel_index]

    def value(self, activations: ModuleOutputs) -> Tensor:
        return self._channel(self.selected(activations))

    def compute(self, activations: ModuleOutputs) -> Tensor:
        return reduce_per_image(self._channel(self.activation(activations)), self.reduction)

    def _describe(self) -> str:
        return f"{super()._describe()}, {self.channel_index}"


def _centre(activation: Tensor, x: int | None, y: int | None) -> tuple[int, int]:
    """``(y, x)``, each defaulting to the centre of the last two dimensions (``height // 2``, ``width // 2``)."""
    height, width = activation.shape[-2:]
    return (height // 2 if y is None else y), (width // 2 if x is None else x)


def _position(activation: Tensor, x: int | None, y: int | None, owner: Loss) -> tuple[int, int]:
    height, width = activation.shape[-2:]
    y, x = _centre(activation, x, y)
    if not (-height <= y < height and -width <= x < width):
        raise IndexError(f"{owner!r}: position (y={y}, x={x}) is outside the {height} x {width} layer")
    return y % height, x % width


def _at_position(activation: Tensor, x: int | None, y: int | None, owner: Loss) -> Tensor:
    """``activation[..., y, x]``, ``x`` and ``y`` defaulting to the centre (:func:`_centre`)."""
    y, x = _position(activation, x, y, owner)
    return activation[..., y, x]


def _where(x: int | None, y: int | None) -> str:
    return "" if x is None and y is None else f", x={x}, y={y}"


@component("loss")
class NeuronActivation(ChannelActivation):
    """One unit: channel ``channel_index`` at spatial position ``(y, x)``. captum's value is
    ``activation[:, channel, y:y + 1, x:x + 1]``; per image, that number.

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

    def _unit(self, activation: Tensor, keep: bool) -> Tensor:
        channel = self._channel(activation)
        if channel.dim() == 1:
            if self.x is not None or self.y is not None:
                raise ValueError(f"{self!r}: the layer has no spatial dimensions, so x and y must be None")
            return channel
        y, x = _position(channel, self.x, self.y, self)
        return channel[..., y:y + 1, x:x + 1] if keep else reduce_per_image(channel[..., y, x])

    def value(self, activations: ModuleOutputs) -> Tensor:
        return self._unit(self.selected(activations), keep=True)

    def compute(self, activations: ModuleOutputs) -> Tensor:
        return self._unit(self.activation(activations), keep=False)

    def _describe(self) -> str:
        return f"{super()._describe()}{_where(self.x, self.y)}"


@component("loss")
class DeepDream(_LayerLoss):
    """Amplify whatever the layer already sees: captum's value is ``activation ** 2``; per image, its mean.

    Args:
        target (nn.Module or str): the layer.
        batch_index (int or list[int], optional): images it applies to. Default: all.
        reduction (str, optional): per image, ``"mean"``, ``"sum"`` or ``"max"`` over the layer. Default: ``"mean"``.
    """

    def value(self, activations: ModuleOutputs) -> Tensor:
        return self.selected(activations) ** 2

    def compute(self, activations: ModuleOutputs) -> Tensor:
        return reduce_per_image(self.activation(activations) ** 2, self.reduction)


@component("loss")
class L2(_LayerLoss):
    """``sqrt(sum((activation - constant)^2) + epsilon)``: captum's value sums over the whole (selected) batch,
    the per-image value over each image. Subtract it to keep a layer small.

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

    def value(self, activations: ModuleOutputs) -> Tensor:
        return torch.sqrt(self.epsilon + ((self.selected(activations) - self.constant) ** 2).sum())

    def compute(self, activations: ModuleOutputs) -> Tensor:
        squared = reduce_per_image((self.activation(activations) - self.constant) ** 2, "sum")
        return torch.sqrt(squared + self.epsilon)


@component("loss")
class TotalVariation(_LayerLoss):
    """Total variation (sum of absolute neighbour differences over the last two dimensions): captum's value
    over the whole (selected) batch, the per-image value per image.

    Args:
        target (nn.Module or str): the layer.
        batch_index (int or list[int], optional): images it applies to. Default: all.
    """

    def value(self, activations: ModuleOutputs) -> Tensor:
        return total_variation(self.selected(activations), (-2, -1)).sum()

    def compute(self, activations: ModuleOutputs) -> Tensor:
        return total_variation(self.activation(activations), (-2, -1))


def direction_value(activation: Tensor, vec: Tensor, cossim_pow: float) -> Tensor:
    """Per position, ``dot(a, vec) * max(cos(a, vec), 0.1) ** cossim_pow`` over dimension 1 (channels).

    With ``cossim_pow=0`` this is the plain dot product; a positive power favours activation vectors that point
    along ``vec`` over ones that are merely large (the cosine is floored at 0.1, as in lucid and captum, so the
    factor stays positive and differentiable). A one-entry ``vec`` broadcasts over the channels (as in captum).
    """
    if vec.numel() not in (1, activation.shape[1]):
        raise ValueError(f"vec has {vec.numel()} entries, the layer {activation.shape[1]} channels")
    vec = vec.to(activation).reshape(1, -1, *([1] * (activation.dim() - 2)))
    dot = (activation * vec).sum(dim=1)
    if cossim_pow == 0:
        return dot
    cossim = dot / (activation.norm(dim=1) * vec.expand_as(activation[:1]).norm(dim=1) + 1e-8)
    return dot * cossim.clamp(min=0.1) ** cossim_pow


@component("loss")
class Direction(_LayerLoss):
    """The activation vector's dot product with ``vec`` (a direction in channels), per position: captum's
    value is the ``(images, H, W)`` map, the per-image value its mean.

    Args:
        target (nn.Module or str): the layer, output ``(images, channels, ...)``.
        vec (list[float] or Tensor): one weight per channel.
        cossim_pow (float, optional): weight each position's dot product by its cosine similarity with ``vec``
            (floored at 0.1) to this power (:func:`direction_value`). Default: 0, the plain dot product.
        batch_index (int or list[int], optional): images it applies to. Default: all.
    """

    def __init__(self, target: Target, vec: Sequence[float] | Tensor, cossim_pow: float = 0.0,
                 batch_index: BatchIndex = None) -> None:
        super().__init__(target, batch_index)
        self.vec = torch.as_tensor(vec, dtype=torch.float32).flatten()
        self.cossim_pow = float(check_number("cossim_pow", cossim_pow))

    def _map(self, activation: Tensor) -> Tensor:
        try:
            return direction_value(activation, self.vec, self.cossim_pow)
        except ValueError as error:
            raise ValueError(f"{self!r}: {error}") from None

    def value(self, activations: ModuleOutputs) -> Tensor:
        return self._map(self.selected(activations))

    def compute(self, activations: ModuleOutputs) -> Tensor:
        return reduce_per_image(self._map(self.activation(activations)))


@component("loss")
class NeuronDirection(Direction):
    """The activation vector at one position, dotted with ``vec`` (what an activation atlas renders per cell).

    Args:
        target (nn.Module or str): the layer, output ``(images, channels, height, width)``.
        vec (list[float] or Tensor): one weight per channel (or one entry for all).
        x (int, optional): column. Default: the centre, ``width // 2``.
        y (int, optional): row. Default: the centre, ``height // 2``.
        channel_index (int, optional): use only this channel of the activation vector (captum). Default: all.
        cossim_pow (float, optional): as for :class:`Direction`. Default: 0.
        batch_index (int or list[int], optional): images it applies to. Default: all.
    """

    def __init__(self, target: Target, vec: Sequence[float] | Tensor, x: int | None = None, y: int | None = None,
                 channel_index: int | None = None, cossim_pow: float = 0.0, batch_index: BatchIndex = None) -> None:
        super().__init__(target, vec, cossim_pow, batch_index)
        self.x, self.y = x, y
        self.channel_index = None if channel_index is None else check_number("channel_index", channel_index,
                                                                               integer=True)

    def activation(self, activations: ModuleOutputs) -> Tensor:
        activation = super().activation(activations)
        if activation.dim() != 4:
            raise ValueError(f"{self!r}: needs a (images, channels, height, width) layer, got shape "
                             f"{tuple(activation.shape)}")
        y, x = _position(activation, self.x, self.y, self)
        activation = activation[..., y:y + 1, x:x + 1]
        if self.channel_index is not None:
            activation = activation[:, self.channel_index:self.channel_index + 1]
        return activation

    def _describe(self) -> str:
        return f"{super()._describe()}{_where(self.x, self.y)}"


@component("loss")
class AngledNeuronDirection(_LayerLoss):
    """A direction at one position, with the emphasis on angle (captum's ``AngledNeuronDirection``, from the
    activation atlas notebooks of lucid): ``dot * max(cos, 0.1) ** cossim_pow`` with ``dot`` the mean of
    ``activation * vec`` over channels, optionally after whitening ``vec`` with ``vec_whitened``.

    With ``cossim_pow=0`` captum's value is the ``(images, channels)`` product ``activation * vec``. Otherwise
    captum's value is one scalar over the selected batch; the per-image value applies the formula to each
    image's vector.

    Args:
        target (nn.Module or str): the layer, ``(images, channels, height, width)`` or ``(images, channels)``.
        vec (Tensor): the direction, ``(channels,)`` or ``(1, channels)``.
        vec_whitened (Tensor, optional): a ``(channels, channels)`` whitening matrix; ``vec @ vec_whitened`` is
            used. Default: none.
        cossim_pow (float, optional): Default: 4.
        x (int, optional): column for a 4-d layer. Default: the centre.
        y (int, optional): row for a 4-d layer. Default: the centre.
        eps (float, optional): added to the norm in the cosine. Default: 1e-4.
        batch_index (int or list[int], optional): images it applies to. Default: all.
    """

    def __init__(self, target: Target, vec: Tensor, vec_whitened: Tensor | None = None, cossim_pow: float = 4.0,
                 x: int | None = None, y: int | None = None, eps: float = 1.0e-4,
                 batch_index: BatchIndex = None) -> None:
        super().__init__(target, batch_index)
        self.vec = torch.as_tensor(vec, dtype=torch.float32)
        self._row = self.vec.unsqueeze(0) if self.vec.dim() == 1 else self.vec
        if self._row.dim() != 2 or self._row.shape[0] != 1:
            raise ValueError(f"vec must be (channels,) or (1, channels), got shape {tuple(self.vec.shape)}")
        self.vec_whitened = None if vec_whitened is None else torch.as_tensor(vec_whitened, dtype=torch.float32)
        if self.vec_whitened is not None and self.vec_whitened.dim() != 2:
            raise ValueError(f"vec_whitened must be (channels, channels), got shape {tuple(self.vec_whitened.shape)}")
        self.cossim_pow = float(check_number("cossim_pow", cossim_pow))
        self.eps = float(check_number("eps", eps, minimum=0))
        self.x, self.y = x, y

    def _vectors(self, activation: Tensor) -> tuple[Tensor, Tensor]:
        if activation.dim() not in (2, 4) or activation.shape[1] != self._row.shape[1]:
            raise ValueError(f"{self!r}: needs a (images, {self._row.shape[1]}[, height, width]) layer, got shape "
                             f"{tuple(activation.shape)}")
        if activation.dim() == 4:
            activation = _at_position(activation, self.x, self.y, self)
        vec = self._row if self.vec_whitened is None else self._row @ self.vec_whitened
        return activation, vec.to(activation)

    def value(self, activations: ModuleOutputs) -> Tensor:
        activation, vec = self._vectors(self.selected(activations))
        if self.cossim_pow == 0:
            return activation * vec
        dot = (activation * vec).mean()
        cossim = dot / (self.eps + activation.pow(2).sum().sqrt())
        return dot * cossim.clamp(min=0.1) ** self.cossim_pow

    def compute(self, activations: ModuleOutputs) -> Tensor:
        activation, vec = self._vectors(self.activation(activations))
        dot = (activation * vec).mean(dim=1)
        if self.cossim_pow == 0:
            return dot
        cossim = dot / (self.eps + activation.pow(2).sum(dim=1).sqrt())
        return dot * cossim.clamp(min=0.1) ** self.cossim_pow


@component("loss")
class TensorDirection(_LayerLoss):
    """A patch of the activation dotted with a ``(channels, h, w)`` direction ``vec``.

    The patch is centred as captum centres it (top-left corner ``((H - h) // 2, (W - w) // 2)``) unless ``x``/
    ``y`` name its centre. captum's value is the ``(images, h, w)`` map of per-position dot products; the
    per-image value is the dot product over the whole patch (the map's sum; with ``cossim_pow`` the cosine of the
    whole patch).

    Args:
        target (nn.Module or str): the layer, output ``(images, channels, height, width)``.
        vec (Tensor): ``(channels, h, w)`` or ``(1, channels, h, w)``, at most the layer's size.
        cossim_pow (float, optional): weight the dot product by its cosine similarity with ``vec`` (floored
            at 0.1) to this power. Default: 0.
        batch_index (int or list[int], optional): images it applies to. Default: all.
        x (int, optional): column of the patch centre. Default: captum's centring.
        y (int, optional): row of the patch centre. Default: captum's centring.
    """

    def __init__(self, target: Target, vec: Tensor, cossim_pow: float = 0.0, batch_index: BatchIndex = None,
                 x: int | None = None, y: int | None = None) -> None:
        super().__init__(target, batch_index)
        vec = torch.as_tensor(vec, dtype=torch.float32)
        self.vec = vec[0] if vec.dim() == 4 and vec.shape[0] == 1 else vec
        if self.vec.dim() != 3:
            raise ValueError(f"vec must be (channels, h, w), got shape {tuple(vec.shape)}")
        self.x, self.y, self.cossim_pow = x, y, float(check_number("cossim_pow", cossim_pow))

    def _patch(self, activation: Tensor) -> Tensor:
        channels, h, w = self.vec.shape
        fits = activation.dim() == 4 and channels in (1, activation.shape[1])
        if not fits or h > activation.shape[2] or w > activation.shape[3]:
            raise ValueError(f"{self!r}: vec of shape {tuple(self.vec.shape)} does not fit the layer's "
                             f"{tuple(activation.shape[1:])}")
        height, width = activation.shape[-2:]
        top = (height - h) // 2 if self.y is None else self.y - h // 2
        left = (width - w) // 2 if self.x is None else self.x - w // 2
        if not (0 <= top <= height - h and 0 <= left <= width - w):
            raise IndexError(f"{self!r}: a {h} x {w} patch at (y={self.y}, x={self.x}) leaves the "
                             f"{height} x {width} layer")
        return activation[:, :, top:top + h, left:left + w]

    def value(self, activations: ModuleOutputs) -> Tensor:
        patch = self._patch(self.selected(activations))
        vec = self.vec.to(patch)[None]
        dot = (patch * vec).sum(dim=1)
        if self.cossim_pow == 0:
            return dot
        cossim = torch.cosine_similarity(patch, vec.expand_as(patch), dim=1, eps=1e-8)
        return dot * cossim.clamp(min=0.1) ** self.cossim_pow

    def compute(self, activations: ModuleOutputs) -> Tensor:
        patch = self._patch(self.activation(activations))
        flat = patch.reshape(patch.shape[0], -1)
        vec = self.vec.to(patch).expand_as(patch[0]).reshape(-1)
        return direction_value(flat[:, :, None], vec, self.cossim_pow)[:, 0]

    def _describe(self) -> str:
        return f"{super()._describe()}{_where(self.x, self.y)}"


@component("loss")
class ActivationWeights(_LayerLoss):
    """Weigh the channels of a layer, of one neuron, or of a window (captum's ``ActivationWeights``).

    captum's value is the weighted activation: ``activation * weights`` per channel (whole layer); for a neuron,
    the ``(images, channels)`` vector at ``(y, x)`` (squeezed) times ``weights``; for a window of ``wy`` rows and
    ``wx`` columns from ``(y, x)``, that window times the per-channel weights. The per-image value is its mean.

    Args:
        target (nn.Module or str): the layer, ``(images, channels, height, width)``.
        weights (Tensor): one weight per channel (or one for all).
        neuron (bool, optional): weigh the neuron at ``(y, x)`` (the centre by default) only. Default: False
            (True whenever ``x`` or ``y`` is given).
        x (int, optional): column of the neuron or the window's left edge. Default: the centre.
        y (int, optional): row of the neuron or the window's top edge. Default: the centre.
        wx (int, optional): window width (needs ``x``, ``y`` and ``wy``). Default: none.
        wy (int, optional): window height. Default: none.
    """

    def __init__(self, target: Target, weights: Tensor | None = None, neuron: bool = False, x: int | None = None,
                 y: int | None = None, wx: int | None = None, wy: int | None = None) -> None:
        super().__init__(target)
        if weights is None:
            raise TypeError("ActivationWeights needs weights: one per channel (or one for all)")
        self.weights = torch.as_tensor(weights, dtype=torch.float32)
        self.x, self.y, self.wx, self.wy = x, y, wx, wy
        self.neuron = x is not None or y is not None or check_bool("neuron", neuron)
        if (wx is None) != (wy is None) or (wx is not None and (x is None or y is None)):
            raise ValueError("ActivationWeights: wx and wy go together, and need x and y (the window's corner)")

    def value(self, activations: ModuleOutputs) -> Tensor:
        activation = self.activation(activations)
        weights = self.weights.to(activation)
        if not self.neuron:
            return activation * weights.view(1, -1, *([1] * (activation.dim() - 2)))
        if activation.dim() != 4:
            raise ValueError(f"{self!r}: a neuron needs a (images, channels, height, width) layer")
        if self.wx is None:
            y, x = _position(activation, self.x, self.y, self)
            return activation[..., y:y + 1, x:x + 1].squeeze() * weights
        assert self.x is not None and self.y is not None and self.wy is not None
        return activation[..., self.y:self.y + self.wy, self.x:self.x + self.wx] * weights.view(1, -1, 1, 1)

    def compute(self, activations: ModuleOutputs) -> Tensor:
        value = self.value(activations)
        n_images = self.activation(activations).shape[0]
        return reduce_per_image(value.reshape(n_images, -1))


@component("loss")
class L1(_LayerLoss):
    """Sum of ``|activation - constant|``: captum's value over the whole (selected) batch, the per-image value
    per image. Subtract it to keep a layer sparse.

    Args:
        target (nn.Module or str): the layer (or the input module).
        constant (float, optional): Default: 0.
        batch_index (int or list[int], optional): images it applies to. Default: all.
    """

    def __init__(self, target: Target, constant: float = 0.0, batch_index: BatchIndex = None) -> None:
        super().__init__(target, batch_index)
        self.constant = float(check_number("constant", constant))

    def value(self, activations: ModuleOutputs) -> Tensor:
        return (self.selected(activations) - self.constant).abs().sum()

    def compute(self, activations: ModuleOutputs) -> Tensor:
        return reduce_per_image((self.activation(activations) - self.constant).abs(), "sum")


@component("loss")
class ActivationInterpolation(Loss):
    """Interpolate between two channels across the batch: image ``i`` of ``N`` maximizes
    ``(1 - t) * mean(channel 1) + t * mean(channel 2)`` with ``t = i / (N - 1)`` (captum's value: the sum over
    images).

    Usually combined with :class:`Alignment`, so that neighbouring images stay alike and the batch reads as a
    smooth transition.

    Args:
        target1 (nn.Module or str): the first layer, output ``(images, channels, ...)``.
        channel_index1 (int, optional): its channel; ``-1`` for the whole layer. Default: -1.
        target2 (nn.Module or str): the second layer (may be the first).
        channel_index2 (int, optional): its channel; ``-1`` for the whole layer. Default: -1.
    """

    def __init__(self, target1: Target | None = None, channel_index1: int = -1, target2: Target | None = None,
                 channel_index2: int = -1) -> None:
        if target1 is None or target2 is None:
            raise TypeError("ActivationInterpolation needs target1 and target2")
        super().__init__([target1, target2])
        self.channels = (check_number("channel_index1", channel_index1, integer=True, minimum=-1),
                         check_number("channel_index2", channel_index2, integer=True, minimum=-1))

    def _part(self, activations: ModuleOutputs, which: int) -> Tensor:
        activation = activations[self.targets[which]]
        channel = self.channels[which]
        return reduce_per_image(activation if channel == -1 else activation[:, channel])

    def compute(self, activations: ModuleOutputs) -> Tensor:
        first, second = self._part(activations, 0), self._part(activations, 1)
        t = torch.linspace(0, 1, first.shape[0], dtype=first.dtype, device=first.device)  # one image: t = 0
        return (1 - t) * first + t * second

    def value(self, activations: ModuleOutputs) -> Tensor:
        return self.compute(activations).sum()

    def _describe(self) -> str:
        return f"{super()._describe()}, {self.channels[0]}, {self.channels[1]}"


@component("loss")
class Alignment(_LayerLoss):
    """Keep neighbouring images of a batch alike: minus the mean squared difference of the layer's activations
    between images ``i`` and ``i + d`` for ``d = 1 .. 4``, weighted by ``decay_ratio ** -d`` (captum's value: the
    batch total); per image, each pair's term is split equally between its two images.

    Args:
        target (nn.Module or str): the layer.
        decay_ratio (float, optional): how fast the weight falls with the distance ``d``. Default: 2.
        batch_index (int or list[int], optional): images the per-image value applies to. Default: all.
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

    def value(self, activations: ModuleOutputs) -> Tensor:
        return self.compute(activations).sum()


@component("loss")
class Diversity(_LayerLoss):
    """Reward images of a batch for differing in style: minus the cosine similarity of each image's channel
    Gram matrix with the other images' (as in Olah et al. 2017). Needs two or more images.

    Per image: minus the mean similarity with the others. captum's value: minus the sum over ordered pairs,
    divided by the number of images (``(N - 1)`` times the mean of the per-image values).

    Args:
        target (nn.Module or str): the layer, output ``(images, channels, ...)``.
        batch_index (int or list[int], optional): images the per-image value applies to. Default: all.
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

    def value(self, activations: ModuleOutputs) -> Tensor:
        values = self.compute(activations)
        return values.sum() * (values.shape[0] - 1) / values.shape[0]


__all__ = [
    "Loss", "BaseLoss", "CompositeLoss", "combine", "sum_loss_list", "default_loss_summarize", "reduce_per_image",
    "batch_mask", "select_batch", "LayerActivation", "ChannelActivation", "NeuronActivation", "DeepDream", "L2",
    "TotalVariation", "Direction", "NeuronDirection", "AngledNeuronDirection", "TensorDirection",
    "ActivationWeights", "L1", "ActivationInterpolation", "Alignment", "Diversity", "direction_value",
]
