"""The ADA pipe with static shapes and no host synchronisation, for CUDA-graph capture (``--cuda-graphs``).

:class:`~stylegan_ada.augment_pipe.AugmentPipe` decides on the host how far to reflect-pad before resampling (the
furthest reach of the batch's transforms, one ``.tolist()``) and skips the resampling when no image is transformed:
a data-dependent shape and a data-dependent branch, neither of which a captured graph can hold. This variant draws
the very same random numbers in the same order and differs only in the resampling:

* it always pads by the most the plain pipe ever pads (``width - 1`` and ``height - 1`` per side), so every sample the
  plain pipe takes lands on the same reflected content: the outputs agree to float rounding (the grid coordinates are
  normalised by a different padded size). Near the edge of the plain pipe's padding its upsampling filter also sees
  zeros past the padding; there this variant sees real reflected content, a difference that only a strong zoom-out
  reaches and that stays at the border.
* "no image transformed" is a mask (``torch.where`` on a device flag): the output is then exactly the input, as with
  the plain pipe.

The cost is the padded resampling of every batch: (3 W - 2) x (3 H - 2) pixels at 2x, about 9 times the image, where
the plain pipe pads only as far as the batch's transforms reach (nothing at p = 0).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from stylegan_ada.ada import matrices as M
from stylegan_ada.augment_pipe import AugmentPipe
from stylegan_ada.ops import upfirdn2d
from stylegan_ada.ops.grid_sample import grid_sample

__all__ = ["GraphSafeAugmentPipe", "graph_safe_copy"]


class GraphSafeAugmentPipe(AugmentPipe):
    """:class:`AugmentPipe` whose ``forward`` has static shapes and no device-to-host transfer."""

    def _resample(self, images: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
        n, ch, height, width = images.shape
        device = images.device
        tap_margin = self.Hz_geom.shape[0] // 4
        identity = (g_inv == torch.eye(3, device=device)).all()
        mx, my = width - 1, height - 1  # the plain pipe's upper bound on its padding, always
        padded = F.pad(images, [mx, mx, my, my], mode="reflect")
        # The plain pipe adds a translation by (mx0 - mx1) / 2, which is 0 for equal padding on both sides.
        up = upfirdn2d.upsample2d(padded, self.Hz_geom, up=2)
        to_up = M.constant2d([[2, 0, -0.5], [0, 2, -0.5], [0, 0, 1]], device)
        from_up = M.constant2d([[0.5, 0, 0.25], [0, 0.5, 0.25], [0, 0, 1]], device)
        out_h, out_w = (height + 2 * tap_margin) * 2, (width + 2 * tap_margin) * 2
        in_h, in_w = up.shape[2], up.shape[3]
        to_norm = M.constant2d([[2 / in_w, 0, 0], [0, 2 / in_h, 0], [0, 0, 1]], device)
        from_norm = M.constant2d([[out_w / 2, 0, 0], [0, out_h / 2, 0], [0, 0, 1]], device)
        g = to_norm @ (to_up @ g_inv @ from_up) @ from_norm
        grid = F.affine_grid(g[:, :2, :].to(images.dtype), [n, ch, out_h, out_w], align_corners=False)
        out = upfirdn2d.downsample2d(grid_sample(up, grid), self.Hz_geom, down=2, padding=-2 * tap_margin,
                                     flip_filter=True)
        return torch.where(identity, images, out)


def graph_safe_copy(pipe: AugmentPipe) -> GraphSafeAugmentPipe:
    """A :class:`GraphSafeAugmentPipe` with ``pipe``'s settings that shares its buffers (``p`` above all, which
    ADA keeps adjusting in place), so both always augment with the same strength."""
    kwargs = dict(pipe.init_kwargs)
    safe = GraphSafeAugmentPipe(**kwargs).train(pipe.training).requires_grad_(False)
    for name, buf in pipe.named_buffers(recurse=False):
        setattr(safe, name, buf)  # the same tensor object, not a copy
    return safe
