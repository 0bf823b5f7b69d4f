"""Test helpers: build small workspaces directly (no audio step) for tests of later stages."""
from __future__ import annotations

import contextlib

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from augment.io_utils import sha256_file
from augment.workspace import SplitRow, Workspace, write_workspace

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures" / "stylegan2_ada"


def make_image_workspace(root: Path, classes: Sequence[str] = ("a", "b", "c"), *, resolution: int = 32,
                         counts: dict[str, int] | None = None, seed: int = 0) -> Workspace:
    """A workspace of random but class-distinct RGB PNGs (3 equal channels) with a valid manifest.

    Each class has its own mean brightness and stripe orientation so a classifier can learn it.
    """
    counts = counts or {"train": 6, "val": 2, "test": 4}
    rng = np.random.default_rng(seed)
    rows: list[SplitRow] = []
    for ci, cls in enumerate(classes):
        for split, n in counts.items():
            for k in range(n):
                yy, xx = np.mgrid[0:resolution, 0:resolution]
                stripes = np.sin((xx if ci % 2 == 0 else yy) * (0.3 + 0.25 * ci))
                base = 60 + 50 * ci + 25 * stripes + rng.normal(0, 12, (resolution, resolution))
                g = np.clip(base, 0, 255).astype(np.uint8)
                rel = Path("data") / split / cls / f"{cls}_{split}_{k:03d}.png"
                path = root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.stack([g, g, g], -1), "RGB").save(path)
                digest = sha256_file(path)
                rows.append(SplitRow(rel.as_posix(), cls, split, f"{cls}/{k:03d}.png", digest, digest))
    return write_workspace(root, dataset="synthetic-test", options={"seed": seed}, kind="images",
                           classes=list(classes), image={"resolution": resolution, "channels": 3},
                           mel=None, rows=rows)


@contextlib.contextmanager
def one_torch_thread():
    """Tiny tensors run fastest on one thread (and the 2 cores may be shared); restores the count afterwards."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
