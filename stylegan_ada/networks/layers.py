"""Building blocks shared by the generator and the discriminator.

Weights are stored unscaled (N(0, 1) at init) and multiplied by their He-constant at run time (equalized learning
rate), exactly as the reference does, so state dicts are interchangeable with it.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from stylegan_ada.networks.init_kwargs import records_init_kwargs
from stylegan_ada.ops import bias_act, conv2d_resample, upfirdn2d

DEFAULT_FILTER = (1, 3, 3, 1)
RESIDUAL_GAIN = float(np.sqrt(0.5))  # both branches of a residual sum, so that it keeps unit variance


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale `x` to unit mean square along `dim` (pixel norm of the latent input)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def keep(module: torch.nn.Module, **attributes: Any) -> None:
    """Store plain (non-tensor) settings on `module` under the given names: what forward passes and callers read."""
    for name, value in attributes.items():
        setattr(module, name, value)


def activation_gain(activation: str) -> float:
    """The default output gain of `activation` (sqrt(2) for relu-like ones), ValueError for an unknown name."""
    if activation not in bias_act.ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; expected one of {sorted(bias_act.ACTIVATIONS)}")
    return bias_act.ACTIVATIONS[activation].def_gain


def conv_weight(out_channels: int, in_channels: int, kernel_size: int, channels_last: bool = False) -> torch.Tensor:
    """An unscaled N(0, 1) convolution weight [O, I, k, k], stored channels-last when asked."""
    weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
    return weight.to(memory_format=torch.channels_last) if channels_last else weight


def add_tensor(module: torch.nn.Module, name: str, value: torch.Tensor | None, trainable: bool) -> None:
    """Register `value` as a parameter (trainable) or a buffer (frozen): the state-dict name is the same either way."""
    if trainable:
        module.register_parameter(name, None if value is None else torch.nn.Parameter(value))
    else:
        module.register_buffer(name, value)


def check_shape(name: str, tensor: torch.Tensor, expected: Sequence[int | None]) -> None:
    """Raise ValueError unless `tensor` has the `expected` shape (None matches any size)."""
    ok = tensor.ndim == len(expected) and all(e is None or int(s) == e for s, e in zip(tensor.shape, expected))
    if not ok:
        shown = ", ".join("*" if e is None else str(e) for e in expected)
        raise ValueError(f"{name}: expected shape [{shown}], got {list(tensor.shape)}")


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, noise: torch.Tensor | None = None,
                     up: int = 1, down: int = 1, padding: int = 0, resample_filter: torch.Tensor | None = None,
                     demodulate: bool = True, flip_weight: bool = True, fused_modconv: bool = True) -> torch.Tensor:
    """StyleGAN2 weight (de)modulation + convolution for a batch with per-sample `styles` [N, I].

    fused: one grouped convolution with per-sample weights; not fused: scale the activations before and after a
    shared-weight convolution (cheaper in training, where the weight gradient would otherwise be per sample).
    """
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    check_shape("modulated_conv2d styles", styles, [batch_size, in_channels])

    if x.dtype == torch.float16 and demodulate:  # pre-normalize so that fp16 cannot overflow
        weight = weight * (1 / np.sqrt(in_channels * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    dcoefs = None
    if demodulate:
        # sum_{i,k} (w_oik s_i)^2 = sum_i s_i^2 sum_k w_oik^2: a small matmul instead of an [N, O, I, k, k] tensor.
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N, O]

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(batch_size, -1, 1, 1)
        x = conv2d_resample.conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, down=down,
                                            padding=padding, flip_weight=flip_weight)
        if dcoefs is not None:
            dcoefs = dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1)
            return torch.addcmul(noise.to(x.dtype), x, dcoefs) if noise is not None else x * dcoefs
        return x + noise.to(x.dtype) if noise is not None else x

    w = weight.unsqueeze(0) * styles.reshape(batch_size, 1, -1, 1, 1)  # [N, O, I, k, k]
    if dcoefs is not None:
        w = w * dcoefs.reshape(batch_size, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample.conv2d_resample(x, w.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding,
                                        groups=batch_size, flip_weight=flip_weight)
    x = x.reshape(batch_size, -1, *x.shape[2:])
    return x + noise.to(x.dtype) if noise is not None else x


@records_init_kwargs
class FullyConnectedLayer(torch.nn.Module):
    """Dense layer with equalized learning rate, an lr multiplier and a fused bias + activation."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1, bias_init: float = 0):
        super().__init__()
        keep(self, in_features=in_features, out_features=out_features, activation=activation,
             weight_gain=lr_multiplier / np.sqrt(in_features), bias_gain=lr_multiplier)
        # Stored divided by the lr multiplier, applied times it: the optimizer's steps shrink by that factor.
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        initial_bias = torch.full([out_features], np.float32(bias_init))
        self.bias = torch.nn.Parameter(initial_bias) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype)
        if b is not None and self.bias_gain != 1:
            b = b * self.bias_gain
        if b is not None and self.activation == "linear":  # one fused multiply-add
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act.bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


@records_init_kwargs
class Conv2dLayer(torch.nn.Module):
    """Convolution with equalized learning rate, optional FIR up/downsampling, bias + activation + clamp."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1,
                 resample_filter: Sequence[float] = DEFAULT_FILTER, conv_clamp: float | None = None,
                 channels_last: bool = False, trainable: bool = True):
        super().__init__()
        keep(self, activation=activation, up=up, down=down, conv_clamp=conv_clamp, padding=kernel_size // 2,
             weight_gain=1 / np.sqrt(in_channels * kernel_size ** 2), act_gain=activation_gain(activation))
        self.register_buffer("resample_filter", upfirdn2d.setup_filter(resample_filter))
        # A frozen layer (Freeze-D) keeps its tensors as buffers under the same state-dict names.
        add_tensor(self, "weight", conv_weight(out_channels, in_channels, kernel_size, channels_last), trainable)
        add_tensor(self, "bias", torch.zeros([out_channels]) if bias else None, trainable)

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample.conv2d_resample(x, w.to(x.dtype), f=self.resample_filter, up=self.up, down=self.down,
                                            padding=self.padding, flip_weight=(self.up == 1))
        act_gain = self.act_gain * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act.bias_act(x, b, act=self.activation, gain=act_gain, clamp=act_clamp)
