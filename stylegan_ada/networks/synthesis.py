"""Synthesis network w -> image: constant 4x4 input, modulated convolutions with noise, skip-architecture ToRGB."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from stylegan_ada.networks.init_kwargs import records_init_kwargs
from stylegan_ada.networks.layers import (DEFAULT_FILTER, RESIDUAL_GAIN, Conv2dLayer, FullyConnectedLayer,
                                          activation_gain, check_shape, conv_weight, keep, modulated_conv2d)
from stylegan_ada.networks.runtime import block_dtype, block_memory_format, default_fused_modconv
from stylegan_ada.ops import bias_act, upfirdn2d

NOISE_MODES = ("random", "const", "none")


def channels_per_resolution(resolutions: Sequence[int], channel_base: int, channel_max: int) -> dict[int, int]:
    """Feature maps at each resolution: channel_base / res, capped at channel_max."""
    return {res: min(channel_base // res, channel_max) for res in resolutions}


def fp16_min_resolution(img_resolution: int, num_fp16_res: int) -> int:
    """Lowest resolution that runs in fp16 when the `num_fp16_res` highest resolutions do (never below 8)."""
    return max(2 ** (int(np.log2(img_resolution)) + 1 - num_fp16_res), 8)


@records_init_kwargs
class SynthesisLayer(torch.nn.Module):
    """Modulated 3x3 convolution (optionally upsampling x2) + noise + bias + lrelu + clamp."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kernel_size: int = 3,
                 up: int = 1, use_noise: bool = True, activation: str = "lrelu",
                 resample_filter: Sequence[float] = DEFAULT_FILTER, conv_clamp: float | None = None,
                 channels_last: bool = False):
        super().__init__()
        keep(self, resolution=resolution, up=up, use_noise=use_noise, activation=activation, conv_clamp=conv_clamp,
             padding=kernel_size // 2, act_gain=activation_gain(activation))
        self.register_buffer("resample_filter", upfirdn2d.setup_filter(resample_filter))
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)  # styles start at 1: plain conv
        self.weight = torch.nn.Parameter(conv_weight(out_channels, in_channels, kernel_size, channels_last))
        if use_noise:  # a fixed noise image for noise_mode='const', scaled by a learned strength that starts at 0
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", fused_modconv: bool = True,
                gain: float = 1) -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        in_resolution = self.resolution // self.up
        check_shape("SynthesisLayer input", x, [None, self.weight.shape[1], in_resolution, in_resolution])
        styles = self.affine(w)

        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device)
            noise = noise * self.noise_strength
        if self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength

        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=(self.up == 1),
                             fused_modconv=fused_modconv)
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act.bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain,
                                 clamp=act_clamp)


@records_init_kwargs
class ToRGBLayer(torch.nn.Module):
    """Modulated (not demodulated) 1x1 convolution to image channels + bias + clamp."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None, channels_last: bool = False):
        super().__init__()
        keep(self, conv_clamp=conv_clamp, weight_gain=1 / np.sqrt(in_channels * kernel_size ** 2))
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(conv_weight(out_channels, in_channels, kernel_size, channels_last))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act.bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


@records_init_kwargs
class SynthesisBlock(torch.nn.Module):
    """One resolution: (const input | conv0 with x2 upsampling), conv1, ToRGB added to the upsampled image."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, architecture: str = "skip", resample_filter: Sequence[float] = DEFAULT_FILTER,
                 conv_clamp: float | None = None, use_fp16: bool = False, fp16_channels_last: bool = False,
                 **layer_kwargs):
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(f"architecture must be 'orig', 'skip' or 'resnet', got {architecture!r}")
        super().__init__()
        has_torgb = is_last or architecture == "skip"
        # w vectors consumed: one per convolution (conv0 only after the first block), one for ToRGB.
        keep(self, in_channels=in_channels, w_dim=w_dim, resolution=resolution, img_channels=img_channels,
             is_last=is_last, architecture=architecture, use_fp16=use_fp16,
             channels_last=use_fp16 and fp16_channels_last, num_conv=1 if in_channels == 0 else 2,
             num_torgb=int(has_torgb))
        self.register_buffer("resample_filter", upfirdn2d.setup_filter(resample_filter))
        shared = dict(w_dim=w_dim, resolution=resolution, conv_clamp=conv_clamp, channels_last=self.channels_last)

        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, resample_filter=resample_filter,
                                        **shared, **layer_kwargs)
        self.conv1 = SynthesisLayer(out_channels, out_channels, **shared, **layer_kwargs)
        if has_torgb:
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp,
                                    channels_last=self.channels_last)
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, force_fp32: bool = False,
                fused_modconv: bool | None = None, **layer_kwargs) -> tuple[torch.Tensor, torch.Tensor | None]:
        check_shape(f"SynthesisBlock b{self.resolution} ws", ws, [None, self.num_conv + self.num_torgb, self.w_dim])
        w_iter = iter(ws.unbind(dim=1))
        dtype = block_dtype(self.use_fp16, force_fp32, ws.device)
        memory_format = block_memory_format(self.channels_last, force_fp32)
        if fused_modconv is None:
            fused_modconv = default_fused_modconv(self.training, dtype, ws.device, int(ws.shape[0]))

        if self.in_channels == 0:
            x = self.const.to(dtype=dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = x.to(memory_format=memory_format)
        else:
            check_shape(f"SynthesisBlock b{self.resolution} input", x,
                        [None, self.in_channels, self.resolution // 2, self.resolution // 2])
            x = x.to(dtype=dtype, memory_format=memory_format)

        conv_kwargs = dict(fused_modconv=fused_modconv, **layer_kwargs)
        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), **conv_kwargs)
        else:
            residual = self.skip(x, gain=RESIDUAL_GAIN) if self.architecture == "resnet" else None
            x = self.conv0(x, next(w_iter), **conv_kwargs)
            x = self.conv1(x, next(w_iter), gain=1 if residual is None else RESIDUAL_GAIN, **conv_kwargs)
            x = x if residual is None else residual + x

        if img is not None:
            img = upfirdn2d.upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img + y if img is not None else y
        return x, img


@records_init_kwargs
class SynthesisNetwork(torch.nn.Module):
    """Blocks b4 ... b{img_resolution}; consumes `num_ws` w vectors per image."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_fp16_res: int = 0, **block_kwargs):
        if img_resolution < 4 or img_resolution & (img_resolution - 1) != 0:
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        super().__init__()
        log2 = int(np.log2(img_resolution))
        keep(self, w_dim=w_dim, img_resolution=img_resolution, img_resolution_log2=log2, img_channels=img_channels,
             block_resolutions=[2 ** i for i in range(2, log2 + 1)])
        channels = channels_per_resolution(self.block_resolutions, channel_base, channel_max)
        fp16_resolution = fp16_min_resolution(img_resolution, num_fp16_res)

        self.num_ws = 0
        for res in self.block_resolutions:
            is_last = res == img_resolution
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim, resolution=res,
                                   img_channels=img_channels, is_last=is_last, use_fp16=(res >= fp16_resolution),
                                   **block_kwargs)
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            setattr(self, f"b{res}", block)

    def forward(self, ws: torch.Tensor, **block_kwargs) -> torch.Tensor:
        check_shape("synthesis ws", ws, [None, self.num_ws, self.w_dim])
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(x, img, block_ws, **block_kwargs)
        return img
