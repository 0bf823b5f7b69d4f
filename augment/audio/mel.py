"""Mel-spectrogram settings (presets `thesis`, `clean` and `musicnn`) and the audio → mel dB transform."""
from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from augment.errors import UserError
from stylegan_ada.musicnn import constants as _mc

# `thesis` reproduces the seed thesis exactly, including fmax 8000 above the 4 kHz Nyquist of 8 kHz audio
# (27 of 128 mel bands stay empty); `clean` is the same with fmax = sr/2 (None means "Nyquist").
# `musicnn` holds exactly MusiCNN's input bands (16 kHz, n_fft 512, hop 256, 96 mels, 3 patches of 187 frames) in
# dB relative to a fixed power instead of the clip's peak, so an image maps back to the network input (see
# stylegan_ada/musicnn/frontend.py).
PRESETS: dict[str, dict[str, Any]] = {
    "thesis": {"fmax": 8000.0},
    "clean": {"fmax": None},
    "musicnn": {"sr": _mc.SR, "duration": _mc.IMAGE_SECONDS, "n_fft": _mc.N_FFT, "hop": _mc.HOP, "n_mels": _mc.N_MELS,
                "fmax": None, "top_db": _mc.IMAGE_TOP_DB, "ref_power": _mc.IMAGE_REF_POWER},
}
DEFAULT_PRESET = "clean"


@dataclass(frozen=True)
class MelConfig:
    """Everything that turns a clip into a mel dB matrix, stored verbatim in augment.json ``mel``."""

    preset: str = DEFAULT_PRESET
    sr: int = 8000              # resample to this rate (Hz), mono
    duration: float = 10.0      # seconds kept; shorter clips are zero-padded
    offset: float = 0.0         # seconds skipped at the start
    n_fft: int = 2048
    hop: int = 512
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None   # None: sr / 2
    top_db: float = 80.0        # power_to_db(ref=max, top_db): dB values lie in [-top_db, 0]
    power: float = 2.0          # power spectrogram
    ref_power: float | None = None  # dB reference: None = each clip's peak; a number = that fixed power

    @property
    def fmax_hz(self) -> float:
        return float(self.fmax) if self.fmax is not None else self.sr / 2.0

    @property
    def n_samples(self) -> int:
        return int(round(self.duration * self.sr))

    @property
    def n_frames(self) -> int:
        """Frames of a centred STFT of ``n_samples`` samples."""
        return 1 + self.n_samples // self.hop

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["ref_power"] is None:      # absent = per-clip peak, so earlier workspaces keep their identity
            del d["ref_power"]
        d["fmax_hz"] = self.fmax_hz
        d["shape"] = [self.n_mels, self.n_frames]
        d["empty_bands"] = empty_mel_bands(self)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MelConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def resolve_mel(preset: str = DEFAULT_PRESET, **overrides: Any) -> MelConfig:
    """A preset with any parameter overridden (``None`` values mean "keep the preset's")."""
    if preset not in PRESETS:
        raise UserError(f"unknown mel preset {preset!r}; choose one of {', '.join(PRESETS)}")
    unknown = set(overrides) - {f.name for f in dataclasses.fields(MelConfig)}
    if unknown:
        raise ValueError(f"unknown mel parameter(s) {sorted(unknown)}")
    values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    cfg = MelConfig(preset=preset, **values)
    validate(cfg)
    return cfg


def validate(cfg: MelConfig) -> None:
    """Reject settings that cannot produce a spectrogram, naming the option to fix."""
    checks = [
        (cfg.sr > 0, "--sr must be a positive sample rate in Hz"),
        (cfg.duration > 0, "--duration must be > 0 seconds"),
        (cfg.offset >= 0, "--offset must be >= 0 seconds"),
        (cfg.n_fft >= 16, "--n-fft must be >= 16"),
        (cfg.hop > 0, "--hop must be > 0"),
        (cfg.n_mels > 0, "--n-mels must be > 0"),
        (cfg.top_db > 0, "--top-db must be > 0"),
        (cfg.fmax is None or cfg.fmax > cfg.fmin, "--fmax must be above fmin (0 Hz)"),
        (cfg.n_samples >= cfg.hop, "--duration is shorter than one hop; use a longer --duration or smaller --hop"),
        (cfg.ref_power is None or cfg.ref_power > 0, "the dB reference power must be > 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)


@functools.lru_cache(maxsize=8)
def mel_basis(cfg: MelConfig) -> np.ndarray:
    """The (n_mels, 1 + n_fft/2) filter bank (cached per process; librosa's empty-band warning is ours to give)."""
    import librosa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return librosa.filters.mel(sr=cfg.sr, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin,
                                   fmax=cfg.fmax_hz).astype(np.float32)


def empty_mel_bands(cfg: MelConfig) -> int:
    """How many mel bands have an all-zero filter (they come out as constant -top_db rows)."""
    return int((mel_basis(cfg).max(axis=1) <= 0).sum())


def empty_band_warning(cfg: MelConfig) -> str | None:
    """The one-line warning to print once per run when the settings leave empty mel bands."""
    n = empty_mel_bands(cfg)
    if not n:
        return None
    why = (f"fmax {cfg.fmax_hz:g} Hz is above the Nyquist frequency {cfg.sr / 2:g} Hz"
           if cfg.fmax_hz > cfg.sr / 2 else f"{cfg.n_mels} mels are too many for n_fft {cfg.n_fft}")
    return (f"{n} of {cfg.n_mels} mel bands are empty ({why}); they become constant {-cfg.top_db:g} dB rows"
            + (" — kept for comparison with the thesis; the default preset `clean` has none"
               if cfg.preset == "thesis" else ""))


def mel_db(y: np.ndarray, cfg: MelConfig) -> np.ndarray:
    """Mono audio (``cfg.n_samples`` at ``cfg.sr``) → mel power in dB, shape (n_mels, n_frames), in [-top_db, 0].

    Same numbers as ``librosa.power_to_db(librosa.feature.melspectrogram(...), ref=np.max)``; a silent clip maps to
    -top_db everywhere (librosa would give 0 dB, i.e. a white image). With ``cfg.ref_power`` the reference is that
    fixed power (louder cells clip at 0 dB).
    """
    import librosa

    spec = np.abs(librosa.stft(y, n_fft=cfg.n_fft, hop_length=cfg.hop)) ** cfg.power
    mel = mel_basis(cfg) @ spec
    if cfg.ref_power is not None:
        db = librosa.power_to_db(mel, ref=cfg.ref_power, amin=1e-30, top_db=None)
        return np.clip(np.nan_to_num(db, nan=-cfg.top_db), -cfg.top_db, 0.0).astype(np.float32)
    peak = float(mel.max()) if mel.size else 0.0
    if not math.isfinite(peak) or peak <= 1e-10:
        return np.full(mel.shape, -cfg.top_db, dtype=np.float32)
    db = librosa.power_to_db(mel, ref=peak, top_db=cfg.top_db)
    return np.clip(db, -cfg.top_db, 0.0).astype(np.float32)
