"""Find the trained generator to use for each class: runs, snapshots, newest or best by FID.

Runs live in ``WORKSPACE/runs/<class>/<NNNNN>-<desc>/`` (``runs/_conditional/`` for a class-conditional model) and
hold ``network-snapshot-<tag>.safetensors`` files plus ``stats.jsonl`` (per-snapshot metrics). Snapshot names and
their order (``000012`` < ``000012.480`` < ``000013``) come from :mod:`stylegan_ada.training.run_dir`, the one place
that defines them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from stylegan_ada.training.run_dir import (RUN_RE, STATS_NAME, list_runs, network_path, network_tag, network_tags,
                                           tag_nimg)
from stylegan_ada.training.stats import read_jsonl

from augment.errors import UserError, warn
from augment.io_utils import sha256_bytes
from augment.workspace import CONDITIONAL_RUNS, Workspace

PICKS = ("newest", "best")


@dataclass(frozen=True)
class SnapshotRef:
    """One snapshot file on disk and where it came from."""
    path: Path
    run_dir: Path
    run_id: int
    nimg: int                         # training images shown when it was written (from its tag)
    fid: float | None = None

    @property
    def kimg(self) -> float:
        return self.nimg / 1000


@dataclass
class ModelChoice:
    """The candidate snapshots (best first) for a set of classes served by one network."""
    classes: list[str]
    candidates: list[SnapshotRef]
    conditional: bool
    origin: str                      # how it was chosen, for messages: 'runs/anger', '--snapshot ...'
    pick: str = "newest"


def train_command(ws: Workspace, cls: str | None) -> str:
    """The exact command that trains a model for ``cls`` (None: the conditional model) in ``ws``."""
    target = "--cond" if cls is None else f"--class {cls}"
    return f"augment train --workspace {ws.root} {target}"


def snapshot_nimg(path: Path) -> int | None:
    """Training images of a ``network-snapshot-<tag>.safetensors`` (None for other names)."""
    tag = network_tag(path.name)
    return tag_nimg(tag) if tag is not None else None


def list_snapshots(run_dir: Path) -> list[SnapshotRef]:
    """Snapshots of one run, oldest first, with their FID when ``stats.jsonl`` records one."""
    m = RUN_RE.match(run_dir.name)
    run_id = int(m.group(1)) if m else -1
    fids = read_snapshot_fids(run_dir)
    out = []
    for tag in network_tags(run_dir):
        path = network_path(run_dir, tag)
        out.append(SnapshotRef(path, run_dir, run_id, tag_nimg(tag), fids.get(path.name)))
    return out


def _find_fid(rec: dict[str, Any]) -> float | None:
    for key in ("fid", "FID"):
        if isinstance(rec.get(key), (int, float)):
            return float(rec[key])
    for value in rec.values():
        if isinstance(value, dict):
            got = _find_fid(value)
            if got is not None:
                return got
    return None


def read_snapshot_fids(run_dir: Path) -> dict[str, float]:
    """Snapshot file name -> FID from a run's ``stats.jsonl`` (the last value wins; NaN/inf ignored)."""
    out: dict[str, float] = {}
    for rec in read_jsonl(run_dir / STATS_NAME):
        snap = rec.get("snapshot") if isinstance(rec, dict) else None
        fid = _find_fid(rec) if isinstance(rec, dict) else None
        if isinstance(snap, str) and fid is not None and math.isfinite(fid):
            out[Path(snap).name] = fid
    return out


def rank(snaps: Sequence[SnapshotRef], pick: str) -> list[SnapshotRef]:
    """Candidates in the order to try: newest first, or lowest FID first (then newest) for ``best``."""
    newest = sorted(snaps, key=lambda s: (s.run_id, s.nimg), reverse=True)
    if pick == "newest":
        return newest
    scored = [s for s in newest if s.fid is not None]
    if not scored:
        return []
    return sorted(scored, key=lambda s: s.fid) + [s for s in newest if s.fid is None]


def snapshots_under(runs_root: Path) -> list[SnapshotRef]:
    return [s for run in list_runs(runs_root) for s in list_snapshots(run)]


def _choice_from_refs(snaps: list[SnapshotRef], classes: list[str], *, conditional: bool, pick: str,
                      origin: str, what: str) -> ModelChoice:
    ranked = rank(snaps, pick)
    if not ranked:
        if pick == "best" and snaps:
            raise UserError(f"{what} has snapshots but no FID in {STATS_NAME}; use --pick newest, or resume "
                            "training with `--metrics fid` so snapshots get scored")
        raise UserError(f"{what} has no network-snapshot-*.safetensors yet")
    return ModelChoice(classes, ranked, conditional, origin, pick)


