"""Upsample, pad, FIR-filter and downsample 2D images (`upfirdn2d`), and the filtering helpers built on it.

Semantics, per channel: insert `up-1` zeros after each pixel, pad (negative = crop), convolve with the filter `f`
(true convolution unless `flip_filter`), keep every `down`-th pixel. Padding is given w.r.t. the upsampled image as
an int, `[x, y]` or `[x0, x1, y0, y1]`.

This module holds the entry point and the pure-PyTorch reference path; the CUDA path with the same arguments and
results is `upfirdn2d_cuda.cuda_upfirdn2d` (imported only when a call takes it); both parse their arguments with
`op_args`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from stylegan_ada.ops._dispatch import use_cuda
from stylegan_ada.ops.op_args import Padding, Scaling, filter_size, parse_padding, parse_scaling


def setup_filter(f, device: torch.device | str | None = None, normalize: bool = True, flip_filter: bool = False,
                 gain: float = 1, separable: bool | None = None) -> torch.Tensor:
    """A float32 FIR filter for `upfirdn2d` from a list/array/tensor (None = identity).

    1D taps become their 2D outer product unless `separable` (default: separable only for >= 8 taps).
    `normalize` makes the DC gain 1; `gain` scales the overall signal magnitude. `device=None`: the default device.
    """
    f = torch.as_tensor(1 if f is None else f, dtype=torch.float32)
    if f.ndim == 0:
        f = f.reshape(1)
    if f.ndim not in (1, 2) or f.numel() == 0:
        raise ValueError(f"filter must be a non-empty scalar, 1D or 2D array, got shape {tuple(f.shape)}")
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if f.ndim != (1 if separable else 2):
        raise ValueError("a 2D filter cannot be made separable")
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f if device is None else f.to(device=device)


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up: Scaling = 1, down: Scaling = 1, padding: Padding = 0,
              flip_filter: bool = False, gain: float = 1, impl: str = "auto") -> torch.Tensor:
    """Pad, upsample, filter and downsample a batch `[N, C, H, W]` of images (see module docstring)."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError("upfirdn2d: x must be a 4D tensor [N, C, H, W]")
    if use_cuda("upfirdn2d", x, impl):
        from stylegan_ada.ops.upfirdn2d_cuda import cuda_upfirdn2d
        return cuda_upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    return upfirdn2d_ref(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)


def _depthwise(x: torch.Tensor, f: torch.Tensor, stride: tuple[int, int] = (1, 1), padding: tuple[int, int] = (0, 0),
               transpose: bool = False) -> torch.Tensor:
    """Apply the same 2D kernel `f` [kh, kw] to every channel (correlation, or its adjoint if `transpose`)."""
    channels = x.shape[1]
    weight = f[None, None].expand(channels, 1, *f.shape)
    if transpose:
        return F.conv_transpose2d(x, weight, stride=stride, groups=channels)
    return F.conv2d(x, weight, stride=stride, padding=padding, groups=channels)


def upfirdn2d_ref(x: torch.Tensor, f: torch.Tensor | None, up: Scaling = 1, down: Scaling = 1,
                  padding: Padding = 0, flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """Reference implementation with standard PyTorch ops (any order of gradients w.r.t. x).

    Upsampling uses a strided transposed convolution (no explicit zero insertion), downsampling a strided
    convolution, and a 1D filter is applied as two 1D passes.
    """
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    upx, upy = parse_scaling(up)
    downx, downy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)

    f = (f * (gain ** (f.ndim / 2))).to(device=x.device, dtype=x.dtype)
    if f.ndim == 1:  # separable: horizontal pass, then vertical pass, each with half the gain exponent
        x = _upfirdn_2d_kernel(x, f[None, :], upx, 1, downx, 1, px0, px1, 0, 0, flip_filter)
        return _upfirdn_2d_kernel(x, f[:, None], 1, upy, 1, downy, 0, 0, py0, py1, flip_filter)
    return _upfirdn_2d_kernel(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip_filter)


