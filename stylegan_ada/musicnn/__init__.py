"""MusiCNN (Pons & Serra 2019) in PyTorch: our reader of TensorFlow checkpoints, the networks, the pretrained
weights from the ``musicnn`` 0.1.0 wheel and the float32 input front end. The public entry for users is
``classify.musicnn``; this package sits low so that FID/KID (``stylegan_ada.metrics``) and the memorization check
(``augment``) can use the network too. Importing it stays light (no torch); the names load on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {name: "stylegan_ada.musicnn.weights" for name in
         ("MODELS", "WeightsError", "WeightsMissing", "find_wheel", "load_labels", "load_musicnn")}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'stylegan_ada.musicnn' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
