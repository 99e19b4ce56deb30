"""captum-style :class:`InputOptimization`, run by the project's engine (:mod:`mei.optimization`).

There is no second optimization loop here: ``InputOptimization.optimize`` builds one
:class:`mei.optimization.MEI` whose input is the image parameterization's ``param``, whose transform is
``render`` followed by the robustness transforms, and whose function is the model read through the objective
(:class:`~mei.optim.hooks.ObjectiveModel`), and hands it to :func:`mei.optimization.optimize`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ..engine import rng
from ..methods import evaluation_mode
from ..optimization import MEI, State, optimize
from ..stoppers import NumIterations, OptimizationStopper
from ._typing import EngineTransform, ImageParameterizationLike, StopCriteria
from .hooks import ObjectiveModel
from .loss import Loss


class n_steps(NumIterations):  # noqa: N801 - captum's name
    """Stop after ``n`` steps, optionally with a progress bar showing the objective.

    Args:
        n (int): number of steps.
        show_progress (bool, optional): show a tqdm bar. Default: True.
    """

    _repr_fields = ("num_iterations", "show_progress")

    def __init__(self, n: int, show_progress: bool = True) -> None:
        super().__init__(n)
        self.show_progress = bool(show_progress)
        self._bar: Any = None

    def __call__(self, current_state: State) -> tuple[bool, Any]:
        stop, output = super().__call__(current_state)
        if self.show_progress:
            self._update_bar(current_state, stop)
        return stop, output

    def _update_bar(self, state: State, stop: bool) -> None:
        if state.i_iter == 0 or self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.num_iterations, desc="Optimizing", leave=True)
        self._bar.update(1)
        if state.i_iter % 10 == 0 or stop:
            self._bar.set_postfix(objective=f"{float(state.evaluation_tensor.sum()):.4g}")
        if stop:
            self._bar.close()
            self._bar = None


def _engine_transform(transform: Callable[..., Tensor] | None) -> Callable[[Tensor, int], Tensor]:
    """``transform`` as ``(x, i_iter) -> x``, whether it takes ``i_iter`` or only ``x``."""
    if transform is None:
        return lambda x, i_iter: x
    target = transform.forward if isinstance(transform, nn.Module) else transform
    try:
        parameters = inspect.signature(target).parameters.values()
        takes_two = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters) >= 2 or any(
            p.kind == p.VAR_POSITIONAL for p in parameters)
    except (TypeError, ValueError):
        takes_two = False
    return transform if takes_two else (lambda x, i_iter: transform(x))


def _optimizer_factory(optimizer: Any, lr: float) -> Callable[[list[Tensor]], torch.optim.Optimizer]:
    if optimizer is None:
        return functools.partial(torch.optim.Adam, lr=lr)
    if isinstance(optimizer, torch.optim.Optimizer):  # captum passes an instance: rebuild it on our tensor
        return functools.partial(type(optimizer), **optimizer.defaults)
    return optimizer


class RenderedMEI(MEI):
    """:class:`mei.optimization.MEI` whose input is an image *parameter*: ``render(param)`` is the image.

    Stepping is the engine's own (the transform given to it must start with ``render``); only
    :meth:`evaluate` differs: it scores the rendered image, without the random transforms.

    Args:
        render (Callable[[Tensor], Tensor]): parameter -> image, differentiable.
        *args, **kwargs: as for :class:`mei.optimization.MEI`.
    """

    def __init__(self, *args: Any, render: Callable[[Tensor], Tensor], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.render = render

    @property
    def current_image(self) -> Tensor:
        """The rendered current input (detached)."""
        with torch.no_grad():
            return self.render(self.current_input)

    def evaluate(self) -> Tensor:
        with torch.no_grad():
            return self.func(self.render(self.current_input))


class _History:
    """Collects the per-image objective of every step as device tensors (no host synchronisation)."""

    def __init__(self) -> None:
        self.values: list[Tensor] = []

    def track(self, state: State) -> None:
        self.values.append(state.evaluation_tensor.reshape(-1))


class InputOptimization:
    """Optimize an image parameterization so that ``loss_function`` of ``model``'s activations is maximal.

    Args:
        model (nn.Module): the network; its parameters are not changed.
        loss_function (Loss): the objective, from :mod:`mei.optim.loss` (targets by module or name).
        input_param (nn.Module): an image parameterization with ``param`` and ``render(param)``, e.g.
            :class:`~mei.optim.images.NaturalImage`.
        transform (nn.Module or Callable, optional): robustness transforms, ``t(x)`` or ``t(x, i_iter)``.
            Default: none.
    """

    def __init__(self, model: nn.Module, loss_function: Loss, input_param: ImageParameterizationLike,
                 transform: EngineTransform | Callable[[Tensor], Tensor] | None = None) -> None:
        self.model = model
        self.loss_function = loss_function
        self.input_param = input_param
        self.transform = transform
        self.objective = ObjectiveModel(model, loss_function)

    def engine(self, optimizer: Any = None, lr: float = 0.025) -> RenderedMEI:
        """The :class:`RenderedMEI` that :meth:`optimize` runs (for stepping by hand)."""
        render, transform = self.input_param.render, _engine_transform(self.transform)
        return RenderedMEI(
            self.objective, self.input_param.param.detach(), _optimizer_factory(optimizer, lr),
            transform=lambda x, i_iter: transform(render(x), i_iter), render=render,
        )

    def optimize(self, stop_criteria: OptimizationStopper | StopCriteria | int | None = None,
                 optimizer: Any = None, lr: float = 0.025, seed: int | None = None) -> Tensor:
        """Run the engine, write the result into ``input_param.param``, and return the history.

        Args:
            stop_criteria (stopper or int, optional): a stopper ``(state) -> (stop, output)`` such as
                :class:`n_steps`, or a number of steps. Default: ``n_steps(512)``.
            optimizer (optional): a torch optimizer class or factory ``(params) -> Optimizer`` (an optimizer
                instance is rebuilt with its settings). Default: Adam.
            lr (float, optional): learning rate of the default Adam. Default: 0.025.
            seed (int, optional): seeds the random transforms (per image, see :mod:`mei.engine.rng`). Default: torch's
                global random state.

        Returns:
            Tensor: the objective per step and image, shape ``(steps, images)``.
        """
        if stop_criteria is None:
            stop_criteria = n_steps(512)
        elif isinstance(stop_criteria, int):
            stop_criteria = n_steps(stop_criteria, show_progress=False)
        mei, history = self.engine(optimizer, lr), _History()
        n_images = self.input_param.param.shape[0]
        context = rng.seeded([seed + k for k in range(n_images)]) if seed is not None else contextlib.nullcontext()
        with context, evaluation_mode(self.model):
            optimize(mei, stop_criteria, tracker=history)  # type: ignore[arg-type]
        with torch.no_grad():
            self.input_param.param.copy_(mei.current_input)
        return torch.stack(history.values).detach()


__all__ = ["InputOptimization", "RenderedMEI", "n_steps"]
