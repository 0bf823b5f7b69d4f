"""Generate fakes from trained generators into ``WORKSPACE/synthetic`` (the library behind ``augment generate``).

Each fake comes from one seed: ``z = RandomState(seed).randn(z_dim)`` as in the reference, so an image depends only
on (snapshot, seed, class, truncation, noise mode) — not on the batch size or on which other classes were generated.
The generator's 3 output channels are averaged to gray and replicated into RGB, the format of the real images, so
``classify`` and ``augment listen`` read fakes like real ones. A generator of another resolution than the workspace
(e.g. the `tiny` preset, which trains at most 64 px) has its output resized to the workspace's resolution with the
resampling `augment prepare` uses for the real images (bicubic, antialiased, in float before rounding).
"""
from __future__ import annotations

import collections
import os
import shutil
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from augment.audio.image_mapping import gray_to_rgb_png
from augment.errors import UserError, user_device
from augment.dir_swap import fault_point
from augment.io_utils import atomic_dir, atomic_write_json, atomic_write_text, check_writable_dir, sha256_bytes
from augment.output_guard import archive_path, check_location, source_dirs
from augment.provenance import code_version, now_iso, run_record
from augment.render import RESAMPLING, synthesize
from augment.synthetic import (MANIFEST_NAME, RECORD_FORMAT, RECORD_NAME, FakeRow, check_reusable, format_seeds,
                               grid_name, image_name, manifest_text, read_manifest, workspace_identity)
from augment.trained_models import LoadedModel, ModelChoice, label_index, load_model, served_classes
from augment.workspace import Workspace
from augment.workspace_lock import workspace_lock
from augment.workspace_schema import require_audio_settings

NOISE_MODES = ("const", "random", "none")
SEED_STRIDE = 100_000          # class k gets seeds k*SEED_STRIDE ... by default, so classes never share a z
MAX_SEED = 2**32 - 1           # numpy RandomState accepts 0 .. 2**32-1
GRID_COLS = 8                  # the overview grid shows up to the first 8x8 fakes of a class


@dataclass
class GenerateOptions:
    """What to generate and how; validated by :meth:`check`."""
    n: int | None = None
    seeds: list[int] | None = None
    truncation_psi: float = 1.0
    noise_mode: str = "const"
    batch: int = 32
    device: str | None = None
    audio_n: int = 0
    force: bool = False
    out: Path | None = None
    workers: int | None = None

    def check(self) -> None:
        if self.seeds is not None:
            if self.n is not None and self.n != len(self.seeds):
                raise UserError(f"--n {self.n} disagrees with --seeds ({len(self.seeds)} seeds); give one of them")
            bad = [s for s in self.seeds if not 0 <= s <= MAX_SEED]
            if bad:
                raise UserError(f"seeds must lie in 0..{MAX_SEED}, got {bad[0]}")
            if len(set(self.seeds)) != len(self.seeds):
                raise UserError("--seeds lists a seed twice; each seed makes one file, give each once")
            if not self.seeds:
                raise UserError("--seeds is empty; give e.g. --seeds 0-99")
        elif self.n is None:
            self.n = 1000
        if self.seeds is None and self.n <= 0:
            raise UserError(f"--n must be a positive number of images per class, got {self.n}")
        if self.seeds is None and self.n > SEED_STRIDE:
            raise UserError(f"--n {self.n} is above {SEED_STRIDE} per class; give an explicit --seeds range instead")
        if self.noise_mode not in NOISE_MODES:
            raise UserError(f"--noise-mode must be one of {', '.join(NOISE_MODES)}, got {self.noise_mode!r}")
        if self.batch <= 0:
            raise UserError(f"--batch must be a positive number of images, got {self.batch}")
        if self.audio_n < 0:
            raise UserError(f"--audio-n must be >= 0, got {self.audio_n}")
        if not np.isfinite(self.truncation_psi):
            raise UserError(f"--trunc must be a finite number, got {self.truncation_psi}")
        self.device = user_device(self.device)


def class_seeds(ws: Workspace, cls: str, opts: GenerateOptions) -> list[int]:
    """The seeds of one class: ``--seeds`` when given, else n seeds starting at class_index * SEED_STRIDE."""
    if opts.seeds is not None:
        return list(opts.seeds)
    start = ws.classes.index(cls) * SEED_STRIDE
    return list(range(start, start + int(opts.n)))


