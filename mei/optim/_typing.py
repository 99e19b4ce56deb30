"""Type aliases and protocols shared by the :mod:`mei.optim` modules (one place, as in captum.optim)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, Union, runtime_checkable

from torch import Tensor
from torch.distributions import Distribution

from ..engine.hooks import Target

__all__ = ["Target", "BatchIndex", "StopCriteria", "IntSeqOrIntType", "SizeLike", "NumSeqOrTensorOrProbDistType",
           "EngineTransform", "ImageParameterizationLike"]

#: Which images of a batch an objective applies to: all (``None``), one index, or a list of indices.
BatchIndex = Union[int, Sequence[int], None]

#: A stop criterion: captum's ``(step, obj, history, optimizer) -> bool`` (go on while true), or an engine
#: stopper ``(state) -> (stop, output)``.
StopCriteria = Callable[..., Any]
#: captum's aliases for sizes and number lists.
IntSeqOrIntType = Union[list[int], tuple[int], tuple[int, int], int]
SizeLike = Union[int, Sequence[int]]
NumSeqOrTensorOrProbDistType = Union[Sequence[int], Sequence[float], Tensor, Distribution]


@runtime_checkable
class EngineTransform(Protocol):
    """The engine's transform contract: ``transform(x, i_iter) -> x`` (gradients flow through it)."""

    def __call__(self, x: Tensor, i_iter: int) -> Tensor: ...


@runtime_checkable
class ImageParameterizationLike(Protocol):
    """What :class:`~mei.optim.optimization.InputOptimization` needs from an image parameterization.

    ``param`` is the one tensor the engine optimizes (first dimension = images); ``render(param)``
    maps it to the image, differentiably; calling the module renders its own ``param``.
    """

    param: Tensor

    def render(self, param: Tensor) -> Tensor: ...

    def __call__(self) -> Tensor: ...
