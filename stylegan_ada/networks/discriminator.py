"""Discriminator: resnet blocks from the image resolution down to 8x8, then the 4x4 epilogue with minibatch-stddev
and optional projection conditioning on the class label."""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch

from stylegan_ada.networks.init_kwargs import records_init_kwargs
from stylegan_ada.networks.layers import (DEFAULT_FILTER, RESIDUAL_GAIN, Conv2dLayer, FullyConnectedLayer,
                                          check_shape, keep)
from stylegan_ada.networks.mapping import MappingNetwork
from stylegan_ada.networks.runtime import block_dtype, block_memory_format
from stylegan_ada.networks.synthesis import channels_per_resolution, fp16_min_resolution
from stylegan_ada.ops import upfirdn2d

ARCHITECTURES = ("orig", "skip", "resnet")


def _check_architecture(architecture: str) -> None:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")


@records_init_kwargs
class DiscriminatorBlock(torch.nn.Module):
    """FromRGB (first block) + conv0 + conv1 with x2 downsampling, plus a 1x1 downsampling skip (resnet).

    Layers whose global index (counted from the highest resolution) is below `freeze_layers` keep their weights
    as buffers, so they are not trained (Freeze-D) while their state-dict names stay the same.
    """

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int, img_channels: int,
                 first_layer_idx: int, architecture: str = "resnet", activation: str = "lrelu",
                 resample_filter: Sequence[float] = DEFAULT_FILTER, conv_clamp: float | None = None,
                 use_fp16: bool = False, fp16_channels_last: bool = False, freeze_layers: int = 0):
        if in_channels not in (0, tmp_channels):
            raise ValueError("DiscriminatorBlock: in_channels must be 0 (first block) or tmp_channels")
        _check_architecture(architecture)
        super().__init__()
        keep(self, in_channels=in_channels, resolution=resolution, img_channels=img_channels,
             first_layer_idx=first_layer_idx, architecture=architecture, use_fp16=use_fp16,
             channels_last=use_fp16 and fp16_channels_last)
        self.register_buffer("resample_filter", upfirdn2d.setup_filter(resample_filter))
        self.num_layers = 0

        def next_trainable() -> Iterator[bool]:
            while True:
                trainable = self.first_layer_idx + self.num_layers >= freeze_layers
                self.num_layers += 1
                yield trainable

        trainable = next_trainable()
        common = dict(conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, activation=activation,
                                       trainable=next(trainable), **common)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, activation=activation,
                                 trainable=next(trainable), **common)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, activation=activation, down=2,
                                 trainable=next(trainable), resample_filter=resample_filter, **common)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    trainable=next(trainable), resample_filter=resample_filter,
                                    channels_last=self.channels_last)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None,
                force_fp32: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        device = (x if x is not None else img).device
        dtype = block_dtype(self.use_fp16, force_fp32, device)
        memory_format = block_memory_format(self.channels_last, force_fp32)

        side = self.resolution
        if x is not None:
            check_shape(f"DiscriminatorBlock b{side} input", x, [None, self.in_channels, side, side])
            x = x.to(dtype=dtype, memory_format=memory_format)
        if hasattr(self, "fromrgb"):  # first block, or every block of a 'skip' D
            check_shape(f"Discriminator b{side} image", img, [None, self.img_channels, side, side])
            img = img.to(dtype=dtype, memory_format=memory_format)
            features = self.fromrgb(img)
            x = features if x is None else x + features
            # 'skip' feeds the downsampled image to the next block as well; otherwise the image is used up here.
            img = upfirdn2d.downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        main = self.conv1(self.conv0(x), gain=RESIDUAL_GAIN if self.architecture == "resnet" else 1)
        if self.architecture == "resnet":
            return self.skip(x, gain=RESIDUAL_GAIN) + main, img
        return main, img


@records_init_kwargs
class MinibatchStdLayer(torch.nn.Module):
    """Append the mean standard deviation over groups of `group_size` samples as `num_channels` extra features."""

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        if n % g != 0:
            raise ValueError(f"minibatch std: batch size {n} must be divisible by the group size {g}")
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)   # [G, n, F, c, H, W]: sample i belongs to group i % n
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # stddev over each group
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)  # [n, F, 1, 1]
        y = y.repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


@records_init_kwargs
class DiscriminatorEpilogue(torch.nn.Module):
    """4x4 head: (fromrgb for 'skip') + mbstd + conv + fc + out, projected onto the label embedding if any."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, img_channels: int,
                 architecture: str = "resnet", mbstd_group_size: int | None = 4, mbstd_num_channels: int = 1,
                 activation: str = "lrelu", conv_clamp: float | None = None):
        _check_architecture(architecture)
        super().__init__()
        keep(self, in_channels=in_channels, cmap_dim=cmap_dim, resolution=resolution, img_channels=img_channels,
             architecture=architecture)

        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = (MinibatchStdLayer(group_size=mbstd_group_size, num_channels=mbstd_num_channels)
                      if mbstd_num_channels > 0 else None)
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation,
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * (resolution ** 2), in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None,
                force_fp32: bool = False) -> torch.Tensor:
        check_shape("DiscriminatorEpilogue input", x, [None, self.in_channels, self.resolution, self.resolution])
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == "skip":
            img = img.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            x = x + self.fromrgb(img)
        features = self.conv(x if self.mbstd is None else self.mbstd(x))
        logits = self.out(self.fc(features.flatten(1)))
        if self.cmap_dim == 0:
            return logits
        check_shape("DiscriminatorEpilogue cmap", cmap, [None, self.cmap_dim])
        # Projection discriminator: the score is the output's scaled dot product with the label embedding.
        return (logits * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))


@records_init_kwargs
class Discriminator(torch.nn.Module):
    """image [N, img_channels, R, R] (+ c [N, c_dim]) -> logits [N, 1]."""

    def __init__(self, c_dim: int, img_resolution: int, img_channels: int, architecture: str = "resnet",
                 channel_base: int = 32768, channel_max: int = 512, num_fp16_res: int = 0,
                 conv_clamp: float | None = None, cmap_dim: int | None = None, block_kwargs: dict | None = None,
                 mapping_kwargs: dict | None = None, epilogue_kwargs: dict | None = None):
        if img_resolution < 4 or img_resolution & (img_resolution - 1) != 0:
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        super().__init__()
        log2 = int(np.log2(img_resolution))
        keep(self, c_dim=c_dim, img_resolution=img_resolution, img_resolution_log2=log2, img_channels=img_channels,
             block_resolutions=[2 ** i for i in range(log2, 2, -1)])
        channels = channels_per_resolution(self.block_resolutions + [4], channel_base, channel_max)
        fp16_resolution = fp16_min_resolution(img_resolution, num_fp16_res)
        # The label embedding is projected onto the output features: as wide as the 4x4 block by default.
        cmap_dim = 0 if c_dim == 0 else (channels[4] if cmap_dim is None else cmap_dim)
        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layers_before = 0  # global layer index of each block's first layer, for freeze_layers
        for res in self.block_resolutions:
            block = DiscriminatorBlock(0 if res == img_resolution else channels[res], channels[res],
                                       channels[res // 2], resolution=res, first_layer_idx=layers_before,
                                       use_fp16=(res >= fp16_resolution), **(block_kwargs or {}), **common)
            setattr(self, f"b{res}", block)
            layers_before += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                                          **(mapping_kwargs or {}))
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=4, **(epilogue_kwargs or {}),
                                        **common)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None, **block_kwargs) -> torch.Tensor:
        check_shape("Discriminator image", img, [None, self.img_channels, self.img_resolution, self.img_resolution])
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, **block_kwargs)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)
