"""What every `tools/bench_*.py` (and `check_cuda_ops.py`) shares: the repo on sys.path, the record's common fields
(date, machine, command, code version, load), appending it to docs/bench.jsonl and the one summary line.

Import it first in a tool script (``tools/`` is on sys.path when a script there runs): it makes the repository's
packages importable.
"""
from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BENCH_LOG = ROOT / "docs" / "bench.jsonl"


def load_avg() -> float | None:
    """1-minute load average: other jobs on a shared machine skew CPU timings, so every record keeps it."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def machine() -> str:
    """Host, architecture and core count, e.g. ``dev-box x86_64 2 cores``."""
    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cores"


def base_record(bench: str) -> dict[str, Any]:
    """The fields every benchmark record carries."""
    from augment.provenance import code_version, now_iso

    return {"bench": bench, "date": now_iso(), "machine": machine(), "command": [Path(sys.argv[0]).name,
                                                                                 *sys.argv[1:]],
            "code_version": code_version(), "load_avg": load_avg()}


def append_record(record: dict[str, Any], path: Path | None = None) -> None:
    """Append one JSON line to ``path`` (default docs/bench.jsonl; rewritten atomically, so a killed run never leaves
    half a line)."""
    from augment.io_utils import atomic_write_text

    path = BENCH_LOG if path is None else path
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    atomic_write_text(path, old + json.dumps(record, sort_keys=True) + "\n")


def report(bench: str, fields: dict[str, Any], summary: str, *, record: bool = True) -> dict[str, Any]:
    """Print the one summary line and (unless ``record`` is False) append ``base_record(bench)`` + ``fields``."""
    rec = {**base_record(bench), **fields}
    if record:
        append_record(rec)
    print(summary)
    return rec
