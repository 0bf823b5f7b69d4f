"""The workspace: one folder holding a prepared dataset, its splits, runs, fakes and results.

Every command finds its inputs through ``WORKSPACE/augment.json``; the split manifest
(``splits.csv``) lists every image with its class, split and the SHA-256 of its source and image.
The test split is sacred: :meth:`Workspace.guard_training_inputs` refuses any training input that
is, or equals, a test file.
"""
from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from augment.errors import UserError
from augment.io_utils import read_json, sha256_bytes
from augment.workspace_schema import check_data, validate_config

CONFIG_NAME = "augment.json"
MANIFEST_NAME = "splits.csv"
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
MANIFEST_FIELDS = ("image", "class", "split", "source", "source_sha256", "image_sha256")
TARGET_FIELD = "target"
ENV_VAR = "AUGMENT_WORKSPACE"
CONDITIONAL_RUNS = "_conditional"
CONFIG_MAX_BYTES = 64 << 20   # a real augment.json is a few hundred KB at most (the skipped-file list)


@dataclass(frozen=True)
class SplitRow:
    image: str          # path relative to the workspace root (data/<split>/<class>/<stem>.png)
    cls: str
    split: str
    source: str         # source file relative to the dataset root, as given to prepare
    source_sha256: str
    image_sha256: str
    target: float | None = None  # a continuous workspace's target value (column `target`); ``cls`` is then its bin


