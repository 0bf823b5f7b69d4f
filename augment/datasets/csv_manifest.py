"""Labelled audio or images listed in a CSV: ``--manifest FILE`` with columns ``path,label`` and an optional ``split``.

Every path an image (.png/.jpg/.jpeg, grey or RGB, any size): an image workspace, as ``--dataset images`` makes;
otherwise audio (a mix is refused).

Relative paths are relative to the CSV's folder. A ``split`` column (train|val|test on every row) is kept as given;
without any ``val`` rows, val is carved out of ``train`` (80/20, random_state 42).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from augment.datasets.base import QUANTILE_BINS, DatasetSpec, Source, binned_sources, read_csv_rows, relative_name, \
    require_file
from augment.datasets.images import listed_kind
from augment.datasets.kind import DatasetKind, DatasetOption
from augment.datasets.splits import VALID_SPLITS, plan_from_options
from augment.errors import UserError
from augment.segments import row_window

DEFAULT_TEST = 0.2


def build(opts: dict[str, Any]) -> DatasetSpec:
    manifest = require_file(opts.get("manifest"), "--manifest")
    root = manifest.parent
    columns, rows = read_csv_rows(manifest, ("path", "label"), "manifest", strip=False)
    continuous = bool(opts.get("continuous"))
    has_split = "split" in columns
    sources: list[Source] = []
    notes: list[tuple[str, str]] = []
    seen: dict[Path, tuple[int, str]] = {}
    spelling: dict[str, tuple[int, str]] = {}
    for line, row in enumerate(rows, start=2):
        raw, raw_label = row["path"].strip(), row["label"]
        label = raw_label.strip()
        if not raw or not label:
            raise UserError(f"manifest {manifest} line {line}: empty path or label")
        target = numeric_label(label, manifest, line) if continuous else None
        if label != raw_label:
            notes.append((f"{manifest.name} line {line}", f"label {raw_label!r} has surrounding spaces; read as "
                                                         f"{label!r}"))
        first = spelling.setdefault(label.casefold(), (line, label))
        if first[1] != label:
            raise UserError(f"manifest {manifest}: labels {first[1]!r} (line {first[0]}) and {label!r} (line {line}) "
                            "differ only by case; use one spelling per class")
        split = row.get("split", "").strip() if has_split else None
        if has_split and split not in VALID_SPLITS:
            raise UserError(f"manifest {manifest} line {line}: split {split!r} is not one of "
                            f"{', '.join(VALID_SPLITS)}")
        path = (root / raw).resolve()
        if path in seen:
            other_line, other_label = seen[path]
            if other_label != label:
                raise UserError(f"manifest {manifest} line {line}: {raw} is listed twice with conflicting labels "
                                f"{other_label!r} (line {other_line}) and {label!r}; give each file one label")
            raise UserError(f"manifest {manifest} line {line}: {raw} is listed twice (also line {other_line}); "
                            "list each file once")
        seen[path] = (line, label)
        if not path.is_file():
            notes.append((raw, "listed in the manifest but missing; skipped"))
            continue
        start, end = row_window(row, manifest, line)
        sources.append(Source(path, relative_name(path, root), label, split, start=start, end=end, target=target))
    classes = sorted({s.cls for s in sources} | {r["label"].strip() for r in rows})
    if continuous:  # the label is the target; stratified by its quantile bins (a given split column needs none)
        classes, sources = binned_sources(sources, 1 if has_split else QUANTILE_BINS)
    plan = plan_from_options(opts, DEFAULT_TEST)
    kind = listed_kind([r["path"].strip() for r in rows], f"manifest {manifest}")
    options = {"manifest": str(manifest), "split_column": has_split, "split": plan.to_dict()}
    if kind == "audio":  # audio_dir: what the manifest's `source` paths are relative to, as for the other audio kinds
        options["audio_dir"] = str(root)
    if continuous:
        options.update(continuous=True, bins=len(classes))
    return DatasetSpec(name=opts.get("name") or "csv", kind=kind, classes=classes, sources=sources, plan=plan,
                       options=options, path_options=("manifest", "audio_dir"), notes=notes,
                       target="label" if continuous else None)


def numeric_label(label: str, manifest: Path, line: int) -> float:
    """``--continuous``: the label as a finite number; one UserError line otherwise."""
    try:
        value = float(label)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise UserError(f"manifest {manifest} line {line}: label {label!r} is not a number (--continuous reads the "
                        "label column as a numeric target)")
    return value


DATASET = DatasetKind(
    name="csv", summary="path,label[,split] list of audio or images", input="audio", build=build,
    test_size=f"{DEFAULT_TEST:g}",
    options=(DatasetOption("--manifest", "CSV with columns path,label and optional split (train|val|test) and "
                           "start,end (seconds of the file to use); paths relative to it", type="file"),))
