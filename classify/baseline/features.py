"""Handcrafted audio features (librosa), extracted in parallel and cached by source-file hash (and window).

Per clip: MFCC 1-20, spectral centroid, bandwidth, roll-off, contrast (7 bands), zero-crossing rate, chroma (12),
RMS - each as mean and standard deviation over frames - plus the tempo estimate: 89 numbers.
The clip is the same segment the spectrogram images show (the workspace's mel offset and duration), decoded at
``sr`` (22.05 kHz by default, so the spectral features see the full band).
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from augment.errors import UserError
from augment.io_utils import atomic_open, sha256_bytes

FEATURE_VERSION = 1
N_MFCC = 20
_FRAME_FEATURES = (("mfcc", N_MFCC), ("spectral_centroid", 1), ("spectral_bandwidth", 1), ("spectral_rolloff", 1),
                   ("spectral_contrast", 7), ("zero_crossing_rate", 1), ("chroma", 12), ("rms", 1))


def feature_names() -> list[str]:
    names = []
    for stat in ("mean", "std"):
        for name, n in _FRAME_FEATURES:
            names += [f"{name}_{stat}" if n == 1 else f"{name}{i + 1}_{stat}" for i in range(n)]
    return names + ["tempo"]


@dataclass(frozen=True)
class FeatureConfig:
    sr: int = 22050
    offset: float = 0.0
    duration: float = 10.0
    n_fft: int = 2048
    hop: int = 512

    def digest(self) -> str:
        return sha256_bytes(json.dumps({**dataclasses.asdict(self), "v": FEATURE_VERSION},
                                       sort_keys=True).encode())[:16]


def extract(path: str | os.PathLike, cfg: FeatureConfig) -> np.ndarray:
    """The feature vector of one audio file (float64, len(feature_names()))."""
    import librosa

    from augment.audio.decode import load_clip
    from augment.audio.mel import MelConfig

    clip = load_clip(Path(path), MelConfig(sr=cfg.sr, duration=cfg.duration, offset=cfg.offset, n_fft=cfg.n_fft,
                                           hop=cfg.hop))
    y, sr, kw = clip.samples, cfg.sr, {"n_fft": cfg.n_fft, "hop_length": cfg.hop}
    stft = np.abs(librosa.stft(y, **kw))
    frames = [
        librosa.feature.mfcc(y=y, sr=sr, n_mfcc=N_MFCC, **kw),
        librosa.feature.spectral_centroid(S=stft, sr=sr),
        librosa.feature.spectral_bandwidth(S=stft, sr=sr),
        librosa.feature.spectral_rolloff(S=stft, sr=sr),
        # 6 octave bands from 200 Hz (librosa's default), started lower when the sample rate is low
        librosa.feature.spectral_contrast(S=stft, sr=sr, fmin=min(200.0, 0.45 * sr / 2 ** 5), n_bands=6),
        librosa.feature.zero_crossing_rate(y, frame_length=cfg.n_fft, hop_length=cfg.hop),
        librosa.feature.chroma_stft(S=stft ** 2, sr=sr),
        librosa.feature.rms(S=stft, frame_length=cfg.n_fft),
    ]
    stacked = np.concatenate(frames, axis=0)
    onset = librosa.onset.onset_strength(y=y, sr=sr, hop_length=cfg.hop)
    tempo = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=onset, sr=sr, hop_length=cfg.hop))[0])
    vec = np.concatenate([stacked.mean(axis=1), stacked.std(axis=1), [tempo]]).astype(np.float64)
    return np.nan_to_num(vec, nan=0.0, posinf=0.0, neginf=0.0)


def _extract_job(key: str, path: str, cfg: FeatureConfig) -> tuple[str, str, np.ndarray | None, str | None]:
    from augment.audio.decode import AudioError

    try:
        return key, path, extract(path, cfg), None
    except AudioError as exc:
        return key, path, None, str(exc)


def _keyed(path: Path, sha: str, cfg: FeatureConfig, window: tuple[float, float] | None
           ) -> tuple[str, str, FeatureConfig]:
    """(cache key, path, the config to extract with): a window is its own entry, described from start to stop."""
    if window is None:
        return sha, str(path), cfg
    start, stop = window
    return f"{sha}@{start!r}-{stop!r}", str(path), dataclasses.replace(cfg, offset=start, duration=stop - start)


class FeatureCache:
    """``<dir>/<config digest>.npz``: feature vectors keyed by source sha256 (one file per feature config)."""

    def __init__(self, directory: Path, cfg: FeatureConfig):
        self.path = directory / f"features-{cfg.digest()}.npz"
        self.data: dict[str, np.ndarray] = {}
        if self.path.is_file():
            try:
                with np.load(self.path, allow_pickle=False) as z:
                    self.data = {k: z[k] for k in z.files}
            except (OSError, ValueError):
                self.data = {}      # a damaged cache is rebuilt, never trusted

    def save(self) -> None:
        buf = io.BytesIO()
        np.savez(buf, **self.data)
        with atomic_open(self.path, "wb") as f:
            f.write(buf.getvalue())


def features_for(sources: Sequence[tuple[Path, str]], cfg: FeatureConfig, cache_dir: Path, *, jobs: int = 0,
                 progress: bool = True, windows: Sequence[tuple[float, float] | None] | None = None) -> np.ndarray:
    """Feature matrix for ``(audio path, source sha256)`` pairs, computing only what the cache lacks.

    ``windows``: per pair, the (start, stop) seconds to describe instead of cfg's offset and duration (the window of
    each image of a segmented workspace, augment.segments)."""
    from tqdm.auto import tqdm

    cache = FeatureCache(cache_dir, cfg)
    keyed = [_keyed(p, h, cfg, w) for (p, h), w in zip(sources, windows or [None] * len(sources))]
    todo = {k: (path, c) for k, path, c in keyed if k not in cache.data}
    if todo:
        jobs = jobs or (os.cpu_count() or 1)
        failures: list[str] = []
        with tqdm(total=len(todo), desc="audio features", unit="clip", file=sys.stderr, disable=not progress) as bar:
            if jobs == 1:
                for key, path, vec, err in (_extract_job(k, p, c) for k, (p, c) in todo.items()):
                    _store(cache, key, path, vec, err, failures)
                    bar.update()
            else:
                with ProcessPoolExecutor(max_workers=jobs) as pool:
                    futures = [pool.submit(_extract_job, k, p, c) for k, (p, c) in todo.items()]
                    for fut in as_completed(futures):
                        _store(cache, *fut.result(), failures)
                        bar.update()
        cache.save()
        if failures:
            raise UserError(f"{len(failures)} source audio file(s) could not be read, e.g. {failures[0]}; "
                            "fix them or re-prepare the workspace")
    return np.stack([cache.data[k] for k, _, _ in keyed])


def _store(cache: FeatureCache, key: str, path: str, vec: np.ndarray | None, err: str | None,
           failures: list[str]) -> None:
    if vec is None:
        failures.append(f"{path} ({err})")
    else:
        cache.data[key] = vec
