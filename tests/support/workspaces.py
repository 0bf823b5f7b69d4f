"""The one builder of test workspaces: PNG workspaces written directly (no audio step), copies of a
shared one, trained ones (tiny snapshots under runs/), and synthetic folders as `augment generate`
writes them."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from augment.io_utils import sha256_file
from augment.synthetic import FakeRow, manifest_text
from augment.workspace import SplitRow, Workspace, write_workspace

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


def copy_workspace(src: Workspace, dst: Path, ignore: Sequence[str] = ()) -> Workspace:
    """A private copy of ``src`` at ``dst`` (leaving out the ``ignore`` glob patterns) that a test may change."""
    shutil.copytree(src.root, dst, ignore=shutil.ignore_patterns(*ignore) if ignore else None)
    return Workspace.load(dst)


RESOLUTION = 32


def snapshot_path(ws: Workspace, cls: str | None, run: str = "00000-tiny", tag: str = "000004") -> Path:
    return ws.runs_dir(cls) / run / f"network-snapshot-{tag}.safetensors"


def trained_workspace(root: Path, classes: Sequence[str] = ("a", "b", "c"), trained: Sequence[str] = ("a", "b"),
                      **kwargs: Any) -> Workspace:
    """A test workspace whose ``trained`` classes each have one tiny snapshot under runs/<class>/00000-tiny/."""
    from tests.support.networks import save_tiny_snapshot

    ws = make_image_workspace(root, classes, resolution=RESOLUTION, **kwargs)
    for i, cls in enumerate(trained):
        save_tiny_snapshot(snapshot_path(ws, cls), seed=i, extra={"class": cls, "kimg": 4})
    return ws


def write_synthetic(folder: Path, images: dict[str, list[np.ndarray]], classes: Sequence[str], *,
                    snapshot: str = "runs/x.safetensors") -> list[FakeRow]:
    """A synthetic folder as `augment generate` writes it: ``<class>/seed<NNNNNN>.png`` (RGB, 3 equal channels) for
    each gray image (seeds 0, 1, ...) and manifest.csv through the product's own ``manifest_text``."""
    rows = []
    for cls, grays in images.items():
        (folder / cls).mkdir(parents=True, exist_ok=True)
        for seed, g in enumerate(grays):
            rel = f"{cls}/seed{seed:06d}.png"
            Image.fromarray(np.repeat(g[:, :, None], 3, axis=2), "RGB").save(folder / rel)
            rows.append(FakeRow(rel, cls, seed, snapshot, 1.0, sha256_file(folder / rel)))
    (folder / "manifest.csv").write_text(manifest_text(rows, classes))
    return rows
