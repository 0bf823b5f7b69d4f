"""MusiCNN (Pons & Serra 2019) in PyTorch: our reader of TensorFlow checkpoints, the networks, the pretrained
weights from the ``musicnn`` 0.1.0 wheel and the float32 input front end. The public entry for users is
``classify.musicnn``; this package sits low so that FID/KID (``stylegan_ada.metrics``) and the memorization check
(``augment``) can use the network too. Importing it stays light (no torch); the names load on first use.
"""
from __future__ import annotations

from stylegan_ada.lazy_exports import lazy_exports

_LAZY = {name: "stylegan_ada.musicnn.weights" for name in
         ("MODELS", "WeightsError", "WeightsMissing", "find_wheel", "load_labels", "load_musicnn")}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
