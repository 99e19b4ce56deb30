"""Ensemble fusion: the members of an :class:`~mei.modules.EnsembleModel` of one architecture as one vmapped
model, with one (grouped or dense block-diagonal) convolution per layer instead of one per member."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from ..modules import ConstrainedOutputModel, EnsembleModel
from .objectives import BatchedConstrainedOutputModel


def _state_signature(member: nn.Module) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    state = list(member.named_parameters()) + list(member.named_buffers())
    return [(name, tuple(t.shape), t.dtype) for name, t in state]


class _MemberConvolution(torch.autograd.Function):
    """``F.conv2d`` (groups 1) whose vmap over the stacked members of an ensemble is one dense convolution.

    vmap's own rule turns a convolution with per-member filters into a grouped convolution (``groups`` = number
    of members). This rule instead builds the block-diagonal filter bank of all members, ``(M * O, M * C, k, k)``
    with zeros off the diagonal blocks, and runs one ordinary convolution: ``M`` times the arithmetic, but in a
    shape (many input and output channels) for which GPU libraries have far faster kernels than for grouped
    convolutions of few channels. The zero blocks add exact zeros, so the values equal the grouped ones up to
    float summation order. Where the members share the input (the first layer), their filters are stacked into
    one convolution, as vmap does.
    """

    @staticmethod
    def forward(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Any, padding: Any,
                dilation: Any) -> Tensor:
        return torch.nn.functional.conv2d(x, weight, bias, stride, padding, dilation)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
        x, weight, bias, ctx.stride, ctx.padding, ctx.dilation = inputs
        ctx.save_for_backward(x, weight, bias)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple:
        x, weight, bias = ctx.saved_tensors
        need = ctx.needs_input_grad
        grads = torch.ops.aten.convolution_backward(
            grad, x, weight, None if bias is None else [bias.shape[0]], list(ctx.stride), list(ctx.padding),
            list(ctx.dilation), False, [0, 0], 1, [need[0], need[1], bias is not None and need[2]])
        return (*grads, None, None, None)

    @staticmethod
    def vmap(info: Any, in_dims: tuple, x: Tensor, weight: Tensor, bias: Tensor | None, stride: Any, padding: Any,
             dilation: Any) -> tuple[Tensor, int | None]:
        x_dim, weight_dim, bias_dim = in_dims[:3]
        conv, members = torch.nn.functional.conv2d, info.batch_size
        weight = weight.movedim(weight_dim, 0) if weight_dim is not None else weight.expand(members, *weight.shape)
        _, out_channels, in_channels, *kernel = weight.shape
        if bias is not None:
            bias = (bias.movedim(bias_dim, 0) if bias_dim is not None else bias.expand(members, -1)).reshape(-1)
        if x_dim is None:  # one input for every member: all their filters in one convolution
            out = conv(x, weight.reshape(members * out_channels, in_channels, *kernel), bias, stride, padding,
                       dilation)
        else:
            x = x.movedim(x_dim, 1)  # (N, M, C, H, W)
            dense = weight.new_zeros(members, out_channels, members, in_channels, *kernel)
            index = torch.arange(members, device=weight.device)
            dense[index, :, index] = weight
            dense = dense.reshape(members * out_channels, members * in_channels, *kernel)
            x = x.reshape(x.shape[0], members * in_channels, *x.shape[3:])
            if x.is_contiguous(memory_format=torch.channels_last) or weight[0].is_contiguous(
                    memory_format=torch.channels_last):
                dense = dense.contiguous(memory_format=torch.channels_last)
            out = conv(x, dense, bias, stride, padding, dilation)
        # members first: some batching rules (grid_sample + einsum) mishandle a member dimension at 1
        return out.reshape(out.shape[0], members, out_channels, *out.shape[2:]).movedim(1, 0), 0


class _DenseMemberConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` whose vmap over ensemble members runs :class:`_MemberConvolution`'s dense rule."""

    def forward(self, x: Tensor) -> Tensor:
        return _MemberConvolution.apply(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


def _explicit_padding(conv: nn.Conv2d) -> tuple[int, int] | None:
    """``conv``'s padding as two ints (``"valid"`` is 0, ``"same"`` when symmetric); ``None`` if it has none."""
    if not isinstance(conv.padding, str):
        return tuple(conv.padding)  # type: ignore[return-value]
    if conv.padding == "valid":
        return (0, 0)
    totals = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size, strict=True)]
    return None if any(t % 2 for t in totals) else (totals[0] // 2, totals[1] // 2)


def _dense_convolutions(module: nn.Module) -> int:
    """Switch ``module``'s plain convolutions (groups 1, zero padding, symmetric) to the dense member rule.

    Returns how many were switched; the others keep vmap's grouped rule.
    """
    count = 0
    for child in module.modules():
        padding = _explicit_padding(child) if type(child) is nn.Conv2d else None
        if padding is not None and child.groups == 1 and child.padding_mode == "zeros":
            assert isinstance(child, nn.Conv2d)
            child.padding = padding
            child.__class__ = _DenseMemberConv2d
            count += 1
    return count


class FusedEnsembleModel(nn.Module):
    """The members of an :class:`EnsembleModel` of one architecture evaluated as one vmapped model.

    The members' parameters and buffers are stacked (:func:`torch.func.stack_module_state`) and one copy
    of the first member runs over the stack with :func:`torch.func.vmap`, so a convolution that every member
    applies to the same input becomes one convolution with all members' filters, and the members' later
    layers become grouped convolutions: a few large kernels instead of many small ones. The output equals
    the :class:`EnsembleModel`'s (the mean over members) within float rounding.

    With ``dense=True`` the members' later ``nn.Conv2d`` layers (groups 1, zero padding) run as one dense
    convolution with a block-diagonal filter bank instead of a grouped one: ``M`` times the arithmetic in a
    shape GPUs run much faster (see :class:`_MemberConvolution`); same values up to float rounding.

    The stacked state is a copy taken at construction (later changes to the members are not seen) and is
    not trained. Members must be vmappable: no in-place changes of their inputs, no data-dependent Python
    control flow, no batch statistics (models are evaluated in eval mode).

    Args:
        *members (nn.Module): at least one model, all of one class with the same parameter and buffer names,
            shapes and dtypes.
        dense (bool, optional): dense block-diagonal convolutions instead of grouped ones. Default: False.

    Raises:
        ValueError: when the members differ in class or in the names, shapes or dtypes of their state.
    """

    def __init__(self, *members: nn.Module, dense: bool = False) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        first, signature = members[0], _state_signature(members[0])
        for index, member in enumerate(members[1:], start=1):
            if type(member) is not type(first):
                raise ValueError(f"cannot fuse ensemble members of different classes: member 0 is "
                                 f"{type(first).__name__}, member {index} is {type(member).__name__}")
            other = _state_signature(member)
            if other != signature:
                # not strict: the signatures may differ in length; the padding None marks the first extra entry
                diff = next((a, b) for a, b in zip(signature + [None], other + [None], strict=False) if a != b)
                raise ValueError(f"cannot fuse ensemble members of different architectures: member 0 has "
                                 f"{diff[0]}, member {index} has {diff[1]} (name, shape, dtype)")
        params, buffers = stack_module_state(list(members))
        stacked = {**params, **buffers}
        self.names = list(stacked)
        # stored with the members merged into the first dimension, so every tensor keeps its member's rank and
        # ``.to(memory_format=torch.channels_last)`` converts (and lays out) the 4-d weights as it does the members'
        self._merged = [stacked[name].dim() > 1 for name in self.names]
        for i, name in enumerate(self.names):
            tensor = stacked[name].detach().clone()
            self.register_buffer(f"stacked_{i}", tensor.flatten(0, 1) if self._merged[i] else tensor, persistent=False)
        self.n_members = len(members)
        self.skeleton = copy.deepcopy(first).requires_grad_(False)
        self.dense = bool(dense)
        self.n_dense = _dense_convolutions(self.skeleton) if self.dense else 0

    def _stacked(self) -> dict[str, Tensor]:
        """The members' state, members first (views of the stored tensors)."""
        state = {}
        for i, name in enumerate(self.names):
            tensor = getattr(self, f"stacked_{i}")
            state[name] = tensor.unflatten(0, (self.n_members, -1)) if self._merged[i] else tensor
        return state

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        def member(state: dict[str, Tensor]) -> Tensor:
            return functional_call(self.skeleton, state, (x, *args), kwargs)

        outputs = vmap(member)(self._stacked())
        return outputs.mean(dim=0) if self.n_members > 1 else outputs[0]

    def extra_repr(self) -> str:
        return f"members={self.n_members}" + (f", dense convolutions={self.n_dense}" if self.dense else "")


def fuse_ensembles(objective: nn.Module, dense: bool = False) -> tuple[nn.Module, int]:
    """``objective`` with the :class:`EnsembleModel` it scores replaced by a :class:`FusedEnsembleModel`.

    Looks at the objective itself and at the ``model`` of a :class:`ConstrainedOutputModel` or
    :class:`BatchedConstrainedOutputModel`; the objective and the ensemble are not changed (a shallow copy
    of the objective gets the fused model). ``dense`` is passed on to :class:`FusedEnsembleModel`. Returns
    ``(objective, number of ensembles fused)``, ``0`` when there was no ensemble of two or more members to fuse.
    """
    if isinstance(objective, EnsembleModel):
        if len(objective.members) < 2:
            return objective, 0
        return FusedEnsembleModel(*objective.members, dense=dense), 1
    inner = getattr(objective, "model", None)
    if isinstance(objective, (ConstrainedOutputModel, BatchedConstrainedOutputModel)) and isinstance(
            inner, EnsembleModel) and len(inner.members) > 1:
        fused = copy.copy(objective)  # its own module, buffer and parameter dicts: moving it leaves the original
        fused._modules = {**objective._modules, "model": FusedEnsembleModel(*inner.members, dense=dense)}
        fused._buffers, fused._parameters = dict(objective._buffers), dict(objective._parameters)
        return fused, 1
    return objective, 0
