"""2D convolution fused with FIR up/downsampling (`conv2d_resample`).

Padding is applied once, with respect to the upsampled image. Each combination of kernel size and resampling
direction takes the cheapest equivalent order of operations (e.g. strided convolution for downsampling, strided
transposed convolution for upsampling), all built from standard PyTorch ops and `upfirdn2d`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from stylegan_ada.ops import upfirdn2d
from stylegan_ada.ops.op_args import Padding, parse_padding
from stylegan_ada.ops.upfirdn2d import resample_padding


def _conv(x: torch.Tensor, w: torch.Tensor, stride: int = 1, padding: tuple[int, int] = (0, 0), groups: int = 1,
          transpose: bool = False, flip_weight: bool = True) -> torch.Tensor:
    """conv2d (correlation) or conv_transpose2d; `flip_weight=False` turns the correlation into a convolution."""
    if not flip_weight:
        w = w.flip([2, 3])
    if transpose:
        return F.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1, down: int = 1,
                    padding: Padding = 0, groups: int = 1, flip_weight: bool = True,
                    flip_filter: bool = False) -> torch.Tensor:
    """Convolve `x` [N, C, H, W] with `w` [O, C/groups, kh, kw], upsampling/downsampling with filter `f`.

    `f` must come from `upfirdn2d.setup_filter()` (None = identity). `flip_weight=True` is correlation (like
    `torch.nn.functional.conv2d`), False a true convolution.
    """
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d_resample: x and w must be 4D, got {tuple(x.shape)} and {tuple(w.shape)}")
    if w.dtype != x.dtype:
        raise ValueError(f"conv2d_resample: weight dtype {w.dtype} differs from input dtype {x.dtype}")
    if not (isinstance(up, int) and isinstance(down, int) and isinstance(groups, int)
            and up >= 1 and down >= 1 and groups >= 1):
        raise ValueError("conv2d_resample: up, down and groups must be integers >= 1")
    out_channels, in_per_group, kh, kw = (int(s) for s in w.shape)
    # Extra padding so that the filter's footprint is centred around the resampled pixels (no filter: none).
    pad = resample_padding(f, padding, up, down) if up > 1 or down > 1 else list(parse_padding(padding))
    px0, px1, py0, py1 = pad

    if kw == 1 and kh == 1 and down > 1 and up == 1:  # 1x1 + down: downsample first, then convolve fewer pixels
        x = upfirdn2d.upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)

    if kw == 1 and kh == 1 and up > 1 and down == 1:  # 1x1 + up: convolve first, then upsample
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d.upfirdn2d(x, f, up=up, padding=pad, gain=up ** 2, flip_filter=flip_filter)

    if down > 1 and up == 1:  # down: blur, then strided convolution
        x = upfirdn2d.upfirdn2d(x, f, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    if up > 1:  # up (+ optional down): strided transposed convolution, then blur
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
            w = w.reshape(groups * in_per_group, out_channels // groups, kh, kw)
        px0, px1 = px0 - (kw - 1), px1 - (kw - up)
        py0, py1 = py0 - (kh - 1), py1 - (kh - up)
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = _conv(x, w, stride=up, padding=(pyt, pxt), groups=groups, transpose=True, flip_weight=not flip_weight)
        x = upfirdn2d.upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up ** 2,
                                flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d.upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x

    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:  # plain convolution with symmetric padding
        return _conv(x, w, padding=(py0, px0), groups=groups, flip_weight=flip_weight)

    # General case: asymmetric or negative padding without resampling.
    x = upfirdn2d.upfirdn2d(x, None, padding=pad)
    return _conv(x, w, groups=groups, flip_weight=flip_weight)
