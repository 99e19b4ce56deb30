"""A small model zoo with random weights, standing in for torchvision's AlexNet and InceptionV1 in examples.

Nothing is downloaded and no pretrained weights ship with ``mei``: ``pretrained=True`` raises
:class:`PretrainedWeightsUnavailable` with what to do instead. The stand-ins keep the layer names and
channel counts the examples index (``classifier[-1]`` with 1000 classes; ``mixed4a`` with 508 channels,
``mixed4b`` with 512, and ``mixed4a_relu``/``mixed4b_relu``) but are a few MB and fast on a CPU. Weights are
drawn from a fixed seed, so two calls build identical networks.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .hooks import collect_activations, get_model_layers
from .relu import RedirectedReLU, SkipLayer, replace_layers, skip_layers


class PretrainedWeightsUnavailable(RuntimeError):
    """Raised for ``pretrained=True``: the zoo has random weights only and never downloads."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name}(pretrained=True): mei ships no pretrained weights and downloads nothing. Use "
            f"{name}(pretrained=False) for the small random-weight stand-in, or build your own network and "
            "load its weights with model.load_state_dict(torch.load(path))."
        )


def _conv(in_channels: int, out_channels: int, kernel_size: int, **kwargs: Any) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, **kwargs), nn.ReLU())


class InceptionModule(nn.Module):
    """Four parallel branches (1x1; 1x1-3x3; 1x1-5x5; 3x3 max-pool-1x1) concatenated along channels."""

    def __init__(self, in_channels: int, c1: int, c3: int, c5: int, pool: int, reduce3: int = 16,
                 reduce5: int = 8) -> None:
        super().__init__()
        self.conv_1x1 = _conv(in_channels, c1, 1)
        self.conv_3x3 = nn.Sequential(_conv(in_channels, reduce3, 1), _conv(reduce3, c3, 3, padding=1))
        self.conv_5x5 = nn.Sequential(_conv(in_channels, reduce5, 1), _conv(reduce5, c5, 5, padding=2))
        self.pool_proj = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), _conv(in_channels, pool, 1))
        self.out_channels = c1 + c3 + c5 + pool

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.conv_1x1(x), self.conv_3x3(x), self.conv_5x5(x), self.pool_proj(x)], dim=1)


class TinyInceptionV1(nn.Module):
    """InceptionV1-shaped network with small inner widths; takes RGB in [0, 1], any size >= 64 (a 224 x 224
    input gives 7 x 7 maps at ``mixed4a``/``mixed4b``).

    Layers by name: ``conv1``, ``conv2``, ``mixed3a``, ``mixed3b``, ``mixed4a`` (508 channels),
    ``mixed4a_relu``, ``mixed4b`` (512 channels), ``mixed4b_relu``, ``fc`` (1008 classes).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = _conv(3, 8, 5, stride=4, padding=2)
        self.conv2 = _conv(8, 32, 3, stride=2, padding=1)
        self.pool2 = nn.MaxPool2d(2)
        self.mixed3a = InceptionModule(32, 32, 32, 16, 16)
        self.mixed3b = InceptionModule(96, 64, 64, 32, 32)
        self.pool3 = nn.MaxPool2d(2)
        self.mixed4a = InceptionModule(192, 192, 204, 48, 64)
        self.mixed4a_relu = nn.ReLU()
        self.mixed4b = InceptionModule(508, 160, 224, 64, 64)
        self.mixed4b_relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, 1008)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool2(self.conv2(self.conv1(x - 0.5)))
        x = self.pool3(self.mixed3b(self.mixed3a(x)))
        x = self.mixed4a_relu(self.mixed4a(x))
        x = self.mixed4b_relu(self.mixed4b(x))
        return self.fc(self.avgpool(x).flatten(1))


class TinyAlexNet(nn.Module):
    """AlexNet-shaped network (``features``, ``avgpool``, ``classifier``) with 1000 outputs; 3x227x227 input."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(), nn.Linear(32 * 36, 256), nn.ReLU(), nn.Dropout(), nn.Linear(256, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def _build(factory: type[nn.Module], seed: int) -> nn.Module:
    """``factory()`` with He-normal weights and zero biases drawn from ``seed`` (activations keep their scale
    through the layers, unlike PyTorch's default init, so random units respond to their input)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = factory()
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                assert module.bias is not None  # every layer of the zoo has a bias
                nn.init.zeros_(module.bias)
    return model


def googlenet(pretrained: bool = False, use_linear_modules_only: bool = False,
              replace_relus_with_redirectedrelu: bool = True, seed: int = 0) -> nn.Module:
    """The :class:`TinyInceptionV1` stand-in with random weights.

    Args:
        pretrained (bool, optional): must be False (see :class:`PretrainedWeightsUnavailable`). Default: False.
        replace_relus_with_redirectedrelu (bool, optional): use :class:`~mei.optim.relu.RedirectedReLU`
            everywhere, so that units dead at the start still get a gradient (random networks have many).
            Default: True.
        use_linear_modules_only (bool, optional): replace ReLUs by identities and max-pools by average pools,
            for :func:`mei.optim.circuits.extract_expanded_weights`. Default: False.
        seed (int, optional): seed of the random weights. Default: 0.
    """
    if pretrained:
        raise PretrainedWeightsUnavailable("googlenet")
    model = _build(TinyInceptionV1, seed)
    if use_linear_modules_only:
        replace_layers(model, nn.ReLU, nn.Identity)
        replace_layers(model, nn.MaxPool2d, nn.AvgPool2d, transfer_vars=True)
    elif replace_relus_with_redirectedrelu:
        replace_layers(model, nn.ReLU, RedirectedReLU)
    return model


def alexnet(pretrained: bool = False, seed: int = 0) -> nn.Module:
    """The :class:`TinyAlexNet` stand-in with random weights.

    Args:
        pretrained (bool, optional): must be False (see :class:`PretrainedWeightsUnavailable`). Default: False.
        seed (int, optional): seed of the random weights. Default: 0.
    """
    if pretrained:
        raise PretrainedWeightsUnavailable("alexnet")
    return _build(TinyAlexNet, seed)


__all__ = ["googlenet", "alexnet", "TinyInceptionV1", "TinyAlexNet", "InceptionModule",
           "PretrainedWeightsUnavailable", "collect_activations", "get_model_layers", "RedirectedReLU", "SkipLayer",
           "replace_layers", "skip_layers"]
