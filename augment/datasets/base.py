"""What every dataset kind produces for `augment prepare`: labelled sources, classes and a split plan."""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from augment.datasets.splits import SplitPlan, plan_from_options
from augment.errors import UserError


@dataclass(frozen=True)
class Source:
    """One labelled input file."""

    path: Path                  # absolute path on disk
    name: str                   # path relative to the dataset root, as recorded in the manifest's `source` column
    cls: str
    split: str | None = None    # fixed split given by the user (csv `split` column), else chosen by the plan
    start: float | None = None  # seconds: the clip's region in the file (csv `start,end`), else --offset ...
    end: float | None = None    # ... to the end of the file (augment.segments)
    target: float | None = None  # the continuous target (--continuous); then ``cls`` is its quantile bin


@dataclass
class DatasetSpec:
    """A dataset resolved from the command line, before any file is read."""

    name: str
    kind: str                                   # "audio" or "images"
    classes: list[str]
    sources: list[Source]
    plan: SplitPlan
    options: dict[str, Any]                     # recorded in augment.json dataset.options
    path_options: tuple[str, ...] = ()          # options that are paths: ignored when asking "same dataset?"
    notes: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) found while listing; warnings
    class_root: Path | None = None              # the folder whose subfolders are the classes (folder/images kinds)
    target: str | None = None                   # name of the continuous target (regression); None: classes

    def __post_init__(self) -> None:
        for c in self.classes:
            if not c or c != c.strip() or any(ch in c for ch in '/\\:') or c.startswith((".", "_")):
                raise UserError(f"class name {c!r} cannot be a folder name here (no '/', '\\' or ':', no leading "
                                "'.' or '_', no surrounding spaces); rename it")

    def identity_options(self) -> dict[str, Any]:
        return {k: v for k, v in self.options.items() if k not in self.path_options}


QUANTILE_BINS = 5   # strata of a continuous target's split


def quantile_bins(values: Sequence[float], n_bins: int = QUANTILE_BINS) -> list[int]:
    """Equal-frequency bin (0 = lowest .. n_bins-1) of each value, by rank; equal values are ranked in input order,
    so every bin gets the same count (± 1) even when many ratings tie."""
    order = np.argsort(np.asarray(values, dtype=float), kind="stable")
    bins = np.empty(len(order), dtype=int)
    bins[order] = np.arange(len(order)) * n_bins // max(1, len(order))
    return bins.tolist()


def binned_sources(sources: Sequence[Source], n_bins: int = QUANTILE_BINS) -> tuple[list[str], list[Source]]:
    """(bin names ``q1``..``qK``, the sources with ``cls`` = the quantile bin of their ``target``), in name order:
    the split plan then stratifies by these bins as it does by classes (augment.datasets.splits)."""
    ordered = sorted(sources, key=lambda s: s.name)
    bins = quantile_bins([float(s.target) for s in ordered], n_bins)  # type: ignore[arg-type]
    binned = [replace(s, cls=f"q{b + 1}") for s, b in zip(ordered, bins)]
    return sorted({s.cls for s in binned}, key=lambda c: int(c[1:])), binned


def _require(path: str | os.PathLike | None, option: str, directory: bool) -> Path:
    if path is None:
        raise UserError(f"{option} is required for this --dataset")
    p = Path(path).expanduser()
    if not (p.is_dir() if directory else p.is_file()):
        raise UserError(f"{option} {p} is not a {'directory' if directory else 'file'}")
    return p.resolve()


def require_dir(path: str | os.PathLike | None, option: str) -> Path:
    """The existing directory an option names (resolved); one-line UserError if missing or not a directory."""
    return _require(path, option, directory=True)


def require_file(path: str | os.PathLike | None, option: str) -> Path:
    """The existing file an option names (resolved); one-line UserError if missing or not a file."""
    return _require(path, option, directory=False)


