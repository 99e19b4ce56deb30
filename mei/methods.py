"""Method functions: ``method(dataloaders, model, config, seed) -> (mei, score, output)``.

:func:`gradient_ascent` is the glue from a config dict of dotted-path components to the engine in
:mod:`mei.optimization`. Other methods (variational, diverse, batched …) follow the same signature.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .engine import rng
from .engine.component import check_number, component
from .engine.errors import ConfigError
from .engine.resolve import Components, build_component, build_components
from .import_helpers import import_object
from .initial import create_initial
from .optimization import MEI, optimize
from .tracking import Tracker

_run_info: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("mei_run_info", default=None)


@contextlib.contextmanager
def recording() -> Iterator[dict[str, Any]]:
    """Collect facts about the method runs inside the block (``steps``, ``device``) into the yielded dict."""
    info: dict[str, Any] = {}
    token = _run_info.set(info)
    try:
        yield info
    finally:
        _run_info.reset(token)


def record(**facts: Any) -> None:
    """Add facts about the current run to an enclosing :func:`recording` block, if any."""
    info = _run_info.get()
    if info is not None:
        info.update(facts)


def get_device(name: str) -> torch.device:
    """The torch device for ``"cpu"``/``"cuda"``/``"cuda:N"``; a clear error when CUDA is not there."""
    device = torch.device(name)
    checked = ("validating a config (check-config, inserting a method) accepts any 'cuda' device: it cannot know "
               "the machine that will run it; this is that machine")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"config asks for device {name!r} but no CUDA GPU is available here "
                               f"(torch.cuda.is_available() is False); use 'cpu', or run it on a machine with a "
                               f"GPU ({checked})")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(f"config asks for {name!r} but only {torch.cuda.device_count()} GPU(s) exist here "
                               f"(cuda:0 to cuda:{torch.cuda.device_count() - 1}; {checked})")
    return device


def _first_batch_inputs(batch: Any) -> Tensor:
    if isinstance(batch, Tensor):
        return batch
    if hasattr(batch, "_fields"):  # namedtuple, e.g. nnfabrik's (images, responses)
        return batch.inputs if hasattr(batch, "inputs") else batch[0]
    if isinstance(batch, Mapping):
        return batch["inputs"] if "inputs" in batch else next(iter(batch.values()))
    if isinstance(batch, (list, tuple)):
        return batch[0]
    raise TypeError(f"cannot find the inputs in a batch of type {type(batch).__name__}")


def input_shape_from_dataloaders(dataloaders: Any, data_key: str | None = None) -> tuple[int, ...]:
    """``(1, *input.shape[1:])`` of the first batch of the first training loader (nnfabrik layout), or of
    the loader of session ``data_key`` if there is one.

    Iterating a shuffling loader draws from torch's global RNG; it is forked around the draw, so the
    caller's random state is left as it was.
    """
    if not dataloaders:
        raise ValueError("no dataloaders to take the input shape from; put a 'shape' key in the method config")
    loaders = dataloaders["train"] if isinstance(dataloaders, Mapping) and "train" in dataloaders else dataloaders
    if isinstance(loaders, Mapping):
        loader = loaders[data_key] if data_key in loaders else next(iter(loaders.values()))
    else:
        loader = loaders
    with torch.random.fork_rng(devices=[]):
        inputs = _first_batch_inputs(next(iter(loader)))
    return (1, *inputs.shape[1:])


def input_shape_from_dims(dataloaders: Any, get_dims: Callable[[Any], Mapping[str, Any]]) -> tuple[int, ...]:
    """The input shape from nnfabrik's ``get_dims_for_loader_dict(dataloaders["train"])`` (or a function like it):
    the first entry of its first session, as sinzlab/mei reads it. Torch's global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        dims = get_dims(dataloaders["train"])
    first = next(iter(dims.values()))
    return tuple(next(iter(first.values())))


