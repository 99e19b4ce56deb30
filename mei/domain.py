"""sinzlab/mei's domain models at their import path: :class:`State` and :class:`Input`.

``State`` is the engine's own :class:`mei.optimization.State` (the loop emits it; it has sinzlab's
``input`` attribute, ``to_dict`` / ``from_dict`` and value equality). ``Input`` is sinzlab's small wrapper of
the tensor being optimized, kept for code that builds one; the engine itself does not need it. See
docs/sinzlab.md.
"""

from __future__ import annotations

from torch import Tensor

from .optimization import State as State


class Input:
    """The input to a model: a tensor that requires a gradient (sinzlab/mei's ``mei.domain.Input``).

    Args:
        tensor (Tensor): the tensor; ``requires_grad_()`` is called on it (it is not copied).
    """

    def __init__(self, tensor: Tensor) -> None:
        self.tensor = tensor
        self.tensor.requires_grad_()

    @property
    def grad(self) -> Tensor | None:
        """The tensor's gradient."""
        return self.tensor.grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        self.tensor.grad = value

    @property
    def cloned_grad(self) -> Tensor:
        """A CPU copy of the gradient."""
        if self.tensor.grad is None:
            raise RuntimeError("the input has no gradient yet")
        return self.tensor.grad.cpu().clone()

    @property
    def data(self) -> Tensor:
        """The tensor's data (no autograd history)."""
        return self.tensor.data

    @data.setter
    def data(self, value: Tensor) -> None:
        self.tensor.data = value

    @property
    def cloned_data(self) -> Tensor:
        """A CPU copy of the data."""
        return self.data.cpu().clone()

    def clone(self) -> Input:
        """A new ``Input`` holding a copy of the tensor."""
        return Input(self.tensor.clone())

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}({self.tensor!r})"


__all__ = ["State", "Input"]
