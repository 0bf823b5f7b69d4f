"""The synthetic folder (``WORKSPACE/synthetic``): its manifest, its record and the checks around them.

Layout::

    synthetic/<class>/seed<NNNNNN>.png   generated images, same format as data/<split>/<class>/*.png
    synthetic/manifest.csv                file,class,seed,snapshot,truncation,sha256 (file relative to this folder)
    synthetic/grid-<class>.png            overview grid of the first images of each class
    synthetic/generate.json               config + provenance (code version, snapshot hashes, seeds per class)
    synthetic/_novelty/                   memorization report (``augment check-novelty``)

``classify`` reads the manifest with :func:`read_manifest`.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from augment.errors import UserError
from augment.io_utils import read_csv_manifest, read_json, sha256_bytes
from augment.output_guard import OwnFolder, check_location, files_only, refuse_foreign, source_dirs
from augment.workspace import Workspace

MANIFEST_NAME = "manifest.csv"
RECORD_NAME = "generate.json"
NOVELTY_DIR = "_novelty"     # leading "_": classify skips it when listing class folders
MANIFEST_FIELDS = ("file", "class", "seed", "snapshot", "truncation", "sha256")
RECORD_FORMAT = "augment-synthetic-v1"
RECORD_MAX_BYTES = 64 << 20   # a generate.json is a few KB; bound what a planted file can cost
NOVELTY_FILES = r"novelty\.json|novelty\.csv|novelty-hist\.png|closest-.+\.png"   # what check-novelty writes


@dataclass(frozen=True)
class FakeRow:
    file: str           # relative to the synthetic folder: <class>/seed<NNNNNN>.png
    cls: str
    seed: int
    snapshot: str       # workspace-relative path of the snapshot (absolute when outside the workspace)
    truncation: float
    sha256: str


def image_name(seed: int) -> str:
    """File name of the fake made from ``seed``."""
    return f"seed{seed:06d}.png"


def grid_name(cls: str) -> str:
    return f"grid-{cls}.png"


def manifest_text(rows: Iterable[FakeRow], classes: Sequence[str]) -> str:
    """Canonical CSV (workspace class order, then seed; LF line ends) so equal runs give equal bytes."""
    order = {c: i for i, c in enumerate(classes)}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(MANIFEST_FIELDS)
    for r in sorted(rows, key=lambda r: (order.get(r.cls, len(order)), r.cls, r.seed)):
        w.writerow([r.file, r.cls, r.seed, r.snapshot, repr(float(r.truncation)), r.sha256])
    return buf.getvalue()


def read_manifest(folder: str | os.PathLike) -> list[FakeRow]:
    """Rows of ``<folder>/manifest.csv``; a one-line UserError when it is missing or malformed."""
    path = Path(folder) / MANIFEST_NAME
    reader = read_csv_manifest(path, MANIFEST_FIELDS, make="augment generate")
    try:
        return [FakeRow(r["file"], r["class"], int(r["seed"]), r["snapshot"], float(r["truncation"]), r["sha256"])
                for r in reader]
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path} has a malformed row ({exc}); re-run `augment generate --force`") from exc


def workspace_identity(ws: Workspace) -> dict[str, Any]:
    """What the fakes depend on in the workspace config, plus a fingerprint of it.

    Code version, creation time and dataset options (e.g. absolute source paths) are left out on purpose:
    re-preparing the same data (the split manifest hashes every source and image) gives the same identity.
    """
    cfg = ws.config
    ident = {
        "dataset": (cfg.get("dataset") or {}).get("name"),
        "kind": cfg.get("kind"),
        "classes": cfg.get("classes"),
        "image": cfg.get("image"),
        "mel": cfg.get("mel"),
        "splits_sha256": (cfg.get("splits") or {}).get("sha256"),
    }
    fingerprint = sha256_bytes(json.dumps(ident, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    return {"fingerprint": fingerprint, **ident}


def read_record(folder: str | os.PathLike) -> dict[str, Any] | None:
    """``generate.json`` of a synthetic folder, or None when there is none (or it is unreadable)."""
    path = Path(folder) / RECORD_NAME
    try:
        rec = read_json(path, max_bytes=RECORD_MAX_BYTES)
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("format") == RECORD_FORMAT else None


def _own_entry(entry: Path) -> bool:
    if entry.name == MANIFEST_NAME or re.fullmatch(r"grid-.+\.png", entry.name):
        return entry.is_file() and not entry.is_symlink()
    if entry.name == NOVELTY_DIR:
        return files_only(entry, NOVELTY_FILES)
    return files_only(entry, r"seed\d{6,}\.(png|wav)")   # a class folder


# what `augment generate` writes: --force replaces nothing else (augment/output_guard.py)
GENERATED = OwnFolder("augment generate", RECORD_NAME,
                      record_ok=lambda f: read_record(f) is not None and (f / MANIFEST_NAME).is_file(),
                      entry_ok=_own_entry)


@dataclass(frozen=True)
class OutputPlan:
    """What `augment generate` does with its output folder."""

    record: dict[str, Any] | None      # the folder's record when its other classes are kept (same config)
    archive: bool                      # the existing folder is replaced (--force) and moved to archive/


def check_reusable(folder: Path, ws: Workspace, *, force: bool, option: str = "--out") -> OutputPlan:
    """Decide what happens to an existing output ``folder``.

    Made by `augment generate` from this same workspace config: updated (its other classes kept). Made by it from
    another config: refused, or with ``force`` replaced (the old folder goes to archive/). Anything else — a folder
    generate did not make, a workspace, data/, runs/, the source audio — is refused even with ``force``.
    """
    check_location(folder, root=ws.root, sources=source_dirs(ws.config), option=option)
    if not folder.exists() or not any(folder.iterdir()):
        return OutputPlan(None, False)
    refuse_foreign(folder, GENERATED, option=option)
    rec = read_record(folder)
    assert rec is not None
    theirs = (rec.get("workspace") or {}).get("fingerprint")
    if theirs == workspace_identity(ws)["fingerprint"]:
        return OutputPlan(None, True) if force else OutputPlan(rec, False)
    if not force:
        raise UserError(f"{folder} holds fakes made for a different workspace config (dataset, classes, image format "
                        f"or splits changed); pass --force to replace them (the old folder is moved to "
                        f"{ws.root / 'archive'}/), or choose another {option}")
    return OutputPlan(None, True)


def fill_command(ws: Workspace, cls: str, n: int = 1000) -> str:
    """What to run so that ``cls`` has fakes: generate it, or — without a trained model — train it first."""
    from augment.trained_models import train_command

    gen = f"augment generate --workspace {ws.root} --class {cls} --n {n}"
    if any(ws.runs_dir(cls).glob("*/network-snapshot-*")):
        return f"run `{gen}`"
    return f"class {cls} has no trained GAN yet: run `{train_command(ws, cls)}`, then `{gen}`"


def format_seeds(seeds: Sequence[int]) -> str:
    """Compact text of a seed list: [0,1,2,3,7] -> '0-3,7' (read back with ``parse_int_list``)."""
    parts: list[str] = []
    i = 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        parts.append(str(seeds[i]) if i == j else f"{seeds[i]}-{seeds[j]}")
        i = j + 1
    return ",".join(parts)
