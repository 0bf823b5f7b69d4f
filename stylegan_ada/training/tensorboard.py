"""TensorBoard event files beside stats.jsonl, when the optional ``tensorboard`` package is installed.

Per tick: every loss statistic (mean), ADA p and r_t, sec/kimg and, at snapshots, FID/KID; the fakes grids as
images. Step = images shown (cur_nimg; ticks can be shorter than 1 kimg). Without the package, one note per process and nothing else changes:
stats.jsonl holds the same numbers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

INSTALL_HINT = "pip install 'augment-mer[tensorboard]'"
_noted: list[bool] = []


def summary_writer_class() -> Any:
    """torch's SummaryWriter, or None when the tensorboard package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter


class TickWriter:
    """Writes the tick records of one run (rank 0 only); a no-op without tensorboard."""

    def __init__(self, run_dir: Path, log: Callable[[str], None], resume_nimg: int | None = None,
                 enabled: bool = True):
        cls = summary_writer_class() if enabled else None
        self.writer = None
        if cls is None and enabled:
            if not _noted:
                _noted.append(True)
                log(f"note: no TensorBoard event files (the tensorboard package is not installed: {INSTALL_HINT}); "
                    "stats.jsonl has the same numbers")
        if cls is None:
            return
        # purge_step drops events past the snapshot a resume continues from (ticks of a killed attempt)
        self.writer = cls(log_dir=str(run_dir), purge_step=resume_nimg)

    def tick(self, record: dict[str, Any]) -> None:
        if self.writer is None:
            return
        step = int(record["cur_nimg"])
        for name, value in (("Progress/augment_p", record.get("augment_p")), ("Progress/ada_rt", record.get("ada_rt")),
                            ("Timing/sec_per_kimg", record.get("sec_per_kimg"))):
            if isinstance(value, (int, float)):
                self.writer.add_scalar(name, value, step)
        for name, stat in (record.get("stats") or {}).items():
            if isinstance(stat, dict) and isinstance(stat.get("mean"), (int, float)):
                self.writer.add_scalar(name, stat["mean"], step)
        for key in ("fid", "kid"):
            value = (record.get("metrics") or {}).get(key)
            if isinstance(value, (int, float)):
                self.writer.add_scalar(f"Metrics/{key}", value, step)
        self.writer.flush()

    def image(self, path: Path, nimg: int) -> None:
        if self.writer is None:
            return
        import numpy as np
        from PIL import Image

        with Image.open(path) as im:
            pixels = np.asarray(im.convert("RGB"))
        self.writer.add_image("fakes", pixels, nimg, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