def resolve_path(ws: Workspace, path: str) -> Path:
    """A user path as given (relative to the current directory), else relative to the workspace."""
    p = Path(path).expanduser()
    if not p.exists() and not p.is_absolute() and (ws.root / p).exists():
        p = ws.root / p
    if not p.exists():
        raise UserError(f"{path} does not exist")
    return p.resolve()


def class_of_run(ws: Workspace, run_dir: Path) -> str | None:
    """The class a run was trained for, from its location ``runs/<class>/<run>``; None if conditional/unknown."""
    name = run_dir.parent.name
    return name if name in ws.classes else None


def choose_models(ws: Workspace, *, classes: Sequence[str] | None, pick: str = "newest", run: str | None = None,
                  snapshot: str | None = None, conditional: bool = False) -> list[ModelChoice]:
    """Which network serves which class.

    Default: every class of ``classes`` (all classes that have a model when None) uses its own newest run under
    ``runs/<class>/``; classes without one fall back to the conditional model ``runs/_conditional/``.
    ``conditional`` forces the conditional model; ``run``/``snapshot`` force one run directory or file.
    Whether a chosen network is really conditional is settled when it is loaded (``G.c_dim``).
    """
    if pick not in PICKS:
        raise UserError(f"--pick must be one of {', '.join(PICKS)}, got {pick!r}")
    wanted = [ws.check_class(c) for c in classes] if classes else None
    if snapshot is not None or run is not None:
        return [_explicit_choice(ws, wanted, pick=pick, run=run, snapshot=snapshot)]

    cond_snaps = snapshots_under(ws.runs_dir(None))
    if conditional:
        if not cond_snaps:
            raise UserError(f"no trained conditional model in {ws.runs_dir(None)}; train one with "
                            f"`{train_command(ws, None)}`")
        return [_choice_from_refs(cond_snaps, list(wanted or ws.classes), conditional=True, pick=pick,
                                  origin=f"runs/{CONDITIONAL_RUNS}", what=f"runs/{CONDITIONAL_RUNS}")]

    choices: list[ModelChoice] = []
    via_cond: list[str] = []
    missing: list[str] = []
    for cls in wanted or ws.classes:
        snaps = snapshots_under(ws.runs_dir(cls))
        if snaps:
            choices.append(_choice_from_refs(snaps, [cls], conditional=False, pick=pick, origin=f"runs/{cls}",
                                             what=f"runs/{cls}"))
        elif cond_snaps:
            via_cond.append(cls)
        else:
            missing.append(cls)
    if via_cond:
        choices.append(_choice_from_refs(cond_snaps, via_cond, conditional=True, pick=pick,
                                         origin=f"runs/{CONDITIONAL_RUNS}", what=f"runs/{CONDITIONAL_RUNS}"))
    if wanted and missing:
        cls = missing[0]
        others = f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""
        raise UserError(f"no trained model for class {cls!r}{others}: {ws.runs_dir(cls)} has no snapshot; "
                        f"train it first with `{train_command(ws, cls)}`")
    if not choices:
        raise UserError(f"no trained model in {ws.root / 'runs'} for any class ({', '.join(ws.classes)}); "
                        f"train one first, e.g. `{train_command(ws, ws.classes[0])}`")
    return choices


def _explicit_choice(ws: Workspace, wanted: list[str] | None, *, pick: str, run: str | None,
                     snapshot: str | None) -> ModelChoice:
    if snapshot is not None and run is not None:
        raise UserError("give either --run or --snapshot, not both")
    if snapshot is not None:
        path = resolve_path(ws, snapshot)
        if not path.is_file():
            raise UserError(f"--snapshot {snapshot} is not a file; give a network-snapshot-*.safetensors")
        ref = SnapshotRef(path, path.parent, -1, snapshot_nimg(path) or 0)
        run_dir, refs, origin = path.parent, [ref], f"--snapshot {snapshot}"
    else:
        run_dir = resolve_path(ws, run)
        if not run_dir.is_dir():
            raise UserError(f"--run {run} is not a directory; give a run folder such as runs/<class>/00000-...")
        refs, origin = list_snapshots(run_dir), f"--run {run}"
    run_class = class_of_run(ws, run_dir)
    conditional = run_dir.parent.name == CONDITIONAL_RUNS
    classes = list(wanted) if wanted else ([run_class] if run_class else [])
    if not conditional and run_class and wanted and wanted != [run_class]:
        raise UserError(f"{origin} was trained for class {run_class!r}; drop --classes or pass --classes {run_class}")
    choice = _choice_from_refs(refs, classes, conditional=conditional, pick=pick, origin=origin, what=origin)
    if snapshot is not None:
        choice.pick = "explicit"
    return choice


