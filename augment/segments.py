"""`augment prepare --segments N / --hop-seconds S`: several ``--duration``-second windows per clip.

Where the windows of one clip lie (:func:`plan_windows`); the clip's region is ``[--offset, end of file]``, or a csv
row's ``start,end``:

- ``--segments N`` alone: N windows spread evenly from the region's start to its end when it holds N whole windows
  (a 30 s clip, 3 × 10 s: 0, 10, 20; a 60 s clip: 0, 25, 50); a shorter region gets consecutive windows (0, 10, 20,
  ...) as long as each holds at least half a window of audio (the rest is zero-padded), and always the first;
- ``--hop-seconds S``: windows every S seconds from the region's start, as many as fit whole (at least the first);
  with ``--segments N`` too, at most N of them (never more than ``MAX_SEGMENTS``).

Every window of a clip becomes one image, ``<stem>.seg<k>.png``, in the split of its clip (splits are drawn per clip
before the windows are cut, and the leak guard's source check covers every image of a clip).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from augment.errors import UserError

if TYPE_CHECKING:
    from augment.audio.decode import Clip
    from augment.audio.mel import MelConfig
    from augment.datasets.base import Source

CONFIG_KEY = "segments"         # augment.json: {"count", "hop_seconds", "duration", "short", "windows"}
MAX_SEGMENTS = 100             # per clip; also keeps augment.json (every window listed) small
MIN_AUDIO_FRACTION = 0.5        # a consecutive window of a short clip needs this much audio, else it is not cut
Window = tuple[float, float]    # (start, stop) in seconds of the file; audio after stop is zeroed


@dataclass(frozen=True)
class Segmenting:
    """What ``--segments`` / ``--hop-seconds`` asked for."""

    count: int | None = None
    hop_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def segmenting_from_options(count: int | None, hop_seconds: float | None) -> Segmenting | None:
    """The segmentation asked for, None for the classic one image per clip; one-line UserError for bad values."""
    if count is not None and not 1 <= count <= MAX_SEGMENTS:
        raise UserError(f"--segments must be a whole number from 1 to {MAX_SEGMENTS}, got {count}")
    if hop_seconds is not None and not hop_seconds > 0:
        raise UserError(f"--hop-seconds must be > 0 seconds, got {hop_seconds:g}")
    if hop_seconds is None and (count is None or count == 1):
        return None
    return Segmenting(count, hop_seconds)


def _r(x: float) -> float:
    return round(float(x), 6)


def plan_windows(length: float | None, duration: float, seg: Segmenting | None, *, offset: float = 0.0,
                 start: float | None = None, end: float | None = None) -> list[Window]:
    """The windows of one clip of ``length`` seconds (None: unknown), see the module docstring."""
    lo = offset if start is None else start
    hi = end if end is not None else length
    if end is not None and length is not None:
        hi = min(end, length)
    span = None if hi is None else max(0.0, hi - lo)
    count = (seg.count if seg is not None else None) or 1
    if seg is not None and seg.hop_seconds is not None:
        fit = 1 if span is None else 1 + max(0, int(np.floor((span - duration) / seg.hop_seconds + 1e-9)))
        n = min(fit, seg.count or MAX_SEGMENTS)     # bounded: a tiny hop on a long file cannot cost millions
        starts = [lo + i * seg.hop_seconds for i in range(n)]
    elif span is not None and count > 1 and span >= count * duration:
        step = (span - duration) / (count - 1)
        starts = [lo + i * step for i in range(count)]
    else:
        starts = [lo + i * duration for i in range(count)
                  if i == 0 or span is None or span - i * duration >= MIN_AUDIO_FRACTION * duration]
    cap = hi if end is not None else None      # a row's end: audio after it is not the clip's
    return [(_r(s), _r(s + duration if cap is None else min(s + duration, cap))) for s in starts]


def audio_seconds(path: Path) -> float | None:
    """The length of an audio file in seconds from its header; None when it cannot be told."""
    import soundfile as sf

    from augment.audio.decode import FALLBACK_EXTENSIONS, quiet_stderr

    try:
        with quiet_stderr():
            info = sf.info(str(path))
        if info.samplerate > 0 and info.frames > 0:
            return float(info.frames) / info.samplerate
    except Exception:  # noqa: BLE001 - libsndfile raises several types; try audioread where it may help
        pass
    if path.suffix.lower() in FALLBACK_EXTENSIONS:
        try:
            import audioread

            with quiet_stderr(), audioread.audio_open(str(path)) as f:
                return float(f.duration) if f.duration else None
        except Exception:  # noqa: BLE001
            return None
    return None


def load_window(path: Path, mel: "MelConfig", start: float, stop: float) -> "Clip":
    """``mel.duration`` seconds of ``path`` from ``start``; samples after ``stop`` zeroed (a csv row's end)."""
    from augment.audio.decode import Clip, load_clip

    clip = load_clip(path, dataclasses.replace(mel, offset=start))
    keep = int(round((stop - start) * mel.sr))
    if keep >= clip.samples.size:
        return clip
    samples = clip.samples.copy()
    samples[max(0, keep):] = 0.0
    return Clip(samples=samples, orig_sr=clip.orig_sr, channels=clip.channels, padded=True)


@dataclass(frozen=True)
class ImageJob:
    """One image to convert: the clip, its split, the image path under data/ and its window (None: classic)."""

    source: "Source"
    split: str
    image: str                  # "<split>/<class>/<name>.png", relative to data/
    window: Window | None = None
    index: int | None = None    # segment number, None without segmentation

    def job(self, data_dir: Path) -> tuple[Any, ...]:
        """The argument of :func:`augment.prepare_worker.convert_file`."""
        dst = data_dir / self.image
        return (self.source.path, dst) if self.window is None else (self.source.path, dst, *self.window)

    @property
    def name(self) -> str:
        """How warnings name it: the source, and the segment when there are several."""
        return self.source.name if self.index is None else f"{self.source.name} segment {self.index}"


def has_windows(sources: Sequence["Source"]) -> bool:
    """Whether any source gives its own start/end (csv manifest columns)."""
    return any(s.start is not None or s.end is not None for s in sources)


def image_jobs(pool: Any, work: Sequence[tuple["Source", str]], stems: dict["Source", str],
               seg: Segmenting | None, mel: "MelConfig | None") -> list[ImageJob]:
    """Every image to convert for ``work`` [(source, split)]: one per clip, or one per window."""
    sources = [s for s, _ in work]
    if mel is None or (seg is None and not has_windows(sources)):
        return [ImageJob(s, split, f"{split}/{s.cls}/{stems[s]}.png") for s, split in work]
    lengths = pool.map(audio_seconds, [s.path for s in sources], "measuring") if seg is not None else \
        [None] * len(sources)
    out: list[ImageJob] = []
    for (s, split), length in zip(work, lengths):
        windows = plan_windows(length, mel.duration, seg, offset=mel.offset, start=s.start, end=s.end)
        for k, w in enumerate(windows):
            suffix = f".seg{k:02d}" if seg is not None else ""
            out.append(ImageJob(s, split, f"{split}/{s.cls}/{stems[s]}{suffix}.png", w,
                                k if seg is not None else None))
    return out


def segments_record(seg: Segmenting | None, mel: "MelConfig | None", jobs: Sequence[ImageJob],
                    kept: set[str]) -> dict[str, Any] | None:
    """augment.json ``segments``: the options, how many clips gave fewer windows than asked, each image's window
    (also for csv ``start,end`` rows without ``--segments``: then ``count`` and ``hop_seconds`` are null)."""
    if mel is None or (seg is None and not any(j.window for j in jobs)):
        return None
    seg = seg or Segmenting()
    per_clip: dict[str, int] = {}
    for j in jobs:
        per_clip[j.source.name] = per_clip.get(j.source.name, 0) + 1
    short = sum(1 for n in per_clip.values() if seg.count is not None and n < seg.count)
    return {**seg.to_dict(), "duration": mel.duration, "short": short,
            "windows": {f"data/{j.image}": list(j.window) for j in sorted(jobs, key=lambda j: j.image)
                        if j.window and f"data/{j.image}" in kept}}


def check_segments_record(value: Any) -> str | None:
    """What is wrong with an augment.json ``segments`` value (None: fine), for the workspace schema check."""
    if not isinstance(value, dict):
        return "an object"
    count, hop = value.get("count"), value.get("hop_seconds")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        return "an object whose `count` is a whole number >= 1 or null"
    if hop is not None and (not isinstance(hop, (int, float)) or isinstance(hop, bool) or not hop > 0):
        return "an object whose `hop_seconds` is a number > 0 or null"
    if not isinstance(value.get("windows", {}), dict):
        return "an object whose `windows` is an object"
    return None


def row_window(row: dict[str, str], manifest: Path, line: int) -> tuple[float | None, float | None]:
    """A csv manifest row's optional ``start,end`` (seconds; empty = the file's start / end); one-line UserError."""
    import math

    values: list[float | None] = []
    for key in ("start", "end"):
        text = (row.get(key) or "").strip()
        try:
            v = float(text) if text else None
        except ValueError:
            v = -1.0
        if v is not None and not (math.isfinite(v) and v >= 0):
            raise UserError(f"manifest {manifest} line {line}: {key} {text!r} is not a number of seconds >= 0")
        values.append(v)
    start, end = values
    if start is not None and end is not None and end <= start:
        raise UserError(f"manifest {manifest} line {line}: end {end:g} is not after start {start:g}")
    return start, end