# ---------------------------------------------------------------------------------------------------- writing
def default_workers() -> int:
    """PNG encoder threads: one per core, at most 16."""
    return min(16, os.cpu_count() or 1)


class ImageWriter:
    """Encode and write PNGs on a thread pool (zlib releases the GIL) while the generator computes the next batch."""

    def __init__(self, workers: int | None = None, on_done: Callable[[int], None] | None = None):
        self.workers = workers or default_workers()
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="png")
        self.pending: collections.deque[tuple[Any, Future]] = collections.deque()
        self.results: dict[Any, str] = {}
        self.on_done = on_done
        self.max_pending = 8 * self.workers + 256

    def submit(self, key: Any, path: Path, gray: np.ndarray) -> None:
        self.pending.append((key, self.pool.submit(_write_png, path, gray)))
        while self.pending and (len(self.pending) > self.max_pending or self.pending[0][1].done()):
            self._reap_one()

    def _reap_one(self) -> None:
        key, fut = self.pending.popleft()
        self.results[key] = fut.result()
        if self.on_done:
            self.on_done(1)

    def drain(self) -> dict[Any, str]:
        while self.pending:
            self._reap_one()
        return self.results

    def close(self) -> None:
        for _, fut in self.pending:
            fut.cancel()
        self.pool.shutdown(wait=True)


def _write_png(path: Path, gray: np.ndarray) -> str:
    data = gray_to_rgb_png(gray)
    with open(path, "wb") as f:
        f.write(data)
    return sha256_bytes(data)


# ---------------------------------------------------------------------------------------------------- driver
@dataclass
class ClassResult:
    cls: str
    seeds: list[int]
    rows: list[FakeRow]
    entry: dict[str, Any]


@dataclass
class GenerateSummary:
    out: Path
    images: int
    classes: list[str]
    seconds: float                  # everything: loading, generating, writing, audio
    per_class: dict[str, dict[str, Any]]
    audio_files: int = 0
    audio_seconds: float = 0.0
    archived: Path | None = None    # where the replaced output folder was moved (--force), for the CLI to say

    @property
    def images_per_s(self) -> float:
        """Images per second of the image part (audio excluded)."""
        image_seconds = self.seconds - self.audio_seconds
        return self.images / image_seconds if image_seconds > 0 else float("inf")

    def line(self) -> str:
        audio = f", {self.audio_files} WAVs in {self.audio_seconds:.1f} s" if self.audio_files else ""
        return (f"generated {self.images} images for {len(self.classes)} class(es) ({', '.join(self.classes)}) in "
                f"{self.seconds:.1f} s ({self.images_per_s:.1f} images/s{audio}) -> {self.out}")


def _rel(ws: Workspace, path: Path) -> str:
    try:
        return path.resolve().relative_to(ws.root).as_posix()
    except ValueError:
        return str(path.resolve())


def render_to_dir(G: Any, seeds: Sequence[int], folder: Path, writer: ImageWriter, *, label: int | None,
                  opts: GenerateOptions, key: Any = None, keep: int = 0, size: int | None = None) -> list[np.ndarray]:
    """Synthesize ``seeds`` (resized to ``size`` px when given) and queue their PNGs (``folder/seed<NNNNNN>.png``)
    on ``writer``, keyed (key, seed). Returns the first ``keep`` gray images (for the overview grid).
    """
    folder.mkdir(parents=True, exist_ok=True)
    kept: list[np.ndarray] = []
    for chunk, grays in synthesize(G, seeds, label=label, truncation_psi=opts.truncation_psi,
                                   noise_mode=opts.noise_mode, batch=opts.batch, device=str(opts.device), size=size):
        for seed, gray in zip(chunk, grays):
            writer.submit((key, seed), folder / image_name(seed), gray)
            if len(kept) < keep:
                kept.append(gray)
    return kept


