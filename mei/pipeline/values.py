"""Values in the pipeline tables: config hashing (nnfabrik's), frozen configs, byte and blob codecs."""

from __future__ import annotations

import copy
import hashlib
import io
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any


def make_hash(obj: Any) -> str:
    """32-character md5 of ``obj``'s content, the same value nnfabrik's ``make_hash`` gives.

    Dicts are hashed key by key in ``sorted(keys, key=str)`` order (an ``OrderedDict`` keeps its own
    order), each key as ``str(key)`` followed by the hash of its value; other iterables hash their items
    in order; strings hash their UTF-8 bytes; anything else hashes ``str(value)``. Hashes stored by
    nnfabrik therefore carry over unchanged.

    Args:
        obj (Any): a config, possibly nested.
    """
    digest = hashlib.md5()
    if isinstance(obj, str):
        digest.update(obj.encode())
    elif isinstance(obj, Mapping):
        keys = list(obj) if isinstance(obj, OrderedDict) else sorted(obj, key=str)
        for key in keys:
            digest.update(str(key).encode())
            digest.update(make_hash(obj[key]).encode())
    elif isinstance(obj, Iterable) and getattr(obj, "ndim", 1) != 0:
        for item in obj:
            digest.update(make_hash(item).encode())
    else:
        digest.update(str(obj).encode())
    return digest.hexdigest()


def frozen_copy(config: Any) -> Any:
    """A private deep copy of a config fetched from the database: whoever changes it changes only it."""
    return copy.deepcopy(config)


def to_loadable(value: Any) -> Any:
    """``value`` with numpy arrays as tensors and numpy scalars as Python numbers, recursively, so that
    ``torch.load(..., weights_only=True)`` can read it back."""
    import numpy as np
    import torch

    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        items = ((key, to_loadable(item)) for key, item in value.items())
        return OrderedDict(items) if isinstance(value, OrderedDict) else dict(items)
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(to_loadable(item) for item in value)
    return value


def to_bytes(obj: Any) -> bytes:
    """``torch.save`` of ``obj`` (after :func:`to_loadable`) into bytes, what ``<object@store>`` columns hold."""
    import torch

    buffer = io.BytesIO()
    torch.save(to_loadable(obj), buffer)
    return buffer.getvalue()


def from_bytes(data: bytes | Any, trusted: bool = False) -> Any:
    """Load what :func:`to_bytes` stored; ``data`` may be the bytes or a DataJoint object reference.

    Args:
        data (bytes | ObjectRef): the stored bytes, or what fetching an ``<object@store>`` column gives.
        trusted (bool, optional): allow arbitrary pickled Python objects (code execution if the store is
            not yours). By default only tensors, numbers, strings and containers load. Default: False.
    """
    import torch

    raw = data if isinstance(data, (bytes, bytearray)) else data.read()
    return torch.load(io.BytesIO(raw), weights_only=not trusted, map_location="cpu")


def to_blob_value(value: Any) -> Any:
    """``value`` with tensors turned into numpy arrays (recursively), so that ``<blob>`` can store it."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()
    if isinstance(value, Mapping):
        return {key: to_blob_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_blob_value(item) for item in value)
    return value