def manifest_text(rows: Sequence[SplitRow]) -> str:
    """Canonical CSV text of the manifest (sorted, LF line ends) so re-preparing is byte-identical.

    A ``target`` column follows only when the rows carry targets (continuous workspaces)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    with_target = any(r.target is not None for r in rows)
    w.writerow(MANIFEST_FIELDS + (TARGET_FIELD,) * with_target)
    for r in sorted(rows, key=lambda r: (SPLITS.index(r.split), r.cls, r.image)):
        w.writerow([r.image, r.cls, r.split, r.source, r.source_sha256, r.image_sha256]
                   + ([repr(r.target) if r.target is not None else ""] if with_target else []))
    return buf.getvalue()


def _target(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        raise UserError(f"split manifest target {text!r} is not a number; re-run `augment prepare`") from None


def parse_manifest(text: str) -> list[SplitRow]:
    reader = csv.DictReader(io.StringIO(text))
    missing = set(MANIFEST_FIELDS) - set(reader.fieldnames or ())
    if missing:
        raise UserError(f"split manifest is missing columns {sorted(missing)}; re-run `augment prepare`")
    return [SplitRow(r["image"], r["class"], r["split"], r["source"], r["source_sha256"], r["image_sha256"],
                     _target(r.get(TARGET_FIELD))) for r in reader]


def resolve_root(path: str | os.PathLike | None) -> Path:
    """--workspace, else $AUGMENT_WORKSPACE, else the current directory."""
    if path is None or str(path) == "":
        path = os.environ.get(ENV_VAR) or "."
    return Path(path).expanduser().resolve()


class Workspace:
    """A prepared workspace on disk."""

    def __init__(self, root: Path, config: dict[str, Any]):
        self.root = root
        self.config = config
        self._rows: list[SplitRow] | None = None

    # ----------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "Workspace":
        root = resolve_root(path)
        cfg_path = root / CONFIG_NAME
        if not root.is_dir():
            raise UserError(f"workspace {root} does not exist; run `augment prepare --workspace {root} ...` first")
        finish_interrupted_prepare(root)
        if not cfg_path.is_file():
            raise UserError(f"no {CONFIG_NAME} in {root}; run `augment prepare` there first, "
                            f"or pass --workspace DIR / set {ENV_VAR}")
        config = read_config(cfg_path)
        check_data(root, config)
        return cls(root, config)

    # -------------------------------------------------------------- properties
    @property
    def classes(self) -> list[str]:
        return list(self.config["classes"])

    @property
    def resolution(self) -> int:
        return int(self.config["image"]["resolution"])

    @property
    def task(self) -> str:
        """``regression`` for a continuous target (``prepare --continuous``), else ``classification``."""
        return str(self.config.get("task", "classification"))

    @property
    def target_name(self) -> str | None:
        """The continuous target's name (e.g. ``valence``); None for a classification workspace."""
        return self.config.get("target") if self.task == "regression" else None

    def require_classes(self, command: str) -> None:
        """Refuse (one UserError line) a continuous workspace in a command that needs classes (per-class GANs)."""
        if self.task == "regression":
            raise UserError(f"{command} works per class (per-class GANs need classes), but workspace {self.root} "
                            f"holds the continuous target {self.target_name!r} (prepared with --continuous); for "
                            "classes prepare another --workspace without --continuous, e.g. soundtracks360's "
                            "3-class (discretised) --target valence|energy|tension")

    @property
    def dataset_name(self) -> str:
        return str(self.config["dataset"]["name"])

    @property
    def manifest_path(self) -> Path:
        return self.root / self.config["splits"]["manifest"]

    def runs_dir(self, cls: str | None) -> Path:
        """``runs/<class>/`` or ``runs/_conditional/`` for a class-conditional model."""
        return self.root / "runs" / (cls if cls is not None else CONDITIONAL_RUNS)

    @property
    def synthetic_dir(self) -> Path:
        return self.root / "synthetic"

    @property
    def results_dir(self) -> Path:
        return self.root / "results"

    def check_class(self, cls: str) -> str:
        if cls not in self.classes:
            raise UserError(f"unknown class {cls!r}; this workspace has classes {', '.join(self.classes)}")
        return cls

    # ---------------------------------------------------------------- manifest
    def rows(self) -> list[SplitRow]:
        """The split manifest, verified against the hash recorded in augment.json."""
        if self._rows is None:
            try:
                data = self.manifest_path.read_bytes()
            except OSError as exc:
                raise UserError(f"split manifest {self.manifest_path} is missing; re-run `augment prepare --force`") from exc
            expected = self.config["splits"].get("sha256")
            if expected and sha256_bytes(data) != expected:
                raise UserError(f"split manifest {self.manifest_path} was modified (hash mismatch with {CONFIG_NAME}); "
                                "splits are fixed: restore it or re-run `augment prepare --force`")
            try:
                rows = parse_manifest(data.decode("utf-8"))
            except (UnicodeDecodeError, csv.Error) as exc:
                raise UserError(f"split manifest {self.manifest_path} is not readable CSV ({exc}); restore it or "
                                "re-run `augment prepare --force`") from exc
            self._rows = self._checked(rows)
        return self._rows

    def _checked(self, rows: list[SplitRow]) -> list[SplitRow]:
        """Every row names a known split and class and an image under data/<its split>/ (never outside it)."""
        classes = set(self.classes)
        for line, r in enumerate(rows, start=2):
            parts = Path(r.image or "").parts
            if (r.split not in SPLITS or r.cls not in classes or len(parts) < 3 or parts[:2] != ("data", r.split)
                    or ".." in parts or not r.source_sha256 or not r.image_sha256):
                raise UserError(f"split manifest {self.manifest_path} line {line} is malformed (image {r.image!r}, "
                                f"class {r.cls!r}, split {r.split!r}); restore it or re-run `augment prepare --force`")
            if self.task == "regression" and (r.target is None or not math.isfinite(r.target)):
                raise UserError(f"split manifest {self.manifest_path} line {line} has no finite target value (this "
                                "workspace is continuous); restore it or re-run `augment prepare --force`")
        return rows

    def images(self, splits: str | Sequence[str], cls: str | None = None) -> list[Path]:
        """Absolute image paths of the given split(s), optionally one class, in manifest order."""
        wanted = {splits} if isinstance(splits, str) else set(splits)
        bad = wanted - set(SPLITS)
        if bad:
            raise ValueError(f"unknown split(s) {sorted(bad)}")
        return [self.root / r.image for r in self.rows() if r.split in wanted and (cls is None or r.cls == cls)]

    def labelled_images(self, splits: str | Sequence[str]) -> list[tuple[Path, int]]:
        """(path, class index) pairs for the given split(s)."""
        index = {c: i for i, c in enumerate(self.classes)}
        wanted = {splits} if isinstance(splits, str) else set(splits)
        return [(self.root / r.image, index[r.cls]) for r in self.rows() if r.split in wanted]

    def targets(self) -> dict[Path, float]:
        """image path -> continuous target of every row (a regression workspace; empty otherwise)."""
        return {self.root / r.image: float(r.target) for r in self.rows() if r.target is not None}

    def test_hashes(self) -> set[str]:
        """Image and source hashes of every test file."""
        from augment.leak_guard import test_hashes

        return test_hashes(self)

    # ------------------------------------------------------------------ guards
    def guard_training_inputs(self, paths: Iterable[str | os.PathLike], *, what: str = "training input") -> Any:
        """Refuse (UserError naming the file) any input that is in, equals or nearly equals the test split.

        Returns the paths with the sha256 of the bytes checked (augment.leak_guard.VerifiedPaths); loaders read
        them through :func:`augment.leak_guard.read_verified` so a file swapped after the check is not used.
        """
        from augment.leak_guard import guard

        return guard(self, paths, what=what)


