"""Training statistics: running moments of named scalars kept on the device, summarized once per tick."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable

import torch


class StatCollector:
    """Accumulates count, sum and sum of squares per name without host synchronisation."""

    def __init__(self, device: torch.device):
        self.device = device
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}

    def report(self, name: str, value: torch.Tensor) -> None:
        v = value.detach().flatten().to(torch.float64)
        moments = torch.stack([v.sum(), v.square().sum()])
        if name in self._sums:
            self._sums[name] += moments
            self._counts[name] += v.numel()
        else:
            self._sums[name] = moments
            self._counts[name] = v.numel()

    def summarize(self, all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
                  world_size: int = 1) -> dict[str, dict[str, float]]:
        """{name: {num, mean, std}} over everything reported since the last call (all processes), then reset."""
        names = sorted(self._sums)
        out: dict[str, dict[str, float]] = {}
        if names:
            stacked = torch.stack([self._sums[n] for n in names])
            if all_reduce is not None:
                stacked = all_reduce(stacked)
            values = stacked.cpu().tolist()
            for name, (s, sq) in zip(names, values):
                num = self._counts[name] * world_size
                mean = s / num
                var = max(sq / num - mean * mean, 0.0)
                out[name] = {"num": num, "mean": mean, "std": math.sqrt(var)}
        self._sums.clear()
        self._counts.clear()
        return out


def append_jsonl(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one JSON line and flush it to disk (a killed run keeps every finished tick)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every complete JSON line of ``path`` (a torn last line from a killed run is ignored)."""
    p = Path(path)
    if not p.is_file():
        return []
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
