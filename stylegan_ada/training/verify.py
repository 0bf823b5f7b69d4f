"""Check the snapshot files of runs without loading any network: what ``augment verify`` reports.

A network snapshot is checked for its framing, both checksums and the type of every metadata field
(:func:`stylegan_ada.checkpoint.read_snapshot_metadata`); a training state for its checksum, its schema and its
link to the network snapshot of its tag (the sha256 it records), i.e. exactly what a resume requires of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from stylegan_ada.training import run_dir as rd

NETWORK_GLOB = "network-snapshot-*.safetensors"   # also the .replaced-<n> files a replay set aside
STATE_GLOB = "training-state-*.pt"
_MAX_DEPTH = 3                                     # WORKSPACE/runs/<class>/<run>/


@dataclass(frozen=True)
class FileCheck:
    """The verdict on one file: ``ok`` with what it holds, or not, with why."""
    path: Path
    ok: bool
    detail: str


def snapshot_files(run_dir: Path) -> list[Path]:
    """Network snapshots then training states of one run directory, each oldest first."""
    def order(p: Path) -> tuple[int, str]:
        tag = rd.network_tag(p.name) or rd.state_tag(p.name)
        return (rd.tag_nimg(tag) if tag else -1, p.name)

    return sorted(run_dir.glob(NETWORK_GLOB), key=order) + sorted(run_dir.glob(STATE_GLOB), key=order)


def run_dirs_under(path: Path) -> list[Path]:
    """``path`` itself when it holds snapshot files, else every folder below it (down to WORKSPACE/runs/<class>/<run>)
    that does; ``runs/_jobs`` records are not runs."""
    found: set[Path] = set()
    for depth in range(_MAX_DEPTH + 1):
        for pattern in (NETWORK_GLOB, STATE_GLOB):
            found.update(p.parent for p in path.glob("/".join(["*"] * depth + [pattern])))
        if depth == 0 and found:
            break
    return sorted(found)


def check_network(path: Path) -> FileCheck:
    """Framing, checksums and metadata schema of one network snapshot (no network is built)."""
    from stylegan_ada.checkpoint import NetworkLoadError, read_snapshot_metadata

    try:
        meta = read_snapshot_metadata(path)
    except (NetworkLoadError, OSError) as exc:
        return FileCheck(path, False, _reason(exc, path))
    if not isinstance(meta.get("G_kwargs"), dict):
        return FileCheck(path, False, "holds no generator (metadata field 'G_kwargs' is null)")
    nets = "G" + (", D" if meta.get("D_kwargs") is not None else "") + (", G_ema" if meta.get("has_G_ema") else "")
    extra = meta.get("extra") or {}
    nimg = extra.get("cur_nimg")
    at = f"; {nimg / 1000:.3f} kimg" if isinstance(nimg, int) and not isinstance(nimg, bool) else ""
    return FileCheck(path, True, f"{nets}{at}; payload sha256 {meta['payload_sha256'][:12]}")


def check_state(path: Path) -> FileCheck:
    """Checksum, schema and network link of one training state: whether a resume could start from it."""
    from stylegan_ada.training.state import TrainingStateError, load_resumable_state

    tag = rd.state_tag(path.name)
    if tag is None:
        return FileCheck(path, False, f"{path.name} is not named training-state-<tag>.pt, so it pairs with no "
                         "network snapshot")
    network = rd.network_path(path.parent, tag)
    try:
        state = load_resumable_state(path, network)
    except (TrainingStateError, OSError) as exc:
        return FileCheck(path, False, _reason(exc, path))
    return FileCheck(path, True, f"resumable at {state['cur_nimg'] / 1000:.3f} kimg; pairs with {network.name} "
                     "(sha256 matches)")


def check_file(path: Path) -> FileCheck:
    """:func:`check_state` for a training state, :func:`check_network` for anything else."""
    return check_state(path) if path.name.endswith(".pt") else check_network(path)


def check_run(run_dir: Path) -> Iterator[FileCheck]:
    for path in snapshot_files(run_dir):
        yield check_file(path)


def _reason(exc: Exception, path: Path) -> str:
    text = (str(exc).splitlines() or [type(exc).__name__])[0]
    for prefix in (f"{path}: ", f"{path.name}: ", f"{path.name} "):
        text = text.removeprefix(prefix)
    return text
