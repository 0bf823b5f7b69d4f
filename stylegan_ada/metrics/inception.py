"""Inception-v3 feature networks: torchvision's ImageNet model and the TF "FID Inception" (2015-12-05 graph).

The FID Inception is the network every published FID uses (the reference computes it with a TorchScript
translation of the TF graph). Its weights are available as a plain state dict (``pt_inception-2015-12-05-
6726825d.pth``, from the pytorch-fid project) for torchvision's Inception3 layout with 1008 classes and three
differences in the pooling branch of the mixed blocks: TF's average pooling ignores the zero padding, and the
last block max-pools. Both networks take RGB scaled to [-1, 1] at 299x299 and give 2048-d pool features.
"""
from __future__ import annotations

import os
import pickle
from typing import Callable

import torch
import torch.nn.functional as F
from torchvision.models import inception as tv_inception

def _avg_pool_excluding_padding(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _max_pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


class _TFPoolBranch:
    """Mixin for torchvision Inception blocks: recompute the pooling branch (always the last output) TF's way."""

    pool = staticmethod(_avg_pool_excluding_padding)

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = super()._forward(x)
        outputs[-1] = self.branch_pool(self.pool(x))
        return outputs


class FIDInceptionA(_TFPoolBranch, tv_inception.InceptionA):
    pass


class FIDInceptionC(_TFPoolBranch, tv_inception.InceptionC):
    pass


class FIDInceptionE(_TFPoolBranch, tv_inception.InceptionE):
    pass


class FIDInceptionEMaxPool(_TFPoolBranch, tv_inception.InceptionE):
    pool = staticmethod(_max_pool)


def _load(build: Callable[[], tv_inception.Inception3], weights_path: str | os.PathLike,
          what: str) -> torch.nn.Module:
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)  # fails fast on a bad file
        net = build()
        net.load_state_dict(state)
    except (RuntimeError, AttributeError, EOFError, OSError, pickle.UnpicklingError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"{weights_path} is not {what} (or is truncated): {reason}") from exc
    net.fc = torch.nn.Identity()  # forward() now returns the 2048-d pooled features
    return net.eval().requires_grad_(False)


def fid_inception_v3() -> tv_inception.Inception3:
    """The FID Inception architecture (untrained)."""
    net = tv_inception.Inception3(num_classes=1008, aux_logits=False, transform_input=False, init_weights=False)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    for name, channels_7x7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        setattr(net, name, FIDInceptionC(768, channels_7x7=channels_7x7))
    net.Mixed_7b = FIDInceptionE(1280)
    net.Mixed_7c = FIDInceptionEMaxPool(2048)
    return net


def torchvision_inception_v3() -> tv_inception.Inception3:
    """torchvision's Inception-v3 architecture (untrained), as its IMAGENET1K_V1 weights expect."""
    return tv_inception.Inception3(num_classes=1000, aux_logits=True, transform_input=False, init_weights=False)


def build_fid_inception(weights_path: str | os.PathLike) -> torch.nn.Module:
    """The TF FID Inception-v3 from a ``pt_inception-2015-12-05`` state dict; forward gives [N, 2048]."""
    return _load(fid_inception_v3, weights_path, "the FID Inception state dict (pt_inception-2015-12-05)")


def build_torchvision_inception(weights_path: str | os.PathLike) -> torch.nn.Module:
    """torchvision's Inception-v3 from its IMAGENET1K_V1 state dict; forward gives [N, 2048]."""
    return _load(torchvision_inception_v3, weights_path, "torchvision's Inception-v3 state dict")
