"""Synthetic audio for the prepare/listen tests."""
from __future__ import annotations

import numpy as np


def tone(seconds: float, sr: int, *, freq: float = 440.0, seed: int = 0, channels: int = 1,
         noise: float = 0.05) -> np.ndarray:
    """A seeded tone plus noise, (n,) or (n, channels); distinct seeds give distinct bytes."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    y = 0.5 * np.sin(2 * np.pi * freq * t) + noise * rng.standard_normal(t.size)
    if channels == 1:
        return y.astype(np.float32)
    return np.stack([y * (0.5 + 0.5 * c / channels) for c in range(channels)], axis=1).astype(np.float32)
