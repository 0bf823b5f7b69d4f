"""MusiCNN's network input, in float32: from 16 kHz audio, and from our mel-spectrogram images.

Audio: power mel (n_fft 512, hop 256, Hann, centred with zero padding, 96 Slaney mel bands up to 8 kHz, as
librosa computes it) → ``log10(1 + 10000 · mel)`` → non-overlapping 187-frame patches (a last partial patch is
dropped; a clip shorter than one patch is zero-padded). The original ``musicnn`` extractor takes the log of a
float16 array, so every mel value above 6.55 becomes +inf (nearly every real music clip); here everything stays
float32.

Images (``augment prepare --preset musicnn``): a pixel p in 0..255 (low frequencies at the bottom) stands for
``dB = -top_db + p · top_db / 255`` relative to a fixed power ``ref_power``, so ``mel = ref_power · 10^(dB/10)``;
the image is resized back to 96 rows × the prepared frame count and then compressed like audio.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["SR", "N_FFT", "HOP", "N_MELS", "N_FRAMES", "log_compress", "audio_to_mel", "audio_to_input",
           "to_patches", "images_to_input"]

from stylegan_ada.musicnn.constants import (HOP, IMAGE_MEL_FRAMES, IMAGE_REF_POWER, IMAGE_TOP_DB, LOG_SCALE, N_FFT,
                                            N_FRAMES, N_MELS, SR)


def log_compress(mel: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """``log10(1 + 10000 · mel)`` in float32 (finite for any finite mel)."""
    if isinstance(mel, torch.Tensor):
        return torch.log10(1 + LOG_SCALE * mel.float())
    return np.log10(np.float32(1) + np.float32(LOG_SCALE) * np.asarray(mel, dtype=np.float32))


@functools.lru_cache(maxsize=1)
def _mel_basis() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS).astype(np.float32)


def audio_to_mel(y: np.ndarray) -> np.ndarray:
    """16 kHz mono float audio → power mel [frames, 96] (float32)."""
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected mono audio [samples], got shape {y.shape}")
    padded = np.pad(y, N_FFT // 2)
    n = 1 + (padded.size - N_FFT) // HOP if padded.size >= N_FFT else 0
    frames = np.lib.stride_tricks.as_strided(padded, (n, N_FFT), (padded.strides[0] * HOP, padded.strides[0]))
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)   # periodic Hann
    spec = np.fft.rfft(frames * window, axis=1)
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    return power @ _mel_basis().T


def to_patches(frames: np.ndarray, n_frames: int = N_FRAMES) -> np.ndarray:
    """[T, 96] → [P, n_frames, 96] non-overlapping patches (at least one; zero-padded when T < n_frames)."""
    if frames.shape[0] < n_frames:
        frames = np.pad(frames, ((0, n_frames - frames.shape[0]), (0, 0)))
    p = frames.shape[0] // n_frames
    return np.ascontiguousarray(frames[: p * n_frames].reshape(p, n_frames, frames.shape[1]), dtype=np.float32)


def audio_to_input(y: np.ndarray) -> np.ndarray:
    """16 kHz mono audio → the network input [P, 187, 96] (float32)."""
    return to_patches(log_compress(audio_to_mel(y)))


def images_to_input(images: torch.Tensor, *, top_db: float = IMAGE_TOP_DB, ref_power: float = IMAGE_REF_POWER,
                    mel_frames: int = IMAGE_MEL_FRAMES, n_frames: int = N_FRAMES) -> torch.Tensor:
    """Pixel images [N, C, H, W] (0..255, channels averaged) → network input [N, P, n_frames, 96].

    ``mel_frames`` is the prepared clip's frame count (``augment.json`` mel.shape[1]); the image is resized
    (bicubic, not antialiased) to 96 × mel_frames, then split into ``mel_frames // n_frames`` patches. Where the
    image is larger than the mel (the 96 bands upsampled to the image height) this samples the interpolated image
    at the original band centres, which gives the bands back; an antialiasing filter would blur them together.
    """
    if images.ndim != 4:
        raise ValueError(f"expected images [N, C, H, W], got shape {tuple(images.shape)}")
    x = images.float().mean(dim=1, keepdim=True)
    if tuple(x.shape[2:]) != (N_MELS, mel_frames):
        x = F.interpolate(x, size=(N_MELS, mel_frames), mode="bicubic", align_corners=False, antialias=False)
    pixels = x[:, 0].flip(1).clamp(0, 255)                              # [N, 96 (low first), T]
    db = pixels * (top_db / 255.0) - top_db
    mel = ref_power * torch.pow(10.0, db / 10.0)
    logmel = log_compress(mel).transpose(1, 2)                          # [N, T, 96]
    p = max(1, mel_frames // n_frames)
    if mel_frames < n_frames:
        logmel = F.pad(logmel, (0, 0, 0, n_frames - mel_frames))
    return logmel[:, : p * n_frames].reshape(x.shape[0], p, n_frames, N_MELS).contiguous()


def db_floor_input(top_db: float, ref_power: float) -> float:
    """The network input value of the darkest pixel (what silence becomes on the image path)."""
    return math.log10(1 + LOG_SCALE * ref_power * 10 ** (-top_db / 10))