def is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def files_under(folder: Path) -> list[Path]:
    """Every non-hidden file below ``folder`` (recursively, following symlinked folders once each), sorted.

    Broken symlinks are left out (:func:`broken_links` names them)."""
    out = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a link back up the tree, or two links to one folder: read it once
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath) / f for f in filenames if not f.startswith(".") and os.path.exists(
            os.path.join(dirpath, f)))
    return sorted(out)


def broken_links(folder: Path) -> list[Path]:
    """Symlinks below ``folder`` whose target does not exist."""
    return sorted(Path(d) / f for d, dirs, files in os.walk(folder, followlinks=False) for f in files + dirs
                  if os.path.islink(os.path.join(d, f)) and not os.path.exists(os.path.join(d, f)))


def relative_name(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def class_folder_sources(root: Path, option: str) -> tuple[list[str], list[Source], list[tuple[str, str]]]:
    """Sources from ``root/<class>/**``: one subfolder per class (sorted names are the classes).

    Fatal: no class folders, or an empty class folder. Files directly in ``root`` are reported and ignored.
    """
    dangling = sorted(p for p in root.iterdir() if p.is_symlink() and not p.exists() and not is_hidden(p))
    if dangling:
        raise UserError(f"{dangling[0]} is a symlink to {os.readlink(dangling[0])}, which does not exist; fix the "
                        "link (a class folder may be a symlink) or remove it")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not is_hidden(p))
    notes = [(relative_name(p, root), "not inside a class folder; ignored")
             for p in sorted(root.iterdir()) if p.is_file() and not is_hidden(p)]
    if not folders:
        raise UserError(f"{option} {root} has no class subfolders; put each class's files in {root}/<class>/")
    sources: list[Source] = []
    for folder in folders:
        files = files_under(folder)
        broken = broken_links(folder)
        notes += [(relative_name(p, root), f"symlink to {os.readlink(p)}, which does not exist; ignored")
                  for p in broken]
        if not files:
            link = f" (a symlink to {os.readlink(folder)})" if folder.is_symlink() else ""
            what = f"holds only broken symlinks, e.g. {broken[0].name}" if broken else "is empty"
            raise UserError(f"class folder {folder}{link} {what}; add files to it or remove the folder")
        sources.extend(Source(f, relative_name(f, root), folder.name) for f in files)
    return [f.name for f in folders], sources, notes


def class_folder_spec(opts: dict[str, Any], *, key: str, kind: str, name: str, default_test: float) -> DatasetSpec:
    """A dataset of one subfolder per class under the folder option ``key`` (``audio_dir``/``image_dir``), with
    generic splits (``--test-size``, default ``default_test``); ``name`` unless ``--name`` says otherwise."""
    option = "--" + key.replace("_", "-")
    root = require_dir(opts.get(key), option)
    classes, sources, notes = class_folder_sources(root, option)
    plan = plan_from_options(opts, default_test)
    options = {key: str(root), "split": plan.to_dict()}
    return DatasetSpec(name=opts.get("name") or name, kind=kind, classes=classes, sources=sources, plan=plan,
                       options=options, path_options=(key,), notes=notes, class_root=root)


def read_csv_rows(path: Path, required: Sequence[str], what: str, *, strip: bool = True
                  ) -> tuple[list[str], list[dict[str, str]]]:
    """Rows of a CSV (UTF-8, BOM allowed, any line ends); UserError naming missing columns.

    Column names are always stripped of surrounding spaces; values only with ``strip``."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): (v or "").strip() if strip else (v or "") for k, v in r.items()
                     if not isinstance(v, list)} for r in reader]
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} {path} is not UTF-8 text ({exc.reason}); save it as UTF-8 CSV") from exc
    except (OSError, csv.Error) as exc:
        raise UserError(f"cannot read {what} {path}: {exc}") from exc
    missing = [c for c in required if c not in columns]
    if missing:
        raise UserError(f"{what} {path} is missing column(s) {', '.join(missing)} "
                        f"(found: {', '.join(columns) or 'none'})")
    if not rows:
        raise UserError(f"{what} {path} has no data rows")
    return columns, rows
