"""The shared base of components: keyword hyperparameters, checked values, a readable repr, and the
declaration that makes a class or function a component.

Only declared objects can be named by a dotted path inside the package (see :mod:`mei.engine.resolve`): a class or
function becomes one with :func:`component`, which records the *kinds* of config slot it may fill. Nothing
else of the package — tables, the database, the command line, the demo runner, report writers, plotting,
file helpers — is ever handed out by the resolver, whatever its name.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeVar

from .errors import ConfigError, HyperparameterError

COMPONENT_KINDS: tuple[str, ...] = (
    "initial", "optimizer", "stopper", "transform", "regularization", "precondition", "postprocessing", "objective",
    "reducer", "loss", "background", "parameterization",
)
"""Kinds of the parts of a method config (and of the specs nested in them, such as an objective table's loss;
``background``: what a transparent MEI is seen over, sinzlab/mei's ``background`` key)."""
METHOD_KINDS: tuple[str, ...] = ("method",)
"""Method functions ``(dataloaders, model, config, seed) -> (mei, score, output)``, named by ``method_fn``."""
BUILDER_KINDS: tuple[str, ...] = ("dataset", "model", "trainer")
"""nnfabrik-protocol builders, named by ``dataset_fn`` / ``model_fn`` / ``trainer_fn``."""
SCHEDULE_KINDS: tuple[str, ...] = ("schedule",)
"""Schedules ``(i_iter) -> value``, written in place of a number in any component's kwargs
(:mod:`mei.engine.schedule`)."""
KINDS: tuple[str, ...] = COMPONENT_KINDS + METHOD_KINDS + BUILDER_KINDS + SCHEDULE_KINDS

_T = TypeVar("_T")
_declared: dict[int, tuple[Any, frozenset[str]]] = {}


def component(*kinds: str) -> Callable[[_T], _T]:
    """Declare the decorated class or function a component of ``kinds`` (see :data:`KINDS`).

    Example:
        >>> @component("stopper")
        ... class EveryOther: ...
    """
    unknown = [kind for kind in kinds if kind not in KINDS]
    if not kinds or unknown:
        raise ValueError(f"component kinds must be some of {list(KINDS)}, got {list(kinds)}")

    def declare(obj: _T) -> _T:
        previous = _declared.get(id(obj), (obj, frozenset()))[1]
        _declared[id(obj)] = (obj, previous | frozenset(kinds))
        return obj

    return declare


def declared_kinds(obj: Any) -> frozenset[str]:
    """The kinds ``obj`` was declared a component of with :func:`component` (empty if it was not)."""
    entry = _declared.get(id(obj))
    return entry[1] if entry is not None and entry[0] is obj else frozenset()


def declared_components() -> list[tuple[Any, frozenset[str]]]:
    """Every object declared so far (in the modules imported so far) with its kinds."""
    return list(_declared.values())


class Component:
    """Base class of every built-in component, after ``torch.optim.Optimizer``.

    A subclass's ``__init__`` takes the hyperparameters as keyword arguments, checks each with the check helpers
    of this module (:func:`check_number`, :func:`check_int`, :func:`check_choice`, :func:`check_bool`,
    :func:`check_numbers`), which raise a :class:`~mei.engine.errors.HyperparameterError` (a ``ValueError``)
    naming the bad value, and stores them as attributes. When the outermost ``__init__`` returns, the base
    records :attr:`defaults`: every constructor argument by name, as checked (the attribute of the same name
    if the constructor stored one, the argument as given otherwise). From ``defaults`` come

    * a ``repr`` that reads like the call that built the component, e.g. ``NumIterations(5)`` or
      ``ClipRange(x_min=-1, x_max=1)`` (a class may name other fields in ``_repr_fields``);
    * :meth:`state_dict` / :meth:`load_state_dict`: the hyperparameters and the attributes listed in
      ``_state_attributes`` (the component's running state, empty for most).

    A constructor that stores something else under an argument's name (say, the components built from a list
    of specs) lists that argument in ``_arguments_as_given``: ``defaults`` then holds what the caller passed.

    For ``nn.Module`` components use :class:`mei.engine.module_component.ModuleComponent`, which keeps
    ``nn.Module``'s own ``state_dict`` and carries the same record in its extra state.
    """

    defaults: Mapping[str, Any] = MappingProxyType({})
    """The constructor's arguments by name, as checked (empty until a constructor of a subclass has run)."""
    _repr_fields: tuple[str, ...] = ()
    _state_attributes: tuple[str, ...] = ()
    _arguments_as_given: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "_records_defaults", False):
            cls.__init__ = _recording(init)  # type: ignore[method-assign]

    def __repr__(self) -> str:
        fields = self._repr_fields or tuple(self.defaults)
        values = {name: self.defaults[name] if name in self.defaults else getattr(self, name) for name in fields}
        if self._repr_fields:
            parts = [repr(value) for value in values.values()]
            if len(parts) > 1:
                parts = [f"{name}={part}" for name, part in zip(fields, parts, strict=True)]
            return f"{type(self).__name__}({', '.join(parts)})"
        args, kwargs = _call_arguments(type(self), values)
        parts = [repr(value) for value in args]
        if len(args) + len(kwargs) == 1 and kwargs and _takes_positionally(type(self), next(iter(kwargs))):
            parts = [repr(next(iter(kwargs.values())))]
        else:
            parts += [f"{name}={value!r}" for name, value in kwargs.items()]
        return f"{type(self).__name__}({', '.join(parts)})"

    def state_dict(self) -> dict[str, Any]:
        """``{"defaults": hyperparameters, "state": running state}`` (references, as ``torch.optim`` returns)."""
        state = {name: getattr(self, name) for name in self._state_attributes}
        return {"defaults": dict(self.defaults), "state": state}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Rebuild with the saved hyperparameters (checked again by the constructor), then restore the state.

        Raises:
            ValueError: ``state_dict`` is not one of :meth:`state_dict`, or names hyperparameters this
                component does not take.
        """
        self._rebuild(_saved_defaults(self, state_dict))
        self._restore_state(state_dict.get("state") or {})

    def _rebuild(self, defaults: Mapping[str, Any]) -> None:
        args, kwargs = _call_arguments(type(self), defaults)
        type(self).__init__(self, *args, **kwargs)

    def _restore_state(self, state: Mapping[str, Any]) -> None:
        unknown = sorted(set(state) - set(self._state_attributes))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no state {unknown}; "
                             f"its state is {list(self._state_attributes)}")
        for name, value in state.items():
            setattr(self, name, value)


def _recording(init: Callable[..., None]) -> Callable[..., None]:
    """``init`` wrapped so that the outermost constructor records the arguments as ``defaults``."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self: Component, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if type(self).__init__ is __init__:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            stored = {name: value for name, value in vars(self).items()
                      if name not in self._arguments_as_given and name != "defaults"}
            self.defaults = {name: _snapshot(stored.get(name, value))
                             for name, value in list(bound.arguments.items())[1:]}

    __init__._records_defaults = True  # type: ignore[attr-defined]
    return __init__


