"""Validate a config naming each public callable of the package, in a fresh interpreter, under sentinels.

Run as ``python -m tests.reliability.validate_everything``: prints one JSON object with what validation
touched (``touched``: file writes or opens, processes, sockets, database connections, ``torch.save`` /
``torch.load``), how many paths and configs were tried, how many components were really instantiated, and
which modules of the package were imported. :mod:`tests.reliability.test_positive_allowlist` asserts on it.

Third-party libraries are imported before the sentinels go up (their own start-up reads files); the
package's modules are not, so importing them happens under the sentinels too.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import io
import json
import os
import pathlib
import pkgutil
import shutil
import socket
import subprocess
import sys
from typing import Any

import datajoint
import matplotlib
import matplotlib.pyplot
import numpy  # noqa: F401
import torch
import tqdm  # noqa: F401

touched: list[str] = []


def _sentinel(owner: Any, name: str, label: str) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        touched.append(f"{label}{args[:2]!r}"[:200])
        raise PermissionError(f"validation touched {label}")

    setattr(owner, name, refuse)


SENTINELS = [
    (builtins, "open", "open"), (io, "open", "io.open"), (os, "open", "os.open"), (os, "remove", "os.remove"),
    (os, "unlink", "os.unlink"), (os, "rename", "os.rename"), (os, "replace", "os.replace"), (os, "mkdir", "os.mkdir"),
    (os, "makedirs", "os.makedirs"), (os, "rmdir", "os.rmdir"), (os, "system", "os.system"), (os, "fork", "os.fork"),
    (os, "execv", "os.execv"), (os, "execve", "os.execve"), (os, "kill", "os.kill"),
    (shutil, "rmtree", "shutil.rmtree"), (shutil, "copyfile", "shutil.copyfile"), (shutil, "move", "shutil.move"),
    (pathlib.Path, "write_text", "Path.write_text"), (pathlib.Path, "write_bytes", "Path.write_bytes"),
    (pathlib.Path, "mkdir", "Path.mkdir"), (pathlib.Path, "touch", "Path.touch"),
    (pathlib.Path, "unlink", "Path.unlink"),
    (pathlib.Path, "open", "Path.open"), (subprocess.Popen, "__init__", "subprocess.Popen"),
    (socket.socket, "connect", "socket.connect"), (socket.socket, "bind", "socket.bind"),
    (socket, "create_connection", "socket.create_connection"), (datajoint, "conn", "datajoint.conn"),
    (datajoint.Connection, "__init__", "datajoint.Connection"), (datajoint.Schema, "activate", "Schema.activate"),
    (torch, "save", "torch.save"), (torch, "load", "torch.load"), (matplotlib.figure.Figure, "savefig", "savefig"),
]

GOOD = {
    "device": "cpu", "shape": [1, 1, 8, 8],
    "initial": {"path": "mei.initial.RandomNormal", "kwargs": {"std": 0.1}},
    "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": 0.1}},
    "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": 3}},
}
SLOTS = ("initial", "optimizer", "stopper", "transform", "regularization", "precondition", "postprocessing",
         "objectives")


def plausible(name: str) -> Any:
    """A value a user might pass for a parameter called ``name`` (JSON only)."""
    lowered = name.lower()
    if any(word in lowered for word in ("path", "file", "dir", "out", "prefix", "name", "schema", "table", "store",
                                        "url", "host", "mode", "target", "key", "backend", "parameterization")):
        return "x"
    if "shape" in lowered or "size" in lowered:
        return [1, 1, 8, 8] if "shape" in lowered else 8
    if any(word in lowered for word in ("transforms", "regularizers", "stoppers", "argv", "channels", "dims",
                                        "degrees", "scale")):
        return []
    if any(word in lowered for word in ("sigma", "lr", "std", "weight", "norm", "decay", "value", "min", "max",
                                        "factor", "percentile", "ratio", "delta")):
        return 0.5
    return 2


def kwargs_for(obj: Any) -> dict[str, Any]:
    """Plausible keyword arguments for every required parameter of ``obj``."""
    try:
        parameters = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: plausible(p.name) for p in parameters
            if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.name not in ("self", "params")}


def public_paths() -> list[tuple[str, Any]]:
    """``(dotted path, object)`` of every public callable of every module of the package, and of the public
    attributes of its classes (``mei.main.MEIMethod.insert1`` …)."""
    import mei

    paths: dict[str, Any] = {}
    for info in pkgutil.walk_packages(mei.__path__, "mei."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or not callable(obj):
                continue
            paths[f"{info.name}.{name}"] = obj
            if inspect.isclass(obj):
                for klass in inspect.getmro(obj):  # class dicts: a table's attributes need no database
                    if not klass.__module__.startswith("mei"):
                        continue
                    for attribute, value in vars(klass).items():
                        if not attribute.startswith("_") and callable(value):
                            paths.setdefault(f"{info.name}.{name}.{attribute}", value)
    return sorted(paths.items())


def main() -> None:
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # torch's lazy start-up (a cache-dir probe)
    for owner, name, label in SENTINELS:
        _sentinel(owner, name, label)
    from mei.engine.resolve import ConfigError, package_components, validate_config
    from mei.pipeline.generation import validate_method

    before = {m for m in sys.modules if m == "mei" or m.startswith("mei.")}
    paths = public_paths_from_names()
    configs = instantiated = refused = 0
    for path, kwargs in paths:
        for slot in SLOTS:
            spec = {"path": path, "kwargs": kwargs}
            config = {**GOOD, slot: [spec] if slot == "objectives" else spec}
            configs += 1
            try:
                validate_config(config)
                instantiated += 1
            except ConfigError:
                refused += 1
        try:
            validate_method(path, GOOD)
        except ConfigError:
            pass
    imported = sorted({m for m in sys.modules if m == "mei" or m.startswith("mei.")} - before)
    print(json.dumps({"touched": touched, "paths": len(paths), "configs": configs, "valid": instantiated,
                      "refused": refused, "imported": imported, "components": sorted(package_components())}))


def public_paths_from_names() -> list[tuple[str, dict[str, Any]]]:
    """The paths and plausible kwargs, listed by a child interpreter (so listing imports nothing here)."""
    listing = json.loads(sys.stdin.read())
    return [(path, kwargs) for path, kwargs in listing]


if __name__ == "__main__":
    if sys.argv[1:] == ["--list"]:
        print(json.dumps([(path, kwargs_for(obj)) for path, obj in public_paths()]))
    else:
        main()
