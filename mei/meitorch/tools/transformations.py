"""Generative transformations for the transformation mode: networks whose weights are the MEI.

The transformation mode feeds fresh noise through the network at every step and optimizes the network's
parameters so that its outputs excite the model: the result is a distribution of exciting images.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ...engine.component import check_number
from ..noise import draw as draw_noise

ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "identity": nn.Identity}


def _activation(value: nn.Module | str) -> nn.Module:
    if isinstance(value, nn.Module):
        return value
    if isinstance(value, str) and value in ACTIVATIONS:
        return ACTIVATIONS[value]()
    raise ValueError(f"activation must be a torch module or one of {sorted(ACTIVATIONS)}, got {value!r}")


class GenerativeConvNet(nn.Module):
    """Convolutions (same padding) from ``shape[0]`` channels through ``hidden_sizes`` back to ``shape[0]``,
    followed by sampling: ``output = mean + stddev * N(0, 1)``.

    With ``fixed_stddev=None`` the last layer has twice the channels and its second half is the log of a
    learned, per-pixel standard deviation.

    Args:
        hidden_sizes (list[int], optional): channels of the hidden layers. Default: ``[8]``.
        fixed_stddev (float | None, optional): standard deviation of the output noise (0: deterministic);
            None learns it. Default: None.
        kernel_size (int, optional): kernel width of every convolution. Default: 3.
        activation (nn.Module | str, optional): nonlinearity between layers (relu, elu, tanh, sigmoid,
            identity). Default: ``"relu"``.
        activate_output (bool, optional): apply the nonlinearity to the output mean too. Default: False.
        shape (tuple[int, int, int], optional): image shape ``(channels, height, width)``. Default:
            ``(1, 28, 28)``.
    """

    def __init__(self, hidden_sizes: Sequence[int] = (8,), fixed_stddev: float | None = None, kernel_size: int = 3,
                 activation: nn.Module | str = "relu", activate_output: bool = False,
                 shape: Sequence[int] = (1, 28, 28)) -> None:
        super().__init__()
        self.shape = tuple(check_number("shape", s, minimum=1, integer=True) for s in shape)
        if len(self.shape) != 3:
            raise ValueError(f"shape must be (channels, height, width), got {tuple(shape)}")
        hidden = [check_number("hidden_sizes", h, minimum=1, maximum=10**5, integer=True) for h in hidden_sizes]
        self.kernel_size = check_number("kernel_size", kernel_size, minimum=1, maximum=1000, integer=True)
        self.fixed_stddev = None if fixed_stddev is None else check_number("fixed_stddev", fixed_stddev, minimum=0)
        self.activation = _activation(activation)
        self.activate_output = bool(activate_output)
        channels = self.shape[0]
        sizes = [channels, *hidden, channels * (1 if self.fixed_stddev is not None else 2)]
        self.layers = nn.ModuleList(
            # not strict: consecutive pairs of sizes, one shorter by design
            nn.Conv2d(a, b, self.kernel_size, padding="same") for a, b in zip(sizes[:-1], sizes[1:], strict=False)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Map a batch ``(N, C, H, W)`` (usually noise) to samples of the same shape."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1 or self.activate_output:
                x = self.activation(x)
        if self.fixed_stddev is None:
            mean, log_std = x.chunk(2, dim=1)
            std: Tensor | float = log_std.exp()
        else:
            mean, std = x, self.fixed_stddev
        if isinstance(std, float) and std == 0:
            return mean
        return mean + std * draw_noise(tuple(mean.shape), mean.device).to(mean.dtype)
