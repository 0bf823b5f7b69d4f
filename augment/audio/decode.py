"""Reading audio: probe a file cheaply, and decode only the seconds a mel spectrogram needs."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from augment.audio.mel import MelConfig

# libsndfile reads these itself; the others need audioread + ffmpeg on the user's machine
NATIVE_EXTENSIONS = frozenset({".wav", ".mp3", ".flac", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".au", ".caf",
                               ".w64"})
FALLBACK_EXTENSIONS = frozenset({".m4a", ".aac", ".wma", ".mp4"})
AUDIO_EXTENSIONS = NATIVE_EXTENSIONS | FALLBACK_EXTENSIONS


class AudioError(Exception):
    """A file that cannot be used as audio; the message says why (shown as a warning naming the file)."""


@dataclass(frozen=True)
class Clip:
    """Decoded audio ready for the mel transform, plus what had to be done to it."""

    samples: np.ndarray     # float32 mono, exactly cfg.n_samples long
    orig_sr: int
    channels: int
    padded: bool            # the file had fewer than duration seconds after offset


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence C libraries (mpg123 prints 'Note: Trying to resync...') while decoding; Python errors still raise."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2 (e.g. some embedded runners)
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def describe_unreadable(path: Path, exc: BaseException | None = None) -> str:
    """Why a file is not usable audio, in words (zero-byte / not audio / corrupt)."""
    try:
        size = path.stat().st_size
    except OSError as e:
        return f"cannot read ({e.strerror or e})"
    if size == 0:
        return "empty file (0 bytes)"
    if path.suffix.lower() not in AUDIO_EXTENSIONS:
        return "not an audio file"
    detail = f": {exc}" if exc is not None and str(exc) else ""
    return f"unreadable or corrupt audio{detail}"


def probe(path: Path) -> tuple[int, int]:
    """(sample rate, channels) of an audio file without decoding it; AudioError if it is not readable audio."""
    import soundfile as sf

    if path.stat().st_size == 0:
        raise AudioError(describe_unreadable(path))
    try:
        with quiet_stderr():
            info = sf.info(str(path))
    except Exception as exc:  # noqa: BLE001 - libsndfile raises several types
        return _probe_fallback(path, exc)
    if info.samplerate <= 0 or info.channels <= 0 or info.frames == 0:
        raise AudioError(describe_unreadable(path, ValueError("no audio frames")))
    return int(info.samplerate), int(info.channels)


def _probe_fallback(path: Path, sf_error: BaseException) -> tuple[int, int]:
    """Formats libsndfile cannot read (m4a, wma, ...) via audioread/ffmpeg when the user has it installed."""
    if path.suffix.lower() not in FALLBACK_EXTENSIONS:
        raise AudioError(describe_unreadable(path, sf_error))
    try:
        import audioread

        with quiet_stderr(), audioread.audio_open(str(path)) as f:
            return int(f.samplerate), int(f.channels)
    except Exception as exc:  # noqa: BLE001
        raise AudioError(describe_unreadable(path, exc)) from None


def _read_soundfile(path: Path, offset: float, duration: float) -> tuple[np.ndarray, int]:
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        sr = f.samplerate
        start = int(round(offset * sr))
        if start:
            f.seek(min(start, f.frames) if f.frames > 0 else start)
        data = f.read(int(round(duration * sr)), dtype="float32", always_2d=True)
    return data.T, sr


def _read_fallback(path: Path, offset: float, duration: float) -> tuple[np.ndarray, int]:
    import warnings

    import librosa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa's audioread deprecation notice
        y, sr = librosa.load(str(path), sr=None, mono=False, offset=offset, duration=duration, dtype=np.float32)
    return np.atleast_2d(y), int(sr)


def load_clip(path: Path, cfg: MelConfig) -> Clip:
    """Decode ``cfg.duration`` seconds from ``cfg.offset``: downmix to mono, resample to ``cfg.sr``, zero-pad."""
    import librosa

    try:
        with quiet_stderr():
            try:
                data, sr = _read_soundfile(path, cfg.offset, cfg.duration)
            except Exception:  # noqa: BLE001 - not a libsndfile format: try audioread where it may help
                if path.suffix.lower() not in FALLBACK_EXTENSIONS:
                    raise
                data, sr = _read_fallback(path, cfg.offset, cfg.duration)
    except Exception as exc:  # noqa: BLE001
        raise AudioError(describe_unreadable(path, exc)) from None
    channels = data.shape[0]
    y = data.mean(axis=0) if channels > 1 else data[0]
    if not np.all(np.isfinite(y)):
        raise AudioError("audio contains NaN or infinite samples")
    if sr != cfg.sr and y.size:
        y = librosa.resample(y, orig_sr=sr, target_sr=cfg.sr, res_type="soxr_hq")
    n = cfg.n_samples
    # resampling can round the length by a sample; only a real shortfall counts as padding
    padded = y.size < n - max(1, cfg.sr // 1000)
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, y.size)] = y[:n]
    return Clip(samples=out, orig_sr=int(sr), channels=int(channels), padded=padded)