def _snapshot(value: Any) -> Any:
    """A copy of a plain list or dict (so later changes to the caller's do not show), anything else as it is."""
    return list(value) if type(value) is list else dict(value) if type(value) is dict else value


def _parameters(cls: type[Any]) -> dict[str, inspect.Parameter]:
    return dict(list(inspect.signature(cls.__init__).parameters.items())[1:])


def _takes_positionally(cls: type, name: str) -> bool:
    parameter = _parameters(cls).get(name)
    return parameter is not None and parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)


def _call_arguments(cls: type, values: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """``(args, kwargs)`` that call ``cls`` with ``values`` (by name; ``*args`` and ``**kwargs`` spread)."""
    parameters = _parameters(cls)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        kind = parameters[name].kind if name in parameters else inspect.Parameter.KEYWORD_ONLY
        if kind is inspect.Parameter.VAR_POSITIONAL:
            args += list(value)
        elif kind is inspect.Parameter.POSITIONAL_ONLY:
            args.append(value)
        elif kind is inspect.Parameter.VAR_KEYWORD:
            kwargs.update(value)
        else:
            kwargs[name] = value
    return args, kwargs


def _saved_defaults(component: Component, state_dict: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(state_dict, Mapping) or not isinstance(state_dict.get("defaults"), Mapping):
        raise ValueError(f"a state_dict of {type(component).__name__} is a dict with 'defaults' (and 'state'), "
                         f"got {state_dict!r}")
    defaults = state_dict["defaults"]
    unknown = sorted(set(defaults) - set(_parameters(type(component))))
    if unknown:
        raise ValueError(f"{type(component).__name__} takes no hyperparameters {unknown}")
    return defaults


# ------------------------------------------------------------------------------------------- check helpers


def check_number(name: str, value: Any, minimum: float | None = None, maximum: float | None = None,
                 integer: bool = False, strict_minimum: bool = False) -> Any:
    """Validate one numeric hyperparameter, raising a ``ValueError`` that names it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HyperparameterError(name, f"must be a number, got {value!r}")
    if integer and not (isinstance(value, int) or float(value).is_integer()):
        raise HyperparameterError(name, f"must be a whole number, got {value!r}")
    if not math.isfinite(value):
        raise HyperparameterError(name, f"must be finite, got {value!r}")
    if minimum is not None and (value < minimum or (strict_minimum and value == minimum)):
        raise HyperparameterError(name, f"must be {'>' if strict_minimum else '>='} {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise HyperparameterError(name, f"must be <= {maximum}, got {value!r}")
    return int(value) if integer else value


def check_dim(name: str, value: Any) -> int:
    """Validate a dimension of an input (or response): a whole number other than 0, which holds the images."""
    dim = check_number(name, value, integer=True)
    if dim == 0:
        raise HyperparameterError(name, "must not be 0 (dimension 0 holds the images), got 0")
    return dim


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None,
              expected: str | None = None) -> int:
    """Validate an ``int`` hyperparameter (not a bool, not a whole float) within ``[minimum, maximum]``.

    ``expected`` words the requirement in the error (``"... must be <expected>, got <value>"``); by default it
    is "a whole number" with the bounds.
    """
    if expected is None:
        bounds = [f">= {minimum}" if minimum is not None else "", f"<= {maximum}" if maximum is not None else ""]
        expected = " ".join(["a whole number", " and ".join(b for b in bounds if b)]).strip()
    if (isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum)
            or (maximum is not None and value > maximum)):
        raise HyperparameterError(name, f"must be {expected}, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any], expected: str | None = None) -> Any:
    """Validate that ``value`` is one of ``choices`` (compared by type and value, so ``1`` is not ``True``)."""
    choices = tuple(choices)
    if not any(value is choice or (type(value) is type(choice) and value == choice) for choice in choices):
        if expected is None:
            named = [choice for choice in choices if choice is not None]
            expected = f"one of {named}{' or None' if None in choices else ''}"
        raise HyperparameterError(name, f"must be {expected}, got {value!r}")
    return value


def check_bool(name: str, value: Any, expected: str = "True or False") -> bool:
    """Validate a flag: ``True`` or ``False`` only (not ``0``, ``1`` or ``None``)."""
    if not isinstance(value, bool):
        raise HyperparameterError(name, f"must be {expected}, got {value!r}")
    return value


def check_numbers(name: str, values: Any, min_length: int = 1, max_length: int | None = None,
                  expected: str | None = None, **number_checks: Any) -> list[Any]:
    """Validate a list (or tuple) of ``min_length`` to ``max_length`` numbers, each checked with
    :func:`check_number`'s ``number_checks``; returns them as a list.

    An entry's error names it as ``name[i]``; with ``expected``, every error reads
    ``"<name> must be <expected>, got <values>"`` instead.
    """
    try:
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise HyperparameterError(name, f"must be a list of numbers, got {values!r}")
        if len(values) < min_length or (max_length is not None and len(values) > max_length):
            count = f"{min_length}" + ("" if max_length == min_length else
                                       f" to {max_length}" if max_length is not None else " or more")
            raise HyperparameterError(name, f"must hold {count} number(s), got {list(values)!r}")
        return [check_number(f"{name}[{i}]", value, **number_checks) for i, value in enumerate(values)]
    except HyperparameterError:
        if expected is None:
            raise
        raise HyperparameterError(name, f"must be {expected}, got {values!r}") from None


def reads_input(component: Any) -> bool:
    """Whether ``component`` may read ``State.input_`` / ``transformed_input``.

    Only a ``reads_input`` set on the instance or declared by the component's *own* class counts: a subclass
    (say, of ``NumIterations``) that does not declare it again is assumed to read the input.
    """
    if "reads_input" in getattr(component, "__dict__", {}):
        return bool(component.__dict__["reads_input"])
    own = type(component).__dict__.get("reads_input")
    if isinstance(own, property):  # computed by the component itself (e.g. a Tracker from its objectives)
        return bool(own.__get__(component))
    return True if own is None else bool(own)


def _axis_names(ndim: int) -> list[str]:
    middle = ["channels", "time"][:ndim - 3] + [f"dimension {i}" for i in range(3, ndim - 2)]
    return ["images", *middle, "height", "width"][:ndim]


def check_input_rank(component: Any, shape: Sequence[int], key: str) -> None:
    """Refuse ``component`` (or a component inside it) that works along time on an input of ``shape`` without
    a time dimension there: a temporal component (one whose class names its time-dimension attribute in
    ``time_dim_field``) on a 4-D image input would blur or shift the image height instead.

    The time dimension must be neither dimension 0 (images) nor one of the last two (height, width).

    Raises:
        ConfigError: naming ``key``, the component, its time dimension and the input's shape.
    """
    field = getattr(type(component), "time_dim_field", None)
    if field is not None:
        dim, ndim = int(getattr(component, field)), len(shape)
        position = dim % ndim if -ndim <= dim < ndim else None
        if position is None or position == 0 or position >= ndim - 2:
            meaning = "no dimension of it" if position is None else f"the {_axis_names(ndim)[position]}"
            advice = ("a video config needs a video model (input: images, channels, time, height, width); for "
                      "images leave the temporal component out" if ndim < 5 else
                      f"set {field} to the time dimension (2 for images, channels, time, height, width)")
            raise ConfigError(key, f"{type(component).__name__} works along time ({field}={dim}), but the input is "
                                   f"{ndim}-D {tuple(shape)}, where dimension {dim} is {meaning}: {advice}")
    for name, value in vars(component).items():
        children = value if isinstance(value, (list, tuple)) else [value]
        for i, child in enumerate(children):
            if isinstance(child, Component):
                where = key if name.startswith("_") else (
                    f"{key}.kwargs.{name}[{i}]" if isinstance(value, (list, tuple)) else f"{key}.kwargs.{name}")
                check_input_rank(child, shape, where)