def generate_class(ws: Workspace, model: LoadedModel, cls: str, out_dir: Path, opts: GenerateOptions,
                   writer: ImageWriter) -> ClassResult:
    """Generate one class into ``out_dir/<cls>/`` plus its grid; returns its manifest rows and record entry."""
    seeds = class_seeds(ws, cls, opts)
    label = label_index(model, ws, cls)
    native = int(model.G.img_resolution)
    grid = render_to_dir(model.G, seeds, out_dir / cls, writer, label=label, opts=opts, key=cls,
                         keep=GRID_COLS * GRID_COLS, size=ws.resolution)
    save_gray_grid(out_dir / grid_name(cls), grid, min(GRID_COLS, len(grid)))
    snapshot = _rel(ws, model.ref.path)
    rows = [FakeRow(f"{cls}/{image_name(s)}", cls, s, snapshot, float(opts.truncation_psi), "") for s in seeds]
    entry = {
        "n": len(seeds), "seeds": format_seeds(seeds), "snapshot": snapshot, "snapshot_sha256": model.sha256,
        "kimg": model.ref.kimg, "conditional": model.conditional, "label": label,
        "native_resolution": native, "resolution": ws.resolution,
        "resized": RESAMPLING if native != ws.resolution else None,
        "truncation_psi": float(opts.truncation_psi), "noise_mode": opts.noise_mode,
        "batch": opts.batch if opts.noise_mode == "random" else None, "device": str(opts.device),
        "grid": grid_name(cls), "audio": [], "code_version": code_version(), "created": now_iso(),
    }
    return ClassResult(cls, seeds, rows, entry)


