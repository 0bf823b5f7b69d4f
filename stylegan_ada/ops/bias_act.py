"""Fused bias + activation + gain + clamp (`bias_act`), with a pure-PyTorch reference path.

The reference path is differentiable to any order by autograd; the CUDA path (`cuda_backend`) to second order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from stylegan_ada.ops._dispatch import cuda_function


@dataclass(frozen=True)
class ActivationSpec:
    """One activation: its function, default alpha and gain, and what the CUDA kernel needs to know."""

    func: Callable[..., torch.Tensor]
    def_alpha: float
    def_gain: float
    cuda_idx: int
    ref: str  # what the first-order gradient is computed from: '' (nothing), 'x' (input) or 'y' (output)
    has_2nd_grad: bool


def _swish(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return x * torch.sigmoid(x)


_SQRT2 = float(np.sqrt(2))

ACTIVATIONS: dict[str, ActivationSpec] = {
    "linear": ActivationSpec(lambda x, alpha: x, 0.0, 1.0, 1, "", False),
    "relu": ActivationSpec(lambda x, alpha: F.relu(x), 0.0, _SQRT2, 2, "y", False),
    "lrelu": ActivationSpec(lambda x, alpha: F.leaky_relu(x, alpha), 0.2, _SQRT2, 3, "y", False),
    "tanh": ActivationSpec(lambda x, alpha: torch.tanh(x), 0.0, 1.0, 4, "y", True),
    "sigmoid": ActivationSpec(lambda x, alpha: torch.sigmoid(x), 0.0, 1.0, 5, "y", True),
    "elu": ActivationSpec(lambda x, alpha: F.elu(x), 0.0, 1.0, 6, "y", True),
    "selu": ActivationSpec(lambda x, alpha: F.selu(x), 0.0, 1.0, 7, "y", True),
    "softplus": ActivationSpec(lambda x, alpha: F.softplus(x), 0.0, 1.0, 8, "y", True),
    "swish": ActivationSpec(_swish, 0.0, _SQRT2, 9, "x", True),
}
activation_funcs = ACTIVATIONS  # the reference's name for the same table


def resolve_args(act: str, alpha: float | None, gain: float | None,
                 clamp: float | None) -> tuple[ActivationSpec, float, float, float]:
    """(spec, alpha, gain, clamp) with defaults filled in; clamp < 0 means no clamping."""
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; expected one of {sorted(ACTIVATIONS)}")
    if clamp is not None and clamp < 0:
        raise ValueError(f"clamp must be None or >= 0, got {clamp}")
    spec = ACTIVATIONS[act]
    alpha = float(alpha if alpha is not None else spec.def_alpha)
    gain = float(gain if gain is not None else spec.def_gain)
    clamp = float(clamp if clamp is not None else -1)
    return spec, alpha, gain, clamp


def check_bias(x: torch.Tensor, b: torch.Tensor | None, dim: int) -> None:
    """ValueError unless `b` is None or a 1D bias with one entry per index of `x` along `dim` (both paths)."""
    if b is not None and (b.ndim != 1 or not 0 <= dim < x.ndim or b.shape[0] != x.shape[dim]):
        raise ValueError(f"bias_act: bias of shape {tuple(b.shape)} does not match dim {dim} of {tuple(x.shape)}")


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1, act: str = "linear",
             alpha: float | None = None, gain: float | None = None, clamp: float | None = None,
             impl: str = "auto") -> torch.Tensor:
    """Add bias `b` along `dim`, apply `act`, multiply by `gain`, clamp to [-clamp, clamp].

    `alpha`/`gain` default to the activation's own (e.g. lrelu: 0.2 and sqrt(2)); `clamp=None` disables clamping.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError("bias_act: x must be a tensor")
    check_bias(x, b, dim)
    cuda_op = cuda_function("bias_act", x, impl)
    if cuda_op is not None:
        return cuda_op(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)
    return bias_act_ref(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)


def bias_act_ref(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1, act: str = "linear",
                 alpha: float | None = None, gain: float | None = None, clamp: float | None = None) -> torch.Tensor:
    """Reference implementation with standard PyTorch ops (first and second order gradients).

    linear/relu/lrelu with a positive gain (everything the networks use) run as one autograd node that keeps only
    its output for the backward pass; the other activations are composed from plain autograd ops.
    """
    spec, alpha, gain, clamp = resolve_args(act, alpha, gain, clamp)
    check_bias(x, b, dim)
    if b is None and act == "linear" and gain == 1 and clamp < 0:
        return x
    if act in _PIECEWISE_LINEAR and gain > 0 and alpha >= 0:
        return _PiecewiseLinearBiasAct.apply(x, b, dim, act, alpha, gain, clamp)
    if b is not None:
        x = x + _bias_view(b, dim, x.ndim)
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


_PIECEWISE_LINEAR = ("linear", "relu", "lrelu")


def _bias_view(b: torch.Tensor, dim: int, ndim: int) -> torch.Tensor:
    return b.reshape([-1 if i == dim else 1 for i in range(ndim)])


class _PiecewiseLinearBiasAct(torch.autograd.Function):
    """y = clamp(gain * act(x + b)) for act in linear/relu/lrelu and gain > 0, in place on one fresh tensor.

    The slope of these activations is a function of the sign of y, and clamped entries are exactly +-clamp, so the
    backward pass needs only y. It is written with differentiable ops of dy (y detached: its second derivative is 0),
    which gives correct second-order gradients (R1, path length).
    """

    @staticmethod
    def forward(ctx, x, b, dim, act, alpha, gain, clamp):  # noqa: D102 - autograd API
        y = x + _bias_view(b, dim, x.ndim) if b is not None else x.clone()
        if act == "relu":
            y.relu_()
        elif act == "lrelu":
            F.leaky_relu_(y, alpha)
        if gain != 1:
            y.mul_(gain)
        if clamp >= 0:
            y.clamp_(-clamp, clamp)
        ctx.params = (dim, act, alpha if act == "lrelu" else 0.0, gain, clamp)
        ctx.save_for_backward(y if act != "linear" or clamp >= 0 else None)
        return y

    @staticmethod
    def backward(ctx, dy):  # noqa: D102 - autograd API
        dim, act, alpha, gain, clamp = ctx.params
        (y,) = ctx.saved_tensors
        dx = dy
        if clamp >= 0:
            dx = torch.ops.aten.hardtanh_backward(dx, y.detach(), -clamp, clamp)
        if act != "linear":
            dx = torch.ops.aten.leaky_relu_backward(dx, y.detach(), alpha, True)
        if gain != 1:
            dx = dx * gain
        db = None
        if ctx.needs_input_grad[1]:
            db = dx.sum([i for i in range(dx.ndim) if i != dim])
        return (dx if ctx.needs_input_grad[0] else None), db, None, None, None, None, None
