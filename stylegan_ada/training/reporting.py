"""What a run tells its user: the per-tick status line, the stats.jsonl record, the progress bar."""
from __future__ import annotations

import contextlib
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import torch
from tqdm import tqdm

from stylegan_ada.fileio import atomic_write_chunks
from stylegan_ada.training.stats import append_jsonl, read_jsonl


def memory_gb(device: torch.device) -> dict[str, float]:
    """Peak GPU memory since the last call (resets the peak) and the process's peak resident memory."""
    out = {"cpu_peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}
    if device.type == "cuda":
        out["gpu_peak_gb"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
        torch.cuda.reset_peak_memory_stats(device)
    return out


def tick_record(*, tick: int, cur_nimg: int, tick_nimg: int, tick_seconds: float, maintenance: float,
                total_seconds: float, stats: dict[str, dict[str, float]], augment_p: float, rt: float | None,
                device: torch.device, total_nimg: int | None = None) -> dict[str, Any]:
    """One stats.jsonl line: progress, timing, resources, ADA and every reported loss statistic.

    ``eta_sec``: the time to ``total_nimg`` at this tick's speed (training and maintenance).
    """
    sec_per_img = (tick_seconds + maintenance) / max(tick_nimg, 1)
    rec: dict[str, Any] = {
        "tick": tick, "kimg": cur_nimg / 1000, "cur_nimg": cur_nimg, "timestamp": time.time(),
        "sec_per_tick": tick_seconds, "sec_per_kimg": tick_seconds / max(tick_nimg, 1) * 1000,
        "maintenance_sec": maintenance, "total_sec": total_seconds,
        "eta_sec": max(total_nimg - cur_nimg, 0) * sec_per_img if total_nimg is not None and tick_nimg else None,
        "augment_p": augment_p, "ada_rt": rt,
    }
    rec.update(memory_gb(device))
    rec["stats"] = stats
    return rec


def _mean(rec: dict[str, Any], name: str) -> str:
    s = rec["stats"].get(name)
    return f"{s['mean']:.3f}" if s else "-"


def status_line(rec: dict[str, Any]) -> str:
    """The status line printed each tick."""
    fields = [f"tick {rec['tick']:<5d}", f"kimg {rec['kimg']:<8.3f}", f"time {_hms(rec['total_sec']):<10s}",
              f"sec/tick {rec['sec_per_tick']:<6.1f}", f"sec/kimg {rec['sec_per_kimg']:<7.2f}",
              f"maint {rec['maintenance_sec']:<5.1f}"]
    if rec.get("eta_sec") is not None:
        fields.append(f"eta {_hms(rec['eta_sec']):<10s}")
    fields.append(f"cpumem {rec['cpu_peak_gb']:.2f}")
    if "gpu_peak_gb" in rec:
        fields.append(f"gpumem {rec['gpu_peak_gb']:.2f}")
    rt = rec["ada_rt"]
    fields += [f"augment {rec['augment_p']:.3f}", f"r_t {'-' if rt is None else f'{rt:.3f}'}",
               f"G {_mean(rec, 'Loss/G/loss')}", f"D {_mean(rec, 'Loss/D/loss')}",
               f"pl {_mean(rec, 'Loss/pl_penalty')}", f"r1 {_mean(rec, 'Loss/r1_penalty')}"]
    return " ".join(fields)


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s // 60 % 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def run_summary(run_dir: Path) -> dict[str, Any]:
    """kimg, mean sec/kimg (ticks after the first), best FID/KID and newest snapshot of a run, from stats.jsonl."""
    records = read_jsonl(run_dir / "stats.jsonl") if (run_dir / "stats.jsonl").exists() else []
    timed = [r["sec_per_kimg"] for r in records[1:] or records if isinstance(r.get("sec_per_kimg"), (int, float))]
    out: dict[str, Any] = {"kimg": records[-1]["kimg"] if records else 0.0,
                           "sec_per_kimg": sum(timed) / len(timed) if timed else None}
    for key in ("fid", "kid"):
        scores = [r["metrics"][key] for r in records if isinstance((r.get("metrics") or {}).get(key), (int, float))]
        out[f"best_{key}"] = min(scores) if scores else None
    snaps = [r["snapshot"] for r in records if r.get("snapshot")]
    out["newest_snapshot"] = snaps[-1] if snaps else None
    return out


def append_record(path: Path, rec: dict[str, Any]) -> None:
    append_jsonl(path, rec)


def truncate_stats(path: Path, cur_nimg: int) -> None:
    """Drop records past ``cur_nimg`` (ticks of an attempt that was killed after its last snapshot)."""
    records = read_jsonl(path)
    keep = [r for r in records if r.get("cur_nimg", 0) <= cur_nimg]
    if path.exists() and len(keep) != len(path.read_text(encoding="utf-8").splitlines()):
        atomic_write_chunks(path, ["".join(json.dumps(r) + "\n" for r in keep).encode("utf-8")])


def progress_bar(total: int, initial: int, enabled: bool) -> tqdm:
    return tqdm(total=total, initial=initial, unit="img", unit_scale=True, file=sys.stderr, disable=not enabled,
                desc="train", dynamic_ncols=True, mininterval=1.0, leave=False)


@contextlib.contextmanager
def bar_paused(bar: tqdm) -> Iterator[None]:
    """Clear the bar while status lines are printed, so they do not interleave."""
    bar.clear()
    try:
        yield
    finally:
        bar.refresh()
