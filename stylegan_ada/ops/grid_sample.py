"""Bilinear `grid_sample` (zeros padding, align_corners=False) whose gradient w.r.t. the image is differentiable
again on every device.

The augment pipe resamples images inside D's input, and R1 differentiates D's gradient w.r.t. the reals, so the
resampling needs a second derivative. PyTorch's CUDA `grid_sampler_2d_backward` has none (seen on an H100 with torch
2.11: "derivative for aten::grid_sampler_2d_backward is not implemented"), while its CPU one does. The image gradient
is linear in the upstream gradient (the transpose of the sampling), so its own derivative is the sampling again; that
is all R1 needs. A grid that itself requires a gradient takes PyTorch's own op.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_BILINEAR, _ZEROS = 0, 0  # aten's codes for interpolation_mode and padding_mode


def grid_sample(images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """`F.grid_sample(images, grid, mode='bilinear', padding_mode='zeros', align_corners=False)`, twice
    differentiable w.r.t. `images` on CPU and CUDA."""
    if grid.requires_grad:
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return _GridSample.apply(images, grid)


class _GridSample(torch.autograd.Function):
    @staticmethod
    def forward(ctx, images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(images, grid)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):  # type: ignore[override]
        images, grid = ctx.saved_tensors
        dx = _GridSampleImageGrad.apply(dy, images, grid) if ctx.needs_input_grad[0] else None
        return dx, None


class _GridSampleImageGrad(torch.autograd.Function):
    """d grid_sample / d images applied to dy: linear in dy, independent of the image values."""

    @staticmethod
    def forward(ctx, dy: torch.Tensor, images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(grid)
        dx, _ = torch.ops.aten.grid_sampler_2d_backward(dy, images, grid, _BILINEAR, _ZEROS, False, [True, False])
        return dx

    @staticmethod
    def backward(ctx, d_dx: torch.Tensor):  # type: ignore[override]
        (grid,) = ctx.saved_tensors
        d_dy = _GridSample.apply(d_dx, grid) if ctx.needs_input_grad[0] else None
        return d_dy, None, None
