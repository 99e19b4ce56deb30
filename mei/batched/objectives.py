"""One objective for a batch of K images: image ``k`` scored by unit (or objective) ``k``, in one forward."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn

from ..modules import ConstrainedOutputModel, check_units


def _views_of(n_rows: int, n_images: int, what: str) -> int:
    """Views per image in a batch of ``n_rows`` for ``n_images`` images (see :class:`mei.transforms.Views`)."""
    if n_rows < n_images or n_rows % n_images:
        raise ValueError(f"the input holds {n_rows} images for {n_images} {what}")
    return n_rows // n_images


class BatchedConstrainedOutputModel(nn.Module):
    """Image ``k`` of the input scored by unit ``units[k]``: one forward of the model for K units.

    ``forward(x)[k] == ConstrainedOutputModel(model, units[k], target_fn, forward_kwargs)(x[k:k+1])[0]``
    up to float rounding (batched kernels may sum in a different order).

    Args:
        model (nn.Module): the model, output ``(images, units, ...)``.
        units (list[int]): one output unit per image of the input.
        target_fn (Callable, optional): applied to the selected responses. Default: identity.
        forward_kwargs (dict, optional): keyword arguments for every forward call. Default: none.
    """

    units: Tensor
    images: Tensor

    def __init__(self, model: nn.Module, units: Sequence[int], target_fn: Callable[[Tensor], Tensor] | None = None,
                 forward_kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        units = [int(u) for u in units]
        if not units:
            raise ValueError("units must name at least one output unit")
        self.model = model
        self.target_fn = target_fn
        self.forward_kwargs = dict(forward_kwargs or {})
        self._unit_range = [min(units), max(units)]  # checked against the output without reading the buffer
        self.register_buffer("units", torch.tensor(units, dtype=torch.long), persistent=False)
        self.register_buffer("images", torch.arange(len(units)), persistent=False)

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        n_views = _views_of(x.shape[0], self.units.numel(), "units")
        output = self.model(x, *args, **{**self.forward_kwargs, **kwargs})
        check_units(output, self._unit_range)
        if n_views == 1:
            response = output[self.images, self.units]
        else:  # row v * K + k is view v of image k (mei.transforms.Views)
            response = output[torch.arange(x.shape[0], device=output.device), self.units.repeat(n_views)]
        return self.target_fn(response) if self.target_fn is not None else response

    def extra_repr(self) -> str:
        return f"units={self.units.tolist()}, forward_kwargs={self.forward_kwargs}"


class PerImageModel(nn.Module):
    """Image ``k`` scored by ``objectives[k]`` alone: correct for any objectives, but no faster than a loop.

    The fallback of :func:`batch_objectives` when the objectives do not share one model.

    Args:
        objectives (list[nn.Module]): one objective (returning one value per image) per image.
    """

    def __init__(self, objectives: Sequence[nn.Module]) -> None:
        super().__init__()
        self.objectives = nn.ModuleList(objectives)

    def forward(self, x: Tensor) -> Tensor:
        n_images = len(self.objectives)
        if _views_of(x.shape[0], n_images, "objectives") == 1:
            return torch.cat([f(x[k:k + 1]) for k, f in enumerate(self.objectives)])
        # views, view-major: image k's views are rows k, k + K, ...; the result keeps that order
        return torch.stack([f(x[k::n_images]).reshape(-1) for k, f in enumerate(self.objectives)], dim=1).reshape(-1)


def batch_objectives(objectives: Sequence[nn.Module]) -> nn.Module:
    """One objective scoring image ``k`` as ``objectives[k]`` would, batched where the objectives allow.

    * all the same object (K seeds of one unit): that object;
    * :class:`ConstrainedOutputModel` s of one shared model with the same ``target_fn`` and
      ``forward_kwargs``: a :class:`BatchedConstrainedOutputModel` (one forward for all K);
    * anything else: a :class:`PerImageModel` (one forward per image; correct, not faster).

    Args:
        objectives (list[nn.Module]): one objective per image.
    """
    objectives = list(objectives)
    if not objectives:
        raise ValueError("batch_objectives needs at least one objective")
    first = objectives[0]
    if all(f is first for f in objectives):
        return first
    if all(isinstance(f, ConstrainedOutputModel) and isinstance(f.constraint, int)
           and not isinstance(f.constraint, bool) and f.model is first.model
           and f.target_fn is first.target_fn and f.forward_kwargs == first.forward_kwargs for f in objectives):
        single = cast(Sequence[ConstrainedOutputModel], objectives)
        return BatchedConstrainedOutputModel(
            single[0].model, [cast(int, f.constraint) for f in single], single[0].target_fn, single[0].forward_kwargs
        )
    return PerImageModel(objectives)
