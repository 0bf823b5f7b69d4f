"""Writing a snapshot pair (network + training state) and restoring a run from one."""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from stylegan_ada.fileio import sha256_file
from stylegan_ada.training import run_dir as rd
from stylegan_ada.training.state import TrainingStateError, capture_rng, restore_rng, save_training_state

STATE_VERSION = 1


@dataclass
class Progress:
    """Counters of a run; all of it goes into the training state."""
    cur_nimg: int = 0
    cur_tick: int = 0
    batch_idx: int = 0
    tick_start_nimg: int = 0
    data_pos: int = 0                     # samples taken from the data order so far
    last_snapshot_nimg: int | None = None
    wall_seconds: float = 0.0             # training time of earlier sessions of this run
    metric_history: list[dict[str, Any]] = field(default_factory=list)

    def to_state(self) -> dict[str, Any]:
        return dict(cur_nimg=self.cur_nimg, cur_tick=self.cur_tick, batch_idx=self.batch_idx,
                    tick_start_nimg=self.tick_start_nimg, data_pos=self.data_pos,
                    last_snapshot_nimg=self.last_snapshot_nimg, wall_seconds=self.wall_seconds,
                    metric_history=list(self.metric_history))

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Progress":
        keys = cls().to_state().keys()
        return cls(**{k: state[k] for k in keys})


def save_network(run_dir: Path, tag: str, *, nets: dict[str, torch.nn.Module],
                 augment_pipe: torch.nn.Module | None, training_set_kwargs: dict, extra: dict,
                 log: Callable[[str], None] = print) -> Path:
    """The network half of a snapshot pair (written first).

    A good network file already at this tag (left by an attempt killed before its training state) is never lost:
    it is set aside while the new one is written, dropped if the replay wrote the very same weights (the normal,
    bit-exact case), else kept as ``network-snapshot-<tag>.replaced-<n>.safetensors`` with a warning.
    """
    from stylegan_ada.checkpoint import read_snapshot_metadata, save_snapshot, verify_snapshot

    path = rd.network_path(run_dir, tag)
    aside = None
    if path.is_file() and verify_snapshot(path):
        aside = _free_name(path)
        os.replace(path, aside)
    try:
        save_snapshot(path, G=nets["G"], D=nets["D"], G_ema=nets["G_ema"], augment_pipe=augment_pipe,
                      training_set_kwargs=training_set_kwargs, extra=extra)
    except BaseException:
        if aside is not None:
            os.replace(aside, path)
        raise
    if aside is not None:
        old = read_snapshot_metadata(aside)["payload_sha256"]
        if old == read_snapshot_metadata(path)["payload_sha256"]:
            aside.unlink()
        else:
            log(f"warning: {path.name} already existed with other weights (an interrupted attempt, replayed "
                f"differently); kept it as {aside.name}")
    return path


def _free_name(path: Path) -> Path:
    n = 1
    while True:
        candidate = path.with_name(path.name.replace(".safetensors", f".replaced-{n}.safetensors"))
        if not candidate.exists():
            return candidate
        n += 1


def discard_network(path: Path | None) -> None:
    """Remove the network half of a pair whose training state could not be written (e.g. a full disk): it is not a
    resume point, and leaving it would make the retry fail on the same full disk."""
    if path is not None:
        path.unlink(missing_ok=True)


def save_state(run_dir: Path, tag: str, network_path: Path, state: dict[str, Any]) -> Path:
    """The training-state half, naming its network snapshot and that file's sha256 (written second)."""
    state = dict(state, version=STATE_VERSION, network_snapshot=network_path.name,
                 network_sha256=sha256_file(network_path), rng=capture_rng())
    return save_training_state(rd.state_path(run_dir, tag), state)


def load_networks_into(network_path: Path, nets: dict[str, torch.nn.Module],
                       augment_pipe: torch.nn.Module | None) -> dict[str, Any]:
    """Copy G, D, G_ema (and ADA p) from a snapshot into the run's modules; returns the snapshot's ``extra``."""
    from stylegan_ada.checkpoint import SnapshotError, copy_state_into, load_snapshot

    try:
        snap = load_snapshot(network_path)
    except SnapshotError as exc:
        raise TrainingStateError(str(exc)) from None
    for key, module in nets.items():
        if snap.get(key) is None:
            raise TrainingStateError(f"{network_path.name} has no {key}")
        copy_state_into(module, snap[key].state_dict(), what=f"{network_path.name}: {key}", error=TrainingStateError)
    if augment_pipe is not None and snap.get("augment_pipe") is not None:
        with torch.no_grad():
            augment_pipe.p.copy_(snap["augment_pipe"].p)
    return snap.get("extra") or {}


