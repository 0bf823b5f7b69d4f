"""Our own StyleGAN2-ADA: networks, ops (CPU reference + CUDA), augment pipe, loss, training, checkpoints, loaders.

``import stylegan_ada`` stays light (no torch import); the names below are loaded on first use.
"""
from __future__ import annotations

from stylegan_ada.lazy_exports import lazy_exports

_LAZY = {
    "load_network_pkl": "stylegan_ada.legacy.loader",
    "NetworkLoadError": "stylegan_ada.checkpoint",
    "SnapshotError": "stylegan_ada.checkpoint",
    "save_snapshot": "stylegan_ada.checkpoint",
    "load_snapshot": "stylegan_ada.checkpoint",
    "UnsafePickleError": "stylegan_ada.legacy.unpickler",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
