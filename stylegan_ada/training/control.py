"""Process control around a run: stop requests (SIGTERM/SIGINT), the run lock, and fault injection for tests."""
from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path
from typing import Any

FAULT_ENV = "STYLEGAN_ADA_FAULT"


class StopRequest:
    """Turns SIGTERM/SIGINT into a flag the loop polls, so it can write a final snapshot before exiting.

    A second signal while the flag is already set restores the default handlers and re-raises the signal.
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None:
            self.uninstall()
            os.kill(os.getpid(), signum)
            return
        self.signal = signum
        # os.write, not print: a handler may run in the middle of another write to stderr (progress bars).
        os.write(2, b"\nstopping after this minibatch with a final snapshot (signal again to abort at once)\n")

    def install(self) -> "StopRequest":
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def __enter__(self) -> "StopRequest":
        return self.install()

    def __exit__(self, *exc: Any) -> None:
        self.uninstall()


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


class FaultPlan:
    """Test hook: ``STYLEGAN_ADA_FAULT="step=37"`` SIGKILLs the process before step 37 runs;
    ``"snapshot=2"`` SIGKILLs it while writing the 2nd snapshot of this process (network written, state not yet);
    ``"stall=2"`` blocks there instead (for 10 minutes, announced on stderr), so a test can signal a process that is
    busy writing a snapshot. Several points: ``"step=5,snapshot=1"``. Unset in normal use."""

    def __init__(self, spec: str | None = None):
        spec = os.environ.get(FAULT_ENV, "") if spec is None else spec
        self.points: dict[str, set[int]] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, _, value = part.partition("=")
            self.points.setdefault(key.strip(), set()).add(int(value))
        self._snapshots = 0

    def at_step(self, step: int) -> None:
        if step in self.points.get("step", ()):
            self._die()

    def in_snapshot(self) -> None:
        self._snapshots += 1
        if self._snapshots in self.points.get("snapshot", ()):
            self._die()
        if self._snapshots in self.points.get("stall", ()):
            os.write(2, b"fault: stalling in a snapshot\n")
            time.sleep(600)

    @staticmethod
    def _die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)
