"""A small CNN trained from scratch: fast on CPU, for the demo, the tests and quick baselines."""
from __future__ import annotations

import torch
from torch import nn


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True), nn.MaxPool2d(2))


class SmallCNN(nn.Module):
    """Four conv-BN-ReLU-pool blocks (16→128 channels), global average pooling, dropout, linear head."""

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 16, dropout: float = 0.3):
        super().__init__()
        chans = [in_channels, width, width * 2, width * 4, width * 8]
        self.features = nn.Sequential(*[_block(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(chans[-1], num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))