def save_gray_grid(path: Path, grays: Sequence[np.ndarray], cols: int) -> None:
    """Tile uint8 gray images row-major (``cols`` wide, only full rows) with the training grid writer."""
    import torch

    from stylegan_ada.training.grids import save_grid

    rows = max(1, len(grays) // cols)
    images = torch.from_numpy(np.stack(grays[:cols * rows]))[:, None].repeat(1, 3, 1, 1)
    save_grid(images, path, cols, rows, (0, 255))


def _keep_old_classes(old_dir: Path, new_dir: Path, record: dict[str, Any] | None, replaced: set[str],
                      ws: Workspace) -> tuple[list[FakeRow], dict[str, Any]]:
    """Carry the other classes of an earlier run into the new folder (hard links; copies where links fail)."""
    if record is None:
        return [], {}
    old_rows = read_manifest(old_dir)
    kept = {c: e for c, e in (record.get("classes") or {}).items()
            if c not in replaced and c in ws.classes and (old_dir / c).is_dir()}
    for cls, entry in kept.items():
        shutil.copytree(old_dir / cls, new_dir / cls, copy_function=_link_or_copy)
        grid = old_dir / str(entry.get("grid", grid_name(cls)))
        if grid.is_file():
            _link_or_copy(grid, new_dir / grid.name)
    return [r for r in old_rows if r.cls in kept], kept


def _link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def generate(ws: Workspace, choices: Sequence[ModelChoice], opts: GenerateOptions, *,
             progress: bool = True, command: list[str] | None = None,
             log: Callable[[str], None] | None = None) -> GenerateSummary:
    """Generate every class of ``choices`` into the synthetic folder, atomically, and record how.

    ``log`` receives the notes worth showing (a generator resized to the workspace); nothing is printed here."""
    opts.check()
    if str(opts.device) == "cpu":
        from stylegan_ada.ops.cpu_memory import retain_freed_memory

        retain_freed_memory()  # no page faults on every batch's activations: ~40% faster on CPU (docs/benchmarks.md)
    out = Path(opts.out) if opts.out is not None else ws.synthetic_dir
    check_location(out, root=ws.root, sources=source_dirs(ws.config), option="--out")  # before creating anything
    check_writable_dir(out.parent)
    with workspace_lock(ws.root, "augment generate"):
        return _generate(ws, choices, opts, out, progress=progress, command=command, log=log or (lambda _: None))


def _generate(ws: Workspace, choices: Sequence[ModelChoice], opts: GenerateOptions, out: Path, *,
              progress: bool, command: list[str] | None, log: Callable[[str], None]) -> GenerateSummary:
    from tqdm import tqdm

    plan_out = check_reusable(out, ws, force=opts.force)
    record = plan_out.record
    archive_to = archive_path(ws.root, out.name) if plan_out.archive else None
    if opts.audio_n and ws.config.get("mel") is None:
        raise UserError("--audio needs a workspace of mel spectrograms (made from audio); this one holds plain images")
    if opts.audio_n:
        require_audio_settings(ws.config, ws.root / "augment.json")

    t0 = time.perf_counter()
    models = [(choice, load_model(choice, str(opts.device))) for choice in choices]
    plan = [(choice, model, served_classes(choice, model, ws)) for choice, model in models]
    for _, model, served in plan:
        if int(model.G.img_resolution) != ws.resolution:
            log(f"note: {_rel(ws, model.ref.path)} makes {model.G.img_resolution}px images; resizing them to "
                f"this workspace's {ws.resolution}px (bicubic) for class(es) {', '.join(served)}")
    classes = [c for _, _, served in plan for c in served]
    dupes = sorted({c for c in classes if classes.count(c) > 1})
    if dupes:
        raise UserError(f"class {dupes[0]} would be generated twice; choose one model per class")
    total = sum(len(class_seeds(ws, c, opts)) for c in classes)

    results: list[ClassResult] = []
    with atomic_dir(out, archive_to=archive_to) as tmp:
        bar = tqdm(total=total, desc="generate", unit="img", file=sys.stderr, disable=not progress, leave=False)
        writer = ImageWriter(opts.workers, on_done=bar.update)
        try:
            for _, model, served in plan:
                for cls in served:
                    bar.set_postfix_str(cls)
                    results.append(generate_class(ws, model, cls, tmp, opts, writer))
            hashes = writer.drain()
        finally:
            writer.close()
            bar.close()
        for res in results:
            res.rows = [FakeRow(r.file, r.cls, r.seed, r.snapshot, r.truncation, hashes[(r.cls, r.seed)])
                        for r in res.rows]
        audio_start = time.perf_counter()
        audio_files = write_audio(ws, tmp, results, opts.audio_n, progress=progress) if opts.audio_n else 0
        audio_seconds = time.perf_counter() - audio_start
        kept_rows, kept_entries = _keep_old_classes(out, tmp, record, {r.cls for r in results}, ws)
        rows = kept_rows + [row for res in results for row in res.rows]
        atomic_write_text(tmp / MANIFEST_NAME, manifest_text(rows, ws.classes))
        entries = {**kept_entries, **{res.cls: res.entry for res in results}}
        entries = {c: entries[c] for c in ws.classes if c in entries}
        seconds = time.perf_counter() - t0
        _write_record(tmp, ws, opts, entries, results, command)
        fault_point("generate", 1)
    return GenerateSummary(out, total, [r.cls for r in results], seconds, entries, audio_files, audio_seconds,
                           archived=archive_to)


def _write_record(folder: Path, ws: Workspace, opts: GenerateOptions, entries: dict[str, Any],
                  results: Sequence[ClassResult], command: list[str] | None) -> None:
    config = {
        "n": opts.n, "seeds": format_seeds(opts.seeds) if opts.seeds is not None else None,
        "truncation_psi": opts.truncation_psi, "noise_mode": opts.noise_mode, "batch": opts.batch,
        "device": str(opts.device), "audio_n": opts.audio_n, "force": opts.force,
        "classes": [r.cls for r in results], "seed_stride": SEED_STRIDE,
    }
    hashes = {"splits_sha256": ws.config["splits"].get("sha256")}
    hashes.update({e["snapshot"]: e["snapshot_sha256"] for e in entries.values()})
    rec = run_record(config, seeds={r.cls: format_seeds(r.seeds) for r in results}, data_hashes=hashes,
                     command=command)
    atomic_write_json(folder / RECORD_NAME, {"format": RECORD_FORMAT, "workspace": workspace_identity(ws),
                                             "classes": entries, "last_run": rec})


def write_audio(ws: Workspace, folder: Path, results: Sequence[ClassResult], per_class: int, *,
                progress: bool = True) -> int:
    """WAVs beside the PNGs (``<class>/seed<NNNNNN>.wav``, Griffin-Lim as in ``augment listen``) for the first
    ``per_class`` seeds of each class; their names go into the class entries. Returns how many were written."""
    from tqdm import tqdm

    from augment.audio.inverse import image_to_wav

    jobs = [(res, seed) for res in results for seed in res.seeds[:per_class]]
    for res, seed in tqdm(jobs, desc="audio", unit="wav", file=sys.stderr, disable=not progress, leave=False):
        png = folder / res.cls / image_name(seed)
        image_to_wav(png, png.with_suffix(".wav"), mel=ws.config["mel"], mapping=ws.config["image"]["mapping"])
        res.entry["audio"].append(png.with_suffix(".wav").name)
    return len(jobs)
