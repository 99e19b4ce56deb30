"""sinzlab/mei's legacy ``gradient_ascent(f, x, ...)``, run by this package's one loop (:class:`mei.optimization.MEI`).

The functions get ``iteration=i`` by keyword, counted from 1, as in the legacy code (decorate them with
:func:`mei.legacy.utils.varargin` or give them ``**kwargs``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from ..optimization import MEI

Op = Callable[..., Any]


def _positional(op: Op | None) -> Any:
    """``op(x, iteration=i + 1)`` as the engine's ``op(x, i)``; ``None`` stays the engine's default."""
    if op is None:
        return None

    def call(x: Tensor, i_iter: int) -> Any:
        return op(x, iteration=i_iter + 1)

    return call


def gradient_ascent(f: Callable[[Tensor], Tensor], x: Tensor, transform: Op | None = None,
                    regularization: Op | None = None, gradient_f: Op | None = None, post_update: Op | None = None,
                    optim_name: str = "SGD", step_size: float = 0.1, optim_kwargs: Mapping[str, Any] | None = None,
                    num_iterations: int = 1000, save_iters: int | None = None,
                    print_iters: int = 100) -> tuple[Tensor | list[Tensor], list[float], list[float]]:
    """Maximize ``f(transform(x)) - regularization(transform(x))`` by gradient ascent (``x`` is not changed).

    Args:
        f (Callable): real-valued differentiable function.
        x (Tensor): float32 initial guess.
        transform, regularization, gradient_f, post_update (Callable, optional): the legacy ops.
        optim_name (str, optional): ``"SGD"`` or ``"Adam"``. Default: ``"SGD"``.
        step_size (float, optional): learning rate. Default: 0.1.
        optim_kwargs (dict, optional): further optimizer arguments. Default: none.
        num_iterations (int, optional): steps. Default: 1000.
        save_iters (int, optional): keep ``x`` every ``save_iters`` steps (and return the list). Default: None.
        print_iters (int, optional): print progress every ``print_iters`` steps. Default: 100.

    Returns:
        tuple: ``(optimal x or the saved xs, f evaluations, regularization terms)``; the evaluations and
        terms include one more entry, for the final ``x``.
    """
    if x.dtype != torch.float32:
        raise ValueError("x must be of torch.float32 dtype")
    optimizers = {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam}
    if optim_name not in optimizers:
        raise ValueError("Expected optim_name to be 'SGD' or 'Adam'")
    kwargs = dict(optim_kwargs or {})
    optional = {name: op for name, op in (("transform", _positional(transform)),
                                          ("regularization", _positional(regularization)),
                                          ("precondition", _positional(gradient_f)),
                                          ("postprocessing", _positional(post_update))) if op is not None}
    mei = MEI(f, x, lambda params: optimizers[optim_name](params, lr=step_size, **kwargs), **optional)
    mei.keep_input = False
    fevals: list[float] = []
    reg_terms: list[float] = []
    saved: list[Tensor] = []
    for i in range(1, num_iterations + 1):
        state = mei.step()
        if bool((state.preconditioned_grad.abs() < 1e-9).all()):
            warnings.warn("Gradient for x is all zero", stacklevel=2)
        fevals.append(float(state.evaluation))
        if regularization is not None:
            reg_terms.append(float(state.reg_term))
        if i % print_iters == 0:
            print(f"Iter {i}: f(x) = {fevals[-1]:.2f}, reg(x) = {reg_terms[-1] if reg_terms else 0:.2f}, "
                  f"std(x) = {mei.current_input.std().item():.2f}")
        if save_iters is not None and i % save_iters == 0:
            saved.append(mei.current_input.clone())
    with torch.no_grad():
        final = mei.current_input
        transformed = final if transform is None else transform(final, iteration=num_iterations + 1)
        fevals.append(float(f(transformed)))
        if regularization is not None:
            reg_terms.append(float(regularization(transformed, iteration=num_iterations + 1)))
    print(f"Final f(x) = {fevals[-1]:.2f}")
    return (final.clone() if save_iters is None else saved), fevals, reg_terms


__all__ = ["gradient_ascent"]
