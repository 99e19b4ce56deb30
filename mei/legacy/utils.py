"""sinzlab/mei's ``mei.legacy.utils``: ``varargin``, ``Compose`` and ``Combine``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch

_F = TypeVar("_F", bound=Callable[..., Any])


def varargin(f: _F) -> _F:
    """Let ``f`` ignore keyword arguments it does not declare (``@varargin def op(x): ...`` takes ``iteration=``)."""
    parameters = inspect.signature(f).parameters.values()
    names = {p.name for p in parameters}
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not takes_kwargs:
            kwargs = {k: v for k, v in kwargs.items() if k in names}
        return f(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class Compose:
    """Chain operations: each gets the previous one's output and all keyword arguments of the call.

    Args:
        operations (Sequence[Callable]): the operations, first applied first (empty: the call returns ``None``).
    """

    def __init__(self, operations: Sequence[Callable[..., Any]]) -> None:
        self.operations = list(operations)

    def __call__(self, x: Any, **kwargs: Any) -> Any:
        if not self.operations:
            return None
        out = self.operations[0](x, **kwargs)
        for op in self.operations[1:]:
            out = op(out, **kwargs)
        return out

    def __getitem__(self, item: int) -> Callable[..., Any]:
        return self.operations[item]


class Combine:
    """Apply several operations to the same arguments and combine their results with ``combine_op``.

    Args:
        operations (Sequence[Callable]): the operations (empty: the call returns ``None``).
        combine_op (Callable, optional): applied to the stacked results. Default: ``torch.sum``.
    """

    def __init__(self, operations: Sequence[Callable[..., Any]], combine_op: Callable[..., Any] = torch.sum) -> None:
        self.operations = list(operations)
        self.combine_op = combine_op

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.operations:
            return None
        return self.combine_op(torch.stack([torch.as_tensor(op(*args, **kwargs)) for op in self.operations], dim=0))

    def __getitem__(self, item: int) -> Callable[..., Any]:
        return self.operations[item]


__all__ = ["varargin", "Compose", "Combine"]
