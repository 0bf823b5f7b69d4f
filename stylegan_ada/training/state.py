"""The training state file: everything besides the network weights that a run needs to continue exactly.

``training-state-<tag>.pt`` is a ``torch.save`` file that ``torch.load(..., weights_only=True)`` reads (tensors,
numbers, strings, lists, dicts only; never code). It wraps the serialized state with its sha256:
``{"format": STATE_FORMAT, "sha256": <hex of payload>, "payload": <uint8 tensor: torch.save(state)>}``, so a
truncated or corrupted file is detected before anything in it is used. The state names its network snapshot and that
file's sha256 (:func:`verify_pair`).
"""
from __future__ import annotations

import hashlib
import io
import math
import os
import random
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from stylegan_ada.fileio import atomic_write_chunks, sha256_file

STATE_FORMAT = "stylegan_ada-training-state-v1"


class TrainingStateError(ValueError):
    """A training state cannot be used; the message is one line saying why."""


# --------------------------------------------------------------------------------------------------------- RNG
def capture_rng() -> dict[str, Any]:
    """The states of every global random generator: torch CPU and CUDA, numpy, Python."""
    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    rng: dict[str, Any] = {
        "torch_cpu": torch.get_rng_state(),
        "torch_cuda": [],
        "numpy": {"keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": py_version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["torch_cuda"] = [torch.cuda.get_rng_state(i) for i in range(torch.cuda.device_count())]
    return rng


def restore_rng(rng: dict[str, Any]) -> None:
    """Put back what :func:`capture_rng` returned (CUDA states only for devices that exist)."""
    torch.set_rng_state(rng["torch_cpu"])
    if rng.get("torch_cuda") and torch.cuda.is_available():
        for i, st in enumerate(rng["torch_cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(st, i)
    n = rng["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = rng["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))


# --------------------------------------------------------------------------------------------------- save/load
def _to_bytes(obj: Any) -> io.BytesIO:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf


def save_training_state(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically (temp file, fsync, rename) with its checksum. OSError(ENOSPC) on a full disk,
    with any previous file left intact."""
    inner = _to_bytes(state).getbuffer()
    wrapped = {"format": STATE_FORMAT, "sha256": hashlib.sha256(inner).hexdigest(),
               "payload": torch.frombuffer(inner, dtype=torch.uint8) if len(inner) else torch.zeros(0, dtype=torch.uint8)}
    outer = _to_bytes(wrapped).getbuffer()
    digest = hashlib.sha256(outer).hexdigest()

    def check(tmp: Path) -> None:  # what reached the disk is what we meant to write
        if sha256_file(tmp) != digest:
            raise OSError(f"{Path(path).name}: the written file differs from the data (disk error?)")

    return atomic_write_chunks(path, [outer], check=check)


def load_training_state(path: str | os.PathLike) -> dict[str, Any]:
    """The state saved by :func:`save_training_state`; TrainingStateError if missing, truncated or corrupt."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise TrainingStateError(f"{p.name} does not exist") from None
    except OSError as exc:
        raise TrainingStateError(f"{p.name} cannot be read ({exc.strerror or exc})") from None
    try:
        wrapped = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure here means a damaged file
        raise TrainingStateError(f"{p.name} is truncated or corrupt ({type(exc).__name__})") from None
    if not isinstance(wrapped, dict) or wrapped.get("format") != STATE_FORMAT:
        raise TrainingStateError(f"{p.name} is not a {STATE_FORMAT} file")
    payload = wrapped.get("payload")
    if not isinstance(payload, torch.Tensor) or payload.dtype != torch.uint8:
        raise TrainingStateError(f"{p.name} has no payload (corrupt file)")
    raw = payload.numpy().tobytes()
    if hashlib.sha256(raw).hexdigest() != wrapped.get("sha256"):
        raise TrainingStateError(f"{p.name} fails its checksum (corrupt file)")
    try:
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise TrainingStateError(f"{p.name} payload is unreadable ({type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise TrainingStateError(f"{p.name} payload is not a dict (corrupt file)")
    return state


# ------------------------------------------------------------------------------------------------------ schema
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_tensor(dtype: torch.dtype | None = None) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, torch.Tensor) and (dtype is None or v.dtype == dtype)


def _is_opt(v: Any) -> bool:
    return isinstance(v, dict) and isinstance(v.get("state"), dict) and isinstance(v.get("param_groups"), list) \
        and all(isinstance(g, dict) for g in v["param_groups"])


def _is_ada(v: Any) -> bool:
    return v is None or (isinstance(v, dict) and all(_is_int(v.get(k)) for k in ("count", "minibatches", "adjustments"))
                         and _is_number(v.get("sign_sum")) and (v.get("r_t") is None or _is_number(v.get("r_t"))))


def _is_rng(v: Any) -> bool:
    if not isinstance(v, dict) or not _is_tensor(torch.uint8)(v.get("torch_cpu")):
        return False
    n, p = v.get("numpy"), v.get("python")
    return (isinstance(v.get("torch_cuda", []), list) and isinstance(n, dict) and isinstance(p, dict)
            and _is_tensor(torch.int64)(n.get("keys")) and n["keys"].numel() == 624 and _is_int(n.get("pos"))
            and _is_int(n.get("has_gauss")) and _is_number(n.get("cached_gaussian"))
            and _is_int(p.get("version")) and _is_tensor(torch.int64)(p.get("state"))
            and (p.get("gauss") is None or _is_number(p.get("gauss"))))


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


# What a resumable state holds (written by the training loop and :func:`snapshots.save_state`), with the expected
# form of each value, so a damaged or hand-edited file is refused with the field named, not a TypeError later.
STATE_SCHEMA: dict[str, tuple[Callable[[Any], bool], str]] = {
    **{k: (_is_int, "an integer >= 0") for k in ("cur_nimg", "cur_tick", "batch_idx", "tick_start_nimg", "data_pos")},
    "last_snapshot_nimg": (_optional(_is_int), "an integer >= 0 or None"),
    "wall_seconds": (lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    "metric_history": (lambda v: isinstance(v, list) and all(isinstance(m, dict) for m in v), "a list of dicts"),
    "G_opt": (_is_opt, "an optimizer state dict"), "D_opt": (_is_opt, "an optimizer state dict"),
    "pl_mean": (lambda v: isinstance(v, torch.Tensor) and v.numel() == 1 and v.is_floating_point(),
                "a one-element float tensor"),
    "ada": (_is_ada, "the ADA controller's state or None"),
    "augment_p": (_optional(_is_tensor()), "a tensor or None"),
    "network_snapshot": (lambda v: isinstance(v, str), "a file name"),
    "network_sha256": (lambda v: isinstance(v, str), "a sha256"),
    "rng": (_is_rng, "the random generators' states"),
}


def check_state(state: dict[str, Any], name: str) -> None:
    """TrainingStateError naming the first field of ``state`` that is missing or has the wrong type."""
    for key, (check, want) in STATE_SCHEMA.items():
        if key not in state:
            raise TrainingStateError(f"{name} has no {key!r} (not a complete training state)")
        try:
            ok = check(state[key])
        except (TypeError, ValueError, AttributeError, RuntimeError, OverflowError):  # OverflowError: a huge int
            ok = False
        if not ok:
            raise TrainingStateError(f"{name}: field {key!r} must be {want}, got {type(state[key]).__name__}")


def verify_pair(state: dict[str, Any], network_path: Path) -> None:
    """TrainingStateError unless ``network_path`` is the network snapshot this state was written with."""
    if state.get("network_snapshot") != network_path.name:
        raise TrainingStateError(f"it belongs to {state.get('network_snapshot')!r}, not {network_path.name}")
    if not network_path.is_file():
        raise TrainingStateError(f"its network snapshot {network_path.name} is missing")
    if sha256_file(network_path) != state.get("network_sha256"):
        raise TrainingStateError(f"its network snapshot {network_path.name} is damaged or from another run "
                                 "(sha256 differs)")


def load_resumable_state(path: Path, network_path: Path) -> dict[str, Any]:
    """A state fit to resume from: intact (its checksum), complete (:data:`STATE_SCHEMA`) and written with
    ``network_path`` (:func:`verify_pair`); TrainingStateError naming the first problem."""
    state = load_training_state(path)
    check_state(state, path.name)
    verify_pair(state, network_path)
    return state
