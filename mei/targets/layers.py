"""Objectives on inner neurons, named by module: ``LayerObjective(model, "core.conv2", channel=3)``.

The hooks are those of :mod:`mei.optim.hooks` (the feature-visualization package): a forward hook on the
named submodule catches its output during the model's forward pass and is removed in ``finally``, so the
model is left exactly as it was. On top of them this module adds what movies and multi-session models need:
forward keywords (``data_key``), positions in any number of dimensions (``[t, y, x]``) and a reducer over
time. The objective returns one value per image, so it drops into the engine like any other objective.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from ..engine.component import check_number
from ..engine.hooks import capture as hooked
from ..engine.hooks import get_module
from ..reducers import Reducer, build_reducer


def capture(model: nn.Module, layer: str, x: Tensor, **forward_kwargs: Any) -> Tensor:
    """The output of ``model``'s submodule ``layer`` (dotted name as in ``named_modules``) for input ``x``,
    from one forward ``model(x, **forward_kwargs)``."""
    try:
        module = get_module(model, layer)
    except KeyError as error:
        raise ValueError(error.args[0]) from None
    with hooked(model, [module]) as outputs:
        model(x, **forward_kwargs)
    if module not in outputs:
        raise RuntimeError(f"module {layer!r} was not called during the forward pass")
    return outputs[module]


class LayerObjective(nn.Module):
    """The activation of an inner neuron, channel or whole layer of ``model``, one value per image.

    The layer's output ``(images, channels, ...)`` is restricted to ``channel`` (if given), then to
    ``position`` (indices into the remaining dimensions, if given); what remains is reduced by ``reducer``
    (if given) and averaged.

    Args:
        model (nn.Module): the model.
        layer (str): dotted module name, e.g. ``"core.features.conv2"``.
        channel (int, optional): the channel (dimension 1). Default: all channels.
        position (list[int], optional): indices into the dimensions after the channel, e.g. ``[y, x]`` or
            ``[t, y, x]``. Default: all positions.
        reducer (Callable | dict, optional): applied before the mean (e.g. a time window). Default: none.
        forward_kwargs (dict, optional): keyword arguments of every forward call. Default: none.
    """

    def __init__(self, model: nn.Module, layer: str, channel: int | None = None,
                 position: Sequence[int] | None = None, reducer: Reducer | Mapping[str, Any] | None = None,
                 forward_kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if not isinstance(layer, str) or not layer:
            raise ValueError(f"layer must be a module name, got {layer!r}")
        self.model, self.layer = model, layer
        self.channel = None if channel is None else check_number("channel", channel, minimum=0, integer=True)
        self.position = None if position is None else [
            check_number("position", p, minimum=0, integer=True) for p in position
        ]
        self.reducer = build_reducer(reducer)
        self.forward_kwargs = dict(forward_kwargs or {})

    def forward(self, x: Tensor) -> Tensor:
        activation = capture(self.model, self.layer, x, **self.forward_kwargs)
        if self.channel is not None:
            activation = activation[:, self.channel]
            if self.position is not None:
                index = (slice(None), *self.position)
                activation = activation[index]
        elif self.position is not None:
            index = (slice(None), slice(None), *self.position)
            activation = activation[index]
        if self.reducer is not None:
            activation = self.reducer(activation)
        return activation.reshape(activation.shape[0], -1).mean(dim=1)

    def extra_repr(self) -> str:
        return f"layer={self.layer!r}, channel={self.channel}, position={self.position}"
