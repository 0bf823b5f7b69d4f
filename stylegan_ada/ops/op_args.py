"""Argument parsing shared by the reference and CUDA paths of `bias_act` and `upfirdn2d`.

Both paths of an op call the same functions here, so a bad argument gives the same error whichever path runs and
the CUDA glue never has to import the reference module.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

Padding = int | Sequence[int]
Scaling = int | Sequence[int]


@dataclass(frozen=True)
class ActivationSpec:
    """One activation: its function, default alpha and gain, and what the CUDA kernel needs to know."""

    func: Callable[..., torch.Tensor]
    def_alpha: float
    def_gain: float
    cuda_idx: int  # the kAct* code in csrc/ops_kernels.h
    has_2nd_grad: bool


def _swish(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return x * torch.sigmoid(x)


_SQRT2 = float(np.sqrt(2))

ACTIVATIONS: dict[str, ActivationSpec] = {
    "linear": ActivationSpec(lambda x, alpha: x, 0.0, 1.0, 1, False),
    "relu": ActivationSpec(lambda x, alpha: F.relu(x), 0.0, _SQRT2, 2, False),
    "lrelu": ActivationSpec(lambda x, alpha: F.leaky_relu(x, alpha), 0.2, _SQRT2, 3, False),
    "tanh": ActivationSpec(lambda x, alpha: torch.tanh(x), 0.0, 1.0, 4, True),
    "sigmoid": ActivationSpec(lambda x, alpha: torch.sigmoid(x), 0.0, 1.0, 5, True),
    "elu": ActivationSpec(lambda x, alpha: F.elu(x), 0.0, 1.0, 6, True),
    "selu": ActivationSpec(lambda x, alpha: F.selu(x), 0.0, 1.0, 7, True),
    "softplus": ActivationSpec(lambda x, alpha: F.softplus(x), 0.0, 1.0, 8, True),
    "swish": ActivationSpec(_swish, 0.0, _SQRT2, 9, True),
}


def resolve_bias_act(act: str, alpha: float | None, gain: float | None,
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
    """ValueError unless `b` is None or a 1D bias with one entry per index of `x` along `dim`."""
    if b is not None and (b.ndim != 1 or not 0 <= dim < x.ndim or b.shape[0] != x.shape[dim]):
        raise ValueError(f"bias_act: bias of shape {tuple(b.shape)} does not match dim {dim} of {tuple(x.shape)}")


def parse_scaling(scaling: Scaling) -> tuple[int, int]:
    """(sx, sy) from an int or a pair; each >= 1."""
    sx, sy = (scaling, scaling) if isinstance(scaling, int) else tuple(scaling)
    if not (isinstance(sx, int) and isinstance(sy, int) and sx >= 1 and sy >= 1):
        raise ValueError(f"scaling factors must be integers >= 1, got {scaling!r}")
    return sx, sy


def parse_padding(padding: Padding) -> tuple[int, int, int, int]:
    """(x0, x1, y0, y1) from an int, `[x, y]` or `[x0, x1, y0, y1]`."""
    if isinstance(padding, int):
        padding = [padding, padding]
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        padding = [padding[0], padding[0], padding[1], padding[1]]
    if len(padding) != 4:
        raise ValueError(f"padding must be an int, [x, y] or [x0, x1, y0, y1], got {padding!r}")
    return padding[0], padding[1], padding[2], padding[3]


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(width, height) of a 1D (separable) or 2D filter; (1, 1) for None."""
    if f is None:
        return 1, 1
    if f.ndim not in (1, 2):
        raise ValueError(f"filter must be 1D or 2D, got shape {tuple(f.shape)}")
    return int(f.shape[-1]), int(f.shape[0])
