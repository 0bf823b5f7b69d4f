"""Transfer learning (``--from``): copy every parameter and buffer whose name and shape match, like the reference."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


class TransferError(ValueError):
    """The transfer source cannot be used; one line saying why and what to do."""


@dataclass
class TransferCount:
    copied: int = 0
    shape_mismatch: list[str] = field(default_factory=list)
    not_in_source: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.copied + len(self.shape_mismatch) + len(self.not_in_source)

    def describe(self) -> str:
        return (f"{self.copied}/{self.total} copied, {len(self.shape_mismatch)} shape differs, "
                f"{len(self.not_in_source)} not in source")


def _tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    named = dict(module.named_parameters())
    named.update(dict(module.named_buffers()))
    return named


@torch.no_grad()
def copy_matching(src: torch.nn.Module | None, dst: torch.nn.Module) -> TransferCount:
    """Copy into ``dst`` each tensor of ``src`` with the same name and shape; count what was left at init."""
    count = TransferCount()
    source = _tensors(src) if src is not None else {}
    for name, tensor in _tensors(dst).items():
        s = source.get(name)
        if s is None:
            count.not_in_source.append(name)
        elif tuple(s.shape) != tuple(tensor.shape):
            count.shape_mismatch.append(name)
        else:
            tensor.copy_(s.detach().to(tensor.device, tensor.dtype))
            count.copied += 1
    return count


def load_source(path: str | os.PathLike) -> dict[str, Any]:
    """Networks of a reference pickle, TF pickle or our snapshot, loaded without executing anything."""
    from stylegan_ada.checkpoint import NetworkLoadError
    from stylegan_ada.legacy import load_network_pkl

    p = Path(path)
    if not p.is_file():
        raise TransferError(f"--from {path}: no such file")
    try:
        return load_network_pkl(p)
    except NetworkLoadError as exc:
        raise TransferError(f"--from {p.name} refused: {exc}") from None


def transfer(source: dict[str, Any], nets: dict[str, torch.nn.Module], what: str) -> dict[str, TransferCount]:
    """Copy G, D and G_ema from ``source`` (G_ema falls back to G) into ``nets``; TransferError on another
    resolution or channel count."""
    src_G = source.get("G_ema") or source.get("G")
    if src_G is None:
        raise TransferError(f"--from {what} holds no generator")
    dst_G = nets["G"]
    for attr in ("img_resolution", "img_channels"):
        have, want = getattr(src_G, attr, None), getattr(dst_G, attr)
        if have != want:
            raise TransferError(f"--from {what} has {attr} {have} but this run trains {attr} {want}; use a "
                                f"network of the same resolution or --from scratch")
    counts = {}
    for key in ("G", "D", "G_ema"):
        src = source.get(key)
        if key == "G_ema" and src is None:
            src = source.get("G")
        if key in nets:
            counts[key] = copy_matching(src, nets[key])
    return counts
