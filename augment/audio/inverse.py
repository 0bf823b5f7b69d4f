"""Mel image → audio: undo the pixel mapping, invert the mel filter bank, Griffin-Lim phase reconstruction."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from augment.audio.image_mapping import image_to_db
from augment.audio.mel import MelConfig, mel_basis

DEFAULT_GRIFFIN_LIM_ITERS = 32
PEAK = 0.9  # ref=max discarded the absolute level, so output is peak-normalised


def mel_to_stft_magnitude(mel_power: np.ndarray, cfg: MelConfig, method: str = "interp") -> np.ndarray:
    """Mel power (n_mels, n_frames) → STFT magnitude (1 + n_fft/2, n_frames).

    ``interp`` (default): each STFT bin takes the filter-weighted mean of the power densities of the mel bands that
    cover it — the mel image stores dB, and this keeps quiet regions at their level (mel-dB correlation of the
    round trip ≈ 0.9 on music vs ≈ 0.75 for ``nnls``, and ~100× faster). ``nnls``: librosa's
    ``mel_to_stft`` (non-negative least squares in linear power, where quiet regions barely count).
    """
    if method == "nnls":
        import librosa

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # empty-band notice, already reported at prepare time
            return librosa.feature.inverse.mel_to_stft(mel_power, sr=cfg.sr, n_fft=cfg.n_fft, power=cfg.power,
                                                       fmin=cfg.fmin, fmax=cfg.fmax_hz)
    if method != "interp":
        raise ValueError(f"unknown mel inversion {method!r}")
    basis = mel_basis(cfg).astype(np.float64)
    band_area = basis.sum(axis=1, keepdims=True)
    density = mel_power / np.where(band_area > 0, band_area, 1.0)      # power per unit filter weight
    coverage = basis.sum(axis=0)[:, None]
    power = np.where(coverage > 0, (basis.T @ density) / np.where(coverage > 0, coverage, 1.0), 0.0)
    return power ** (1.0 / cfg.power)


def db_to_audio(db: np.ndarray, cfg: MelConfig, *, n_iter: int = DEFAULT_GRIFFIN_LIM_ITERS,
                inversion: str = "interp", seed: int = 0) -> np.ndarray:
    """Mel dB (n_mels, n_frames) → float32 waveform of exactly ``cfg.n_samples`` samples at ``cfg.sr``."""
    import librosa

    stft_mag = mel_to_stft_magnitude(librosa.db_to_power(db), cfg, inversion)
    y = librosa.griffinlim(stft_mag, n_iter=n_iter, hop_length=cfg.hop, n_fft=cfg.n_fft, length=cfg.n_samples,
                           random_state=seed)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 0:
        y = y * (PEAK / peak)
    return y.astype(np.float32)


def image_to_wav(image_path: Path, out_path: Path, *, mel: dict[str, Any], mapping: dict[str, Any],
                 n_iter: int = DEFAULT_GRIFFIN_LIM_ITERS, inversion: str = "interp") -> float:
    """Write the WAV reconstructed from one mel image; returns its duration in seconds."""
    import soundfile as sf

    from augment.io_utils import atomic_open

    cfg = MelConfig.from_dict(mel)
    with Image.open(image_path) as img:
        db = image_to_db(img, mapping)
    y = db_to_audio(db, cfg, n_iter=n_iter, inversion=inversion)
    with atomic_open(out_path, "wb") as f:
        sf.write(f, y, cfg.sr, format="WAV", subtype="PCM_16")
    return y.size / cfg.sr
