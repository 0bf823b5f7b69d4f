"""What an `augment generate` output folder carries besides the new images: the classes of an earlier run that this
run does not replace (hard links), the record generate.json, and the optional WAVs."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from augment.generate_options import SEED_STRIDE, GenerateOptions
from augment.io_utils import atomic_write_json
from augment.provenance import run_record
from augment.synthetic import RECORD_FORMAT, RECORD_NAME, FakeRow, format_seeds, grid_name, image_name, \
    read_manifest, workspace_identity
from augment.workspace import Workspace

if TYPE_CHECKING:
    from augment.generate import ClassResult


def keep_old_classes(old_dir: Path, new_dir: Path, record: dict[str, Any] | None, replaced: set[str],
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


def write_record(folder: Path, ws: Workspace, opts: GenerateOptions, entries: dict[str, Any],
                 results: Sequence[ClassResult], command: list[str] | None) -> None:
    """generate.json: the workspace identity, every class entry and this run's record (config, seeds, hashes)."""
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
