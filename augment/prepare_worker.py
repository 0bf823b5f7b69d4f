"""Per-file work of `augment prepare` (hash + probe, then convert to PNG) and the process pool that runs it.

Workers are forked after the heavy modules are imported, so each clip costs only its own decode/STFT/PNG time;
each worker keeps its settings in module state (set once by the pool initializer) instead of receiving them per clip.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

from augment.audio.decode import AudioError, load_clip, probe
from augment.audio.image_mapping import db_to_gray, gray_to_rgb_png
from augment.audio.mel import MelConfig, mel_basis, mel_db
from augment.datasets.images import ImageError, image_to_gray, probe_image
from augment.io_utils import sha256_bytes, sha256_file
from augment.segments import load_window

T = TypeVar("T")
R = TypeVar("R")
MIN_PARALLEL = 16  # fewer items than this run in-process: forking would cost more than it saves


@dataclass(frozen=True)
class WorkerSettings:
    kind: str                   # "audio" | "images"
    mel: MelConfig | None
    resolution: int


@dataclass(frozen=True)
class Converted:
    image_sha256: str | None    # None: the file was skipped, see `problem`
    problem: str | None = None
    padded: bool = False
    downmixed: bool = False
    resampled: bool = False


_SETTINGS: WorkerSettings | None = None


def init_worker(settings: WorkerSettings, single_thread: bool) -> None:
    global _SETTINGS
    _SETTINGS = settings
    if single_thread:  # one process per core already; BLAS threads would only oversubscribe
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    if settings.mel is not None:
        mel_basis(settings.mel)


def warm_imports(kind: str) -> None:
    """Import what the workers use once in the parent, so forked workers start warm."""
    import soundfile  # noqa: F401
    from PIL import Image  # noqa: F401

    if kind == "audio":
        import librosa
        import numpy as np

        librosa.stft(np.zeros(4096, dtype=np.float32), n_fft=1024)
        librosa.resample(np.zeros(441, dtype=np.float32), orig_sr=44100, target_sr=8000, res_type="soxr_hq")


def scan_file(path: Path) -> tuple[str | None, str | None]:
    """(sha256, None) for a usable file, else (None, why it is skipped)."""
    assert _SETTINGS is not None
    try:
        digest = sha256_file(path)
        if _SETTINGS.kind == "audio":
            probe(path)
        else:
            probe_image(path)
    except (AudioError, ImageError) as exc:
        return None, str(exc)
    except OSError as exc:
        return None, f"cannot read ({exc.strerror or exc})"
    return digest, None


def convert_file(job: tuple[Any, ...]) -> Converted:
    """Source file → RGB PNG at ``job[1]``; expected per-file problems become a skip, I/O errors on output raise.

    ``job``: (source, image) or (source, image, start, stop) for one window of the clip (augment.segments)."""
    src, dst, *window = job
    s = _SETTINGS
    assert s is not None
    flags: dict[str, bool] = {}
    try:
        if s.kind == "audio":
            assert s.mel is not None
            clip = load_window(src, s.mel, *window) if window else load_clip(src, s.mel)
            gray = db_to_gray(mel_db(clip.samples, s.mel), s.mel.top_db, s.resolution)
            flags = {"padded": clip.padded, "downmixed": clip.channels > 1, "resampled": clip.orig_sr != s.mel.sr}
        else:
            gray = image_to_gray(src, s.resolution)
    except (AudioError, ImageError) as exc:
        return Converted(None, str(exc))
    data = gray_to_rgb_png(gray)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data)
    return Converted(sha256_bytes(data), **flags)


class WorkerPool:
    """Runs the per-file functions over many files, on ``jobs`` processes, with a tqdm bar on stderr.

    Workers ignore Ctrl-C; the parent terminates them at once on any error or interrupt, so nothing keeps writing
    into a staging folder that is being removed.
    """

    def __init__(self, settings: WorkerSettings, jobs: int):
        self.settings = settings
        self.jobs = max(1, int(jobs))
        self._pool: Any = None

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self._stop(terminate=exc_type is not None)

    def _stop(self, terminate: bool) -> None:
        if self._pool is not None:
            if terminate:
                self._pool.terminate()
            else:
                self._pool.close()
            self._pool.join()
            self._pool = None

    def _get_pool(self) -> Any:
        if self._pool is None:
            warm_imports(self.settings.kind)
            methods = mp.get_all_start_methods()
            ctx = mp.get_context("fork" if "fork" in methods else methods[0])
            self._pool = ctx.Pool(self.jobs, initializer=_init_pool_worker, initargs=(self.settings,))
        return self._pool

    def map(self, fn: Callable[[T], R], items: Sequence[T], desc: str) -> list[R]:
        from tqdm import tqdm

        bar = dict(total=len(items), desc=desc, unit="file", file=sys.stderr, leave=False, dynamic_ncols=True)
        if self.jobs == 1 or len(items) < MIN_PARALLEL:
            init_worker(self.settings, False)
            results: Iterable[R] = (fn(x) for x in items)
        else:
            chunk = max(1, min(8, len(items) // (self.jobs * 8)))  # small: no idle core at the tail
            results = self._get_pool().imap(fn, items, chunksize=chunk)
        try:
            return list(tqdm(results, **bar))
        except BaseException:
            self._stop(terminate=True)
            raise


def _init_pool_worker(settings: WorkerSettings) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates the workers
    init_worker(settings, True)


def default_jobs() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
