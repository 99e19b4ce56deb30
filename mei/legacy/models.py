"""sinzlab/mei's ``mei.legacy.models``: :class:`Ensemble` (the VGG-19 models need torchvision: not provided)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn


class Ensemble:
    """The mean response of copies of ``models`` for the scan ``readout_key``.

    Args:
        models (Sequence[nn.Module]): models called ``m(x, readout_key, eye_pos=, behavior=)``; copied.
        readout_key (str): the scan whose neurons are returned.
        eye_pos (Tensor, optional): ``[1, 2]`` pupil position (None disables the shifter). Default: None.
        behavior (Tensor, optional): ``[1, 3]`` behaviour (None: no modulation). Default: None.
        neuron_idx (int | slice | list, optional): neurons returned. Default: all.
        average_batch (bool, optional): average over the images too. Default: True.
        device (str, optional): where the copies live. Default: ``"cuda"``.
    """

    def __init__(self, models: Sequence[nn.Module], readout_key: str, eye_pos: Tensor | None = None,
                 behavior: Tensor | None = None, neuron_idx: Any = slice(None), average_batch: bool = True,
                 device: str = "cuda") -> None:
        self.models = [copy.deepcopy(m).to(device).eval() for m in models]
        self.readout_key = readout_key
        self.eye_pos = None if eye_pos is None else eye_pos.to(device)
        self.behavior = None if behavior is None else behavior.to(device)
        self.neuron_idx = neuron_idx
        self.average_batch = average_batch
        self.device = device

    def __call__(self, x: Tensor) -> Tensor:
        responses = torch.stack([
            m(x, self.readout_key, eye_pos=self.eye_pos, behavior=self.behavior)[:, self.neuron_idx]
            for m in self.models])
        return responses.mean(0).mean(0) if self.average_batch else responses.mean(0)


class VGG19Core:
    """Not provided: it needs torchvision's pretrained VGG-19, which this package does not depend on."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("mei.legacy.models.VGG19Core needs torchvision's pretrained VGG-19; this package "
                                  "does not depend on torchvision (see docs/sinzlab.md)")


class VGG19(VGG19Core):
    """Not provided (see :class:`VGG19Core`)."""


__all__ = ["Ensemble", "VGG19Core", "VGG19"]
