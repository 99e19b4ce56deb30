"""Response reducers: turn a response over time into one value per image, ``reducer(response) -> values``.

Models of retina and visual cortex that take movies answer with a response per time bin, e.g. an output of
shape ``(images, units, time)``. An objective needs one number per image, so a reducer collapses the time
dimension. Reducers are components (keyword ``__init__``, readable repr) and are usable by dotted path, e.g.
as the ``target_fn`` of :class:`~mei.modules.ConstrainedOutputModel`::

    reducer = build_reducer({"path": "mei.reducers.MeanOverWindow", "kwargs": {"start": -10}})
    objective = ConstrainedOutputModel(model, unit, target_fn=reducer)

The default dimension is the last one (``-1``), which is time both for one unit's response ``(images,
time)`` and for several units' responses ``(images, units, time)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor

from .engine.component import Component, check_dim, check_number, component

Reducer = Callable[[Tensor], Tensor]


@component("reducer")
class MeanOverTime(Component):
    """The mean of the response over the time dimension.

    Args:
        dim (int, optional): the time dimension of the response. Default: -1.
    """

    _repr_fields = ("dim",)

    def __init__(self, dim: int = -1) -> None:
        self.dim = check_dim("dim", dim)

    def __call__(self, response: Tensor) -> Tensor:
        return response.mean(dim=self.dim)


@component("reducer")
class MeanOverWindow(Component):
    """The mean of the response over the time bins ``start:stop`` (Python slice semantics, negatives count
    from the end), e.g. ``start=-10`` for the last ten bins.

    Args:
        start (int, optional): first time bin. Default: 0.
        stop (int, optional): one past the last time bin; ``None`` for the end. Default: ``None``.
        dim (int, optional): the time dimension of the response. Default: -1.
    """

    _repr_fields = ("start", "stop", "dim")

    def __init__(self, start: int = 0, stop: int | None = None, dim: int = -1) -> None:
        self.start = check_number("start", start, integer=True)
        self.stop = None if stop is None else check_number("stop", stop, integer=True)
        self.dim = check_dim("dim", dim)
        if self.stop is not None and (self.start >= 0) == (self.stop >= 0) and self.stop <= self.start:
            raise ValueError(f"the window start={self.start}, stop={self.stop} is empty")

    def window(self, n_bins: int) -> range:
        """The time bins averaged for a response with ``n_bins`` bins."""
        return range(n_bins)[slice(self.start, self.stop)]

    def __call__(self, response: Tensor) -> Tensor:
        bins = self.window(response.shape[self.dim])
        if len(bins) == 0:
            raise ValueError(
                f"the window start={self.start}, stop={self.stop} holds no bin of a response with "
                f"{response.shape[self.dim]} time bins"
            )
        return response.narrow(self.dim, bins.start, len(bins)).mean(dim=self.dim)


@component("reducer")
class Identity(Component):
    """Returns the response unchanged (for models that already answer with one value per image)."""

    def __call__(self, response: Tensor) -> Tensor:
        return response


def build_reducer(spec: Reducer | Mapping[str, Any] | None, key: str = "reducer") -> Reducer | None:
    """A reducer from a component spec ``{"path": ..., "kwargs": {...}}`` (resolved through
    :func:`mei.engine.resolve.build_component`), a callable (returned as is) or ``None`` (kept).

    Args:
        spec (dict | Callable | None): what to build.
        key (str, optional): where the spec sits, named in errors. Default: ``"reducer"``.
    """
    if spec is None or callable(spec):
        return spec
    from .engine.resolve import build_component

    return build_component(spec, key)
