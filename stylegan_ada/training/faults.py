"""Fault injection for tests: ``STYLEGAN_ADA_FAULT`` names the points where a process kills (or stalls) itself.

Unset in normal use. The trainer reads the variable once, when it is built (:func:`FaultPlan.from_env`: None when
unset, so the loop pays one ``is None`` test per step); the rare cold paths (a folder switch) read it at the point.
"""
from __future__ import annotations

import os
import signal
import time

FAULT_ENV = "STYLEGAN_ADA_FAULT"


class FaultPlan:
    """``"step=37"`` SIGKILLs the process before step 37 runs; ``"snapshot=2"`` SIGKILLs it while writing the 2nd
    snapshot of this process (network written, state not yet); ``"stall=2"`` blocks there instead (for 10 minutes,
    announced on stderr), so a test can signal a process that is busy writing a snapshot. Other keys (``dir-swap=N``,
    ``prepare=1``, ...) are points of other commands (:meth:`hits`). Several points: ``"step=5,snapshot=1"``."""

    def __init__(self, spec: str | None = None):
        spec = os.environ.get(FAULT_ENV, "") if spec is None else spec
        self.points: dict[str, set[int]] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, _, value = part.partition("=")
            self.points.setdefault(key.strip(), set()).add(int(value))
        self._snapshots = 0

    @classmethod
    def from_env(cls) -> "FaultPlan | None":
        """The plan ``STYLEGAN_ADA_FAULT`` describes, or None when it names no point."""
        plan = cls()
        return plan if plan.points else None

    def hits(self, key: str, n: int) -> bool:
        return n in self.points.get(key, ())

    def at_step(self, step: int) -> None:
        if self.hits("step", step):
            kill_self()

    def in_snapshot(self) -> None:
        self._snapshots += 1
        if self.hits("snapshot", self._snapshots):
            kill_self()
        if self.hits("stall", self._snapshots):
            os.write(2, b"fault: stalling in a snapshot\n")
            time.sleep(600)


def kill_self() -> None:
    """SIGKILL this process (no cleanup, no handlers: what a power cut or the OOM killer does)."""
    os.kill(os.getpid(), signal.SIGKILL)
