"""sinzlab/mei's ``import_object`` at its import path, through the package's one resolver.

``import_object(path, kwargs)`` imports the object a dotted path names and calls it with ``kwargs``, as
sinzlab/mei's does (with nnfabrik's ``split_module_name`` / ``dynamic_import`` as defaults). Here the
import goes through :func:`mei.engine.resolve.resolve` and its positive allowlist: a path outside the
package's components, ``torch.optim`` and the modules you allowed is refused (a ``ValueError``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .engine.errors import ComponentNotAllowedError
from .engine.resolve import resolve


def split_module_name(path: str) -> tuple[str, str]:
    """``"a.b.C"`` -> ``("a.b", "C")``; ``("", path)`` for a name without a module."""
    module, _, name = path.rpartition(".")
    return module, name


def dynamic_import(module_path: str, name: str) -> Any:
    """The allowed object ``name`` of module ``module_path`` (through the resolver's allowlist).

    Raises:
        ComponentNotAllowedError: the path is outside the allowed modules (a ``ValueError``).
        ModuleNotFoundError / AttributeError: the module or the name does not exist.
    """
    path = f"{module_path}.{name}"
    try:
        return resolve(path)
    except ComponentNotAllowedError:
        raise
    except ValueError as error:  # the resolver's "names nothing": tell the caller which part is missing
        message = str(error)
        if "no module named" in message or "no module found" in message:
            raise ModuleNotFoundError(message) from error
        raise AttributeError(message) from error


def import_object(
    path: str,
    object_kwargs: Mapping[str, Any] | None = None,
    split_func: Callable[[str], tuple[str, str]] = split_module_name,
    import_func: Callable[[str, str], Any] = dynamic_import,
) -> Any:
    """Import the object named by the absolute dotted ``path`` and return ``obj(**object_kwargs)``.

    Args:
        path (str): e.g. ``"mei.stoppers.NumIterations"``.
        object_kwargs (dict, optional): keyword arguments of the call. Default: none.
        split_func, import_func (Callable, optional): collaborators, replaceable in tests.

    Raises:
        ValueError: the path is not absolute, names no module or object, is not allowed, or the object is not
            callable with these arguments.
    """
    kwargs = dict(object_kwargs or {})
    module_path, name = split_func(path)
    if not module_path:
        raise ValueError(f"'{path}' is not an absolute path")
    try:
        obj = import_func(module_path, name)
    except ModuleNotFoundError as error:
        raise ValueError(f"Module in '{path}' not found") from error
    except AttributeError as error:
        raise ValueError(f"Object in '{path}' not found") from error
    try:
        return obj(**kwargs)
    except TypeError as error:
        raise ValueError(f"Imported object from '{path}' is not callable with {sorted(kwargs)}: {error}") from error


__all__ = ["import_object", "split_module_name", "dynamic_import"]
