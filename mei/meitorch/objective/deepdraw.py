"""meitorch's ``deepdraw`` (``meitorch.objective.deepdraw``): run an optimization constructed as a result class.

``process = MEI_image(shape, n_samples, **config)`` (or ``MEI_variational`` / ``MEI_transformation``) describes a
generation; ``deepdraw(process, operation)`` runs it, once, on the package's engine
(:func:`mei.meitorch.runner.generate`, exactly what ``MEI.generate_*_mei`` runs), fills ``process`` in with the
run (``mei``, ``losses``, snapshots, ``result_dict``, …) and returns its ``result_dict``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor

from ..result import MEIResult
from ..runner import generate


def deepdraw(process: MEIResult, operation: Callable[[Tensor], Mapping[str, Tensor]]) -> dict[str, Any]:
    """Run ``process`` with ``operation`` (a batch -> dict of losses whose ``objective`` is minimized).

    With ``gradient_rf`` in the config the operation's linear model is optimized and ``result_dict`` holds
    ``pointrf`` (meitorch's ``MEI`` does that before calling its ``deepdraw``). Running a process again
    starts it again from its start (same seed, same run).

    Raises:
        ValueError: ``process`` is not an optimization constructed with meitorch's arguments (e.g. a result
            of ``generate_pixel_mei`` or ``MEI_image.from_image``).
    """
    request = getattr(process, "request", None)
    if request is None:
        raise ValueError(f"this {type(process).__name__} is a finished result, not an optimization to run; "
                         "construct one as MEI_image(shape, n_samples, **config) (or MEI_variational / "
                         "MEI_transformation)")
    shape, device, config = request
    result = generate(operation, shape, device, process.mode, config, process.seed)
    process.__dict__.update({name: value for name, value in vars(result).items() if name != "request"})
    return process.result_dict


__all__ = ["deepdraw"]
