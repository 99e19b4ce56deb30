"""captum-style :class:`InputOptimization`, run by the project's engine (:mod:`mei.optimization`).

There is no second optimization loop here: ``InputOptimization.optimize`` builds one
:class:`mei.optimization.MEI` whose input is the image parameterization's ``param``, whose transform is
``render`` followed by the robustness transforms, and whose function is the model read through the loss and
``loss_summarize_fn`` (:class:`SummarizedObjective`), and hands it to :func:`mei.optimization.optimize`.

As in captum.optim, the quantity minimized is ``loss_summarize_fn(loss_function(activations))`` (default
:func:`~mei.optim.loss.default_loss_summarize`, ``-mean``), the history records it at every step, and
``stop_criteria(step, obj, history, optimizer)`` decides before each step whether to go on.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, cast

import torch
from torch import Tensor, nn

from ..engine import rng
from ..methods import evaluation_mode
from ..optimization import MEI, State, optimize
from ..stoppers import NumIterations, OptimizationStopper
from ._typing import EngineTransform, ImageParameterizationLike, StopCriteria
from .hooks import ModuleOutputs, run_and_capture
from .loss import Loss, default_loss_summarize

#: ``optimize()``'s learning rate for the default Adam (captum's default).
DEFAULT_LR = 0.025


class n_steps(NumIterations):  # noqa: N801 - captum's name
    """Stop after ``n`` steps, optionally with a progress bar showing the loss.

    Works both as captum's stop criterion, ``n_steps(n)(step, obj, history, optimizer) -> bool`` (go on while
    ``step < n``), and as an engine stopper ``(state) -> (stop, output)``.

    Args:
        n (int): number of steps.
        show_progress (bool, optional): show a tqdm bar. Default: True.
    """

    _repr_fields = ("num_iterations", "show_progress")
    reads_input = False  # it reads the step count and the loss only: the engine skips its per-step input copy

    def __init__(self, n: int, show_progress: bool = True) -> None:
        super().__init__(n)
        self.show_progress = bool(show_progress)
        self._bar: Any = None

    def __call__(self, *args: Any) -> Any:
        if len(args) == 4:  # captum: (step, obj, history, optimizer) -> go on?
            step, _, history, _ = args
            self._progress(int(step), history[-1] if len(history) else None)
            return step < self.num_iterations
        (state,) = args
        stop, output = super().__call__(state)
        if self.show_progress:
            self._progress(state.i_iter + 1, -state.evaluation_tensor.sum())
        return stop, output

    def _progress(self, done: int, loss: Tensor | None) -> None:
        if not self.show_progress:
            return
        if self._bar is None or done == 0:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.num_iterations, desc="Optimizing", unit=" step", leave=True)
        self._bar.n = min(done, self.num_iterations)
        if loss is not None and (done % 10 == 0 or done >= self.num_iterations):
            self._bar.set_postfix(loss=f"{float(loss.mean()):.4g}", refresh=False)
        self._bar.refresh()
        if done >= self.num_iterations:
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


def optimizer_factory(optimizer: Any = None, lr: float | None = None
                      ) -> Callable[[list[Tensor]], torch.optim.Optimizer]:
    """``params -> Optimizer`` from what :meth:`InputOptimization.optimize` accepts; ``lr`` always takes effect.

    Args:
        optimizer: ``None`` (Adam), a ``torch.optim.Optimizer`` subclass, an optimizer instance (captum's form:
            rebuilt with its settings on the engine's tensor), or a factory ``params -> Optimizer``.
        lr (float, optional): learning rate. With a class or an instance it replaces the class default or the
            instance's ``lr``; with a factory it cannot be applied, so giving both raises. Default:
            :data:`DEFAULT_LR` for Adam, the class's or instance's own otherwise.
    """
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr <= 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    settings: dict[str, Any] = {} if lr is None else {"lr": float(lr)}
    if optimizer is None:
        return cast(Callable[[list[Tensor]], torch.optim.Optimizer],
                    functools.partial(torch.optim.Adam, **({"lr": DEFAULT_LR} | settings)))
    if isinstance(optimizer, torch.optim.Optimizer):  # captum passes an instance: rebuild it on our tensor
        return cast(Callable[[list[Tensor]], torch.optim.Optimizer],
                    functools.partial(type(optimizer), **(dict(optimizer.defaults) | settings)))
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return cast(Callable[[list[Tensor]], torch.optim.Optimizer], functools.partial(optimizer, **settings))
    if not callable(optimizer):
        raise TypeError(f"optimizer must be an optimizer class, instance or factory, got {optimizer!r}")
    if settings:
        raise ValueError("lr cannot be applied to an optimizer factory: set the learning rate inside the factory, "
                         "or pass the optimizer class (e.g. torch.optim.NAdam) with lr")
    return optimizer


class SummarizedObjective(nn.Module):
    """``model`` read through a loss and ``loss_summarize_fn``, as the engine's function.

    ``forward(x)`` returns ``n_shares`` values (default: one per image of ``x``) whose sum is minus the summarized
    loss (each holds an equal share), so the engine, which maximizes that sum, minimizes exactly captum's
    ``loss_summarize_fn(loss(...))``. With several views of each image in ``x`` (a multiple of ``n_shares``
    rows) every row holds its image's share, and the engine's mean over the views gives the same sum.

    Args:
        model (nn.Module): the network.
        loss_function (Loss): the loss (captum's value is summarized).
        loss_summarize_fn (Callable, optional): ``loss value -> scalar`` to minimize.
            Default: :func:`~mei.optim.loss.default_loss_summarize`.
        n_shares (int, optional): how many values ``forward`` returns (the engine's number of input rows, which
            differs from the number of images for a parameterization optimized as one flat tensor).
            Default: the number of images.
    """

    def __init__(self, model: nn.Module, loss_function: Any,
                 loss_summarize_fn: Callable[[Tensor], Tensor] | None = None, n_shares: int | None = None) -> None:
        super().__init__()
        self.n_shares = n_shares
        self.model = model
        self.loss_function = loss_function
        self.loss_summarize_fn = loss_summarize_fn or default_loss_summarize
        #: Outputs of targets outside the model (the input parameterization), written by whoever renders.
        self.outside: dict[nn.Module, Tensor] = {}

    def loss(self, x: Tensor) -> Tensor:
        """The summarized loss of the images ``x`` (a scalar)."""
        outputs = _capture(self.model, _targets(self.loss_function), x, self.outside)
        value = self.loss_summarize_fn(self.loss_function(outputs))
        if not isinstance(value, Tensor) or value.numel() != 1:
            raise ValueError(f"loss_summarize_fn must return a scalar tensor, got "
                             f"{tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__}")
        return value.reshape(())

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[0] if self.n_shares is None else self.n_shares
        # several views of each image (mei.transforms.Views): every row gets its image's share, so the engine's
        # mean over the views gives each image 1/n of the loss again
        rows = x.shape[0] if x.shape[0] % n == 0 else n
        return (-self.loss(x) / n).expand(rows)


def _capture(model: nn.Module, targets: list[Any], x: Tensor, outside: dict[nn.Module, Tensor]) -> ModuleOutputs:
    """The targets' outputs from ``model(x)``; a target in ``outside`` (a module that is not part of the model,
    such as the input parameterization a loss may target, as in captum) takes its output from there."""
    outputs = run_and_capture(model, [t for t in targets if not _is_outside(t, outside)], x)
    outputs.update({t: outside[t] for t in targets if _is_outside(t, outside)})
    return outputs


def _is_outside(target: Any, outside: dict[nn.Module, Tensor]) -> bool:
    return isinstance(target, nn.Module) and target in outside


class _Tap:
    """``render`` that also writes each image it renders into ``into[module]`` (for a loss on the input
    parameterization ``module`` itself)."""

    def __init__(self, render: Callable[[Tensor], Tensor], module: nn.Module, into: dict[nn.Module, Tensor]) -> None:
        self.render, self.module, self.into = render, module, into

    def __call__(self, param: Tensor) -> Tensor:
        image = self.render(param)
        self.into[self.module] = image
        return image


def _targets(loss_function: Any) -> list[Any]:
    targets = getattr(loss_function, "targets", None)
    if targets is None:
        target = loss_function.target
        targets = target if isinstance(target, list) else [target]
    return list(targets)


class RenderedMEI(MEI):
    """:class:`mei.optimization.MEI` whose input is an image *parameter*: ``render(param)`` is the image.

    The engine's own parameterization hook (``MEI(render=...)``) under the name this front end has used: the
    transforms act on ``render(param)``, and the final evaluation and :attr:`current_image` are of the rendered
    image, without the random transforms.

    Args:
        render (Callable[[Tensor], Tensor]): parameter -> image, differentiable.
        *args, **kwargs: as for :class:`mei.optimization.MEI` (``transform`` acts on the rendered image).
    """

    def __init__(self, *args: Any, render: Callable[[Tensor], Tensor], **kwargs: Any) -> None:
        kwargs["render"] = render
        super().__init__(*args, **kwargs)


def _is_captum_criterion(stop_criteria: Any) -> bool:
    """captum's ``(step, obj, history, optimizer) -> bool`` rather than an engine stopper ``(state)``."""
    if isinstance(stop_criteria, n_steps) or isinstance(stop_criteria, OptimizationStopper):
        return False
    try:
        parameters = list(inspect.signature(stop_criteria).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 4 or any(p.kind == p.VAR_POSITIONAL for p in parameters)


class _CaptumStopper:
    """An engine stopper that asks captum's ``stop_criteria(step, obj, history, optimizer)`` after each step."""

    reads_input = False

    def __init__(self, criterion: Callable[..., bool], obj: InputOptimization, history: list[Tensor],
                 optimizer: torch.optim.Optimizer) -> None:
        self.criterion, self.obj, self.history, self.optimizer = criterion, obj, history, optimizer

    def __call__(self, state: State) -> tuple[bool, Any]:
        self.history.append(-state.evaluation_tensor.sum())
        return not self.criterion(state.i_iter + 1, self.obj, self.history, self.optimizer), None


class _History:
    """Collects captum's loss of every step as device tensors (no host synchronisation)."""

    reads_input = False

    def __init__(self, into: list[Tensor]) -> None:
        self.values = into

    def track(self, state: State) -> None:
        self.values.append(-state.evaluation_tensor.sum())


class InputOptimization:
    """Optimize an image parameterization so that ``loss_function`` of ``model``'s activations is maximal.

    Args:
        model (nn.Module, optional): the network; its parameters are not changed. Default: ``nn.Identity()``.
        loss_function (Loss): the objective, from :mod:`mei.optim.loss` (targets by module or name).
        input_param (nn.Module, optional): an image parameterization with ``param`` and ``render(param)``.
            Default: ``NaturalImage((224, 224))`` (on the model's device), as in captum.
        transform (nn.Module or Callable, optional): robustness transforms, ``t(x)`` or ``t(x, i_iter)``.
            Default: captum's, :func:`default_transform` (random rescaling, then a jitter of 16 pixels); pass
            ``nn.Identity()`` for none.
    """

    def __init__(self, model: nn.Module | None, loss_function: Loss,
                 input_param: ImageParameterizationLike | None = None,
                 transform: EngineTransform | Callable[[Tensor], Tensor] | None = None) -> None:
        if not hasattr(loss_function, "target") and not hasattr(loss_function, "targets"):
            raise TypeError(f"loss_function must name its layers (a mei.optim.loss objective), got {loss_function!r}")
        self.model = model if model is not None else nn.Identity()
        self.loss_function = loss_function
        if input_param is None:
            from .images import NaturalImage

            parameter = next(self.model.parameters(), None)
            default = NaturalImage((224, 224))
            input_param = cast(ImageParameterizationLike,
                               default if parameter is None else default.to(parameter.device))
        self.input_param: Any = input_param
        self.transform = transform if transform is not None else default_transform()

    @property
    def targets(self) -> list[Any]:
        """The layers the loss reads."""
        return _targets(self.loss_function)

    def parameters(self) -> Iterator[nn.Parameter]:
        """The image parameterization's parameters (what captum's optimizer is built on)."""
        return self.input_param.parameters()

    def loss(self) -> Tensor:
        """captum's value of the loss for the current image, transformed (one forward, with gradient)."""
        rendered = self.input_param()
        image = _engine_transform(self.transform)(rendered, 0)
        outside = {self.input_param: rendered} if self._targets_input() else {}
        return self.loss_function(_capture(self.model, self.targets, image, outside))

    def _targets_input(self) -> bool:
        """Whether the loss reads the input parameterization's own output (captum allows that)."""
        return any(t is self.input_param for t in self.targets)

    def cleanup(self) -> None:
        """Nothing to remove: hooks live for one forward only (kept for captum's API)."""

    def engine(self, optimizer: Any = None, lr: float | None = None,
               loss_summarize_fn: Callable[[Tensor], Tensor] | None = None) -> RenderedMEI:
        """The :class:`RenderedMEI` that :meth:`optimize` runs (for stepping by hand)."""
        param, render, _ = as_rendered(self.input_param)
        transform = _engine_transform(self.transform)
        objective = SummarizedObjective(self.model, self.loss_function, loss_summarize_fn, n_shares=param.shape[0])
        if self._targets_input():
            render = _Tap(render, self.input_param, objective.outside)
        return RenderedMEI(objective, param.detach(), optimizer_factory(optimizer, lr), transform=transform,
                           render=render)

    def optimize(self, stop_criteria: StopCriteria | OptimizationStopper | int | None = None,
                 optimizer: Any = None, loss_summarize_fn: Callable[[Tensor], Tensor] | None = None,
                 lr: float | None = None, seed: int | None = None) -> Tensor:
        """Run the engine, write the result into ``input_param.param``, and return the history.

        Args:
            stop_criteria (optional): captum's ``(step, obj, history, optimizer) -> bool`` (go on while true),
                such as :class:`n_steps`; an engine stopper ``(state) -> (stop, output)``; or a number of steps.
                Default: ``n_steps(512)``.
            optimizer (optional): a ``torch.optim.Optimizer`` instance (captum's form, rebuilt with its settings
                on the engine's tensor), an optimizer class, or a factory ``params -> Optimizer``. Default: Adam.
            loss_summarize_fn (Callable, optional): ``loss value -> scalar`` that is minimized.
                Default: :func:`~mei.optim.loss.default_loss_summarize` (``-mean``).
            lr (float, optional): learning rate; it takes effect with every optimizer but a factory (where it
                raises). Default: 0.025 for the default Adam, the optimizer's own otherwise.
            seed (int, optional): makes the run reproducible, bit for bit on the CPU: it seeds the random
                transforms (per image, see :mod:`mei.engine.rng`) and redraws a random start that was never
                optimized; the caller's global random state is left as it was. Default: torch's global random
                state.

        Returns:
            Tensor: captum's history, the summarized loss before each step, shape ``(steps,)`` (or that of
            ``loss_summarize_fn``'s value per step).
        """
        if stop_criteria is None:
            stop_criteria = n_steps(512)
        elif isinstance(stop_criteria, int) and not isinstance(stop_criteria, bool):
            stop_criteria = n_steps(stop_criteria, show_progress=False)
        mei, values = self.engine(optimizer, lr, loss_summarize_fn), cast(list[Tensor], [])
        captum_style = _is_captum_criterion(stop_criteria)
        n_images = mei.current_input.shape[0]
        context = rng.seeded([seed + k for k in range(n_images)]) if seed is not None else contextlib.nullcontext()
        with context, evaluation_mode(self.model):
            if seed is not None:
                _redraw_start(self.input_param, mei)
            if captum_style and not cast(Callable[..., bool], stop_criteria)(0, self, values, mei.optimizer):
                return torch.empty(0)
            if captum_style:
                optimize(mei, _CaptumStopper(cast(Callable[..., bool], stop_criteria), self, values, mei.optimizer))
            else:
                optimize(mei, stop_criteria, tracker=_History(values))  # type: ignore[arg-type]
        as_rendered(self.input_param)[2](mei.current_input)
        _mark_optimized(self.input_param)
        return torch.stack(values).detach()


def as_rendered(input_param: Any) -> tuple[Tensor, Callable[[Tensor], Tensor], Callable[[Tensor], None]]:
    """``(param, render, write_back)`` of an input parameterization, for the engine.

    A parameterization with a ``param`` tensor and ``render(param)`` (every :class:`~mei.optim.images.
    ImageParameterization` with one parameter) is used as it is. Any other ``nn.Module`` whose ``forward()``
    returns the input (captum's ``InputParameterization`` contract: :class:`~mei.optim.images.SharedImage`,
    :class:`~mei.optim.images.StackImage`, your own) is optimized through all its trainable parameters at once:
    ``param`` is their concatenation, shape ``(1, n)``, and ``render`` calls the module with them
    (``torch.func.functional_call``).
    """
    param = getattr(input_param, "param", None) if hasattr(input_param, "render") else None
    if isinstance(param, Tensor):

        def write_back(value: Tensor) -> None:
            with torch.no_grad():
                param.copy_(value)

        return param, input_param.render, write_back
    if not isinstance(input_param, nn.Module):
        raise TypeError(f"input_param must be an nn.Module parameterization, got {type(input_param).__name__}")
    named = [(name, p) for name, p in input_param.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError(f"{type(input_param).__name__} has no trainable parameter to optimize")
    names = [name for name, _ in named]
    shapes = [p.shape for _, p in named]
    sizes = [p.numel() for _, p in named]

    def render(flat: Tensor) -> Tensor:
        values = [v.reshape(shape) for v, shape in zip(flat.reshape(-1).split(sizes), shapes, strict=True)]
        output = torch.func.functional_call(input_param, dict(zip(names, values, strict=True)), ())
        return output.as_subclass(Tensor)

    def write_back_all(flat: Tensor) -> None:
        with torch.no_grad():
            for (_, p), v in zip(named, flat.reshape(-1).split(sizes), strict=True):
                p.copy_(v.reshape(p.shape))

    flat = torch.cat([p.detach().reshape(-1) for _, p in named])[None]
    return flat, render, write_back_all


def _redraw_start(input_param: Any, mei: MEI) -> None:
    """Redraw a never-optimized random start from the seeded streams (and start the engine from it)."""
    redraw = getattr(input_param, "redraw_start", None)
    if redraw is not None and redraw():
        with torch.no_grad():
            mei._input.copy_(as_rendered(input_param)[0])


def _mark_optimized(input_param: Any) -> None:
    mark = getattr(input_param, "mark_optimized", None)
    if mark is not None:
        mark()


def default_transform() -> nn.Module:
    """captum's default transform of :class:`InputOptimization`: ``nn.Sequential(RandomScale(scale=(1, 0.975,
    1.025, 0.95, 1.05)), RandomSpatialJitter(16))`` (:class:`~mei.optim.transforms.RandomScale` resizes)."""
    from .transforms import RandomScale, RandomSpatialJitter

    return nn.Sequential(RandomScale(scale=(1, 0.975, 1.025, 0.95, 1.05)), RandomSpatialJitter(16))


__all__ = ["InputOptimization", "RenderedMEI", "SummarizedObjective", "n_steps", "optimizer_factory",
           "default_transform", "as_rendered", "DEFAULT_LR"]
