"""The run directory: numbering of runs, snapshot file names, finding the newest good snapshot, retention.

A run ``<runs_root>/<NNNNN>-<desc>/`` holds pairs of ``network-snapshot-<tag>.safetensors`` (weights, see
:mod:`stylegan_ada.checkpoint`) and ``training-state-<tag>.pt`` (everything else needed to resume, see
:mod:`stylegan_ada.training.state`). ``<tag>`` is the kimg as 6 digits (``000012``); a snapshot whose kimg is
already taken by an earlier one (an interrupt shortly after a tick, or ticks shorter than 1 kimg) gets the
images past the kimg as a suffix: ``000012.480`` = 12 480 images (see :func:`snapshot_tag`). The training state is written after its network
snapshot and records that file's sha256, so a pair is complete only when both exist and agree.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

RUN_RE = re.compile(r"^(\d{5,})-(.+)$")
TAG_RE = r"(\d{6,})(?:\.(\d{3}))?"
NETWORK_RE = re.compile(rf"^network-snapshot-{TAG_RE}\.safetensors$")
STATE_RE = re.compile(rf"^training-state-{TAG_RE}\.pt$")
CONFIG_NAME = "config.json"
STATS_NAME = "stats.jsonl"
REALS_NAME = "reals.png"


def list_runs(runs_root: Path) -> list[Path]:
    """Run directories ``NNNNN-desc`` under ``runs_root``, oldest (lowest number) first."""
    if not runs_root.is_dir():
        return []
    runs = [p for p in runs_root.iterdir() if p.is_dir() and RUN_RE.match(p.name)]
    return sorted(runs, key=lambda p: (int(RUN_RE.match(p.name).group(1)), p.name))


def latest_run(runs_root: Path) -> Path | None:
    runs = list_runs(runs_root)
    return runs[-1] if runs else None


def create_run_dir(runs_root: Path, desc: str) -> Path:
    """Make the next numbered run directory (race-free: mkdir fails if another process took the number)."""
    runs_root.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.+-]+", "-", desc).strip("-") or "run"
    while True:
        runs = list_runs(runs_root)
        number = int(RUN_RE.match(runs[-1].name).group(1)) + 1 if runs else 0
        path = runs_root / f"{number:05d}-{safe}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


# ------------------------------------------------------------------------------------------------------ file names
def snapshot_tag(cur_nimg: int, prev_nimg: int | None) -> str:
    """``000012`` for 12 000..12 999 images, or ``000012.480`` when the run's previous snapshot (at ``prev_nimg``
    images) already used kimg 12. A function of the snapshot schedule only, so a replay after a kill picks the
    same names."""
    tag = f"{cur_nimg // 1000:06d}"
    same_kimg = prev_nimg is not None and prev_nimg // 1000 == cur_nimg // 1000
    return f"{tag}.{cur_nimg % 1000:03d}" if same_kimg else tag


def tag_nimg(tag: str) -> int:
    """Images that a tag stands for (the lower bound for a plain kimg tag)."""
    kimg, _, rest = tag.partition(".")
    return int(kimg) * 1000 + (int(rest) if rest else 0)


def network_path(run_dir: Path, tag: str) -> Path:
    return run_dir / f"network-snapshot-{tag}.safetensors"


def state_path(run_dir: Path, tag: str) -> Path:
    return run_dir / f"training-state-{tag}.pt"


def _tag_of(name: str, pattern: re.Pattern) -> str | None:
    m = pattern.match(name)
    return m.group(1) + (f".{m.group(2)}" if m.group(2) else "") if m else None


def network_tag(name: str) -> str | None:
    """The tag of a ``network-snapshot-<tag>.safetensors`` file name (None for any other name)."""
    return _tag_of(name, NETWORK_RE)


def state_tag(name: str) -> str | None:
    """The tag of a ``training-state-<tag>.pt`` file name (None for any other name)."""
    return _tag_of(name, STATE_RE)


def _tags(run_dir: Path, pattern: re.Pattern) -> list[str]:
    if not run_dir.is_dir():
        return []
    tags = [t for t in (_tag_of(p.name, pattern) for p in run_dir.iterdir()) if t is not None]
    return sorted(tags, key=tag_nimg)


def state_tags(run_dir: Path) -> list[str]:
    """Tags of the training states in ``run_dir``, oldest first."""
    return _tags(run_dir, STATE_RE)


def network_tags(run_dir: Path) -> list[str]:
    return _tags(run_dir, NETWORK_RE)


# ------------------------------------------------------------------------------------------------------- resuming
@dataclass(frozen=True)
class ResumePoint:
    tag: str
    state_path: Path
    network_path: Path
    state: dict


def find_resume_point(run_dir: Path, warn: Callable[[str], None]) -> tuple[ResumePoint | None, list[str]]:
    """The newest snapshot pair that verifies, and a list of the problems found with newer ones.

    Each problem is also passed to ``warn`` (one line each).
    """
    from stylegan_ada.training.state import TrainingStateError, load_resumable_state

    problems: list[str] = []
    for tag in reversed(state_tags(run_dir)):
        spath, npath = state_path(run_dir, tag), network_path(run_dir, tag)
        try:
            state = load_resumable_state(spath, npath)
        except TrainingStateError as exc:
            problems.append(f"{spath.name}: {exc}")
            warn(f"warning: snapshot {tag} is unusable ({exc}); falling back to the previous one")
            continue
        return ResumePoint(tag, spath, npath, state), problems
    return None, problems


def prune_snapshots(run_dir: Path, current: str, keep: int, protect: Iterable[str] = ()) -> list[Path]:
    """Delete all but the ``keep`` newest snapshot pairs up to ``current`` (``keep`` <= 0: keep all).

    Call right after the pair ``current`` was written and verified: it is never deleted. Tags after ``current`` (left
    by an earlier attempt that was killed; resuming skipped them) are left alone, the run overwrites them when it gets
    there. Network snapshots whose tag is in ``protect`` (e.g. the best FID) stay. Returns the deleted paths.
    """
    if keep <= 0:
        return []
    protected = set(protect)
    limit = tag_nimg(current)
    removed = []
    for tags, path_of, spare in ((state_tags(run_dir), state_path, set()),
                                 (network_tags(run_dir), network_path, protected)):
        tags = [t for t in tags if tag_nimg(t) <= limit]
        for tag in tags[:-keep]:
            if tag in spare:
                continue
            path = path_of(run_dir, tag)
            try:
                os.unlink(path)
                removed.append(path)
            except OSError:
                pass
    return removed


def record_resume(run_dir: Path, info: dict) -> None:
    """Add ``info`` (what this session resumed from) to the newest entry of config.json ``resumes``, if any."""
    import json

    from stylegan_ada.fileio import atomic_write_chunks

    path = run_dir / CONFIG_NAME
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        entry = record["resumes"][-1]
    except (OSError, ValueError, KeyError, IndexError, TypeError, RecursionError):
        return  # no resume record to annotate (a library caller without config.json)
    if not isinstance(entry, dict):
        return
    entry["resumed_from"] = info
    atomic_write_chunks(path, [(json.dumps(record, indent=2) + "\n").encode("utf-8")])


def has_snapshots(run_dir: Path) -> bool:
    """True if the run has any network snapshot or training state (then a resume never starts from scratch)."""
    return bool(state_tags(run_dir) or network_tags(run_dir))


def run_config_problem(record: object) -> str | None:
    """What is wrong with a run's config.json (parsed), naming the field; None when it has what a resume reads."""
    if not isinstance(record, dict):
        return "it is not a JSON object"
    config = record.get("config")
    if not isinstance(config, dict):
        return "field 'config' is missing or not an object"
    args, training = config.get("args"), config.get("training")
    if not isinstance(args, dict):
        return "field 'config.args' is missing or not an object"
    for name, value in args.items():
        items = value if isinstance(value, list) else [value]
        if not all(v is None or isinstance(v, (str, int, float, bool)) for v in items):
            return f"field 'config.args.{name}' holds a {type(value).__name__}, not a plain value"
    if not isinstance(training, dict):
        return "field 'config.training' is missing or not an object"
    for name in ("G_kwargs", "D_kwargs"):
        if not isinstance(training.get(name), dict):
            return f"field 'config.training.{name}' is missing or not an object"
    for name, nullable in (("ada_kimg", False), ("ema_rampup", True)):
        value = training.get(name)
        if not ((nullable and value is None) or (isinstance(value, (int, float)) and not isinstance(value, bool))):
            return f"field 'config.training.{name}' must be a number{' or null' if nullable else ''}"
    if not isinstance(record.get("data_hashes", {}), (dict, type(None))):
        return "field 'data_hashes' is not an object"
    if not isinstance(record.get("resumes", []), list):
        return "field 'resumes' is not a list"
    return None
