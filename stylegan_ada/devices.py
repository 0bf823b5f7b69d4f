"""One rule for turning a ``--device`` value into a torch device name.

The rule, shared by ``augment train``, ``augment generate``, ``augment check-novelty`` and ``classify eval``:

- ``auto`` (or None): ``cuda`` when torch sees a CUDA GPU (then checked as ``cuda``), else ``cpu``;
- ``cpu``: ``cpu``;
- ``cuda`` / ``cuda:N``: returned as given, if torch sees a CUDA GPU and (for ``cuda:N``) N is below the number of
  visible devices; ``gpus`` more than 1 also needs that many visible devices;
- anything else is refused.

Case and surrounding blanks are ignored (``" CUDA:1 "`` is ``cuda:1``). Every refusal is a :class:`DeviceError`
whose message is one line naming the option and how to fix it; CLIs turn it into their one-line ``error:``.
"""
from __future__ import annotations

import re

DEVICE_NAMES = "auto, cpu, cuda or cuda:N"
_NAME = re.compile(r"auto|cpu|cuda(:\d+)?")


class DeviceError(ValueError):
    """The asked-for device is not a device name, or it is not present on this machine."""


def resolve_device(name: str | None = "auto", *, gpus: int = 1, option: str = "--device") -> str:
    """The torch device name for ``name`` by the rule in the module docstring; DeviceError otherwise."""
    text = "auto" if name is None else str(name).strip().lower()
    if not _NAME.fullmatch(text):
        raise DeviceError(f"{option} must be {DEVICE_NAMES}, got {name!r}")
    import torch  # deferred: parsing a name must not cost the torch import

    present = torch.cuda.is_available()
    if text == "auto":
        text = "cuda" if present else "cpu"
    if text == "cpu":
        return text
    if not present:
        raise DeviceError(f"{option} {text}: no CUDA GPU is visible to PyTorch; use {option} cpu")
    count = torch.cuda.device_count()
    index = int(text.split(":")[1]) if ":" in text else None
    if index is not None and index >= count:
        raise DeviceError(f"{option} {text}: only {count} CUDA device(s) are visible (cuda:0..cuda:{count - 1})")
    if gpus > count:
        raise DeviceError(f"--gpus {gpus} but only {count} GPU(s) are visible")
    return text
