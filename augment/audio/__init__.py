"""Audio ↔ mel-spectrogram images: presets, decoding, the pixel mapping and its inverse (Griffin-Lim)."""
from __future__ import annotations

from augment.audio.mel import DEFAULT_PRESET, PRESETS, MelConfig, resolve_mel

__all__ = ["DEFAULT_PRESET", "PRESETS", "MelConfig", "resolve_mel"]
