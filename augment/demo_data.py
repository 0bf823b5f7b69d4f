"""A small synthesized, labelled audio set for the demo and the tests (deterministic, no downloads).

Four classes that differ the way emotions in music tend to (Russell quadrants): harmony (major / minor / dissonant),
tempo, loudness and brightness. Every clip gets its own seeded root note, tempo jitter and rhythm, so classes are
learnable but clips are not copies.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEMO_SR = 8000
DEMO_SECONDS = 4.0
DEMO_CLIPS_PER_CLASS = 16


@dataclass(frozen=True)
class Style:
    intervals: tuple[int, ...]   # chord, semitones above the root
    bpm: float
    level: float                 # peak amplitude
    harmonics: int               # brightness
    noise: float                 # rough, percussive noise share
    rhythm: tuple[float, ...]    # note spacings to pick from, in beats


STYLES: dict[str, Style] = {
    "happy": Style((0, 4, 7, 12), 150, 0.8, 5, 0.02, (0.5, 1.0, 1.0, 1.5)),   # major, fast, loud
    "angry": Style((0, 1, 6, 10), 165, 0.9, 9, 0.15, (0.5, 0.5, 1.0)),        # dissonant, fast, loud, harsh
    "sad": Style((0, 3, 7, 10), 60, 0.25, 3, 0.0, (1.0, 2.0)),                # minor, slow, quiet
    "calm": Style((0, 4, 7, 11), 72, 0.3, 2, 0.0, (1.0, 2.0)),                # major 7th, slow, soft
}
CLASSES = tuple(STYLES)


def synthesize_clip(style: Style, rng: np.random.Generator, *, seconds: float = DEMO_SECONDS,
                    sr: int = DEMO_SR) -> np.ndarray:
    """One clip: a chord arpeggiated on the beat, each note a decaying harmonic tone."""
    n = int(round(seconds * sr))
    out = np.zeros(n, dtype=np.float64)
    root = 110.0 * 2 ** (rng.integers(0, 12) / 12)         # A2..G#3
    beat = 60.0 / (style.bpm * rng.uniform(0.92, 1.08))
    decay = beat * (0.6 if style.bpm > 100 else 1.5)
    t_note = np.arange(int(min(seconds, 4 * decay) * sr)) / sr
    env = np.exp(-t_note / decay) * np.minimum(1.0, t_note / 0.005)
    start, k = rng.uniform(0, beat / 2), 0
    while start < seconds:
        step = style.intervals[k % len(style.intervals)] + 12 * int(rng.integers(0, 2))
        f0 = root * 2 ** (step / 12)
        tone = sum(np.sin(2 * np.pi * f0 * h * t_note) / h ** 1.2 for h in range(1, style.harmonics + 1)
                   if f0 * h < sr / 2)
        note = env * (tone + style.noise * rng.standard_normal(t_note.size))
        i = int(start * sr)
        seg = out[i:i + note.size]
        seg += note[: seg.size]
        start += beat * float(rng.choice(style.rhythm))
        k += 1
    peak = np.max(np.abs(out))
    return (out * (style.level / peak if peak > 0 else 0.0)).astype(np.float32)


def write_demo_audio(out_dir: Path, *, clips_per_class: int = DEMO_CLIPS_PER_CLASS, seconds: float = DEMO_SECONDS,
                     sr: int = DEMO_SR, seed: int = 0) -> dict[str, list[Path]]:
    """Write ``out_dir/<class>/<class>_NN.wav`` (16-bit PCM; same bytes on every run). Replaces ``out_dir``."""
    import soundfile as sf

    from augment.io_utils import atomic_dir

    out_dir = Path(out_dir)
    written: dict[str, list[Path]] = {}
    with atomic_dir(out_dir) as tmp:
        for ci, (cls, style) in enumerate(STYLES.items()):
            (tmp / cls).mkdir()
            for k in range(clips_per_class):
                rng = np.random.default_rng([seed, ci, k])
                name = f"{cls}_{k:02d}.wav"
                sf.write(tmp / cls / name, synthesize_clip(style, rng, seconds=seconds, sr=sr), sr, subtype="PCM_16")
                written.setdefault(cls, []).append(out_dir / cls / name)
    return written