@contextlib.contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block and restore its training flag afterwards."""
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        yield model
    finally:
        if was_training and hasattr(model, "train"):
            model.train()


def _progress_bar(components: Components) -> Any:
    from tqdm.auto import tqdm

    total = getattr(components.stopper, "num_iterations", None)
    return tqdm(total=total, desc="MEI", unit="step", leave=False)


class TransparentMEI:
    """sinzlab/mei's transparent MEIs (config keys ``transparency``, ``transparency_weight``, ``background``) on
    the engine's one loop.

    The optimized input has one channel more than the model takes: the last is the opacity ``alpha``, 0.5 at
    the start and clipped to ``[0, 1]`` after every step (after the config's postprocessing). The model sees
    ``image * alpha + weight * background * (1 - alpha)`` (each image channel blended; the background a
    ``height x width`` image, or ``channels x height x width``; zero without a background component). The
    config's regularization is given the mean opacity (as sinzlab/mei: e.g. ``mei.legacy.ops.RegTransparency``),
    and the step's loss ``(-response + penalty)`` is multiplied by ``1 - mean opacity * weight``. The MEI
    returned keeps the opacity channel; the score is the response to the blended final MEI.

    Args:
        background (Callable[[Tensor, int], Tensor], optional): ``background(x, i_iter)``, a new one each step
            or the same. Default: None (zero).
        weight (float, optional): ``transparency_weight``. Default: 1.
    """

    def __init__(self, background: Callable[[Tensor, int], Tensor] | None = None, weight: float = 1.0) -> None:
        self.background = background
        self.weight = float(weight)
        self._i_iter = 0
        self._opacity: Tensor | None = None

    def initial(self, x: Tensor) -> Tensor:
        """``x`` with the opacity channel (0.5 everywhere) appended."""
        return torch.cat((x, torch.full_like(x[:, :1], 0.5)), dim=1)

    def blend(self, x: Tensor, i_iter: int) -> Tensor:
        """What the model sees of the transparent input ``x`` at step ``i_iter``."""
        image, alpha = x[:, :-1], x[:, -1:]
        if self.background is None:
            return image * alpha
        background = torch.as_tensor(self.background(x, i_iter)).to(device=x.device, dtype=x.dtype)
        background = background.reshape(1, -1, *background.shape[-2:]) * self.weight
        return image * alpha + background * (1 - alpha)

    def objective(self, model: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
        """``model`` of the blended input (at the step the transform last saw)."""
        return lambda x: model(self.blend(x, self._i_iter))

    def transform(self, transform: Any) -> Callable[[Tensor, int], Tensor]:
        """The config's transform (or none), noting the step and the mean opacity it saw."""

        def transparent_transform(x: Tensor, i_iter: int) -> Tensor:
            self._i_iter = i_iter
            transformed = x if transform is None else transform(x, i_iter)
            self._opacity = transformed[:, -1].mean()
            return transformed

        return transparent_transform

    def regularization(self, regularization: Any) -> Callable[[Tensor, int], Any] | None:
        """The config's regularization of the mean opacity (none stays none)."""
        if regularization is None:
            return None
        return lambda transformed, i_iter: regularization(self._opacity, i_iter)

    def postprocessing(self, postprocessing: Any) -> Callable[[Tensor, int], Tensor]:
        """The config's postprocessing (or none), then the opacity clipped to ``[0, 1]``."""

        def clip_opacity(x: Tensor, i_iter: int) -> Tensor:
            y = x if postprocessing is None else postprocessing(x, i_iter)
            return torch.cat((y[:, :-1], y[:, -1:].clamp(0.0, 1.0)), dim=1)

        return clip_opacity

    def loss_weight(self, x: Tensor, i_iter: int) -> Tensor:
        """``1 - mean opacity * weight``."""
        return 1 - x[:, -1].mean() * self.weight


def parameter_shape(parameterization: Any, shape: Sequence[int]) -> tuple[int, ...]:
    """The shape of the tensor optimized for images of ``shape``: ``parameterization.parameter_shape(shape)``
    where the parameterization has one (a Fourier phase is narrower than the image), else ``shape``."""
    if parameterization is None or not hasattr(parameterization, "parameter_shape"):
        return tuple(shape)
    return tuple(int(s) for s in parameterization.parameter_shape(tuple(shape)))


def run_engine(model: nn.Module, components: Components, shape: tuple[int, ...], seeds: list[int],
               device: torch.device, tracker: Any = None, transparent: TransparentMEI | None = None,
               ) -> tuple[Tensor, float | Tensor, dict[str, Any], int]:
    """Run the engine for built ``components``; returns ``(input, score, tracked, steps)``.

    ``tracker`` replaces the default ``Tracker(**components.objectives)`` (batched runs track per image);
    ``transparent`` makes it a transparent MEI (:class:`TransparentMEI`).
    """
    components.check_input(shape)
    with rng.seeded(seeds, devices=[device]), evaluation_mode(model):
        model.to(device)
        shape = (len(seeds), *shape[1:]) if len(seeds) > 1 else shape
        render = components.parameterization
        if render is not None and transparent is not None:
            raise ConfigError("parameterization", "cannot be combined with sinzlab/mei's transparency: the opacity "
                                                  "channel is a channel of the image, not of a parameter")
        initial = create_initial(components.initial, parameter_shape(render, shape)).to(device)
        parts = {k: getattr(components, k) for k in ("transform", "regularization", "precondition", "postprocessing")}
        func: Callable[[Tensor], Tensor] = model
        extra: dict[str, Any] = {}
        if transparent is not None:
            initial, func = transparent.initial(initial), transparent.objective(model)
            parts.update(transform=transparent.transform(parts["transform"]),
                         regularization=transparent.regularization(parts["regularization"]),
                         postprocessing=transparent.postprocessing(parts["postprocessing"]))
            extra["loss_weight"] = transparent.loss_weight
        if render is not None:
            extra["render"] = render.to(device) if isinstance(render, nn.Module) else render
        mei = MEI(func, initial, components.optimizer, **{k: v for k, v in parts.items() if v is not None},
                  maximize=components.maximize, **extra)
        tracker = Tracker(**components.objectives) if tracker is None else tracker
        bar = _progress_bar(components) if components.progress else None
        try:
            score, final = optimize(mei, components.stopper, tracker, bar.update if bar else None)
        finally:
            if bar is not None:
                bar.close()
    return final.cpu(), score, tracker.log, mei.i_iter


@component("method")
def gradient_ascent(dataloaders: Any, model: nn.Module, config: Mapping[str, Any], seed: int,
                    set_seed: Callable[[int], Any] | None = None, get_dims: Callable[[Any], Any] | None = None,
                    mei_class: Callable[..., Any] | None = None, import_func: Callable[..., Any] | None = None,
                    optimize_func: Callable[..., Any] | None = None, tracker_cls: Callable[..., Any] | None = None,
                    *, shape: Any = None, create_initial_guess: Callable[..., Tensor] | None = None,
                    ) -> tuple[Tensor, float, dict[str, Any]]:
    """Generate one MEI by gradient ascent on ``model`` (a module returning one value per input, or one in all).

    Args:
        dataloaders (dict | None): nnfabrik-style ``{"train": {key: DataLoader}, ...}``; the input shape is
            that of the first training batch with batch size 1. May be ``None`` if ``config["shape"]`` is set.
        model (nn.Module): the objective, e.g. a :class:`~mei.modules.ConstrainedOutputModel`. It is moved to
            the config's device and evaluated in eval mode (its training flag is restored afterwards).
        config (dict): components by dotted path, see :func:`mei.engine.resolve.build_components` and the README.
        seed (int): seeds every random draw; the caller's global RNG state is left unchanged.
        set_seed, get_dims, mei_class, import_func, optimize_func, tracker_cls (Callable, optional):
            sinzlab/mei's injectable collaborators (``torch.manual_seed``, nnfabrik's
            ``get_dims_for_loader_dict``, :class:`~mei.optimization.MEI`, :func:`mei.import_helpers.import_object`,
            :func:`~mei.optimization.optimize`, :class:`~mei.tracking.Tracker`). Given any, the run follows
            sinzlab/mei's sequence with them (see :func:`gradient_ascent_with`). Default: the package's own run.
        shape (Sequence[int], optional): the input shape, instead of the dataloaders' (keyword only).
        create_initial_guess (Callable, optional): sinzlab/mei's early collaborator (its ``featurevis``
            package, until May 2020), keyword only: the starting input is ``create_initial_guess(1, *shape[1:],
            device=device)`` (e.g. ``torch.randn``) and the config needs no ``initial``. Given, the run follows
            sinzlab/mei's sequence (:func:`gradient_ascent_with`).

    Returns:
        tuple: ``(mei, score, output)`` — the MEI as a CPU tensor of the input shape, the model's evaluation
        of the final MEI (float), and ``{objective path: {"times": [...], "values": [...]}}`` (a
        :class:`~mei.tracking.TrackedLog`: ``output["EvaluationObjective"]`` finds the path's entry too).
    """
    collaborators = {name: value for name, value in (
        ("set_seed", set_seed), ("get_dims", get_dims), ("mei_class", mei_class), ("import_func", import_func),
        ("optimize_func", optimize_func), ("tracker_cls", tracker_cls), ("create_initial_guess", create_initial_guess),
    ) if value is not None}
    if collaborators:
        return gradient_ascent_with(dataloaders, model, config, seed, shape=shape, **collaborators)
    sinzlab, config = split_sinzlab_keys(config)
    components = build_components(config)
    device = get_device(components.device)
    if sinzlab.get("inhibitory"):
        components.maximize = False
    shape = shape or sinzlab.get("mei_shape") or components.shape or input_shape_from_dataloaders(dataloaders)
    shape = (sinzlab.get("n_meis", shape[0] if len(shape) else 1), *tuple(shape)[1:])
    if sinzlab.get("model_forward_kwargs"):
        model = WithForwardKwargs(model, sinzlab["model_forward_kwargs"], device)
    mei, score, output, steps = run_engine(model, components, shape, [int(seed)], device,
                                           transparent=transparent_mei(sinzlab))
    record(steps=steps, device=str(device))
    return mei, float(score) if not isinstance(score, Tensor) else float(score.mean()), output


SINZLAB_KEYS: dict[str, str] = {
    "n_meis": "number of MEIs optimized together (int >= 1)",
    "mei_shape": "the input shape (as 'shape')",
    "model_forward_kwargs": "keyword arguments for every forward call of the model (lists become tensors)",
    "inhibitory": "true finds least-exciting inputs (as 'minimize')",
    "transparency": "true optimizes a transparent MEI: an opacity channel over a background (see TransparentMEI)",
    "transparency_weight": "a transparent MEI's background factor and loss scale 1 - mean opacity * weight "
                           "(number >= 0, default 1)",
    "background": "a transparent MEI's background: a component of kind 'background' (default: zero)",
}
"""sinzlab/mei's extra gradient-ascent config keys (its later versions), and what they mean here."""


def split_sinzlab_keys(config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(sinzlab's extra keys, the rest of the config)``, the extra ones checked.

    Raises:
        ConfigError: a bad value (the ``background`` component is built to check it).
    """
    if not isinstance(config, Mapping):
        return {}, config  # build_components says what is wrong
    extra = {key: config[key] for key in SINZLAB_KEYS if key in config}
    rest = {key: value for key, value in config.items() if key not in SINZLAB_KEYS}
    if extra.get("transparency") is not None and not isinstance(extra["transparency"], bool):
        raise ConfigError("transparency", f"must be true or false, got {extra['transparency']!r}")
    if extra.get("transparency_weight") is not None:
        try:
            extra["transparency_weight"] = check_number("transparency_weight", extra["transparency_weight"], minimum=0)
        except ValueError as error:
            raise ConfigError("transparency_weight", str(error)) from None
    if extra.get("background") is not None:
        build_component(extra["background"], "background", kinds=("background",))
    if "n_meis" in extra:
        try:
            extra["n_meis"] = check_number("n_meis", extra["n_meis"], minimum=1, maximum=10**4, integer=True)
        except ValueError as error:
            raise ConfigError("n_meis", str(error)) from None
    if "inhibitory" in extra and extra["inhibitory"] is not None and not isinstance(extra["inhibitory"], bool):
        raise ConfigError("inhibitory", f"must be true or false, got {extra['inhibitory']!r}")
    if "model_forward_kwargs" in extra and not isinstance(extra["model_forward_kwargs"], Mapping):
        raise ConfigError("model_forward_kwargs", "must be a dict of keyword arguments, got "
                          f"{type(extra['model_forward_kwargs']).__name__}")
    if "mei_shape" in extra:
        rest.setdefault("shape", list(extra.pop("mei_shape")))
    return extra, rest


def transparent_mei(sinzlab: Mapping[str, Any]) -> TransparentMEI | None:
    """The :class:`TransparentMEI` of sinzlab's checked extra keys (see :func:`split_sinzlab_keys`), or None
    without ``transparency: true`` (``transparency_weight`` and ``background`` are then ignored, as there)."""
    if not sinzlab.get("transparency"):
        return None
    spec = sinzlab.get("background")
    background = None if spec is None else build_component(spec, "background", kinds=("background",))
    weight = sinzlab.get("transparency_weight")
    return TransparentMEI(background, 1.0 if weight is None else weight)


def validate_gradient_ascent_config(config: Any) -> None:
    """Check a :func:`gradient_ascent` config completely (sinzlab's extra keys included); raise ``ConfigError``."""
    build_components(split_sinzlab_keys(config)[1])


gradient_ascent.validate_config = validate_gradient_ascent_config  # type: ignore[attr-defined]


class WithForwardKwargs(nn.Module):
    """``model(x, **forward_kwargs)``: sinzlab/mei's ``model_forward_kwargs`` (lists of numbers become tensors on
    ``device``), without changing ``model``."""

    def __init__(self, model: nn.Module, forward_kwargs: Mapping[str, Any], device: torch.device) -> None:
        super().__init__()
        self.model = model
        self.forward_kwargs = {key: torch.as_tensor(value, dtype=torch.float32, device=device)
                               if isinstance(value, (list, tuple)) else value for key, value in forward_kwargs.items()}

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        return self.model(x, *args, **{**self.forward_kwargs, **kwargs})


_OPTIONAL_PARTS = ("transform", "regularization", "precondition", "postprocessing")


def gradient_ascent_with(dataloaders: Any, model: Any, config: Mapping[str, Any], seed: int, *,
                         shape: Any = None, set_seed: Callable[[int], Any] | None = None,
                         get_dims: Callable[[Any], Any] | None = None, mei_class: Callable[..., Any] = MEI,
                         import_func: Callable[..., Any] = import_object,
                         optimize_func: Callable[..., Any] = optimize,
                         tracker_cls: Callable[..., Any] = Tracker,
                         create_initial_guess: Callable[..., Tensor] | None = None) -> tuple[Any, Any, Any]:
    """sinzlab/mei's ``gradient_ascent`` sequence with its collaborators (each replaceable).

    In order: ``set_seed(seed)``, ``model.eval()``, ``model.to(device)``, the shape (``shape``, the config's
    ``shape``, ``get_dims`` or the dataloaders' first batch), ``initial = import_func(path, kwargs)(1, *shape[1:])``
    on the device (of the parameter's shape with a ``parameterization``; or ``create_initial_guess(1,
    *shape[1:], device=device)``, the early collaborator), ``optimizer = import_func(path, dict(params=[initial],
    **kwargs))``, the stopper, the
    objectives (``tracker_cls(**{path: objective})``), the optional parts, ``mei_class(model, initial,
    optimizer, **optional)`` (with ``render=`` the parameterization, if the config has one),
    ``final, mei = optimize_func(mei, stopper, tracker)``; returns
    ``(mei, final, tracker.log)`` as the collaborators give them. The config is not validated beyond what
    ``import_func`` checks (the default goes through the package's allowlist) and is never changed. Torch's
    global RNG is forked: the caller's random state is left as it was, whatever ``set_seed`` does.
    """
    device = config["device"]
    devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
    with rng.seeded([int(seed)], devices=devices), evaluation_mode(model):
        if set_seed is not None:
            set_seed(seed)
        model.to(device)
        if shape is None:
            shape = config.get("shape")
        if shape is None:
            shape = (input_shape_from_dims(dataloaders, get_dims) if get_dims is not None
                     else input_shape_from_dataloaders(dataloaders))

        def build(spec: Mapping[str, Any], **extra: Any) -> Any:
            return import_func(spec["path"], dict(extra, **spec.get("kwargs", {})) if extra
                               else dict(spec.get("kwargs", {})))

        render = build(config["parameterization"]) if "parameterization" in config else None
        if create_initial_guess is not None:  # sinzlab/mei's featurevis: the initial guess is a collaborator
            initial = create_initial_guess(1, *tuple(shape)[1:], device=device)
        else:
            initial = create_initial(build(config["initial"]),
                                     parameter_shape(render, (1, *tuple(shape)[1:]))).to(device)
        optimizer = build(config["optimizer"], params=[initial])
        stopper = build(config["stopper"])
        tracker = tracker_cls(**{spec["path"]: build(spec) for spec in config.get("objectives", [])})
        optional = {name: build(config[name]) for name in _OPTIONAL_PARTS if name in config}
        if render is not None:  # the package's MEI takes it; another mei_class must accept render= too
            optional["render"] = render.to(device) if isinstance(render, nn.Module) else render
        mei = mei_class(model, initial, optimizer, **optional)
        final_evaluation, mei = optimize_func(mei, stopper, tracker)
    return mei, final_evaluation, tracker.log
