"""Image-level training augmentation presets (``--aug-preset``) and mixup (``--mixup ALPHA``).

All randomness comes from torch's / NumPy's generators seeded per run (``seed_everything`` and the run seed), so one
seed gives the same training inputs every time.

``thesis`` (the thesis augmented its CNN inputs with small rotations, colour changes and added noise; it gives no
numbers, these are ours): rotation uniform in ±5° (bilinear, corners filled with 0 = silence), brightness shift
uniform in ±0.1 and contrast factor uniform in [0.9, 1.1] about the image mean (the same for all three channels:
the spectrograms are grey), then Gaussian noise with sd 0.02 per pixel; on the [0, 1] image, clipped to [0, 1].

``specaugment`` (Park et al. 2019, LibriSpeech-basic policy without time warping): one frequency mask of width
uniform in [0, F] with F = 27 of 80 mel bands (0.3375 of the height) and one time mask of width uniform in [0, T]
with T = 100 frames of 10 ms = 1 s (as a fraction of the clip's duration: 0.1 for 10-s clips), set to 0 after
normalisation (the mean), as in the paper.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

PRESETS = ("none", "thesis", "specaugment")
SPEC_F_FRACTION = 27 / 80          # the paper's F = 27 of 80 mel channels
SPEC_T_SECONDS = 1.0               # the paper's T = 100 frames at a 10 ms hop


def _uniform(low: float, high: float) -> float:
    import torch

    return float(low + (high - low) * torch.rand(()).item())


def mask_span(x: Any, axis: int, max_fraction: float) -> Any:
    """Set a random span of up to ``max_fraction`` of ``axis`` (1: rows = frequency, 2: columns = time) to 0."""
    import torch

    n = x.shape[axis]
    width = int(torch.randint(0, max(1, int(max_fraction * n)) + 1, ()).item())
    start = int(torch.randint(0, n - width + 1, ()).item())
    if axis == 1:
        x[:, start:start + width, :] = 0.0
    else:
        x[:, :, start:start + width] = 0.0
    return x


@dataclass(frozen=True)
class ThesisAugment:
    """Small rotation, brightness/contrast jitter and Gaussian noise on the [0, 1] image (module docstring)."""

    rotation_deg: float = 5.0
    brightness: float = 0.1
    contrast: float = 0.1
    noise_sd: float = 0.02
    active: bool = True

    def __call__(self, x: Any) -> Any:
        import torch
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms.functional import rotate

        channels = x.shape[0]
        angle = _uniform(-self.rotation_deg, self.rotation_deg)
        grey = x.shape[0] == 1 or x.stride(0) == 0          # three views of one grey channel: work on one
        x = rotate(x[:1] if grey else x, angle, interpolation=InterpolationMode.BILINEAR, fill=[0.0])
        shift = _uniform(-self.brightness, self.brightness)
        factor = _uniform(1 - self.contrast, 1 + self.contrast)
        x = (x - x.mean()) * factor + x.mean() + shift
        x = (x + torch.randn(x.shape) * self.noise_sd).clamp_(0.0, 1.0)
        return x.expand(channels, -1, -1) if grey else x


@dataclass(frozen=True)
class SpecAugmentPreset:
    """The SpecAugment paper's masks (module docstring); acts on the normalised image."""

    freq_masks: int = 1
    freq_fraction: float = SPEC_F_FRACTION
    time_masks: int = 1
    time_fraction: float = 0.1
    active: bool = True

    def __call__(self, x: Any) -> Any:
        x = x.clone()
        for _ in range(self.freq_masks):
            mask_span(x, 1, self.freq_fraction)
        for _ in range(self.time_masks):
            mask_span(x, 2, self.time_fraction)
        return x


@dataclass(frozen=True)
class Chain:
    """Several post-normalisation augmentations in order (only the active ones run)."""

    parts: tuple

    @property
    def active(self) -> bool:
        return any(p is not None and p.active for p in self.parts)

    def __call__(self, x: Any) -> Any:
        for p in self.parts:
            if p is not None and p.active:
                x = p(x)
        return x


def preset_transforms(preset: str, clip_seconds: float | None) -> tuple[Any, Any]:
    """(pixel-stage, normalised-stage) augmentation of a preset; None where the preset has none."""
    if preset == "thesis":
        return ThesisAugment(), None
    if preset == "specaugment":
        fraction = min(1.0, SPEC_T_SECONDS / clip_seconds) if clip_seconds else 0.1
        return None, SpecAugmentPreset(time_fraction=fraction)
    return None, None


def describe(preset: str, clip_seconds: float | None, mixup: float) -> dict[str, Any]:
    """The exact image-level augmentation parameters of a run, for metrics.json."""
    pixel, post = preset_transforms(preset, clip_seconds)
    return {"preset": preset, "parameters": asdict(pixel or post) if (pixel or post) else {}, "mixup_alpha": mixup}


def arm_tag(preset: str, mixup: float, time_shift: float = 0.0, masks: int = 0) -> str:
    """Short name of the image-level augmentation ('' when none), used in run ids and table rows."""
    parts = [preset] if preset != "none" else []
    if mixup > 0:
        parts.append(f"mixup{mixup:g}")
    if time_shift > 0 or masks > 0:
        parts.append(f"ts{time_shift:g}m{masks}")
    return "+".join(parts)


def mixup_batch(x: Any, y: Any, alpha: float, rng: np.random.Generator) -> tuple[Any, Any, float]:
    """Mixup (Zhang et al. 2018): x ← λx + (1−λ)x[perm], λ ~ Beta(α, α); returns (mixed x, y[perm], λ)."""
    import torch

    lam = float(rng.beta(alpha, alpha))
    perm = torch.from_numpy(rng.permutation(len(y))).to(y.device)
    return lam * x + (1.0 - lam) * x[perm], y[perm], lam


def mixed_loss(loss_fn: Any, outputs: Any, y: Any, y_b: Sequence | Any, lam: float) -> Any:
    """λ·loss(y) + (1−λ)·loss(y_b)."""
    return lam * loss_fn(outputs, y) + (1.0 - lam) * loss_fn(outputs, y_b)
