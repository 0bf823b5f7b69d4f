"""`augment prepare`: labelled audio (or images) → a split, hashed workspace of RGB mel-spectrogram PNGs.

Order of work (nothing in the workspace changes until the new dataset is complete):
1. refuse early if the workspace holds a different dataset (unless ``force``);
2. hash + probe every source in parallel; unusable files are skipped with a warning naming them, duplicates of
   another source's bytes are skipped too (so the same audio can never sit in two splits);
3. assign splits on the usable clips (fatal if a class has too few);
4. convert in parallel into a staging folder, write splits.csv + augment.json there, then switch the complete new
   state into place through a journal (augment/workspace_journal.py): a kill at any instant leaves a workspace that
   the next command completes; Ctrl-C before the switch leaves it as it was. One prepare/generate at a time holds
   the workspace lock.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from stylegan_ada.training.run_lock import RunLock, RunLockedError

from augment.audio.mel import MelConfig, empty_band_warning
from augment.datasets.base import DatasetSpec, Source
from augment.datasets.groups import assign_with_groups
from augment.dir_swap import fault_point
from augment.errors import UserError, warn
from augment.io_utils import check_writable_dir
from augment.near_duplicates import drop_near_duplicates
from augment.output_guard import archive_path
from augment.prepare_worker import Converted, WorkerPool, WorkerSettings, convert_file, scan_file
from augment.provenance import run_record
from augment.segments import CONFIG_KEY as SEGMENTS_KEY, ImageJob, Segmenting, image_jobs, segments_record
from augment.workspace import CONFIG_NAME, SPLITS, SplitRow, Workspace, parse_manifest, read_config, resolve_root, \
    write_workspace
from augment.workspace_journal import commit, complete_switch, new_staging, pending, plan_switch
from augment.workspace_lock import workspace_lock

MAX_WARNING_LINES = 20
DERIVED_DIRS = ("runs", "synthetic", "results")  # what later commands built from the previous dataset


@dataclass
class PrepareReport:
    workspace: Workspace
    seconds: float
    padded: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    archived: Path | None = None

    def summary_line(self) -> str:
        ws = self.workspace
        counts = ws.config["splits"]["counts"]
        per_split = ", ".join(f"{s} {sum(counts[s].values())}" for s in SPLITS)
        total = sum(sum(counts[s].values()) for s in SPLITS)
        what = f"{total} clips" if SEGMENTS_KEY not in ws.config else \
            f"{total} images of {len({r.source for r in ws.rows()})} clips"
        strata = f"{len(ws.classes)} classes" if ws.task != "regression" else \
            f"target {ws.target_name} in {len(ws.classes)} quantile bins"
        return (f"prepared {ws.dataset_name}: {what}, {strata} ({per_split}); "
                f"{len(self.padded)} padded, {len(self.skipped)} skipped; {self.seconds:.1f} s → {ws.root}")


def class_table(ws: Workspace) -> str:
    """Per-class × split counts of a workspace, as a small aligned text table."""
    counts = ws.config["splits"]["counts"]
    width = max(len("class"), *(len(c) for c in ws.classes))
    lines = [f"{'class':<{width}}  " + "  ".join(f"{s:>5}" for s in SPLITS) + "  total"]
    for c in ws.classes + ["total"]:
        vals = [sum(counts[s].values()) if c == "total" else counts[s].get(c, 0) for s in SPLITS]
        lines.append(f"{c:<{width}}  " + "  ".join(f"{v:>5}" for v in vals) + f"  {sum(vals):>5}")
    return "\n".join(lines)


def _warn_files(items: list[tuple[str, str]]) -> None:
    for name, reason in items[:MAX_WARNING_LINES]:
        warn(f"{name}: {reason}")
    if len(items) > MAX_WARNING_LINES:
        warn(f"... and {len(items) - MAX_WARNING_LINES} more (all listed in {CONFIG_NAME} under prepare.skipped)")


def image_info(mel: MelConfig | None, resolution: int) -> dict[str, Any]:
    """augment.json ``image``: size, channels and the exact pixel mapping (mel dB for audio, grayscale for images)."""
    from augment.audio.image_mapping import mapping_dict
    from augment.datasets.images import IMAGE_MAPPING

    mapping = mapping_dict(mel.top_db, (mel.n_mels, mel.n_frames)) if mel is not None else dict(IMAGE_MAPPING)
    return {"resolution": resolution, "channels": 3, "mapping": mapping}


def identity_sha256(spec: DatasetSpec, mel: dict[str, Any] | None, image: dict[str, Any],
                    segmenting: Segmenting | None = None) -> str:
    """What makes two prepared datasets "the same", path locations excluded."""
    ident = {"dataset": spec.name, "kind": spec.kind, "classes": spec.classes, "options": spec.identity_options(),
             "mel": mel, "image": image}
    if segmenting is not None:  # absent without segments, so earlier workspaces keep their identity
        ident["segments"] = segmenting.to_dict()
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def _existing_config(root: Path, force: bool) -> dict[str, Any] | None:
    """The workspace's current augment.json (None if there is none); refuses a foreign data/ folder."""
    cfg_path = root / CONFIG_NAME
    if not cfg_path.exists():
        data = root / "data"
        if data.exists() and any(data.iterdir()) and not force:
            raise UserError(f"{data} exists but {root} is not a prepared workspace (no {CONFIG_NAME}); "
                            "choose an empty --workspace, or pass --force to move that folder to archive/ and "
                            "prepare here")
        return None
    try:
        return read_config(cfg_path)  # parsed with bounded size and nesting, validated field by field
    except UserError as exc:
        if force:
            return {}
        raise UserError(f"{exc.format_message()} (or pass --force to replace the workspace: its files are moved to "
                        "archive/)") from exc


