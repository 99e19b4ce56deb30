"""The engine: :class:`MEI` (one optimization step at a time), :class:`State`, and :func:`optimize`.

Pure PyTorch; nothing here knows about DataJoint or dotted paths. Each step is

1. ``image = render(x)`` (the parameterization, if any), ``transformed = transform(image, i)``,
   ``evaluation = func(transformed)``,
   ``reg_term = regularization(transformed, i)``;
2. one backward of ``-(evaluation.sum() - reg_term)`` (or ``evaluation.sum() + reg_term`` when minimizing)
   into the input only (model parameters never get gradients);
3. ``x.grad = precondition(x.grad, i)``; ``optimizer.step()``;
4. ``x = postprocessing(x, i)`` without gradient.

Exactly one forward and one backward per step, and nothing is copied to the host unless someone reads a
float off the :class:`State` (stoppers and trackers that ask for ``evaluation``). A transform may return
``V`` views of every image (``V * K`` rows for ``K`` images, view-major, see :class:`mei.transforms.Views`):
the evaluation and the regularization are then averaged over the views, in the same single forward.

With a parameterization (``render``: the optimized tensor is a parameter, e.g. a Fourier phase, and
``render(x)`` the image), the final score is the function on the rendered image without the random
transforms, and :func:`optimize` returns the rendered image: what is scored is what is stored.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast

import torch
from torch import Tensor

from .engine.component import declared_kinds, reads_input
from .engine.hooks import scoring_views
from .stoppers import OptimizationStopper, PerImageStopper
from .tracking import Tracker


class Transform(Protocol):
    """A transform, preconditioner or postprocessor: ``(x, i_iter) -> Tensor``, arguments by position."""

    def __call__(self, x: Tensor, i_iter: int, /) -> Tensor: ...


class Regularization(Protocol):
    """A regularization: ``(x, i_iter) -> Tensor | float``, arguments by position."""

    def __call__(self, x: Tensor, i_iter: int, /) -> Tensor | float: ...


def identity(x: Tensor, i_iter: int) -> Tensor:
    """The do-nothing transform / preconditioner / postprocessor."""
    return x


def no_regularization(x: Tensor, i_iter: int) -> float:
    """The do-nothing regularization."""
    return 0.0


# sinzlab/mei's names of the defaults (the loop never calls the do-nothing ones)
default_transform = default_precondition = default_postprocessing = identity


def default_regularization(x: Tensor, i_iter: int) -> Tensor:
    """The do-nothing regularization under sinzlab/mei's name: a zero tensor."""
    return torch.tensor(0.0)


_NO_PENALTY = (no_regularization, default_regularization)


class NonFiniteError(FloatingPointError):
    """The evaluation or the gradient became NaN or infinite; ``step`` says when."""

    def __init__(self, step: int, what: str = "evaluation or gradient") -> None:
        self.step = step
        super().__init__(f"non-finite (NaN or Inf) {what} at optimization step {step}")


def _to_float(value: Tensor | float) -> float | Tensor:
    if isinstance(value, Tensor):
        value = value.detach()
        return value.item() if value.numel() == 1 else value.cpu()
    return float(value)


