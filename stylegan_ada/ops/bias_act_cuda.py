"""CUDA path of `bias_act`: autograd functions over our kernels, with first and second order gradients.

Semantics are those of `bias_act.bias_act_ref` (read the two side by side); `bias_act.bias_act` calls
`cuda_bias_act` when `_dispatch.use_cuda` says so. Backward passes recompute the activation from the saved input
(x and b), which also gives the clamp mask, so nothing else has to be kept alive. Third-order gradients are
not supported (R1 and path-length regularization need two); asking for them raises instead of being wrong.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch.autograd.function import once_differentiable

from stylegan_ada.ops import cuda_backend
from stylegan_ada.ops.op_args import check_bias, resolve_bias_act

_FORWARD, _FIRST_DERIVATIVE, _SECOND_DERIVATIVE = 0, 1, 2


class _Config(NamedTuple):
    dim: int
    act_code: int
    alpha: float
    gain: float
    clamp: float  # < 0: none
    has_2nd_grad: bool


def _kernel(mode: int, x: torch.Tensor, b: torch.Tensor | None, cfg: _Config, g1: torch.Tensor | None = None,
            g2: torch.Tensor | None = None) -> torch.Tensor:
    plugin = cuda_backend.load()
    if plugin is None:
        raise RuntimeError(f"bias_act: the CUDA extension is unavailable ({cuda_backend.last_error()})")
    return plugin.bias_act(x, b, g1, g2, mode, cfg.dim, cfg.act_code, cfg.alpha, cfg.gain, cfg.clamp)


def _layout_like(t: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """`t` stored with the strides of `ref` (the kernels index all operands with one flat index)."""
    return t if t.stride() == ref.stride() else torch.empty_like(ref).copy_(t)


def _dense(x: torch.Tensor) -> torch.Tensor:
    """`x`, or a contiguous copy unless it is already stored densely (the kernels index it with one flat index)."""
    if x.is_contiguous() or (x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last)):
        return x
    return x.contiguous()


def _sum_to_bias(t: torch.Tensor, dim: int) -> torch.Tensor:
    return t.sum([i for i in range(t.ndim) if i != dim])


class _BiasActCuda(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, b: torch.Tensor | None, cfg: _Config) -> torch.Tensor:  # type: ignore[override]
        x = _dense(x)
        ctx.save_for_backward(x, b)
        ctx.cfg = cfg
        return _kernel(_FORWARD, x, b, cfg)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):  # type: ignore[override]
        x, b = ctx.saved_tensors
        dx = _BiasActGradCuda.apply(dy, x, b, ctx.cfg)
        db = _sum_to_bias(dx, ctx.cfg.dim) if ctx.needs_input_grad[1] else None
        return (dx if ctx.needs_input_grad[0] else None), db, None


class _BiasActGradCuda(torch.autograd.Function):
    """dx = dy * gain * act'(x + b) inside the clamp range, as a function of (dy, x, b)."""

    @staticmethod
    def forward(ctx, dy: torch.Tensor, x: torch.Tensor, b: torch.Tensor | None,  # type: ignore[override]
                cfg: _Config) -> torch.Tensor:
        dy = _layout_like(dy, x)
        ctx.save_for_backward(dy, x, b)
        ctx.cfg = cfg
        return _kernel(_FIRST_DERIVATIVE, x, b, cfg, dy)

    @staticmethod
    @once_differentiable
    def backward(ctx, d_dx: torch.Tensor):  # type: ignore[override]
        dy, x, b = ctx.saved_tensors
        cfg: _Config = ctx.cfg
        d_dx = _layout_like(d_dx, x)
        d_dy = _kernel(_FIRST_DERIVATIVE, x, b, cfg, d_dx) if ctx.needs_input_grad[0] else None
        d_x = d_b = None
        # act'' is zero almost everywhere for linear/relu/lrelu (and the clamp mask is piecewise constant).
        if cfg.has_2nd_grad and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
            d_x = _kernel(_SECOND_DERIVATIVE, x, b, cfg, d_dx, dy)
            d_b = _sum_to_bias(d_x, cfg.dim) if ctx.needs_input_grad[2] else None
        return d_dy, (d_x if ctx.needs_input_grad[1] else None), d_b, None


def cuda_bias_act(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1, act: str = "linear",
                  alpha: float | None = None, gain: float | None = None,
                  clamp: float | None = None) -> torch.Tensor:
    """`bias_act` on our CUDA kernels; same arguments and results as `bias_act_ref` (x on a CUDA device)."""
    if x.device.type != "cuda":
        raise ValueError(f"bias_act: the CUDA implementation needs a CUDA tensor, got one on {x.device}; "
                         "use impl='auto' or impl='ref'")
    spec, alpha, gain, clamp = resolve_bias_act(act, alpha, gain, clamp)
    if b is None and act == "linear" and gain == 1 and clamp < 0:
        return x  # nothing to do, exactly like the reference path
    check_bias(x, b, dim)
    if b is not None:
        b = b.to(dtype=x.dtype).contiguous()  # the kernels read x and b in one dtype, like the networks pass them
    cfg = _Config(dim, spec.cuda_idx, alpha, gain, clamp, spec.has_2nd_grad)
    return _BiasActCuda.apply(x, b, cfg)
