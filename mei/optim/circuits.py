"""Expanded weights between two layers that need not be adjacent (the circuits view of a network).

In a network whose modules between the two layers are linear (see ``googlenet(use_linear_modules_only=True)``
or :func:`mei.optim.relu.replace_layers`), the output of ``target2`` at one position is a linear function of
``target1``'s activations; its gradient with respect to them is the expanded weight. One batched backward
pass computes it for every output channel at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ._typing import Target
from .hooks import capture, get_module


def _center_crop(x: Tensor, crop_shape: Sequence[int] | int | None) -> Tensor:
    if crop_shape is None:
        return x
    height, width = (crop_shape, crop_shape) if isinstance(crop_shape, int) else crop_shape
    top, left = (x.shape[-2] - height) // 2, (x.shape[-1] - width) // 2
    if top < 0 or left < 0:
        raise ValueError(f"crop_shape {crop_shape} is larger than the activation map {tuple(x.shape[-2:])}")
    return x[..., top:top + height, left:left + width]


def extract_expanded_weights(model: nn.Module, target1: Target, target2: Target,
                             crop_shape: int | Sequence[int] | None = None,
                             model_input: Tensor | None = None) -> Tensor:
    """Expanded weights from ``target1`` to ``target2``: ``W[c2, c1, y, x]`` is the gradient of ``target2``'s
    channel ``c2`` at its centre with respect to ``target1``'s channel ``c1`` at position ``(y, x)``.

    Args:
        model (nn.Module): the network, linear between the two targets for the result to be a weight.
        target1 (nn.Module or str): the earlier layer (by module or name).
        target2 (nn.Module or str): the later layer.
        crop_shape (int or tuple[int, int], optional): keep only this window around the centre. Default: all.
        model_input (Tensor, optional): the input of the forward pass. Default: ``zeros(1, 3, 224, 224)``.

    Returns:
        Tensor: ``(channels of target2, channels of target1, height, width)``.
    """
    module1, module2 = get_module(model, target1), get_module(model, target2)
    if model_input is None:
        parameter = next(model.parameters(), None)
        model_input = torch.zeros(1, 3, 224, 224, device=parameter.device if parameter is not None else "cpu")
    leaf: dict[str, Tensor] = {}

    def detach_here(module: nn.Module, args: Any, output: Tensor) -> Tensor:
        leaf["a"] = output.detach().requires_grad_(True)
        return leaf["a"]

    handle = module1.register_forward_hook(detach_here)
    try:
        with torch.enable_grad(), capture(model, [module2]) as outputs:
            model(model_input[:1])
    finally:
        handle.remove()
    if "a" not in leaf or module2 not in outputs:
        raise RuntimeError("target1 or target2 did not run in the forward pass")
    activation2 = outputs[module2]
    center = activation2[0, :, activation2.shape[-2] // 2, activation2.shape[-1] // 2]
    n_out = center.shape[0]
    basis = torch.eye(n_out, dtype=center.dtype, device=center.device)
    (grads,) = torch.autograd.grad(center, leaf["a"], grad_outputs=basis, is_grads_batched=True)
    return _center_crop(grads[:, 0], crop_shape).detach()


__all__ = ["extract_expanded_weights"]
