"""Our own StyleGAN2-ADA: networks, ops (CPU reference + CUDA), augment pipe, loss, training, checkpoints, loaders.

``import stylegan_ada`` stays light (no torch import); the names below are loaded on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "load_network_pkl": "stylegan_ada.legacy.loader",
    "NetworkLoadError": "stylegan_ada.checkpoint",
    "SnapshotError": "stylegan_ada.checkpoint",
    "save_snapshot": "stylegan_ada.checkpoint",
    "load_snapshot": "stylegan_ada.checkpoint",
    "UnsafePickleError": "stylegan_ada.legacy.unpickler",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'stylegan_ada' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
