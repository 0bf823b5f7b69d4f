"""Replacing a whole folder so that a crash at any instant leaves either the old or the new folder in place.

A new folder is built under ``.<name>.<pid>-<random>.partial`` beside its final name. The switch is one atomic
``renameat2(RENAME_EXCHANGE)`` where the file system has it; elsewhere two renames, with a small journal
(``<partial>.json``, written before the switch) that the next command uses to roll back a half-done switch. The old
content is deleted, or moved to ``archive_to`` (``--force`` never deletes what it replaces). Leftovers of a killed
process (``.partial`` folders, journals) are cleaned by the next writer of the same folder, never ones whose
process is still alive.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import threading
from pathlib import Path
from typing import Any, Iterator

from stylegan_ada.fileio import exchange_paths, fsync_dir
from stylegan_ada.training.faults import FaultPlan

PARTIAL_SUFFIX = ".partial"
FAULT_KEY = "dir-swap"      # STYLEGAN_ADA_FAULT="dir-swap=N" SIGKILLs before step N of a switch (tests)


def partial_prefix(final: Path) -> str:
    """mkdtemp prefix of a staging folder for ``final``: it names the owning process."""
    return f".{final.name}.{os.getpid()}-"


def fault_point(key: str, step: int) -> None:
    """Test hook (``STYLEGAN_ADA_FAULT="<key>=<step>"``, the trainer's fault plan): SIGKILL this process here."""
    if step in FaultPlan().points.get(key, ()):
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold Ctrl-C / SIGTERM until the block is done (a switch is a few renames; it must not stop half-way)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        if caught:
            os.kill(os.getpid(), caught[0])


def _inode(path: Path) -> int | None:
    try:
        return os.lstat(path).st_ino
    except OSError:
        return None


def _move(src: Path, dst: Path) -> None:
    """Rename (or, across file systems, copy then delete) ``src`` to a new path ``dst``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:  # the archive lies on another file system
            raise
        shutil.move(str(src), str(dst))


def _retire(old: Path, archive_to: Path | None) -> None:
    if archive_to is not None:
        _move(old, archive_to)
    else:
        shutil.rmtree(old, ignore_errors=True)


def swap_in(tmp: Path, final: Path, *, archive_to: Path | None = None) -> None:
    """Put the complete folder ``tmp`` at ``final``; the previous ``final`` (if any) is deleted or archived.

    On an error before the switch ``tmp`` is removed and ``final`` is untouched; after it, what is left (the old
    content and its journal) is finished by the next writer's :func:`recover_stale`.
    """
    with deferred_interrupts():
        old_ino = _inode(final)
        journal = Path(f"{tmp}.json")
        try:
            if old_ino is None:
                fault_point(FAULT_KEY, 1)
                os.replace(tmp, final)
                fsync_dir(final.parent)
                return
            _write_journal(journal, final, old_ino, tmp, archive_to)
            fault_point(FAULT_KEY, 1)
            old = tmp  # after an exchange the old content sits at the staging name
            if not exchange_paths(tmp, final):
                old = Path(f"{tmp}-old")
                _write_journal(journal, final, old_ino, old, archive_to)
                os.replace(final, old)
                fault_point(FAULT_KEY, 2)
                os.replace(tmp, final)
        except BaseException:
            _undo(tmp, final, old_ino, journal)
            raise
        fsync_dir(final.parent)
        fault_point(FAULT_KEY, 3)
        _retire(old, archive_to)
        journal.unlink()
        fsync_dir(final.parent)


def _undo(tmp: Path, final: Path, old_ino: int | None, journal: Path) -> None:
    """A switch failed: put the old folder back if it was moved aside, then drop the new content."""
    old = Path(f"{tmp}-old")
    if old_ino is not None and not final.exists() and _inode(old) == old_ino:
        os.replace(old, final)
    if _inode(final) == old_ino:  # (None == None: there was no old folder and the new one is not in place)
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(OSError):
            journal.unlink()


def _write_journal(journal: Path, final: Path, old_ino: int, old: Path, archive_to: Path | None) -> None:
    journal.write_text(json.dumps({"final": final.name, "old_ino": old_ino, "old": old.name,
                                   "archive_to": str(archive_to) if archive_to is not None else None}))
    fsync_dir(journal.parent)


def _owner_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_stale(final: Path) -> list[str]:
    """Finish or undo what killed writers of ``final`` left behind; return the names removed or moved.

    A journal whose old folder is missing from ``final`` rolls the switch back; one whose switch happened retires
    the old content (archive or delete). Staging folders of dead processes are deleted.
    """
    parent = final.parent
    if not parent.is_dir():
        return []
    pattern = re.compile(rf"^\.{re.escape(final.name)}\.(\d+)-[^/]*{re.escape(PARTIAL_SUFFIX)}(\.json|-old)?$")
    stale = [(p, m) for p in parent.iterdir() if (m := pattern.match(p.name)) and not _owner_alive(int(m.group(1)))]
    done: list[str] = []
    for journal, _ in [(p, m) for p, m in stale if m.group(2) == ".json"]:
        try:
            rec: dict[str, Any] = json.loads(journal.read_text())
            base = journal.name[:-len(".json")]
            if str(rec["old"]) not in (base, f"{base}-old"):  # only ever its own staging folder
                raise ValueError("foreign journal")
            old = parent / str(rec["old"])
            archive_to = Path(rec["archive_to"]) if rec.get("archive_to") else None
            old_ino = int(rec["old_ino"])
        except (OSError, ValueError, TypeError, KeyError):
            old = None  # cut short while being written: the switch had not started
        if old is not None and _inode(old) == old_ino:
            if not final.exists():
                os.replace(old, final)      # the switch stopped between its two renames: roll back
            else:
                _retire(old, archive_to)    # the switch happened: finish it
            done.append(old.name)
        with contextlib.suppress(OSError):
            journal.unlink()
        done.append(journal.name)
    for path, m in stale:
        if m.group(2) != ".json" and path.exists():
            shutil.rmtree(path, ignore_errors=True)
            done.append(path.name)
    if done:
        fsync_dir(parent)
    return done
