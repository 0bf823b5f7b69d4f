"""The switch of `augment prepare`: a complete new state (data/, splits.csv, augment.json), built in a staging
folder, replaces the old one through a journal, so a kill at any instant leaves a workspace the next command
completes.

The journal (``WORKSPACE/.prepare-journal.json``) is written only once the new state is complete. It lists renames
(old runs/, synthetic/, results/ and the old dataset to ``archive/``; then the new dataset into place, augment.json
last) and how many are done. Every command that loads the workspace finishes an interrupted switch first
(:func:`complete_switch`): a rename whose source is gone is already done, so replaying is safe.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stylegan_ada.fileio import fsync_dir

from augment.dir_swap import deferred_interrupts, fault_point, partial_prefix, recover_stale
from augment.errors import UserError
from augment.io_utils import atomic_write_json, read_json

JOURNAL_NAME = ".prepare-journal.json"
JOURNAL_FORMAT = "augment-prepare-journal-v1"
STATE = ("augment.json", "splits.csv", "data")        # what one preparation is; moved in the reverse order
FAULT_KEY = "prepare-switch"                         # STYLEGAN_ADA_FAULT="prepare-switch=N": SIGKILL before step N


def _staging_key(root: Path) -> Path:
    return root / "prepare"      # staging folders are named .prepare.<pid>-<random>.partial


def new_staging(root: Path) -> Path:
    """A fresh staging folder inside the workspace (same file system: the switch is renames only).

    Staging folders of killed earlier runs are removed first."""
    recover_stale(_staging_key(root))
    return Path(tempfile.mkdtemp(prefix=partial_prefix(_staging_key(root)), suffix=".partial", dir=root))


@dataclass
class Switch:
    """Renames (workspace-relative, in order) and what to delete afterwards."""

    moves: list[tuple[str, str]]
    cleanup: list[str] = field(default_factory=list)
    done: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"format": JOURNAL_FORMAT, "moves": [list(m) for m in self.moves], "cleanup": self.cleanup,
                "done": self.done}


def plan_switch(root: Path, staging: Path, *, archive_to: Path | None, derived: tuple[str, ...]) -> Switch:
    """The renames that put ``staging``'s state in place. With ``archive_to`` the old state and the ``derived``
    folders (runs/, synthetic/, results/) go there; without it the old state is deleted and ``derived`` stay."""
    rel = lambda p: p.relative_to(root).as_posix()  # noqa: E731
    old = archive_to if archive_to is not None else Path(f"{staging}-old")
    moves = [(d, rel(archive_to / d)) for d in derived if archive_to is not None and (root / d).exists()]
    moves += [(name, rel(old / name)) for name in STATE if (root / name).exists()]
    moves += [(rel(staging / name), name) for name in reversed(STATE)]
    cleanup = [rel(staging)] + ([rel(old)] if archive_to is None else [])
    return Switch(moves, cleanup)


def commit(root: Path, switch: Switch) -> None:
    """Run ``switch`` through the journal; Ctrl-C waits until it is done, SIGKILL leaves a journal to finish."""
    with deferred_interrupts():
        atomic_write_json(root / JOURNAL_NAME, switch.to_json())
        _run(root, switch)


def _run(root: Path, switch: Switch) -> None:
    for i in range(switch.done, len(switch.moves)):
        src, dst = (root / p for p in switch.moves[i])
        fault_point(FAULT_KEY, i + 1)
        if os.path.lexists(src):
            if os.path.lexists(dst):  # never in a real switch: refuse rather than overwrite anything
                raise UserError(f"{root / JOURNAL_NAME}: {dst} already exists; move it away and run the command "
                                "again (the interrupted `augment prepare` is then finished)")
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            fsync_dir(dst.parent)
        switch.done = i + 1
        atomic_write_json(root / JOURNAL_NAME, switch.to_json())
    fault_point(FAULT_KEY, len(switch.moves) + 1)
    for p in switch.cleanup:
        shutil.rmtree(root / p, ignore_errors=True)
    (root / JOURNAL_NAME).unlink()
    fsync_dir(root)


def pending(root: Path) -> bool:
    """An interrupted switch waits to be finished."""
    return (root / JOURNAL_NAME).is_file()


def complete_switch(root: Path) -> bool:
    """Finish a switch a killed `augment prepare` left half-done (caller holds the workspace lock). True if one was."""
    path = root / JOURNAL_NAME
    if not path.is_file():
        return False
    try:
        rec = read_json(path, max_bytes=1 << 20)
        moves = [(str(a), str(b)) for a, b in rec["moves"]]
        switch = Switch(moves, [str(c) for c in rec["cleanup"]], int(rec["done"]))
        if (rec.get("format") != JOURNAL_FORMAT or any(_escapes(p) for m in moves for p in m)
                or not all(Path(c).name == c and c.startswith(".prepare.") for c in switch.cleanup)):
            raise ValueError("not a prepare journal")  # never delete or move anything outside the workspace
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} (the journal of an interrupted `augment prepare`) is unreadable ({exc}); run "
                        "`augment prepare --force` again") from None
    with deferred_interrupts():
        _run(root, switch)
    return True


def _escapes(rel: str) -> bool:
    return Path(rel).is_absolute() or ".." in Path(rel).parts