def _upfirdn_2d_kernel(x: torch.Tensor, f: torch.Tensor, upx: int, upy: int, downx: int, downy: int,
                       px0: int, px1: int, py0: int, py1: int, flip_filter: bool) -> torch.Tensor:
    fh, fw = f.shape
    if upx > 1 or upy > 1:
        # conv_transpose2d(x, f, stride=up) is the full convolution of the zero-inserted image with f; output
        # pixel i of the padded valid convolution is its pixel i + f - 1 - pad0, hence the shifted pad/crop below.
        kernel = f.flip([0, 1]) if flip_filter else f
        x = _depthwise(x, kernel, stride=(upy, upx), transpose=True)
        x = _pad_or_crop(x, [px0 - fw + 1, px1 + upx - fw, py0 - fh + 1, py1 + upy - fh])
        if downx > 1 or downy > 1:
            x = x[:, :, ::downy, ::downx]
        return x
    kernel = f if flip_filter else f.flip([0, 1])  # conv2d correlates; a true convolution flips the kernel
    identity = fh == 1 and fw == 1 and float(kernel) == 1.0
    conv_padding = (0, 0)
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0 and not identity:
        conv_padding = (py0, px0)  # let the convolution pad: no padded copy of x
    else:
        x = _pad_or_crop(x, [px0, px1, py0, py1])
    if identity:
        return x[:, :, ::downy, ::downx] if (downx > 1 or downy > 1) else x
    return _depthwise(x, kernel, stride=(downy, downx), padding=conv_padding)


def _pad_or_crop(x: torch.Tensor, pad: list[int]) -> torch.Tensor:
    """``F.pad(x, [x0, x1, y0, y1])`` where negative entries crop; pads first and crops after, so a crop larger than
    the input but not than the padded input works (F.pad alone fails there, e.g. width 1 with padding [-2, 1])."""
    grow = [max(p, 0) for p in pad]
    if any(grow):
        x = F.pad(x, grow)
    x0, x1, y0, y1 = (max(-p, 0) for p in pad)
    if x0 or x1 or y0 or y1:
        x = x[:, :, y0:x.shape[2] - y1, x0:x.shape[3] - x1]
    return x


def _centring(taps: int, up: int, down: int) -> tuple[int, int]:
    """Extra (before, after) padding along one axis that centres a `taps`-long filter on the output pixels."""
    if up > 1 and down > 1:  # upsample, filter, downsample (conv2d_resample): both amounts
        (u0, u1), (d0, d1) = _centring(taps, up, 1), _centring(taps, 1, down)
        return u0 + d0, u1 + d1
    if down > 1:
        return (taps - down + 1) // 2, (taps - down) // 2
    return (taps + up - 1) // 2, (taps - up) // 2  # up == 1: plain filtering, output size = input size


def resample_padding(f: torch.Tensor | None, padding: Padding = 0, up: Scaling = 1,
                     down: Scaling = 1) -> list[int]:
    """`[x0, x1, y0, y1]`: `padding` plus the padding that centres `f` on the pixels of an up/downsampling by
    `up`/`down` (what `filter2d`, `upsample2d`, `downsample2d` and `conv2d_resample` add)."""
    (upx, upy), (downx, downy) = parse_scaling(up), parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    (ax0, ax1), (ay0, ay1) = _centring(fw, upx, downx), _centring(fh, upy, downy)
    return [px0 + ax0, px1 + ax1, py0 + ay0, py1 + ay1]


def filter2d(x: torch.Tensor, f: torch.Tensor | None, padding: Padding = 0, flip_filter: bool = False,
             gain: float = 1, impl: str = "auto") -> torch.Tensor:
    """Filter with `f`, padded so that the output has the input's size (plus `padding`)."""
    return upfirdn2d(x, f, padding=resample_padding(f, padding), flip_filter=flip_filter, gain=gain, impl=impl)


def upsample2d(x: torch.Tensor, f: torch.Tensor | None, up: Scaling = 2, padding: Padding = 0,
               flip_filter: bool = False, gain: float = 1, impl: str = "auto") -> torch.Tensor:
    """Upsample by `up` with filter `f`; the output is `up` times the input size (plus `padding`)."""
    upx, upy = parse_scaling(up)
    return upfirdn2d(x, f, up=up, padding=resample_padding(f, padding, up=up), flip_filter=flip_filter,
                     gain=gain * upx * upy, impl=impl)


def downsample2d(x: torch.Tensor, f: torch.Tensor | None, down: Scaling = 2, padding: Padding = 0,
                 flip_filter: bool = False, gain: float = 1, impl: str = "auto") -> torch.Tensor:
    """Downsample by `down` with filter `f`; the output is the input size divided by `down` (plus `padding`)."""
    return upfirdn2d(x, f, down=down, padding=resample_padding(f, padding, down=down), flip_filter=flip_filter,
                     gain=gain, impl=impl)


__all__ = ["setup_filter", "upfirdn2d", "upfirdn2d_ref", "filter2d", "upsample2d", "downsample2d",
           "parse_padding", "parse_scaling", "filter_size", "resample_padding"]
