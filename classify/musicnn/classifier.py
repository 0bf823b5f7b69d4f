"""MusiCNN / VGG as `classify` architectures: spectrogram image → patches → pretrained network → new head.

The model takes the images `classify` feeds every architecture (``[N, 3, H, W]``, pixels / 255 since the spec's mean
is 0 and std 1), maps them back to MusiCNN's input with the ``musicnn`` preset's mapping (see
``stylegan_ada/musicnn/frontend.py``), embeds every 187-frame patch (MusiCNN: the 200-d penultimate layer; VGG: the
256-d flattened last pooling) and averages the patch embeddings of a clip before the linear head ``fc``. Because the
head is linear, that equals averaging the patch logits, and it keeps the frozen features one vector per clip.

In training (``whole`` mode) each clip contributes one random patch per step, as MusiCNN itself was trained (a
third of the compute); the backbone's batch norms keep their pretrained statistics (84 clips would not estimate
them better).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from augment.audio.mel import resolve_mel
from augment.errors import UserError

__all__ = ["ARCH_MODELS", "PatchClassifier", "build_classifier", "clip_to_input", "image_mapping"]

ARCH_MODELS = {"musicnn_mtt": "MTT_musicnn", "musicnn_msd": "MSD_musicnn", "vgg_mtt": "MTT_vgg", "vgg_msd": "MSD_vgg"}


def image_mapping() -> dict[str, float]:
    """top_db, ref_power and frame count of ``--preset musicnn`` images (what an image pixel means)."""
    cfg = resolve_mel("musicnn")
    return {"top_db": float(cfg.top_db), "ref_power": float(cfg.ref_power or 0.0), "mel_frames": int(cfg.n_frames)}


class PatchClassifier(nn.Module):
    """images → MusiCNN input patches → backbone embedding per patch → mean over patches → ``fc``."""

    def __init__(self, backbone: nn.Module, mapping: dict[str, float] | None = None):
        super().__init__()
        from stylegan_ada.musicnn.networks import MusiCNN

        self.backbone = backbone
        self.is_musicnn = isinstance(backbone, MusiCNN)
        self.mapping = dict(mapping or image_mapping())
        head = backbone.head
        self.fc = nn.Linear(head.in_features, head.out_features)     # starts as the pretrained tag layer
        self.fc.load_state_dict(head.state_dict())

    def train(self, mode: bool = True) -> "PatchClassifier":
        super().train(mode)
        for m in self.backbone.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        return self

    def patch_embeddings(self, x: torch.Tensor) -> torch.Tensor:
        """[N, P, 187, 96] network input → [N, P, D] embeddings (one random patch per clip in training)."""
        from stylegan_ada.musicnn.frontend import N_FRAMES, N_MELS

        n, p = x.shape[:2]
        if self.training and p > 1:
            pick = torch.randint(0, p, (n,), device=x.device)
            x, p = x[torch.arange(n, device=x.device), pick].unsqueeze(1), 1
        flat = x.reshape(n * p, N_FRAMES, N_MELS)
        emb = self.backbone.embed(flat)["penultimate"] if self.is_musicnn else self.backbone(flat)["embedding"]
        return emb.view(n, p, -1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from stylegan_ada.musicnn.frontend import images_to_input

        m = self.mapping
        x = images_to_input(images * 255.0, top_db=m["top_db"], ref_power=m["ref_power"],
                            mel_frames=int(m["mel_frames"]))
        return self.fc(self.patch_embeddings(x).mean(dim=1))


def build_classifier(arch: str, pretrained: bool) -> PatchClassifier:
    """The model for a ``musicnn_*`` / ``vgg_*`` arch, with the pretrained weights or randomly initialised."""
    from stylegan_ada.musicnn import weights

    name = ARCH_MODELS[arch]
    if pretrained:
        try:
            backbone = weights.load_musicnn(name)
        except weights.WeightsError as exc:
            raise UserError(str(exc)) from None
    else:
        from stylegan_ada.musicnn.networks import MusiCNN, VGGish

        backbone = MusiCNN() if weights.MODELS[name] == "musicnn" else VGGish()
    return PatchClassifier(backbone)


def clip_to_input(path: str | Path, duration: float | None = None, offset: float = 0.0) -> np.ndarray:
    """An audio file → MusiCNN input [P, 187, 96]: decoded, mono, resampled to 16 kHz (``duration`` seconds from
    ``offset``; default the ``musicnn`` preset's 8.96 s = 3 patches)."""
    from augment.audio.decode import AudioError, load_clip
    from stylegan_ada.musicnn.frontend import audio_to_input

    from stylegan_ada.musicnn.constants import N_FFT, SR

    seconds = resolve_mel("musicnn", duration=duration, offset=offset).duration
    # half a window more, so the last frame sees audio (not the STFT's zero padding) when the file goes on
    cfg = resolve_mel("musicnn", duration=seconds + N_FFT / SR, offset=offset)
    try:
        clip = load_clip(Path(path), cfg)
    except AudioError as exc:
        raise UserError(f"{path}: {exc}") from None
    return audio_to_input(clip.samples[: int(round(seconds * SR)) + N_FFT // 2])


def describe_weights() -> str:
    """'cached' or how to get the weights (for `classify archs`)."""
    from stylegan_ada.musicnn.weights import find_wheel

    found = find_wheel()
    return f"cached ({found})" if found else "not fetched (run `classify weights fetch musicnn`)"

