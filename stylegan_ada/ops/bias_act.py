"""Fused bias + activation + gain + clamp (`bias_act`): the entry point and the pure-PyTorch reference path.

The CUDA path with the same arguments and results is `bias_act_cuda.cuda_bias_act` (imported only when a call takes
it); both parse their arguments with `op_args`. The reference path is differentiable to any order by autograd, the
CUDA path to second order.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from stylegan_ada.ops._dispatch import use_cuda
from stylegan_ada.ops.op_args import ACTIVATIONS, check_bias, resolve_bias_act

__all__ = ["ACTIVATIONS", "bias_act", "bias_act_ref"]


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1, act: str = "linear",
             alpha: float | None = None, gain: float | None = None, clamp: float | None = None,
             impl: str = "auto") -> torch.Tensor:
    """Add bias `b` along `dim`, apply `act`, multiply by `gain`, clamp to [-clamp, clamp].

    `alpha`/`gain` default to the activation's own (e.g. lrelu: 0.2 and sqrt(2)); `clamp=None` disables clamping.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError("bias_act: x must be a tensor")
    check_bias(x, b, dim)
    if use_cuda("bias_act", x, impl):
        from stylegan_ada.ops.bias_act_cuda import cuda_bias_act
        return cuda_bias_act(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)
    return bias_act_ref(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)


def bias_act_ref(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1, act: str = "linear",
                 alpha: float | None = None, gain: float | None = None, clamp: float | None = None) -> torch.Tensor:
    """Reference implementation with standard PyTorch ops (first and second order gradients).

    linear/relu/lrelu with a positive gain (everything the networks use) run as one autograd node that keeps only
    its output for the backward pass; the other activations are composed from plain autograd ops.
    """
    spec, alpha, gain, clamp = resolve_bias_act(act, alpha, gain, clamp)
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
