"""MusiCNN and VGG pretrained on music (Pons & Serra 2019; weights from the ``musicnn`` 0.1.0 wheel, ISC licence).

``load_musicnn("MSD_musicnn" | "MTT_musicnn" | "MSD_vgg" | "MTT_vgg")`` returns an eval-mode module whose forward
takes the network input ``[N, 187, 96]`` (float32 log-mel patches) and returns a dict with ``taggram`` and
``logits`` ``[N, 50]`` (MusiCNN also ``penultimate``, ``max_pool``, ``mean_pool``, ``timbral``, ``temporal``,
``cnn1..3``; VGG ``pool1..5``). ``audio_to_input`` makes that input from 16 kHz audio, ``clip_to_input`` from an audio
file, ``images_to_input`` from ``augment prepare --preset musicnn`` images. The weights come from
``classify weights fetch musicnn``.
"""
from stylegan_ada.musicnn import MODELS, WeightsError, WeightsMissing, find_wheel, load_labels, load_musicnn
from stylegan_ada.musicnn.frontend import audio_to_input, images_to_input

from classify.musicnn.classifier import ARCH_MODELS, PatchClassifier, build_classifier, clip_to_input

__all__ = ["ARCH_MODELS", "MODELS", "PatchClassifier", "WeightsError", "WeightsMissing", "audio_to_input",
           "build_classifier", "clip_to_input", "find_wheel", "images_to_input", "load_labels", "load_musicnn"]