def _old_rows(root: Path, cfg: dict[str, Any]) -> set[tuple[str, ...]] | None:
    try:
        rows = parse_manifest((root / cfg["splits"]["manifest"]).read_text(encoding="utf-8"))
    except (OSError, KeyError, TypeError, UserError, UnicodeDecodeError):
        return None
    return {_row_key(r) for r in rows}


def _row_key(r: SplitRow) -> tuple[str, ...]:
    return (r.image, r.cls, r.split, r.source, r.source_sha256)


def _describe(cfg: dict[str, Any]) -> str:
    ds = cfg.get("dataset") or {}
    extra = {k: v for k, v in (ds.get("options") or {}).items() if k in ("protocol", "target")}
    return f"{ds.get('name', '?')}" + (f" ({', '.join(f'{k} {v}' for k, v in extra.items())})" if extra else "")


def _image_stems(sources: list[Source]) -> dict[Source, str]:
    """File stem per source, unique within its class (falls back to the flattened source path on a clash)."""
    seen = Counter((s.cls, Path(s.name).stem) for s in sources)
    return {s: Path(s.name).stem if seen[(s.cls, Path(s.name).stem)] == 1
            else s.name.replace("/", "__").replace(".", "_") for s in sources}


def _usable_sources(spec: DatasetSpec, pool: WorkerPool) -> tuple[dict[Source, str], list[tuple[str, str]]]:
    """source → sha256 for the usable, de-duplicated sources; plus (name, reason) for each skipped one."""
    scans = pool.map(scan_file, [s.path for s in spec.sources], "checking")
    usable: dict[Source, str] = {}
    skipped: list[tuple[str, str]] = []
    first_by_hash: dict[str, Source] = {}
    for s, (digest, problem) in sorted(zip(spec.sources, scans), key=lambda t: t[0].name):
        if digest is None:
            skipped.append((s.name, f"{problem}; skipped"))
        elif digest in first_by_hash:
            other = first_by_hash[digest]
            skipped.append((s.name, f"same bytes as {other.name} (class {other.cls}); skipped so one audio "
                                    "cannot land in two splits"))
        else:
            first_by_hash[digest] = s
            usable[s] = digest
    return usable, skipped


