"""One trainer per run directory: an exclusive ``flock`` on ``<run>/.lock`` (also the workspace lock's mechanism)."""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any


class RunLock:
    """An exclusive lock on a run directory (flock, released by the OS even on SIGKILL)."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / ".lock"
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise RunLockedError(f"run {self.path.parent} is being trained by another process; wait for it "
                                     "to finish or stop it first") from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


class RunLockedError(RuntimeError):
    pass
