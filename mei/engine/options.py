"""The options of batched runs, the method config's ``"batch"`` key: part of the config schema, so that
:func:`mei.engine.resolve.validate_config` can check them (the runs themselves are in :mod:`mei.batched`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .component import check_bool, check_choice, check_int
from .errors import ConfigError, HyperparameterError

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
        try:
            options = cls._checked(spec)
        except HyperparameterError as error:
            raise ConfigError(f"batch.{error.name}", error.reason) from None
        if options.fuse_ensemble == "dense" and options.compile:
            raise ConfigError("batch.fuse_ensemble", "'dense' cannot be combined with batch.compile (torch.compile "
                                                     "cannot trace its vmap rule): use one or the other")
        return options

    @classmethod
    def _checked(cls, spec: Mapping[str, Any]) -> BatchOptions:
        """The options of ``spec`` checked one by one with the components' check helpers (JSON wording)."""
        return cls(
            chunk_size=check_int("chunk_size", spec.get("chunk_size", cls.chunk_size), 1, 100_000,
                                 expected="an int from 1 to 100000"),
            autocast=check_choice("autocast", spec.get("autocast"), (None, *AUTOCAST_DTYPES),
                                  expected="null, 'bfloat16' or 'float16'"),
            channels_last=check_bool("channels_last", spec.get("channels_last", False), "true or false"),
            cudnn_benchmark=check_bool("cudnn_benchmark", spec.get("cudnn_benchmark", False), "true or false"),
            fuse_ensemble=check_choice("fuse_ensemble", spec.get("fuse_ensemble", False), (True, False, *FUSIONS),
                                       expected="true, false, 'grouped' or 'dense'"),
            compile=check_choice("compile", spec.get("compile", False), (True, False, *COMPILE_MODES),
                                 expected=f"true, false or a mode ({', '.join(COMPILE_MODES)})"),
        )