def read_config(cfg_path: Path) -> dict[str, Any]:
    """``augment.json``, parsed (bounded size and nesting) and validated field by field; one-line UserErrors."""
    try:
        config = read_json(cfg_path, max_bytes=CONFIG_MAX_BYTES)
    except (OSError, ValueError) as exc:
        raise UserError(f"{cfg_path} is unreadable or not valid JSON ({exc}); re-run `augment prepare --force`") from exc
    if not isinstance(config, dict) or config.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{cfg_path} has an unsupported format; re-run `augment prepare --force`")
    validate_config(config, cfg_path)
    return config


def finish_interrupted_prepare(root: Path) -> None:
    """Complete the switch of a killed `augment prepare` (augment/workspace_journal.py) before anything reads."""
    from augment.workspace_journal import complete_switch, pending
    from augment.workspace_lock import workspace_lock

    if pending(root):
        with workspace_lock(root):
            complete_switch(root)


def write_workspace(root: str | os.PathLike, *, dataset: str, options: dict[str, Any], kind: str,
                    classes: Sequence[str], image: dict[str, Any], mel: dict[str, Any] | None,
                    rows: Sequence[SplitRow], extra: dict[str, Any] | None = None) -> Workspace:
    """Write ``splits.csv`` and ``augment.json`` into ``root`` (images must already be in place).

    The one place that knows the on-disk format; `augment prepare` builds into a temp dir, calls this,
    then renames the directory into place.
    """
    from augment.io_utils import atomic_write_json, atomic_write_text
    from augment.provenance import code_version, now_iso

    root = Path(root)
    text = manifest_text(rows)
    atomic_write_text(root / MANIFEST_NAME, text)
    counts: dict[str, dict[str, int]] = {s: {c: 0 for c in classes} for s in SPLITS}
    for r in rows:
        counts[r.split][r.cls] += 1
    test_lines = sorted(f"{r.image},{r.source_sha256},{r.image_sha256}" for r in rows if r.split == "test")
    config: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "dataset": {"name": dataset, "options": dict(options)},
        "kind": kind,
        "classes": list(classes),
        "image": dict(image),
        "mel": dict(mel) if mel is not None else None,
        "splits": {
            "manifest": MANIFEST_NAME,
            "sha256": sha256_bytes(text.encode("utf-8")),
            "test_sha256": sha256_bytes("\n".join(test_lines).encode("utf-8")),
            "counts": counts,
        },
        "code_version": code_version(),
        "created": now_iso(),
    }
    if extra:
        config.update(extra)
    atomic_write_json(root / CONFIG_NAME, config)
    return Workspace(root.resolve(), config)