# ------------------------------------------------------------------------------------------------ loading
@dataclass
class LoadedModel:
    G: Any
    ref: SnapshotRef
    sha256: str
    labels: list[str] | None            # class names in label order, when the snapshot records them
    trained_class: str | None = None    # the class an unconditional snapshot was trained on, when recorded

    @property
    def conditional(self) -> bool:
        return int(self.G.c_dim) > 0


def _read_network(path: Path, device: str) -> tuple[dict[str, Any], str]:
    """(networks + metadata, sha256 of the file); NetworkLoadError (SnapshotError) or OSError when the file is bad."""
    from stylegan_ada.legacy.loader import load_network_bytes

    data = path.read_bytes()
    return load_network_bytes(data, device, source=str(path)), sha256_bytes(data)


def _recorded(data: dict[str, Any], *keys: str) -> Any:
    """The first of ``keys`` found in the snapshot's training_set_kwargs (written by `augment train`) or extra."""
    for holder in (data.get("training_set_kwargs"), data.get("extra")):
        if isinstance(holder, dict):
            for key in keys:
                if holder.get(key) is not None:
                    return holder[key]
    return None


def load_model(choice: ModelChoice, device: str) -> LoadedModel:
    """Load G_ema of the first candidate that reads cleanly; skip (with a warning) corrupt ones unless explicit."""
    from stylegan_ada.checkpoint import NetworkLoadError

    problems: list[str] = []
    for ref in choice.candidates:
        try:
            data, digest = _read_network(ref.path, device)
        except (NetworkLoadError, OSError) as exc:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0].removeprefix(f"{ref.path}: ")
            if choice.pick == "explicit":
                raise UserError(f"snapshot {ref.path} cannot be loaded: {reason}; pick another snapshot") from exc
            warn(f"skipping snapshot {ref.path.name} of {choice.origin}: {reason}")
            problems.append(f"{ref.path.name} ({reason})")
            continue
        G = data.get("G_ema") or data.get("G")
        if G is None:
            raise UserError(f"snapshot {ref.path} holds no generator; pick another snapshot")
        G = G.eval().requires_grad_(False).to(device)
        labels = _recorded(data, "class_names", "classes")
        trained = _recorded(data, "class")
        return LoadedModel(G, ref, digest, [str(c) for c in labels] if isinstance(labels, list) else None,
                           str(trained) if isinstance(trained, str) else None)
    raise UserError(f"no loadable snapshot in {choice.origin}: {'; '.join(problems)}; retrain or resume training "
                    "to write a new snapshot")


def label_index(model: LoadedModel, ws: Workspace, cls: str) -> int | None:
    """The conditioning label of ``cls`` for a conditional model (None for an unconditional one)."""
    if not model.conditional:
        return None
    labels = model.labels or (ws.classes if int(model.G.c_dim) == len(ws.classes) else None)
    if labels is None:
        raise UserError(f"snapshot {model.ref.path} is conditional with {model.G.c_dim} labels but records no class "
                        f"names and this workspace has {len(ws.classes)} classes; use a snapshot from this workspace")
    if cls not in labels:
        raise UserError(f"snapshot {model.ref.path} was not trained on class {cls!r} (it knows {', '.join(labels)})")
    index = labels.index(cls)
    if index >= int(model.G.c_dim):
        raise UserError(f"snapshot {model.ref.path}: class {cls!r} is label {index} but the network has only "
                        f"{model.G.c_dim} labels")
    return index


def served_classes(choice: ModelChoice, model: LoadedModel, ws: Workspace) -> list[str]:
    """The classes this network will generate, settled now that we know whether it is conditional."""
    if model.conditional:
        return list(choice.classes) or list(ws.classes)
    if len(choice.classes) == 1:
        return list(choice.classes)
    if not choice.classes and model.trained_class in ws.classes:
        return [str(model.trained_class)]
    if choice.classes:
        raise UserError(f"{choice.origin} is an unconditional network: it generates one class, not "
                        f"{', '.join(choice.classes)}; pass one class with --classes")
    raise UserError(f"cannot tell which class {choice.origin} was trained for; pass it with --classes")
