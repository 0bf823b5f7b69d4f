"""MusiCNN and the VGG baseline of Pons & Serra (2019) as PyTorch modules (our own implementation).

Layout: input ``[N, T, 96]`` (time frames × mel bands, the log-compressed mel patch), internally NCHW with
H = time and W = mel. Batch norm comes after the ReLU everywhere, with TF's epsilon 1e-3 (and TF's momentum 0.99,
i.e. torch momentum 0.01, when fine-tuned). Padding reproduces the TF graph: the timbral and mid-end convolutions
see time zero-padded by 3 on both sides, TF's 'same' for an even kernel k pads k/2 - 1 before and k/2 after, and
TF's 'valid' pooling drops the incomplete window (as PyTorch's default does).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MusiCNN", "VGGish", "N_FRAMES", "N_MELS", "N_TAGS"]

N_FRAMES = 187
N_MELS = 96
N_TAGS = 50
BN_EPS = 1e-3
BN_MOMENTUM = 0.01


def _bn2d(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


def _bn1d(c: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


def _check_input(x: torch.Tensor, n_mels: int) -> torch.Tensor:
    if x.ndim != 3 or x.shape[2] != n_mels:
        raise ValueError(f"expected the network input [N, frames, {n_mels}], got shape {tuple(x.shape)}")
    return x.unsqueeze(1)


class _FrontEndBranch(nn.Module):
    """Conv → ReLU → BN → max over the whole mel axis: one of the five front-end filter shapes."""

    def __init__(self, kernel: tuple[int, int], filters: int, time_pad: tuple[int, int]):
        super().__init__()
        self.time_pad = time_pad
        self.conv = nn.Conv2d(1, filters, kernel)
        self.bn = _bn2d(filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, 0, *self.time_pad))
        return self.bn(F.relu(self.conv(x))).amax(dim=3)          # [N, filters, T]


class _MidEndConv(nn.Module):
    """7-tap convolution in time spanning the whole feature axis (a 1-D convolution), ReLU, BN."""

    def __init__(self, in_features: int, filters: int):
        super().__init__()
        self.conv = nn.Conv1d(in_features, filters, 7, padding=3)
        self.bn = _bn1d(filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)))


class MusiCNN(nn.Module):
    """Musically motivated front end (timbral 7×38 and 7×67, temporal 128/64/32×1), dense mid end with residual
    connections, temporal max+mean pooling, 200-unit penultimate layer and a 50-tag output."""

    def __init__(self, n_tags: int = N_TAGS, n_mels: int = N_MELS, timbral_filters: int = 204,
                 temporal_filters: int = 51, midend_filters: int = 64, backend_units: int = 200):
        super().__init__()
        self.n_mels = n_mels
        self.bn_input = _bn2d(1)
        self.timbral = nn.ModuleList(
            _FrontEndBranch((7, int(frac * n_mels)), timbral_filters, (3, 3)) for frac in (0.4, 0.7))
        self.temporal = nn.ModuleList(
            _FrontEndBranch((k, 1), temporal_filters, (k // 2 - 1, k // 2)) for k in (128, 64, 32))
        front = 2 * timbral_filters + 3 * temporal_filters
        self.midend = nn.ModuleList([_MidEndConv(front, midend_filters), _MidEndConv(midend_filters, midend_filters),
                                     _MidEndConv(midend_filters, midend_filters)])
        pooled = front + 3 * midend_filters
        self.bn_pool = _bn1d(2 * pooled)
        self.dropout = nn.Dropout(0.5)
        self.dense = nn.Linear(2 * pooled, backend_units)
        self.bn_dense = _bn1d(backend_units)
        self.head = nn.Linear(backend_units, n_tags)

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every intermediate feature (frame features as [N, T, C]) up to the penultimate layer."""
        x = self.bn_input(_check_input(x, self.n_mels))
        timbral = [b(x) for b in self.timbral]
        temporal = [b(x) for b in self.temporal]
        front = torch.cat(timbral + temporal, dim=1)                  # [N, 561, T]
        cnn1 = self.midend[0](front)
        cnn2 = self.midend[1](cnn1) + cnn1
        cnn3 = self.midend[2](cnn2) + cnn2
        stacked = torch.cat([front, cnn1, cnn2, cnn3], dim=1)         # [N, 753, T]
        max_pool, mean_pool = stacked.amax(dim=2), stacked.mean(dim=2)
        # TF flattens [N, 753, 2]: max and mean of each feature are neighbours.
        pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)
        hidden = F.relu(self.dense(self.dropout(self.bn_pool(pooled))))
        frames = {"timbral": torch.cat(timbral, 1), "temporal": torch.cat(temporal, 1),
                  "cnn1": cnn1, "cnn2": cnn2, "cnn3": cnn3}
        out = {k: v.transpose(1, 2) for k, v in frames.items()}
        out.update(mean_pool=mean_pool, max_pool=max_pool, penultimate=self.bn_dense(hidden))
        return out

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.embed(x)
        logits = self.head(self.dropout(out["penultimate"]))
        out.update(logits=logits, taggram=torch.sigmoid(logits), embedding=out["penultimate"])
        return out


class VGGish(nn.Module):
    """The paper's VGG-like baseline: five 3×3 conv (128 filters) → ReLU → BN → max-pool blocks, dense to 50 tags."""

    POOLS = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))

    def __init__(self, n_tags: int = N_TAGS, n_mels: int = N_MELS, n_frames: int = N_FRAMES, filters: int = 128):
        super().__init__()
        self.n_mels = n_mels
        self.bn_input = _bn2d(1)
        self.convs = nn.ModuleList(nn.Conv2d(1 if i == 0 else filters, filters, 3, padding=1) for i in range(5))
        self.bns = nn.ModuleList(_bn2d(filters) for _ in range(5))
        self.dropout_conv = nn.Dropout(0.25)
        self.dropout = nn.Dropout(0.5)
        h, w = n_frames, n_mels
        for (kh, kw), (sh, sw) in self.POOLS:
            h, w = (h - kh) // sh + 1, (w - kw) // sw + 1
        self.head = nn.Linear(h * w * filters, n_tags)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.bn_input(_check_input(x, self.n_mels))
        out: dict[str, torch.Tensor] = {}
        for i, (conv, bn, (kernel, stride)) in enumerate(zip(self.convs, self.bns, self.POOLS)):
            if i:
                x = self.dropout_conv(x)
            x = F.max_pool2d(bn(F.relu(conv(x))), kernel, stride)
            out[f"pool{i + 1}"] = x.permute(0, 2, 3, 1)                # TF layout [N, H, W, C]
        flat = out["pool5"].flatten(1)                                 # TF flattens NHWC
        logits = self.head(self.dropout(flat))
        out.update(embedding=flat, logits=logits, taggram=torch.sigmoid(logits))
        return out
