"""MusiCNN (Pons & Serra 2019) in PyTorch: our reader of TensorFlow checkpoints, the networks, the pretrained
weights from the ``musicnn`` 0.1.0 wheel and the float32 input front end. The public entry for users is
``classify.musicnn``; this package sits low so that FID/KID (``stylegan_ada.metrics``) and the memorization check
(``augment``) can use the network too.
"""
from stylegan_ada.musicnn.weights import MODELS, WeightsError, WeightsMissing, find_wheel, load_labels, load_musicnn

__all__ = ["MODELS", "WeightsError", "WeightsMissing", "find_wheel", "load_labels", "load_musicnn"]