class State:
    """What one optimization step saw and did.

    Tensors are the step's own (on the optimization device, detached) and never change afterwards: a
    component may keep them (the loop hands out snapshots whenever a stopper or objective may read the
    inputs, see ``reads_input``). Float views (``evaluation``, ``reg_term``) are computed on first access
    only, so a loop whose components never read them never synchronises with the device.

    Attributes:
        i_iter (int): index of the step, from 0.
        evaluation (float | Tensor): model output for the transformed input (a CPU tensor of per-image
            values when the input holds several images).
        reg_term (float | Tensor): regularization term subtracted from the evaluation (0 if none).
        input_ (Tensor): the untransformed input before the step (also ``input``, sinzlab/mei's name).
        transformed_input (Tensor): what the model saw (all views, view-major, when a transform returns
            several views of each image).
        post_processed_input (Tensor): the input after the step and the postprocessing.
        grad (Tensor): gradient w.r.t. the input of the loss being minimized, ``-(evaluation - reg_term)``
            when maximizing (as in sinzlab/mei), ``evaluation + reg_term`` when minimizing.
        preconditioned_grad (Tensor): the gradient after preconditioning.
        stopper_output (Any): what the stopper returned with its decision.
    """

    __slots__ = (
        "i_iter", "input_", "transformed_input", "post_processed_input", "grad", "preconditioned_grad",
        "stopper_output", "_evaluation", "_reg_term", "_cache", "regularization",
    )

    def __init__(
        self,
        i_iter: int,
        evaluation: Tensor | float,
        reg_term: Tensor | float,
        input_: Tensor,
        transformed_input: Tensor,
        post_processed_input: Tensor,
        grad: Tensor,
        preconditioned_grad: Tensor,
        stopper_output: Any = None,
    ) -> None:
        self.i_iter = i_iter
        self._evaluation = evaluation
        self._reg_term = reg_term
        self.input_ = input_
        self.transformed_input = transformed_input
        self.post_processed_input = post_processed_input
        self.grad = grad
        self.preconditioned_grad = preconditioned_grad
        self.stopper_output = stopper_output
        self._cache: dict[str, Any] = {}
        self.regularization: Regularization | None = None  # set for batches, so views can split reg_term

    @property
    def evaluation(self) -> float | Tensor:
        if "evaluation" not in self._cache:
            self._cache["evaluation"] = _to_float(self._evaluation)
        return self._cache["evaluation"]

    @property
    def reg_term(self) -> float | Tensor:
        if "reg_term" not in self._cache:
            self._cache["reg_term"] = _to_float(self._reg_term)
        return self._cache["reg_term"]

    @property
    def evaluation_tensor(self) -> Tensor:
        """The per-image evaluation as a device tensor (no host synchronisation)."""
        return torch.as_tensor(self._evaluation).detach()

    @property
    def n_images(self) -> int:
        """Number of images in the input (first dimension)."""
        return self.post_processed_input.shape[0]

    def image(self, index: int) -> ImageState:
        """The view of image ``index`` alone, as a single run of that image would see it (cached)."""
        views = self._cache.setdefault("images", {})
        if index not in views:
            views[index] = ImageState(self, index)
        return views[index]

    @property
    def input(self) -> Tensor:
        """``input_`` under sinzlab/mei's attribute name."""
        return self.input_

    def to_dict(self) -> dict[str, Any]:
        """All fields by constructor name (``State.from_dict(state.to_dict())`` rebuilds it); the tensors are
        the state's own (they never change), ``None`` for an input that was not kept."""
        return {
            "i_iter": self.i_iter, "evaluation": self.evaluation, "reg_term": self.reg_term,
            **{name: None if (value := getattr(self, name)) is _NOT_KEPT else value for name in _TENSOR_FIELDS},
            "stopper_output": self.stopper_output,
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> State:
        """A state from :meth:`to_dict`'s dict (sinzlab/mei's constructor by dict)."""
        return cls(**state)

    def __eq__(self, other: object) -> bool:
        """Same fields: numbers equal, tensors equal in shape and value (``torch.equal``)."""
        if not isinstance(other, State):
            return NotImplemented
        mine, theirs = self.to_dict(), other.to_dict()
        return all(_same(mine[name], theirs[name]) for name in mine)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        return f"State(i_iter={self.i_iter}, evaluation={self.evaluation}, reg_term={self.reg_term})"


_TENSOR_FIELDS = ("input_", "transformed_input", "post_processed_input", "grad", "preconditioned_grad")


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return isinstance(a, Tensor) and isinstance(b, Tensor) and a.shape == b.shape and bool(torch.equal(
            a.detach().cpu(), b.detach().cpu()))
    return bool(a == b)


class ImageState:
    """One image's view of a batched :class:`State`: the fields a run of that image alone would have.

    Tensors are sliced on access (``(1, ...)``, like a single-image run); ``evaluation`` is read from the
    batch's one host copy; ``reg_term`` is the regularization of this image alone, recomputed without
    gradient on first access (the batch only has the sum). ``stopper_output`` is this image's own.
    """

    __slots__ = ("parent", "index", "stopper_output", "_reg_cache")

    def __init__(self, parent: State, index: int) -> None:
        self.parent = parent
        self.index = index
        self.stopper_output: Any = None
        self._reg_cache: float | None = None

    @property
    def i_iter(self) -> int:
        return self.parent.i_iter

    def _slice(self, name: str) -> Tensor:
        return getattr(self.parent, name)[self.index:self.index + 1]

    input_ = property(lambda self: self._slice("input_"))

    @property
    def transformed_input(self) -> Tensor:
        """What the model saw of this image: ``(1, ...)``, or all ``V`` of its views ``(V, ...)``."""
        transformed, n_images = self.parent.transformed_input, self.parent.n_images
        if transformed.shape[0] != n_images:
            return transformed[self.index::n_images]
        return transformed[self.index:self.index + 1]

    post_processed_input = property(lambda self: self._slice("post_processed_input"))
    grad = property(lambda self: self._slice("grad"))
    preconditioned_grad = property(lambda self: self._slice("preconditioned_grad"))

    @property
    def evaluation(self) -> float:
        values = self.parent._cache.get("evaluation_list")
        if values is None:  # one host copy and one list per step, shared by all images' views
            values = torch.as_tensor(self.parent.evaluation).reshape(-1).tolist()
            self.parent._cache["evaluation_list"] = values
        return values[self.index]

    @property
    def evaluation_tensor(self) -> Tensor:
        return self.parent.evaluation_tensor.reshape(-1)[self.index]

    @property
    def reg_term(self) -> float:
        if self._reg_cache is None:
            regularization, total = self.parent.regularization, self.parent._reg_term
            if regularization is None or not isinstance(total, Tensor):  # one image, or a constant term
                self._reg_cache = float(total)
            else:
                with torch.no_grad():
                    views = self.transformed_input
                    term = _to_float(regularization(views, self.i_iter))
                    self._reg_cache = float(term) / views.shape[0]
        return self._reg_cache

    to_dict = State.to_dict

    def __repr__(self) -> str:
        return f"ImageState(index={self.index}, i_iter={self.i_iter}, evaluation={self.evaluation})"


class MEI:
    """An input being optimized for a function, one :meth:`step` at a time.

    Args:
        func (Callable[[Tensor], Tensor]): the objective, e.g. a model constrained to one unit; returns one
            value per image of its input, or one value for the whole input (any shape).
        initial (Tensor): starting input, first dimension = images; it is copied, never changed (unless
            ``optimizer`` is an instance over ``initial`` itself).
        optimizer (Callable | torch.optim.Optimizer): a torch-style optimizer class (or factory) called as
            ``optimizer([x])``; or, as in sinzlab/mei, an optimizer *instance* over one tensor, which is then
            the tensor optimized (in place, starting from ``initial``'s values).
        transform, regularization, precondition, postprocessing: components with the signatures
            ``(x, i_iter) -> x``, ``(x, i_iter) -> scalar``, ``(grad, i_iter) -> grad``,
            ``(x, i_iter) -> x``. Default: identity / zero.
        maximize (bool, optional): ``False`` finds least-exciting inputs. Default: ``True``.
        finite_check_interval (int, optional): steps between NaN/Inf checks (a check synchronises with the
            device and costs a few small kernels; the error still names the first bad step). Default: 25.
        loss_weight (Callable[[Tensor, int], Tensor], optional): ``(x, i_iter) -> factor``: the step's loss
            (penalty included) is multiplied by it before the backward, ``x`` the untransformed input (sinzlab/mei's
            transparent MEIs scale it by ``1 - mean opacity * weight``). Default: None (factor 1).
        render (Callable[[Tensor], Tensor], optional): the parameterization: ``render(x)`` is the image the
            transforms and the function see (differentiable, deterministic), ``x`` its parameter. The final
            evaluation (:meth:`evaluate`) and the input :func:`optimize` returns are of the rendered image
            (:attr:`current_image`). Default: none (``x`` is the image).
    """

    def __init__(
        self,
        func: Callable[[Tensor], Tensor],
        initial: Tensor,
        optimizer: Callable[[list[Tensor]], torch.optim.Optimizer] | torch.optim.Optimizer,
        transform: Transform = default_transform,
        regularization: Regularization = default_regularization,
        precondition: Transform = default_precondition,
        postprocessing: Transform = default_postprocessing,
        maximize: bool = True,
        finite_check_interval: int | None = None,
        loss_weight: Callable[[Tensor, int], Tensor] | None = None,
        render: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        self.func = func
        self.loss_weight = loss_weight
        self.render = render
        self.transform = transform
        self.regularization = regularization
        self.precondition = precondition
        self.postprocessing = postprocessing
        self.maximize = maximize
        self.i_iter = 0
        if isinstance(optimizer, torch.optim.Optimizer):
            self._input = _optimized_tensor(optimizer, initial)
            self.optimizer = optimizer
        else:
            self._input = initial.detach().clone().requires_grad_(True)
            self.optimizer = optimizer([self._input])
        self._needs_closure = _step_needs_closure(self.optimizer)
        if finite_check_interval is None:
            finite_check_interval = 25
        self._check_interval = max(1, int(finite_check_interval))
        self._probes: list[Tensor] = []
        self._probe_start = 0
        # snapshot the inputs for the State (optimize() turns it off when no stopper or objective reads them):
        # one copy per step, after the postprocessing; it is this step's post_processed_input and the next
        # step's input_ (while the input's version counter says nothing changed it in between)
        self.keep_input = True
        self._snapshot: tuple[Tensor, int] | None = None
        self._frozen: Tensor | None = None  # per-image mask, broadcastable to the input (see freeze)

    def freeze(self, finished: Tensor | list[bool]) -> None:
        """Freeze the images flagged in ``finished`` (one bool per image) for all later steps.

        A frozen image keeps its current value: the gradient the optimizer sees is zeroed for it (after the
        preconditioning) and whatever the optimizer (momentum, Adam moments, weight decay) or the
        postprocessing would do to it is undone at the end of every step. Implemented by wrapping
        ``precondition`` and ``postprocessing``, so :meth:`step` itself is the same for every input.
        """
        x = self._input
        mask = torch.as_tensor(finished, dtype=torch.bool, device=x.device).reshape(-1)
        if mask.numel() != x.shape[0]:
            raise ValueError(f"freeze() needs one flag per image ({x.shape[0]}), got {mask.numel()}")
        if self._frozen is None:
            self._unfrozen = (self.precondition, self.postprocessing)
        else:
            mask = mask | self._frozen.reshape(-1)
        frozen = self._frozen = mask.view(-1, *([1] * (x.dim() - 1)))
        values = x.detach().clone()
        precondition, postprocessing = self._unfrozen

        def hold_gradient(grad: Tensor, i_iter: int) -> Tensor:
            return precondition(grad, i_iter).masked_fill(frozen, 0.0)

        def hold_value(y: Tensor, i_iter: int) -> Tensor:
            return torch.where(frozen, values, postprocessing(y, i_iter))

        self.precondition, self.postprocessing = hold_gradient, hold_value

    @property
    def current_input(self) -> Tensor:
        """The input as it is now (a detached view; copy it to keep it): the parameter, with a ``render``."""
        return self._input.detach()

    @property
    def current_image(self) -> Tensor:
        """The image as it is now: ``render(current_input)`` (detached), or the input itself without a render."""
        if self.render is None:
            return self._input.detach()
        with torch.no_grad():
            return self.render(self._input.detach()).detach()

    def evaluate(self) -> Tensor:
        """The function on the current image (rendered, untransformed), without gradient."""
        with torch.no_grad():
            return self.func(self.current_image)

    def _forward_backward(self, x: Tensor, i_iter: int) -> tuple[Tensor, Tensor, Tensor | float, Tensor, Tensor]:
        """One forward and one backward; returns ``(transformed, evaluation, reg_term, loss, grad)``."""
        self.optimizer.zero_grad(set_to_none=True)
        transformed = self.transform(x if self.render is None else self.render(x), i_iter)
        n_views = _n_views(transformed, x)
        if n_views > 1:  # objectives can find an image's rows (all its views), e.g. captum's batch_index
            with scoring_views(n_views):
                evaluation = self.func(transformed)
        else:
            evaluation = self.func(transformed)
        if i_iter == 0:
            _check_evaluation_shape(evaluation, transformed.shape[0])
        reg_term = 0.0 if self.regularization in _NO_PENALTY else self.regularization(transformed, i_iter)
        if n_views > 1:  # several views per image (mei.transforms.Views): the objective is their mean
            if evaluation.numel() > 1:  # (one value for the whole input needs no averaging)
                evaluation = evaluation.reshape(n_views, x.shape[0]).mean(dim=0)
            reg_term = reg_term / n_views
        # maximize: minimize -(evaluation - reg_term); minimize: minimize evaluation + reg_term (the penalty
        # always costs). A constant zero penalty adds no kernel.
        loss = evaluation.sum().neg() if self.maximize else evaluation.sum()
        if not (isinstance(reg_term, (int, float)) and reg_term == 0):
            loss = loss + reg_term
        if self.loss_weight is not None:
            loss = loss * self.loss_weight(x, i_iter)
        loss.backward(inputs=[x])
        if x.grad is None:  # the objective does not depend on the input at all
            x.grad = torch.zeros_like(x)
        return transformed, evaluation, reg_term, loss, x.grad

    def _closure(self, i_iter: int) -> Callable[[], Tensor]:
        """For optimizers whose ``step`` needs a closure (LBFGS): re-evaluate, precondition, return the loss."""

        def closure() -> Tensor:
            loss, grad = self._forward_backward(self._input, i_iter)[3:]
            self._input.grad = self.precondition(grad, i_iter)
            return loss.detach()

        return closure

    def step(self) -> State:
        """One forward, one backward, one optimizer step and postprocessing; returns the :class:`State`.

        Optimizers that need a closure (LBFGS) re-evaluate the objective inside their step as often as
        they ask; every other optimizer sees exactly one forward and one backward.
        """
        x, i_iter, keep = self._input, self.i_iter, self.keep_input
        input_before = self._input_snapshot() if keep else None
        transformed, evaluation, reg_term, loss, grad = self._forward_backward(x, i_iter)
        if keep and transformed is not x and transformed._base is x:  # a view of the input (a crop): copy it
            transformed = transformed.detach().clone()  # before the optimizer changes the input in place
        self._probe(loss.detach() + grad.sum())  # a NaN/Inf in the loss or anywhere in the gradient shows here
        if self.precondition is identity:
            preconditioned = grad
        else:  # a preconditioner of the user's may change the gradient in place: the State keeps the original
            preconditioned = self.precondition(grad.clone() if keep and _may_write(self.precondition) else grad,
                                               i_iter)
        x.grad = preconditioned
        if self._needs_closure:
            # torch types closure as returning float; optimizers take the loss tensor it returns
            self.optimizer.step(cast(Callable[[], float], self._closure(i_iter)))
        else:
            self.optimizer.step()
        if self.postprocessing is not identity:
            with torch.no_grad():
                post = self.postprocessing(x.detach(), i_iter)
                if post is not x and post.data_ptr() != x.data_ptr():
                    x.copy_(post)
        self.i_iter += 1
        if transformed is x:  # identity transform: what the model saw is the pre-step input
            transformed = input_before if input_before is not None else _NOT_KEPT
        else:
            transformed = transformed.detach()
        if keep:
            post_processed = x.detach().clone()
            self._snapshot = (post_processed, x._version)
        else:
            post_processed = x.detach()
        return State(
            i_iter=i_iter,
            evaluation=evaluation.detach(),
            reg_term=reg_term.detach() if isinstance(reg_term, Tensor) else reg_term,
            input_=input_before if input_before is not None else _NOT_KEPT,
            transformed_input=transformed,
            post_processed_input=post_processed,
            grad=grad,
            preconditioned_grad=preconditioned,
        )

    def _input_snapshot(self) -> Tensor:
        """A copy of the input as it is now: the last step's post-processed copy if nothing changed it since."""
        if self._snapshot is not None and self._snapshot[1] == self._input._version:
            return self._snapshot[0]
        return self._input.detach().clone()

    def _probe(self, probe: Tensor) -> None:
        self._probes.append(probe)
        if len(self._probes) >= self._check_interval:
            self.check_finite()

    def check_finite(self) -> None:
        """Raise :class:`NonFiniteError` naming the first step whose loss or gradient was NaN/Inf."""
        if not self._probes:
            return
        finite = torch.isfinite(torch.stack(self._probes))
        start, self._probe_start = self._probe_start, self._probe_start + len(self._probes)
        self._probes = []
        if not bool(finite.all()):
            first_bad = int((~finite).nonzero()[0, 0])
            raise NonFiniteError(start + first_bad)


class _NotKept:
    """Stands for ``State.input_`` when no stopper or objective declared that it reads it."""

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            "State.input_ was not kept: the stopper and objectives declare reads_input = False. Set "
            "reads_input = True on your component (the default for OptimizationStopper/Objective subclasses)."
        )

    def __getitem__(self, index: Any) -> Any:
        return self.__getattr__("__getitem__")


_NOT_KEPT: Any = _NotKept()


def _optimized_tensor(optimizer: torch.optim.Optimizer, initial: Tensor) -> Tensor:
    """The one tensor an optimizer instance optimizes, holding ``initial``'s values (sinzlab/mei's calling style)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if len(params) != 1:
        raise ValueError(f"an optimizer instance given to MEI must optimize exactly one tensor, it has {len(params)}")
    (param,) = params
    if param.shape != initial.shape:
        raise ValueError(f"the optimizer's tensor has shape {tuple(param.shape)}, the initial input "
                         f"{tuple(initial.shape)}")
    if param is not initial:
        with torch.no_grad():
            param.copy_(initial)
    return param.requires_grad_(True)


def _may_write(component: Any) -> bool:
    """Whether ``component`` may change its argument in place: anything but the package's own components."""
    return not (type(component).__module__.startswith("mei.") and declared_kinds(type(component)))


def _step_needs_closure(optimizer: Any) -> bool:
    try:
        parameter = inspect.signature(optimizer.step).parameters.get("closure")
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.default is inspect.Parameter.empty


def _n_views(transformed: Tensor, x: Tensor) -> int:
    """How many views of each image the transformed batch holds (1 unless a transform tiled it)."""
    n_rows, n_images = transformed.shape[0], x.shape[0]
    if n_rows == n_images:
        return 1
    if n_rows % n_images:
        raise ValueError(f"the transform returned {n_rows} images for {n_images} input images; a transform keeps "
                         "the number of images or returns whole views of all of them (see mei.transforms.Views)")
    return n_rows // n_images


def _check_evaluation_shape(evaluation: Any, n_images: int) -> None:
    if not isinstance(evaluation, Tensor):
        raise TypeError(f"the objective must return a tensor, got {type(evaluation).__name__}")
    if evaluation.numel() == 1:  # one value for the whole input, whatever its shape (as sinzlab/mei accepts)
        pass
    elif evaluation.numel() != n_images or (evaluation.dim() > 1 and evaluation.shape[0] != n_images):
        raise ValueError(
            f"the objective must return one scalar per input image ({n_images} here) or one for the whole "
            f"input, but returned shape "
            f"{tuple(evaluation.shape)}; constrain the model to one unit, e.g. mei.modules.ConstrainedOutputModel"
        )
    if not evaluation.is_floating_point():
        raise TypeError(f"the objective must return floating-point values, got {evaluation.dtype}")


def optimize(
    mei: MEI,
    stopper: Callable[[State], tuple[bool, Any]],
    tracker: Tracker | None = None,
    progress: Callable[[], Any] | None = None,
) -> tuple[float | Tensor, Tensor]:
    """Step ``mei`` until ``stopper`` says stop; returns ``(final evaluation, final image)``.

    The final evaluation is the function on the final, untransformed image (one extra forward, no
    gradient); with a parameterization (``MEI(render=...)``) that is the rendered image, and so is the
    returned input. ``tracker`` (if any) sees every state after the stopper; ``progress`` is called once a step.
    """
    per_image_stopper = stopper if isinstance(stopper, PerImageStopper) else None
    per_image = per_image_stopper is not None
    # the pre-step copy of the input costs a tensor copy per step: skip it when nobody can read it
    mei.keep_input = reads_input(stopper) or (tracker is not None and reads_input(tracker))
    while True:
        state = mei.step()
        if per_image:
            state.regularization = mei.regularization  # lets each image's view compute its own reg_term
        stop, output = stopper(state)
        state.stopper_output = output
        if per_image_stopper is not None and not stop and per_image_stopper.changed:
            mei.freeze(per_image_stopper.finished)  # images whose own stopper said stop keep their value from now on
        if tracker is not None:
            tracker.track(state)
        if progress is not None:
            progress()
        if stop:
            break
    mei.check_finite()
    evaluation = mei.evaluate()
    if not isinstance(evaluation, Tensor):  # a duck-typed MEI of the user's: its own evaluation and input
        return evaluation, mei.current_input
    evaluation = evaluation.detach()
    if not bool(torch.isfinite(evaluation).all()):
        raise NonFiniteError(mei.i_iter, "final evaluation")
    final = evaluation.item() if evaluation.numel() == 1 else evaluation.cpu()
    return final, getattr(mei, "current_image", mei.current_input).clone()


__all__ = [
    "MEI", "State", "ImageState", "optimize", "NonFiniteError", "identity", "no_regularization", "OptimizationStopper",
    "default_transform", "default_regularization", "default_precondition", "default_postprocessing",
]

