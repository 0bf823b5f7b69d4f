"""PNG output of `augment generate`: a thread pool that encodes and writes while the generator runs, and the
overview grids (also the closest-pair sheets of `augment check-novelty`)."""
from __future__ import annotations

import collections
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from augment.audio.image_mapping import gray_to_rgb_png
from augment.io_utils import sha256_bytes


def default_workers() -> int:
    """PNG encoder threads: one per core, at most 16."""
    return min(16, os.cpu_count() or 1)


class ImageWriter:
    """Encode and write PNGs on a thread pool (zlib releases the GIL) while the generator computes the next batch."""

    def __init__(self, workers: int | None = None, on_done: Callable[[int], None] | None = None):
        self.workers = workers or default_workers()
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="png")
        self.pending: collections.deque[tuple[Any, Future]] = collections.deque()
        self.results: dict[Any, str] = {}
        self.on_done = on_done
        self.max_pending = 8 * self.workers + 256

    def submit(self, key: Any, path: Path, gray: np.ndarray) -> None:
        self.pending.append((key, self.pool.submit(_write_png, path, gray)))
        while self.pending and (len(self.pending) > self.max_pending or self.pending[0][1].done()):
            self._reap_one()

    def _reap_one(self) -> None:
        key, fut = self.pending.popleft()
        self.results[key] = fut.result()
        if self.on_done:
            self.on_done(1)

    def drain(self) -> dict[Any, str]:
        while self.pending:
            self._reap_one()
        return self.results

    def close(self) -> None:
        for _, fut in self.pending:
            fut.cancel()
        self.pool.shutdown(wait=True)


def _write_png(path: Path, gray: np.ndarray) -> str:
    data = gray_to_rgb_png(gray)
    with open(path, "wb") as f:
        f.write(data)
    return sha256_bytes(data)


def save_gray_grid(path: Path, grays: Sequence[np.ndarray], cols: int) -> None:
    """Tile uint8 gray images row-major (``cols`` wide, only full rows) with the training grid writer."""
    import torch

    from stylegan_ada.training.grids import save_grid

    rows = max(1, len(grays) // cols)
    images = torch.from_numpy(np.stack(grays[:cols * rows]))[:, None].repeat(1, 3, 1, 1)
    save_grid(images, path, cols, rows, (0, 255))
