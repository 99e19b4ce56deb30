"""sinzlab/mei's ``mei.legacy.models``: :class:`Ensemble`, and :class:`VGG19Core` / :class:`VGG19` on a pure-torch
VGG-19 with torchvision's ``state_dict`` keys (no torchvision; weights are loaded from a file, never downloaded)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
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


VGG19_LAYOUT: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                                       512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
"""VGG-19's convolution widths and max-pools ("M"), configuration E of Simonyan & Zisserman (2015)."""

PRETRAINED_HINT = ("this package does not download weights (it does not depend on torchvision): save torchvision's "
                   "weights once where torchvision is installed, e.g. torch.save(torchvision.models.vgg19_bn("
                   "weights='DEFAULT').state_dict(), 'vgg19_bn.pth') (vgg19 without batch norm), then pass "
                   "weights='vgg19_bn.pth'")


def vgg19_features(use_batchnorm: bool = True) -> nn.Sequential:
    """VGG-19's convolutional part with torchvision's module indices: 3 x 3 convolutions (padding 1), each
    followed by a batch norm (``use_batchnorm``) and a ReLU, and 2 x 2 max-pools."""
    layers: list[nn.Module] = []
    channels = 3
    for width in VGG19_LAYOUT:
        if width == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(channels, int(width), kernel_size=3, padding=1))
        if use_batchnorm:
            layers.append(nn.BatchNorm2d(int(width)))
        layers.append(nn.ReLU(inplace=True))
        channels = int(width)
    return nn.Sequential(*layers)


class VGG19Network(nn.Module):
    """VGG-19 in pure torch, with the module names (so the ``state_dict`` keys) of torchvision's ``vgg19`` /
    ``vgg19_bn``: ``features`` (:func:`vgg19_features`), ``avgpool`` (adaptive, 7 x 7) and ``classifier``
    (``Linear(25088, 4096)``, ReLU, dropout, ``Linear(4096, 4096)``, ReLU, dropout, ``Linear(4096, 1000)``).
    A ``state_dict`` saved from torchvision's model loads into it unchanged."""

    def __init__(self, use_batchnorm: bool = True, num_classes: int = 1000) -> None:
        super().__init__()
        self.features = vgg19_features(use_batchnorm)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def load_vgg19(weights: Any = None, use_batchnorm: bool = True, pretrained: bool = False) -> VGG19Network:
    """A :class:`VGG19Network`, with ``weights`` (a ``state_dict`` or the path of a ``torch.save`` file of
    one, torchvision's keys) loaded strictly, else randomly initialised.

    Raises:
        ValueError: ``pretrained=True`` (a download; the message says how to load a file instead).
    """
    if pretrained:
        raise ValueError(f"pretrained=True would download torchvision's VGG-19 weights; {PRETRAINED_HINT}")
    network = VGG19Network(use_batchnorm)
    if weights is not None:
        state = weights if isinstance(weights, Mapping) else torch.load(weights, map_location="cpu",
                                                                         weights_only=True)
        network.load_state_dict(state)
    return network


class VGG19Core:
    """VGG-19's feature maps (N x C x H x W) at ``layer`` (0-based index into ``features``).

    Args:
        layer (int): the last module of ``features`` kept (0 to 52 with batch norm, 0 to 36 without).
        use_batchnorm (bool, optional): torchvision's ``vgg19_bn`` layout (else ``vgg19``). Default: True.
        device (str, optional): Default: ``"cuda"``.
        weights (str | dict, optional): torchvision's ``state_dict`` (or its file) for that layout. sinzlab/mei
            always downloads the pretrained weights; here they come from a file. Default: None (random).
        pretrained (bool, optional): ``True`` raises a ``ValueError`` saying how to pass ``weights``.
    """

    def __init__(self, layer: int, use_batchnorm: bool = True, device: str = "cuda", weights: Any = None,
                 pretrained: bool = False) -> None:
        features = load_vgg19(weights, use_batchnorm, pretrained).features
        if not 0 <= layer < len(features):
            raise ValueError(f"layer out of range (max is {len(features) - 1}), got {layer}")
        self.model = features[: layer + 1].to(device).eval()

    def __call__(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        return self.model(x)


class VGG19:
    """The mean over the batch and the spatial positions of one ``channel`` of :class:`VGG19Core` at ``layer``.

    Args:
        layer, use_batchnorm, device, weights, pretrained: as :class:`VGG19Core`.
        channel (int): the channel (0-based).
    """

    def __init__(self, layer: int, channel: int, use_batchnorm: bool = True, device: str = "cuda",
                 weights: Any = None, pretrained: bool = False) -> None:
        self.model = VGG19Core(layer, use_batchnorm, device, weights, pretrained)
        self.channel = channel

    def __call__(self, x: Tensor) -> Tensor:
        return self.model(x)[:, self.channel, :, :].mean()


__all__ = ["Ensemble", "VGG19_LAYOUT", "vgg19_features", "VGG19Network", "load_vgg19", "VGG19Core", "VGG19"]
