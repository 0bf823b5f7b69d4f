"""CUDA path of `upfirdn2d`: an autograd function over our kernel, differentiable to any order w.r.t. x.

Semantics are those of `upfirdn2d.upfirdn2d_ref` (read the two side by side); `upfirdn2d.upfirdn2d` calls
`cuda_upfirdn2d` when `_dispatch.use_cuda` says so. The op is linear in x; its adjoint is another upfirdn2d with
up and down swapped, the filter flipped and the padding chosen so the output has the input's size, so the
backward pass just applies the same function again (which makes every order of gradient work).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from stylegan_ada.ops import cuda_backend
from stylegan_ada.ops.op_args import Padding, Scaling, filter_size, parse_padding, parse_scaling


class _Config(NamedTuple):
    up_x: int
    up_y: int
    down_x: int
    down_y: int
    pad_x0: int
    pad_x1: int
    pad_y0: int
    pad_y1: int
    flip_filter: bool
    gain: float


def _adjoint(cfg: _Config, in_hw: tuple[int, int], out_hw: tuple[int, int], f: torch.Tensor) -> _Config:
    """Config of the upfirdn2d that maps a gradient of the output back onto the input grid."""
    fw, fh = filter_size(f)
    (ih, iw), (oh, ow) = in_hw, out_hw
    return _Config(cfg.down_x, cfg.down_y, cfg.up_x, cfg.up_y,
                   fw - cfg.pad_x0 - 1, iw * cfg.up_x - ow * cfg.down_x + cfg.pad_x0 - cfg.up_x + 1,
                   fh - cfg.pad_y0 - 1, ih * cfg.up_y - oh * cfg.down_y + cfg.pad_y0 - cfg.up_y + 1,
                   not cfg.flip_filter, cfg.gain)


def _output_hw(cfg: _Config, in_hw: tuple[int, int], f: torch.Tensor) -> tuple[int, int]:
    fw, fh = filter_size(f)
    return ((in_hw[0] * cfg.up_y + cfg.pad_y0 + cfg.pad_y1 - fh) // cfg.down_y + 1,
            (in_hw[1] * cfg.up_x + cfg.pad_x0 + cfg.pad_x1 - fw) // cfg.down_x + 1)


def _run(x: torch.Tensor, f: torch.Tensor, cfg: _Config) -> torch.Tensor:
    plugin = cuda_backend.load()
    if plugin is None:
        raise RuntimeError(f"upfirdn2d: the CUDA extension is unavailable ({cuda_backend.last_error()})")
    # The gain is folded into the taps in the filter's own dtype before the cast, like the reference path (a float32
    # filter times sqrt(3) differs from the float64 product by ~6e-8, which a float64 comparison sees). Skipped for
    # gain 1 (exact either way): the training loop is launch-bound and calls this many times per minibatch.
    if cfg.gain != 1:
        f = f * (cfg.gain ** (f.ndim / 2))  # a separable filter is applied twice
    f = f.to(device=x.device, dtype=torch.float64 if x.dtype == torch.float64 else torch.float32)
    if f.ndim == 2:
        return plugin.upfirdn2d(x, f.contiguous(), cfg.up_x, cfg.up_y, cfg.down_x, cfg.down_y, cfg.pad_x0,
                                cfg.pad_x1, cfg.pad_y0, cfg.pad_y1, cfg.flip_filter, 1.0)
    x = plugin.upfirdn2d(x, f[None, :].contiguous(), cfg.up_x, 1, cfg.down_x, 1, cfg.pad_x0, cfg.pad_x1, 0, 0,
                         cfg.flip_filter, 1.0)
    return plugin.upfirdn2d(x, f[:, None].contiguous(), 1, cfg.up_y, 1, cfg.down_y, 0, 0, cfg.pad_y0, cfg.pad_y1,
                            cfg.flip_filter, 1.0)


class _Upfirdn2dCuda(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, f: torch.Tensor, cfg: _Config) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(f)
        ctx.cfg = cfg
        ctx.in_hw = (x.shape[2], x.shape[3])
        out_hw = _output_hw(cfg, ctx.in_hw, f)
        if min(out_hw) <= 0:  # the kernel refuses an empty output; the reference path returns one
            return x.new_zeros([x.shape[0], x.shape[1], max(out_hw[0], 0), max(out_hw[1], 0)])
        return _run(x, f, cfg)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):  # type: ignore[override]
        f, = ctx.saved_tensors
        dx = None
        if ctx.needs_input_grad[0] and dy.numel() == 0:
            dx = dy.new_zeros([dy.shape[0], dy.shape[1], *ctx.in_hw])
        elif ctx.needs_input_grad[0]:
            dx = _Upfirdn2dCuda.apply(dy, f, _adjoint(ctx.cfg, ctx.in_hw, (dy.shape[2], dy.shape[3]), f))
        return dx, None, None


def cuda_upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up: Scaling = 1, down: Scaling = 1,
                   padding: Padding = 0, flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """`upfirdn2d` on our CUDA kernel; same arguments and results as `upfirdn2d_ref` (x on a CUDA device)."""
    if x.device.type != "cuda":
        raise ValueError(f"upfirdn2d: the CUDA implementation needs a CUDA tensor, got one on {x.device}; "
                         "use impl='auto' or impl='ref'")
    if x.ndim != 4:
        raise ValueError("upfirdn2d: x must be a 4D tensor [N, C, H, W]")
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    if f.ndim not in (1, 2):
        raise ValueError(f"upfirdn2d: filter must be 1D or 2D, got shape {tuple(f.shape)}")
    if f.requires_grad:
        raise ValueError("upfirdn2d: the CUDA path has no gradient w.r.t. the filter; detach it or use impl='ref'")
    upx, upy = parse_scaling(up)
    downx, downy = parse_scaling(down)
    cfg = _Config(upx, upy, downx, downy, *parse_padding(padding), bool(flip_filter), float(gain))
    return _Upfirdn2dCuda.apply(x, f, cfg)
