"""What `augment generate` makes and how: the options, their checks, and which seeds each class gets."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augment.errors import UserError, user_device
from augment.workspace import Workspace

NOISE_MODES = ("const", "random", "none")
SEED_STRIDE = 100_000          # class k gets seeds k*SEED_STRIDE ... by default, so classes never share a z
MAX_SEED = 2**32 - 1           # numpy RandomState accepts 0 .. 2**32-1


@dataclass
class GenerateOptions:
    """What to generate and how; validated by :meth:`check`."""
    n: int | None = None
    seeds: list[int] | None = None
    truncation_psi: float = 1.0
    noise_mode: str = "const"
    batch: int = 32
    device: str | None = None
    audio_n: int = 0
    force: bool = False
    out: Path | None = None
    workers: int | None = None

    def check(self) -> None:
        if self.seeds is not None:
            if self.n is not None and self.n != len(self.seeds):
                raise UserError(f"--n {self.n} disagrees with --seeds ({len(self.seeds)} seeds); give one of them")
            bad = [s for s in self.seeds if not 0 <= s <= MAX_SEED]
            if bad:
                raise UserError(f"seeds must lie in 0..{MAX_SEED}, got {bad[0]}")
            if len(set(self.seeds)) != len(self.seeds):
                raise UserError("--seeds lists a seed twice; each seed makes one file, give each once")
            if not self.seeds:
                raise UserError("--seeds is empty; give e.g. --seeds 0-99")
        elif self.n is None:
            self.n = 1000
        if self.seeds is None and self.n <= 0:
            raise UserError(f"--n must be a positive number of images per class, got {self.n}")
        if self.seeds is None and self.n > SEED_STRIDE:
            raise UserError(f"--n {self.n} is above {SEED_STRIDE} per class; give an explicit --seeds range instead")
        if self.noise_mode not in NOISE_MODES:
            raise UserError(f"--noise-mode must be one of {', '.join(NOISE_MODES)}, got {self.noise_mode!r}")
        if self.batch <= 0:
            raise UserError(f"--batch must be a positive number of images, got {self.batch}")
        if self.audio_n < 0:
            raise UserError(f"--audio-n must be >= 0, got {self.audio_n}")
        if not np.isfinite(self.truncation_psi):
            raise UserError(f"--trunc must be a finite number, got {self.truncation_psi}")
        self.device = user_device(self.device)


def class_seeds(ws: Workspace, cls: str, opts: GenerateOptions) -> list[int]:
    """The seeds of one class: ``--seeds`` when given, else n seeds starting at class_index * SEED_STRIDE."""
    if opts.seeds is not None:
        return list(opts.seeds)
    start = ws.classes.index(cls) * SEED_STRIDE
    return list(range(start, start + int(opts.n)))
