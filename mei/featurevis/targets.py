"""Target strings, as lucent writes objectives: ``"layer:channel"`` and sums of such terms.

Grammar (spaces are free)::

    target := term (("+" | "-") term)*
    term   := [number "*"] layer [":" channel [":" y ":" x | ":center"]]

* ``"conv2"``: the mean activation of the whole layer;
* ``"conv2:5"``: the mean of channel 5 (for a ``(N, C)`` output such as a linear layer: unit 5);
* ``"conv2:5:center"`` or ``"conv2:5:7:9"``: one neuron, channel 5 at the centre or at row 7, column 9;
* ``"mixed4a:465 - 0.5*mixed4a:470"``: a weighted sum.

``layer`` is a name of ``model.named_modules()`` (``"features.3"``); ``"input"`` is the model's input.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..engine.hooks import ModuleOutputs, capture, get_module, is_model_input

__all__ = ["Term", "parse_target", "TargetObjective"]

_TERM = re.compile(
    r"\s*(?P<sign>[+-])?\s*(?:(?P<weight>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)\s*\*\s*)?"
    r"(?P<layer>\w[\w.]*)(?::(?P<channel>\d+)(?::(?P<where>center|\d+:\d+))?)?\s*"
)


@dataclasses.dataclass(frozen=True)
class Term:
    """One weighted term of a target: a layer, optionally a channel, optionally a neuron's position."""

    weight: float
    layer: str
    channel: int | None = None
    position: tuple[int, int] | str | None = None  # (y, x), "center", or None (the channel's mean)

    def value(self, activation: Tensor) -> Tensor:
        """The term (without its weight) for every row of ``activation`` ``(rows, C, ...)``: ``(rows,)``."""
        if self.channel is None:
            return activation.reshape(activation.shape[0], -1).mean(dim=1)
        if activation.dim() < 2 or self.channel >= activation.shape[1]:
            raise IndexError(f"{self.layer} has {activation.shape[1] if activation.dim() > 1 else 0} channels, "
                             f"the target asks for channel {self.channel}")
        channel = activation[:, self.channel]
        if self.position is None or channel.dim() == 1:
            return channel.reshape(channel.shape[0], -1).mean(dim=1)
        if channel.dim() != 3:
            raise ValueError(f"a neuron position needs a (N, C, H, W) activation, {self.layer} gives "
                             f"{tuple(activation.shape)}")
        height, width = channel.shape[-2:]
        y, x = (height // 2, width // 2) if isinstance(self.position, str) else self.position
        if not (0 <= y < height and 0 <= x < width):
            raise IndexError(f"position ({y}, {x}) is outside {self.layer}'s {height}x{width} map")
        return channel[:, y, x]


def parse_target(text: str) -> list[Term]:
    """The terms of a target string (see the module docstring); a clear ``ValueError`` where it does not parse."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"a target is a non-empty string such as 'conv2:5', got {text!r}")
    terms: list[Term] = []
    position = 0
    while position < len(text):
        match = _TERM.match(text, position)
        if match is None or match.end() == position or (terms and match.group("sign") is None):
            raise ValueError(f"cannot parse target {text!r} at position {position}: {text[position:]!r}; "
                             "write terms like 'layer', 'layer:channel', 'layer:channel:center', "
                             "'layer:channel:y:x', joined by + or -, with an optional 'number *'")
        weight = float(match.group("weight") or 1.0) * (-1.0 if match.group("sign") == "-" else 1.0)
        text_where = match.group("where")
        where: tuple[int, int] | str | None = text_where
        if text_where is not None and text_where != "center":
            y, x = text_where.split(":")
            where = (int(y), int(x))
        channel = match.group("channel")
        terms.append(Term(weight, match.group("layer"), None if channel is None else int(channel), where))
        position = match.end()
    return terms


class TargetObjective(nn.Module):
    """``model`` read through target strings: ``forward(x)`` returns one value per row of ``x``.

    With one target every image is scored by it; with a list, image ``k`` of a batch of ``K`` is scored by
    ``targets[k]`` — also when the batch holds several views of each image (row ``v * K + k``, see
    :class:`mei.transforms.Views`). All layers are read in one forward pass (hooks on those modules only).

    Args:
        model (nn.Module): the network.
        targets (str or list[str]): one target for all images, or one per image.
    """

    def __init__(self, model: nn.Module, targets: str | Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.targets = [targets] if isinstance(targets, str) else list(targets)
        if not self.targets:
            raise ValueError("TargetObjective needs at least one target")
        self.terms = [parse_target(t) for t in self.targets]
        self.layers = list(dict.fromkeys(term.layer for terms in self.terms for term in terms))
        for layer in self.layers:
            if not is_model_input(model, layer):
                get_module(model, layer)  # a KeyError naming the layers that exist

    def per_target(self, outputs: ModuleOutputs, device: torch.device) -> Tensor:
        """Every target's value for every row of a forward's ``outputs`` (:func:`mei.engine.hooks.capture`):
        ``(targets, rows)``."""
        return torch.stack([sum((term.weight * term.value(outputs[term.layer]) for term in terms),
                                torch.zeros((), device=device)) for terms in self.terms])

    def from_outputs(self, outputs: ModuleOutputs, device: torch.device) -> Tensor:
        """The value of each row (image ``k``'s own target) from a forward's ``outputs``: ``(rows,)``."""
        values = self.per_target(outputs, device)
        if len(self.targets) == 1:
            return values[0]
        n_targets, rows = values.shape
        if rows % n_targets:
            raise ValueError(f"{n_targets} targets (one per image) but the input holds {rows} rows")
        which = torch.arange(rows, device=values.device) % n_targets
        return values[which, torch.arange(rows, device=values.device)]

    def forward(self, x: Tensor) -> Tensor:
        with capture(self.model, self.layers) as outputs:
            self.model(x)
        return self.from_outputs(outputs, x.device)

    def extra_repr(self) -> str:
        return f"targets={self.targets}"
