"""meitorch's front end: ``MEI(operation, shape, device)`` and its three generation modes.

Each ``generate_*_mei(config)`` is one run of the package's engine (:mod:`mei.optimization`); see
:mod:`mei.meitorch.runner` for how the config keys map onto its components and ``docs/meitorch.md`` for every
key with its default.

The operation is MINIMIZED: it returns a dict of scalar losses whose ``"objective"`` is driven down, so to
excite a neuron return ``objective = -activation`` (as meitorch's own examples do).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .linearmei import LinearMEI
from .result import MEIResult
from .runner import generate, gradient_rf_operation

Operation = Callable[[Tensor], Mapping[str, Tensor]]


class MEI(LinearMEI):
    """Most exciting inputs for an operation on a batch of images.

    Args:
        operation (Callable[[Tensor], dict[str, Tensor]]): takes a batch ``(N, *shape)`` and returns a dict
            of scalar losses with the key ``"objective"``, which is minimized; the other entries are recorded
            for the loss plots. Pass the function itself, not its result.
        shape (tuple[int, int, int], optional): one image, ``(channels, height, width)``. Default: ``(1, 28, 28)``.
        device (str | torch.device, optional): where the images are optimized (move the model there
            yourself). Default: ``"cpu"``.

    As in meitorch, an ``MEI`` is a :class:`~mei.meitorch.linearmei.LinearMEI`: ``best_gabor``,
    ``optimal_gabor`` and ``white_noise_analysis`` work on it (they read the dict's ``activation``).
    """

    def __init__(self, operation: Operation, shape: Sequence[int] = (1, 28, 28),
                 device: str | torch.device = "cpu") -> None:
        super().__init__(operation, shape, device=device)

    def _run(self, mode: str, config: Mapping[str, Any] | None, seed: int | None,
             keys: Mapping[str, Any]) -> MEIResult:
        merged = {**(config or {}), **keys}
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
        return generate(self.operation, self.shape, self.device, mode, merged, int(seed))

    def generate_pixel_mei(self, config: Mapping[str, Any] | None = None, seed: int | None = None,
                           **keys: Any) -> MEIResult:
        """Optimize ``n_samples`` images pixel by pixel.

        Args:
            config (dict, optional): pixel-mode keys (``docs/meitorch.md``); missing keys take their
                defaults. Default: all defaults.
            seed (int, optional): seeds the start, jitter and random schedules; None draws one from torch's
                global generator (so ``torch.manual_seed`` makes runs repeatable). Default: None.
            **keys: config keys given as keyword arguments (they override ``config``).

        Returns:
            MEIResult: ``result.mei`` holds the ``(n_samples, C, H, W)`` images.
        """
        return self._run("pixel", config, seed, keys)

    def generate_variational_mei(self, config: Mapping[str, Any] | None = None, seed: int | None = None,
                                 **keys: Any) -> MEIResult:
        """Optimize a distribution (normal or Laplace) over images: its mean and, unless ``fixed_stddev`` is
        set, its standard deviation. The objective is that of a batch of samples drawn each step.

        Args and seed as in :meth:`generate_pixel_mei`.

        Returns:
            MEIResult: ``result.mei`` is the mean image, ``result.stddev`` the standard deviation,
            ``result.sample(n)`` draws new samples.
        """
        return self._run("variational", config, seed, keys)

    def generate_transformation_mei(self, config: Mapping[str, Any] | None = None, seed: int | None = None,
                                    **keys: Any) -> MEIResult:
        """Optimize the parameters of a generative network (``config["transform"]``, e.g.
        :class:`~mei.meitorch.tools.transformations.GenerativeConvNet`) that maps noise to exciting images.

        Args and seed as in :meth:`generate_pixel_mei`; the network passed in is copied, never changed.

        Returns:
            MEIResult: ``result.mei`` holds one batch of samples, ``result.transform`` the trained network,
            ``result.sample(n)`` draws new samples.
        """
        return self._run("transformation", config, seed, keys)

    @staticmethod
    def is_gradient_rf_op(params: Mapping[str, Any]) -> bool:
        """Whether a config asks for meitorch's ``gradient_rf`` (the operation's linear model)."""
        return bool(params.get("gradient_rf", False))

    def to_gradient_rf_op(self, operation: Operation) -> tuple[Operation, Tensor]:
        """meitorch's ``to_gradient_rf_op``: ``(linear model, point receptive field)``, the operation's linear
        model at a blank image and its gradient there, ``(C, H, W)`` (a tensor; meitorch gives a squeezed
        NumPy array); see :func:`~mei.meitorch.runner.gradient_rf_operation`."""
        return gradient_rf_operation(operation, self.shape, self.device)

    def __repr__(self) -> str:
        operation = getattr(self.operation, "__name__", self.operation)
        return f"MEI(operation={operation!r}, shape={self.shape}, device='{self.device}')"
