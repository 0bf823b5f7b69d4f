"""Stop requests: SIGTERM/SIGINT become a flag the training loop polls, so a run ends with a final snapshot."""
from __future__ import annotations

import os
import signal
from typing import Any


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