def _convert(pool: WorkerPool, usable: dict[Source, str], tmp: Path, items: list[ImageJob]
             ) -> tuple[list[SplitRow], list[Converted], list[tuple[str, str]]]:
    """Convert every image job (one per (source, split), or per window: augment.segments) into ``tmp/<image>``.

    Returns the manifest rows with their conversion results (same order), and (name, reason) for failures.
    """
    rows: list[SplitRow] = []
    converted: list[Converted] = []
    failed: list[tuple[str, str]] = []
    first_by_image: dict[str, ImageJob] = {}
    for item, res in zip(items, pool.map(convert_file, [j.job(tmp) for j in items], "converting")):
        s, split = item.source, item.split
        if res.image_sha256 is None:
            failed.append((item.name, f"{res.problem}; skipped (after splitting: its {split} split is one short)"))
            continue
        if (other := first_by_image.setdefault(res.image_sha256, item)) is not item:
            # e.g. two silent clips: identical images in two splits would make training refuse the workspace
            (tmp / item.image).unlink()
            failed.append((item.name, f"its image is identical to that of {other.name} (silent or constant "
                                      f"audio?); skipped (its {split} split is one short)"))
            continue
        rows.append(SplitRow(f"data/{item.image}", s.cls, split, s.name, usable[s], res.image_sha256, s.target))
        converted.append(res)
    return rows, converted, failed


def prepare_dataset(spec: DatasetSpec, *, workspace: str | os.PathLike | None, mel: MelConfig | None,
                    resolution: int, jobs: int, force: bool = False, group_by: str | None = None,
                    segmenting: Segmenting | None = None) -> PrepareReport:
    """Build the workspace for ``spec``; see the module docstring for the order of work.

    ``group_by``: keep every clip of a group in one split (augment.datasets.groups); ``segmenting``: several
    images per clip (augment.segments).
    """
    t0 = time.time()
    root = resolve_root(workspace)
    if spec.class_root is not None and (root == spec.class_root or spec.class_root in root.parents):
        raise UserError(f"--workspace {root} lies inside the source folder {spec.class_root}, whose subfolders are "
                        "the classes (its data/ would become one): choose a workspace outside it")
    root = check_writable_dir(root)
    with workspace_lock(root, "augment prepare"):
        complete_switch(root)
        return _prepare_locked(spec, root, mel=mel, resolution=resolution, jobs=jobs, force=force, t0=t0,
                               group_by=group_by, segmenting=segmenting)


