"""captum.optim's output hooks: :class:`ModuleOutputsHook` (persistent forward hooks that keep each target's
output) and :class:`ActivationFetcher` (one forward, the targets' outputs, hooks removed).

captum keeps these in ``captum.optim._core.output_hook``; they are here, and re-exported from
:mod:`mei.optim.hooks` and :mod:`mei.optim`. The objectives and :class:`~mei.optim.optimization.InputOptimization`
do not use them: they hook their targets for one forward only (:func:`mei.engine.hooks.capture`).
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

__all__ = ["ModuleOutputsHook", "ActivationFetcher"]


class ModuleOutputsHook:
    """Forward hooks on ``target_modules`` that store each module's output until :meth:`consume_outputs`.

    The hooks stay until :meth:`remove_hooks` (or until the object is deleted).

    Args:
        target_modules (Iterable of nn.Module): the modules whose outputs to keep.

    Attributes:
        outputs (dict): ``{module: output or None}``, in the order of ``target_modules``.
        hooks (list): the hook handles, one per module.
    """

    def __init__(self, target_modules: Iterable[nn.Module]) -> None:
        modules = list(target_modules)
        for module in modules:
            if not isinstance(module, nn.Module):
                raise TypeError(f"target_modules must hold nn.Modules, got {type(module).__name__}")
        self.outputs: dict[nn.Module, Any] = dict.fromkeys(modules, None)
        self.hooks: list[RemovableHandle] = [module.register_forward_hook(self._forward_hook())
                                             for module in self.outputs]

    def _reset_outputs(self) -> None:
        """Forget the stored outputs (every target back to ``None``)."""
        self.outputs = dict.fromkeys(self.outputs, None)

    @property
    def is_ready(self) -> bool:
        """Whether every target has an output stored."""
        return all(value is not None for value in self.outputs.values())

    @property
    def targets(self) -> Iterable[nn.Module]:
        """The hooked modules."""
        return self.outputs.keys()

    def _forward_hook(self) -> Callable[[nn.Module, Any, Any], None]:
        owner = weakref.ref(self)  # the modules must not keep this object alive: deleting it removes the hooks

        def module_outputs_forward_hook(module: nn.Module, args: Any, output: Any) -> None:
            self = owner()
            if self is None:
                return
            if self.outputs.get(module) is not None:
                warnings.warn(f"the hook on {module} ran more than once before its output was consumed; the first "
                              "output is kept (a module used twice in a forward pass)", stacklevel=2)
                return
            self.outputs[module] = output

        return module_outputs_forward_hook

    def consume_outputs(self) -> dict[nn.Module, Any]:
        """The stored outputs; afterwards every target is ``None`` again. Warns when some are missing."""
        if not self.is_ready:
            missing = [type(m).__name__ for m, value in self.outputs.items() if value is None]
            warnings.warn(f"consuming outputs before every target ran: no output yet from {missing}", stacklevel=2)
        outputs = self.outputs
        self._reset_outputs()
        return outputs

    def remove_hooks(self) -> None:
        """Remove the hooks from the modules (the stored outputs stay)."""
        for handle in getattr(self, "hooks", ()):  # () when the constructor refused its targets
            handle.remove()

    def __del__(self) -> None:
        self.remove_hooks()


class ActivationFetcher:
    """Collect the outputs of ``targets`` from one forward pass of ``model``.

    The hooks are placed when the fetcher is built and removed after its call, so a fetcher is called once.

    Args:
        model (nn.Module): the network.
        targets (Iterable of nn.Module): the layers to collect from.
    """

    def __init__(self, model: nn.Module, targets: Iterable[nn.Module]) -> None:
        self.model = model
        self.layers = ModuleOutputsHook(targets)

    def __call__(self, input_t: Tensor | tuple[Tensor, ...]) -> dict[nn.Module, Any]:
        """``{target: output}`` of ``model(input_t)`` (warnings of the forward pass are silenced).

        Args:
            input_t (Tensor or tuple of Tensors): the model's input.
        """
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.model(input_t)
            return self.layers.consume_outputs()
        finally:
            self.layers.remove_hooks()
