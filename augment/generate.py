"""Generate fakes from trained generators into ``WORKSPACE/synthetic`` (the library behind ``augment generate``).

Each fake comes from one seed: ``z = RandomState(seed).randn(z_dim)`` as in the reference, so an image depends only
on (snapshot, seed, class, truncation, noise mode) — not on the batch size or on which other classes were generated.
The generator's 3 output channels are averaged to gray and replicated into RGB, the format of the real images, so
``classify`` and ``augment listen`` read fakes like real ones. A generator of another resolution than the workspace
(e.g. the `tiny` preset, which trains at most 64 px) has its output resized to the workspace's resolution with the
resampling `augment prepare` uses for the real images (bicubic, antialiased, in float before rounding).

This module drives a run; by concern: options and seeds in ``generate_options.py``, seed -> image in ``render.py``,
the PNG writer pool and grids in ``png_output.py``, kept classes / record / WAVs in ``generate_output.py``, the
atomic folder swap in ``io_utils.atomic_dir`` (``dir_swap.py``).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from augment.dir_swap import fault_point
from augment.errors import UserError
from augment.generate_options import GenerateOptions, class_seeds
from augment.generate_output import keep_old_classes, write_audio, write_record
from augment.io_utils import atomic_dir, atomic_write_text, check_writable_dir
from augment.output_guard import archive_path, check_location, source_dirs
from augment.png_output import ImageWriter, save_gray_grid
from augment.provenance import code_version, now_iso
from augment.render import RESAMPLING, synthesize
from augment.synthetic import MANIFEST_NAME, FakeRow, check_reusable, format_seeds, grid_name, image_name, \
    manifest_text
from augment.trained_models import LoadedModel, ModelChoice, label_index, load_model, served_classes
from augment.workspace import Workspace
from augment.workspace_lock import workspace_lock
from augment.workspace_schema import require_audio_settings

GRID_COLS = 8                  # the overview grid shows up to the first 8x8 fakes of a class


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
        kept_rows, kept_entries = keep_old_classes(out, tmp, record, {r.cls for r in results}, ws)
        rows = kept_rows + [row for res in results for row in res.rows]
        atomic_write_text(tmp / MANIFEST_NAME, manifest_text(rows, ws.classes))
        entries = {**kept_entries, **{res.cls: res.entry for res in results}}
        entries = {c: entries[c] for c in ws.classes if c in entries}
        seconds = time.perf_counter() - t0
        write_record(tmp, ws, opts, entries, results, command)
        fault_point("generate", 1)
    return GenerateSummary(out, total, [r.cls for r in results], seconds, entries, audio_files, audio_seconds,
                           archived=archive_to)


