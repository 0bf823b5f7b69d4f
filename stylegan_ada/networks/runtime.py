"""Per-block precision and memory layout, which depend on the device the block runs on."""
from __future__ import annotations

import torch


def block_dtype(use_fp16: bool, force_fp32: bool, device: torch.device) -> torch.dtype:
    """float16 for an fp16 block on a CUDA device (unless forced to fp32), else float32."""
    return torch.float16 if use_fp16 and not force_fp32 and device.type == "cuda" else torch.float32


def block_memory_format(channels_last: bool, force_fp32: bool) -> torch.memory_format:
    """channels_last only for fp16 blocks built with `fp16_channels_last`, as in the reference.

    (Measured on CPU: channels_last for the high-resolution blocks makes a whole 256 px G+D step ~5-10% slower,
    although single layers run faster in it, so CPU keeps the contiguous layout.)
    """
    return torch.channels_last if channels_last and not force_fp32 else torch.contiguous_format


def default_fused_modconv(training: bool, dtype: torch.dtype, device: torch.device, batch_size: int) -> bool:
    """Whether modulated convolutions run as one grouped convolution with per-sample weights.

    As the reference on GPU: in inference, for fp32 or a single sample. On CPU the unfused form (scale the
    activations around one shared-weight convolution) is ~15% faster for batches > 1 (measured at 256 px), and both
    give the same images to ~1e-6.
    """
    if training:
        return False
    if device.type == "cpu":
        return batch_size == 1
    return dtype == torch.float32 or batch_size == 1
