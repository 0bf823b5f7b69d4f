"""Where a command may write its output folder, and which existing folder ``--force`` may replace.

The rule, the same for every command with ``--out``/``--force`` (generate, check-novelty, listen):

* never a workspace (a folder with ``augment.json``), a folder that contains the workspace, anything inside a
  workspace's ``data/``, ``runs/``, ``archive/``, ``results/`` or ``cache/``, inside a folder of fakes, or the source
  audio/image folder (or a folder inside it or containing it) — refused even with ``--force``;
* an existing folder is replaced only when the command recognises it as its own: its record file (e.g.
  ``generate.json``) and nothing in it that the command does not write;
* what is replaced is moved to ``WORKSPACE/archive/<time>-<name>/``, never deleted.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from augment.errors import UserError

WORKSPACE_CONFIG = "augment.json"
PROTECTED_DIRS = ("data", "runs", "archive", "results", "cache")   # inside a workspace: never an output
FAKES_RECORD = "generate.json"


@dataclass(frozen=True)
class OwnFolder:
    """How a command recognises a folder it made: a valid record file and only entries it writes."""

    command: str                          # e.g. "augment generate"
    record: str                           # e.g. "generate.json"
    record_ok: Callable[[Path], bool]     # the folder's record is one this command wrote
    entry_ok: Callable[[Path], bool]      # a top-level entry of the folder is one this command writes

    def foreign_entry(self, folder: Path) -> str | None:
        """Why ``folder`` is not this command's own (None when it is)."""
        if not self.record_ok(folder):
            return f"it has no valid {self.record}"
        for entry in sorted(folder.iterdir()):
            if entry.name != self.record and not self.entry_ok(entry):
                return f"it holds {entry.name!r}, which `{self.command}` does not write"
        return None


def files_only(folder: Path, pattern: str) -> bool:
    """``folder`` is a real directory holding only regular files whose names match ``pattern``."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    rx = re.compile(pattern)
    return all(p.is_file() and not p.is_symlink() and rx.fullmatch(p.name) for p in folder.iterdir())


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_location(out: str | os.PathLike, *, root: Path | None, sources: list[Path], option: str) -> Path:
    """Refuse (one-line UserError) an output folder no command may write or replace; returns it resolved.

    ``root``: the workspace the command works on; ``sources``: its source audio/image folders.
    """
    path = Path(out).expanduser().resolve()
    hint = f"choose another {option}"
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path} exists and is not a directory; {hint}")
    for above in (path, *path.parents):
        if (above / WORKSPACE_CONFIG).is_file():
            if above == path:
                raise UserError(f"{option} {path} is a workspace (it holds {WORKSPACE_CONFIG}); its data, splits and "
                                f"runs are never replaced by an output: {hint}, e.g. {path / 'synthetic'}")
            top = path.relative_to(above).parts[0]
            if top in PROTECTED_DIRS:
                raise UserError(f"{option} {path} lies inside {above / top}/, which belongs to the workspace "
                                f"{above} and is never written by this command: {hint}")
        if above != path and (above / FAKES_RECORD).is_file():
            raise UserError(f"{option} {path} lies inside the folder of fakes {above} (its subfolders are classes): "
                            f"{hint}")
    if root is not None and _inside(root.resolve(), path):
        raise UserError(f"{option} {path} contains the workspace {root}; {hint}")
    for src in sources:
        src = src.resolve()
        if _inside(path, src) or _inside(src, path):
            raise UserError(f"{option} {path} overlaps the source folder {src} the workspace was prepared from; "
                            f"{hint}")
    return path


def source_dirs(config: dict) -> list[Path]:
    """The source folders a workspace was prepared from (augment.json ``dataset.options``)."""
    options = (config.get("dataset") or {}).get("options") or {}
    return [Path(str(options[k])) for k in ("audio_dir", "image_dir") if isinstance(options.get(k), str)]


def archive_path(root: Path, name: str) -> Path:
    """A new, unused ``root/archive/<time>-<name>`` path."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = root / "archive" / f"{stamp}-{name}"
    dest, k = base, 1
    while dest.exists():
        dest, k = base.with_name(f"{base.name}-{k}"), k + 1
    return dest


def refuse_foreign(folder: Path, own: OwnFolder, *, option: str) -> None:
    """Refuse to replace a non-empty ``folder`` that ``own`` does not recognise (even with ``--force``)."""
    why = own.foreign_entry(folder)
    if why is not None:
        raise UserError(f"{folder} was not made by `{own.command}` ({why}); it is never replaced, even with "
                        f"--force: choose another {option}, or move that folder away yourself")
