"""One writer at a time per workspace: `augment prepare`, `generate` and `check-novelty` hold ``WORKSPACE/.augment.lock``.

The mechanism is the training run lock (:class:`stylegan_ada.training.run_lock.RunLock`: ``flock``, released by the
OS even on SIGKILL, so a killed command never leaves the workspace locked); a second command refuses at once with one
line instead of waiting.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from stylegan_ada.training.run_lock import RunLock, RunLockedError

from augment.errors import UserError

LOCK_NAME = ".augment.lock"


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        pid = ""
    return f"process {pid}" if pid.isdigit() else "another process"


@contextlib.contextmanager
def workspace_lock(root: Path, command: str | None = None) -> Iterator[None]:
    """Hold the workspace lock of ``root`` for ``command`` (e.g. "augment prepare"; None: the current command);
    UserError if it is taken."""
    lock = RunLock(root)
    lock.path = root / LOCK_NAME
    for _ in range(3):
        try:
            lock.acquire()
        except RunLockedError:
            raise UserError(f"workspace {root} is in use by {_holder(lock.path)} (another `augment prepare`, "
                            f"`generate` or `check-novelty`); wait for it to finish, then run "
                            f"{f'`{command}`' if command else 'this command'} again") from None
        except OSError as exc:
            raise UserError(f"cannot lock workspace {root} ({exc.strerror or exc}); is it writable?") from exc
        if _same_file(lock):
            break
        lock.release()  # the holder removed the file between our open and our flock: lock the new one
    else:
        raise UserError(f"cannot lock workspace {root}: its lock file keeps changing; try again")
    try:
        yield
    finally:
        # removed while still held, so a workspace keeps no lock file; late openers of it see the inode change
        with contextlib.suppress(OSError):
            lock.path.unlink()
        lock.release()


def _same_file(lock: RunLock) -> bool:
    """The locked descriptor is still the file at the lock's path."""
    try:
        return os.stat(lock.path).st_ino == os.fstat(lock._fd).st_ino  # noqa: SLF001 - RunLock keeps the fd
    except (OSError, TypeError):
        return False