def _prepare_locked(spec: DatasetSpec, root: Path, *, mel: MelConfig | None, resolution: int, jobs: int,
                    force: bool, t0: float, group_by: str | None = None,
                    segmenting: Segmenting | None = None) -> PrepareReport:
    mel_dict = mel.to_dict() if mel is not None else None
    image = image_info(mel, resolution)
    ident = identity_sha256(spec, mel_dict, image, segmenting)
    old = _existing_config(root, force)
    same_dataset = old is not None and (old.get("prepare") or {}).get("identity_sha256") == ident
    if old is not None and not same_dataset and not force:
        raise UserError(f"workspace {root} already holds a different dataset ({_describe(old)}); use another "
                        "--workspace, or --force to replace it (it and its runs/synthetic/results are moved to "
                        "archive/)")
    if mel is not None and (msg := empty_band_warning(mel)):
        warn(msg)
    _warn_files(spec.notes)

    staging = new_staging(root)
    try:
        settings = WorkerSettings(kind=spec.kind, mel=mel, resolution=resolution)
        with WorkerPool(settings, jobs) as pool:
            usable, skipped = _usable_sources(spec, pool)
            _warn_files(skipped)
            by_class: dict[str, list[Source]] = {c: [] for c in spec.classes}
            for s in usable:
                by_class[s.cls].append(s)
            assigned, excluded, groups = assign_with_groups(spec, by_class, group_by)
            _warn_files(excluded)
            skipped += excluded
            work = [(s, split) for c in spec.classes for s, split in assigned[c]]
            items = image_jobs(pool, work, _image_stems([s for s, _ in work]), segmenting, mel)
            rows, converted, failed = _convert(pool, usable, staging / "data", items)
            # near-copies of one clip in two splits (gain, noise, shift): the test side keeps it
            rows, converted, near = drop_near_duplicates(pool, rows, converted, staging, resolution)
            failed += near
        _warn_files(failed)
        skipped += failed
        _check_every_class_usable(spec.classes, rows)
        splits_changed = same_dataset and _old_rows(root, old) != {_row_key(r) for r in rows}
        if splits_changed and not force:
            raise UserError(f"re-preparing {root} would change its splits (the source files changed); "
                            "runs trained on the old splits would leak test data — use a new --workspace, "
                            "or --force to replace it")
        # a different dataset, changed splits or a foreign data/ folder: the old state is archived, never deleted
        replacing = (not same_dataset or splits_changed) if old is not None else (root / "data").exists()
        seconds = time.time() - t0
        padded = sorted({row.source for row, res in zip(rows, converted) if res.padded})
        extra = _prepare_record(spec, ident, resolution, jobs, force, seconds, padded, skipped, converted)
        if groups is not None:
            extra["groups"] = groups  # read by the leak guard
        if spec.target is not None:  # --continuous: the classes are the target's quantile bins (split strata)
            extra.update(task="regression", target=spec.target)
        if (seg_record := segments_record(segmenting, mel, items, {r.image for r in rows})) is not None:
            extra[SEGMENTS_KEY] = seg_record  # read by `classify eval` (per-clip scores) and the summary
        ws = write_workspace(staging, dataset=spec.name, options=spec.options, kind=spec.kind, classes=spec.classes,
                             image=image, mel=mel_dict, rows=rows, extra=extra)
        fault_point("prepare", 1)  # test hook: the new state is complete, the switch has not begun
        archived = archive_path(root, str(((old or {}).get("dataset") or {}).get("name", "previous"))) \
            if replacing else None
        # a foreign folder's runs/ etc. are not ours to move: only a workspace's derived folders go with it
        derived = DERIVED_DIRS if old is not None else ()
        with _hold_runs(root) if archived is not None else contextlib.nullcontext():
            commit(root, plan_switch(root, staging, archive_to=archived, derived=derived))
    except BaseException:
        if not pending(root):
            shutil.rmtree(staging, ignore_errors=True)
        raise
    return PrepareReport(Workspace(root, ws.config), seconds, padded=padded, skipped=skipped, archived=archived)


def _prepare_record(spec: DatasetSpec, ident: str, resolution: int, jobs: int, force: bool, seconds: float,
                    padded: list[str], skipped: list[tuple[str, str]], converted: list[Converted]) -> dict[str, Any]:
    """augment.json ``prepare``: the standard run record (code version, command, seeds, environment) plus what this
    preparation found."""
    record = run_record({"dataset": spec.kind, "name": spec.name, "resolution": resolution, "jobs": jobs,
                         "force": force},
                        seeds={"test": spec.plan.test_seed, "pool": spec.plan.pool_seed, "val": spec.plan.val_seed},
                        data_hashes={"identity_sha256": ident})
    return {"prepare": {
        **record, "identity_sha256": ident, "jobs": jobs, "seconds": round(seconds, 2),
        "padded": padded, "skipped": [{"source": n, "reason": r} for n, r in skipped],
        "downmixed": sum(r.downmixed for r in converted), "resampled": sum(r.resampled for r in converted),
    }}


@contextlib.contextmanager
def _hold_runs(root: Path) -> Iterator[None]:
    """Hold the lock of every training run under runs/ while they are moved (refuse if one is training now)."""
    with contextlib.ExitStack() as stack:
        for run_dir in sorted(p for p in (root / "runs").glob("*/*") if p.is_dir() and not p.is_symlink()):
            try:
                stack.enter_context(RunLock(run_dir))
            except RunLockedError:
                raise UserError(f"{run_dir} is being trained right now; stop that `augment train` before replacing "
                                "the dataset (its runs would be moved to archive/)") from None
        yield


def _check_every_class_usable(classes: list[str], rows: list[SplitRow]) -> None:
    for c in classes:
        have = {r.split for r in rows if r.cls == c}
        missing = [s for s in ("train", "test") if s not in have]
        if missing:
            raise UserError(f"class {c!r} has no usable {' or '.join(missing)} clips after skipping unreadable "
                            "files; fix or replace them")
