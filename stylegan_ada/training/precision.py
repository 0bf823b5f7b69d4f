"""What runs in which precision and memory layout during training (the `--precision` and `--channels-last` knobs).

| precision | CUDA | CPU |
|---|---|---|
| ``fp32`` | every block fp32, TF32 off | fp32 |
| ``tf32`` | every block fp32, TF32 matmuls/convolutions | fp32 (TF32 is a GPU feature) |
| ``fp16-top`` (default, the reference's) | fp16 in the config's ``num_fp16_res`` top blocks (conv clamping), the rest TF32 | fp32 (fp16 blocks are forced to fp32 on CPU) |
| ``bf16`` | every block under bfloat16 autocast (convolutions and matmuls in bf16, reductions fp32) | the same |

``channels_last``: the fp16 blocks keep their activations in channels-last layout (the networks'
``fp16_channels_last``, set at run time so the network kwargs, and resume, do not change); it applies only where
those blocks run in fp16, so on CPU it changes nothing.
"""
from __future__ import annotations

import contextlib
from typing import Iterable, Iterator

import torch

from stylegan_ada.training.options import PRECISIONS  # noqa: F401 (the choices, checked by TrainingOptions)


def force_fp32(precision: str, device: torch.device) -> bool:
    """Whether the networks' fp16 blocks must run in fp32."""
    return device.type != "cuda" or precision != "fp16-top"


def allow_tf32(precision: str, allowed: bool = True) -> bool:
    return allowed and precision != "fp32"


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    """bfloat16 autocast around the forward and backward passes of a round for ``bf16``; nothing otherwise."""
    if precision != "bf16":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        yield


def use_channels_last(nets: Iterable[torch.nn.Module], enabled: bool) -> None:
    """Set the channels-last layout of every fp16 block (run-time twin of ``fp16_channels_last``)."""
    for net in nets:
        for module in net.modules():
            if hasattr(module, "channels_last") and getattr(module, "use_fp16", False):
                module.channels_last = enabled
