"""Writing a snapshot pair (network + training state) and restoring a run from one."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
                 augment_pipe: torch.nn.Module | None, training_set_kwargs: dict, extra: dict) -> Path:
    """The network half of a snapshot pair (written first)."""
    from stylegan_ada.checkpoint import save_snapshot

    return save_snapshot(rd.network_path(run_dir, tag), G=nets["G"], D=nets["D"], G_ema=nets["G_ema"],
                         augment_pipe=augment_pipe, training_set_kwargs=training_set_kwargs, extra=extra)


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
