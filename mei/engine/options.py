"""The options of batched runs, the method config's ``"batch"`` key: part of the config schema, so that
:func:`mei.engine.resolve.validate_config` can check them (the runs themselves are in :mod:`mei.batched`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError

AUTOCAST_DTYPES: tuple[str, ...] = ("bfloat16", "float16")
FUSIONS: tuple[str, ...] = ("grouped", "dense")
COMPILE_MODES: tuple[str, ...] = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclasses.dataclass(frozen=True)
class BatchOptions:
    """How a batched run is split and accelerated (the method config's ``"batch"`` key).

    Args:
        chunk_size (int, optional): most keys optimized together. Default: 64.
        autocast (str | None, optional): ``"bfloat16"`` (or ``"float16"``) runs the forward pass under
            ``torch.autocast``; results then differ from float32 runs. Default: ``None`` (float32).
        compile (bool | str, optional): ``torch.compile`` the batched objective; a string is the compile
            mode (``"default"``, ``"reduce-overhead"``, ``"max-autotune"``, ``"max-autotune-no-cudagraphs"``).
            Default: False.
        channels_last (bool, optional): convert the model's 4-d weights to the channels-last memory format
            (in place; values unchanged), which lets cuDNN skip layout conversions. Default: False.
        cudnn_benchmark (bool, optional): let cuDNN time its convolution algorithms during the run
            (``torch.backends.cudnn.benchmark``, restored afterwards). Default: False.
        fuse_ensemble (bool | str, optional): run the members of an :class:`~mei.modules.EnsembleModel` of one
            architecture as one vmapped model (:class:`~mei.batched.FusedEnsembleModel`): one convolution
            with every member's filters where they share the input, grouped ones after (``True`` or
            ``"grouped"``), or dense block-diagonal ones after (``"dense"``: the members' times the arithmetic
            in a shape GPUs may run faster; not with ``compile``). Same values within float rounding. Default: False.
    """

    chunk_size: int = 64
    autocast: str | None = None
    compile: bool | str = False
    channels_last: bool = False
    cudnn_benchmark: bool = False
    fuse_ensemble: bool | str = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BatchOptions:
        """Read and check ``config["batch"]``, raising :class:`~mei.engine.errors.ConfigError` naming the key."""
        spec = config.get("batch") or {}
        if not isinstance(spec, Mapping):
            raise ConfigError("batch", f"must be a dict of batch options, got {type(spec).__name__}")
        unknown = sorted(set(spec) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            known = ", ".join(f.name for f in dataclasses.fields(cls))
            raise ConfigError("batch", f"unknown batch option(s) {unknown}; known: {known}")
        chunk = spec.get("chunk_size", cls.chunk_size)
        if isinstance(chunk, bool) or not isinstance(chunk, int) or not 1 <= chunk <= 100_000:
            raise ConfigError("batch.chunk_size", f"must be an int from 1 to 100000, got {chunk!r}")
        autocast = spec.get("autocast")
        if autocast is not None and autocast not in AUTOCAST_DTYPES:
            raise ConfigError("batch.autocast", f"must be null, 'bfloat16' or 'float16', got {autocast!r}")
        flags = {name: spec.get(name, False) for name in ("channels_last", "cudnn_benchmark")}
        for name, value in flags.items():
            if not isinstance(value, bool):
                raise ConfigError(f"batch.{name}", f"must be true or false, got {value!r}")
        fuse = spec.get("fuse_ensemble", False)
        if not isinstance(fuse, bool) and fuse not in FUSIONS:
            raise ConfigError("batch.fuse_ensemble", f"must be true, false, 'grouped' or 'dense', got {fuse!r}")
        flags["fuse_ensemble"] = fuse
        compile_ = spec.get("compile", False)
        if not isinstance(compile_, bool) and compile_ not in COMPILE_MODES:
            raise ConfigError("batch.compile", f"must be true, false or a mode ({', '.join(COMPILE_MODES)}), "
                                               f"got {compile_!r}")
        if fuse == "dense" and compile_:
            raise ConfigError("batch.fuse_ensemble", "'dense' cannot be combined with batch.compile (torch.compile "
                                                     "cannot trace its vmap rule): use one or the other")
        return cls(chunk, autocast, compile_, **flags)
