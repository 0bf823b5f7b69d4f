"""Batched homogeneous transform matrices for the augmentation pipeline.

2D matrices ([N, 3, 3]) act on pixel coordinates (x, y, 1) measured from the image centre; 3D matrices
([N, 4, 4]) act on colours (r, g, b, 1). Every builder takes per-sample tensors of shape [N].
"""
from __future__ import annotations

import math

import torch

LUMA_AXIS = (1 / math.sqrt(3),) * 3  # the grey axis of RGB space, around which hue rotates


def identity(size: int, batch: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``batch`` copies of the ``size`` x ``size`` identity matrix."""
    return torch.eye(size, device=device).repeat(batch, 1, 1)


def translate2d(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    m = identity(3, tx.shape[0], tx.device)
    m[:, 0, 2] = tx
    m[:, 1, 2] = ty
    return m


def scale2d(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    m = identity(3, sx.shape[0], sx.device)
    m[:, 0, 0] = sx
    m[:, 1, 1] = sy
    return m


def rotate2d(theta: torch.Tensor) -> torch.Tensor:
    """Counter-clockwise rotation by ``theta`` radians (in a y-down image: clockwise on screen)."""
    c, s = torch.cos(theta), torch.sin(theta)
    m = identity(3, theta.shape[0], theta.device)
    m[:, 0, 0] = c
    m[:, 0, 1] = -s
    m[:, 1, 0] = s
    m[:, 1, 1] = c
    return m


def constant2d(rows: list[list[float]], device: torch.device | str | None = None) -> torch.Tensor:
    """A single (unbatched) 3x3 matrix; broadcasts against [N, 3, 3] in matmul."""
    return torch.tensor(rows, dtype=torch.float32, device=device)


def translate3d(t: torch.Tensor) -> torch.Tensor:
    """Add ``t`` to every colour channel."""
    m = identity(4, t.shape[0], t.device)
    m[:, :3, 3] = t[:, None]
    return m


def scale3d(s: torch.Tensor) -> torch.Tensor:
    """Multiply every colour channel by ``s``."""
    m = identity(4, s.shape[0], s.device)
    m[:, [0, 1, 2], [0, 1, 2]] = s[:, None]
    return m


def luma_projector(device: torch.device | str | None = None) -> torch.Tensor:
    """v v^T for the unit luma axis v, embedded in a 4x4 matrix (zero translation)."""
    v = torch.tensor([*LUMA_AXIS, 0.0], device=device)
    return torch.outer(v, v)


def reflect_luma(flip: torch.Tensor) -> torch.Tensor:
    """Householder reflection I - 2 v v^T where ``flip`` is 1, identity where it is 0 (inverts luma, keeps hue)."""
    eye = torch.eye(4, device=flip.device)
    return eye - 2 * luma_projector(flip.device) * flip[:, None, None]


def rotate_around_luma(theta: torch.Tensor) -> torch.Tensor:
    """Rotation by ``theta`` around the luma axis (Rodrigues' formula): a hue rotation."""
    vx, vy, vz = LUMA_AXIS
    cross = torch.tensor([[0.0, -vz, vy], [vz, 0.0, -vx], [-vy, vx, 0.0]], device=theta.device)
    vvt = luma_projector(theta.device)[:3, :3]
    c = torch.cos(theta)[:, None, None]
    s = torch.sin(theta)[:, None, None]
    m = identity(4, theta.shape[0], theta.device)
    m[:, :3, :3] = c * torch.eye(3, device=theta.device) + s * cross + (1 - c) * vvt
    return m


def scale_saturation(s: torch.Tensor) -> torch.Tensor:
    """Keep the luma component and scale the chroma (orthogonal) component by ``s``."""
    vvt = luma_projector(s.device)
    eye = torch.eye(4, device=s.device)
    return vvt + (eye - vvt) * s[:, None, None]
