"""Labelled audio listed in a CSV: ``--manifest FILE`` with columns ``path,label`` and an optional ``split``.

Relative paths are relative to the CSV's folder. A ``split`` column (train|val|test on every row) is kept as given;
without any ``val`` rows, val is carved out of ``train`` (80/20, random_state 42).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from augment.datasets.base import DatasetSpec, Source, read_csv_rows, relative_name, require_file
from augment.datasets.splits import VALID_SPLITS, plan_from_options
from augment.errors import UserError

DEFAULT_TEST = 0.2


def build(opts: dict[str, Any]) -> DatasetSpec:
    manifest = require_file(opts.get("manifest"), "--manifest")
    root = manifest.parent
    columns, rows = read_csv_rows(manifest, ("path", "label"), "manifest")
    has_split = "split" in columns
    sources: list[Source] = []
    notes: list[tuple[str, str]] = []
    seen: set[Path] = set()
    for line, row in enumerate(rows, start=2):
        raw, label = row["path"], row["label"]
        if not raw or not label:
            raise UserError(f"manifest {manifest} line {line}: empty path or label")
        split = row.get("split") if has_split else None
        if has_split and split not in VALID_SPLITS:
            raise UserError(f"manifest {manifest} line {line}: split {split!r} is not one of "
                            f"{', '.join(VALID_SPLITS)}")
        path = (root / raw).resolve()
        if path in seen:
            raise UserError(f"manifest {manifest} line {line}: {raw} is listed twice")
        seen.add(path)
        if not path.is_file():
            notes.append((raw, "listed in the manifest but missing; skipped"))
            continue
        sources.append(Source(path, relative_name(path, root), label, split))
    classes = sorted({s.cls for s in sources} | {r["label"] for r in rows})
    plan = plan_from_options(opts, DEFAULT_TEST)
    # audio_dir: what the manifest's `source` paths are relative to, as for the other audio kinds
    options = {"manifest": str(manifest), "audio_dir": str(root), "split_column": has_split, "split": plan.to_dict()}
    return DatasetSpec(name=opts.get("name") or "csv", kind="audio", classes=classes, sources=sources, plan=plan,
                       options=options, path_options=("manifest", "audio_dir"), notes=notes)