def restore_rng_from(state: dict[str, Any]) -> None:
    if "rng" in state:
        restore_rng(state["rng"])


def progress_from_network(network_path: Path, extra: dict[str, Any], run_dir: Path) -> Progress:
    """Counters for continuing from a network snapshot alone (no usable training state): from its recorded
    ``extra`` and the run's stats.jsonl (wall time, metric history up to it)."""
    from stylegan_ada.training.stats import read_jsonl

    counters = {k: extra.get(k) for k in ("cur_nimg", "tick", "batch_idx")}
    bad = [k for k, v in counters.items() if isinstance(v, bool) or not isinstance(v, int) or v < 0]
    if bad:
        raise TrainingStateError(f"{network_path.name} does not record its {bad[0]!r}; cannot continue from it")
    cur = counters["cur_nimg"]
    records = [r for r in read_jsonl(run_dir / rd.STATS_NAME) if isinstance(r, dict)
               and isinstance(r.get("cur_nimg"), int) and r["cur_nimg"] <= cur]
    history = [r["metrics"] for r in records if isinstance(r.get("metrics"), dict)]
    wall = next((r.get("total_sec") for r in reversed(records) if r.get("snapshot") == network_path.name), 0.0)
    return Progress(cur_nimg=cur, cur_tick=counters["tick"], batch_idx=counters["batch_idx"], tick_start_nimg=cur,
                    data_pos=cur, last_snapshot_nimg=cur,
                    wall_seconds=float(wall) if isinstance(wall, (int, float)) else 0.0, metric_history=history)


def continue_from_network(run_dir: Path, nets: dict[str, torch.nn.Module], augment_pipe: torch.nn.Module | None,
                          problems: list[str], log: Callable[[str], None]) -> tuple[str, Progress] | None:
    """The resume of last resort: no snapshot pair is usable, but a good network snapshot exists.

    Loads G, D, G_ema and ADA p from the newest network snapshot that verifies, with fresh optimizer state, and
    says so in one loud line. Returns (tag, progress); None when the run has no snapshot file at all (a fresh start);
    TrainingStateError when it has some but none is usable.
    """
    from stylegan_ada.checkpoint import verify_snapshot

    for tag in reversed(rd.network_tags(run_dir)):
        path = rd.network_path(run_dir, tag)
        if not verify_snapshot(path):
            log(f"warning: network snapshot {tag} is damaged too; trying the previous one")
            continue
        extra = load_networks_into(path, nets, augment_pipe)
        progress = progress_from_network(path, extra, run_dir)
        log(f"warning: no usable training state in {run_dir.name} ({len(problems)} unusable); continuing from "
            f"network snapshot {tag} ({progress.cur_nimg / 1000:.3f} kimg: weights and ADA p) with FRESH optimizer "
            "state -- not bit-identical to an uninterrupted run")
        return tag, progress
    if problems or rd.network_tags(run_dir):
        # Snapshot files exist but none is usable: starting over would silently drop the transfer source too.
        raise TrainingStateError(f"no usable snapshot in {run_dir} (every network snapshot and training state is "
                                 "damaged); start a new run without --resume (the damaged files are left in place)")
    return None


def write_failure_message(run_dir: Path, exc: OSError, tag: str) -> str:
    """One line for a failed write at snapshot ``tag``: what failed, whether the previous pair is intact, what to do."""
    prev = [t for t in rd.state_tags(run_dir) if rd.tag_nimg(t) < rd.tag_nimg(tag)]
    intact = f"the previous snapshot {prev[-1]} is intact" if prev else "no earlier snapshot exists"
    what = f"snapshot {tag}" if exc.filename is None or "snapshot" in str(exc.filename) or "state" in str(
        exc.filename) else Path(exc.filename).name
    if exc.errno == errno.ENOSPC:
        return f"disk full while writing {what} in {run_dir}; {intact}; free some space, then resume"
    return f"cannot write {what} in {run_dir} ({exc.strerror or exc}); {intact}"
