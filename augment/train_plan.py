"""Plans for `augment train`: a new run, or `--resume` of the newest run with conflict detection; config.json; Job."""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from augment import train_config as tc
from augment import train_inputs as ti
from augment.errors import UserError, user_device
from augment.io_utils import atomic_write_json, read_json
from augment.provenance import code_version, now_iso, write_run_record
from augment.workspace import Workspace


@dataclass
class TrainPlan:
    """Everything `augment train` needs to start or continue a run."""
    ws: Workspace
    args: tc.TrainArgs
    options: Any                          # stylegan_ada.training.options.TrainingOptions
    runs_root: Path
    run_dir: Path | None                  # None: a new run directory is created at launch
    desc: str
    images: list[Path]
    labels: list[int]                     # class index per image (conditional) or empty
    class_names: list[str]
    from_path: Path | None
    device: str
    data_hashes: dict[str, Any]
    resume: bool = False
    notes: list[str] = field(default_factory=list)
    transfer_source: Any = None           # the loaded --from networks (new runs), so they are read only once
    init_missing: str | None = None       # resume of a run without snapshots whose --from file is gone
    changes: list[str] = field(default_factory=list)  # what a resume changed

    def training_set_kwargs(self) -> dict[str, Any]:
        return {"workspace": str(self.ws.root), "class": self.args.cls, "cond": self.args.cond,
                "class_names": self.class_names, "resolution": self.options.G_kwargs["img_resolution"],
                "mirror": self.options.mirror, "num_images": len(self.images),
                "extra_images": self.args.extra_images}

    def summary(self) -> dict[str, Any]:
        """The resolved configuration shown by --dry-run and stored in config.json."""
        return {"args": asdict(self.args), "training": self.options.to_dict(),
                "run_dir": str(self.run_dir) if self.run_dir else None, "resume": self.resume,
                "num_images": len(self.images), "from_path": str(self.from_path) if self.from_path else None,
                "device": self.device, "training_set": self.training_set_kwargs()}


def resolve_options(ws: Workspace, args: tc.TrainArgs) -> tuple[str, int, list[str], Any]:
    """(device, resolution, notes, TrainingOptions) of new-run arguments, with ``args`` completed in place.

    Checks every option before any image is read (``--classes`` checks them once for all classes this way).
    """
    tc.check_user_args(args)
    device = user_device(args.device, gpus=args.gpus)
    tc.check_device_args(args, device)
    res = tc.training_resolution(ws.resolution, args)
    notes = tc.apply_defaults(args, device, res)
    tc.check_combinations(args)
    opts = tc.build_options(args, res, c_dim=len(ws.classes) if args.cond else 0)
    # Record what the preset chose, so a resume (maybe with another --gpus) keeps the very same values.
    tc.complete_args(args, opts)
    return device, res, notes, opts


def plan_new(ws: Workspace, args: tc.TrainArgs) -> TrainPlan:
    """Resolve a fresh run: defaults, preset, images (leak-guarded), transfer source (loaded and checked)."""
    from stylegan_ada.training.run_dir import latest_run

    device, res, notes, opts = resolve_options(ws, args)
    paths, labels, names = ti.training_images(ws, args)
    from_path = ti.resolve_from(args)
    source = ti.check_transfer_source(from_path, opts.G_kwargs) if from_path else None
    root = ti.runs_root(ws, args)
    plan = TrainPlan(ws=ws, args=args, options=opts, runs_root=root, run_dir=None, desc=tc.run_desc(args, res, opts),
                     images=paths, labels=labels, class_names=names, from_path=from_path, device=device,
                     data_hashes=ti.data_hashes(ws, paths))
    plan.transfer_source = source
    plan.notes.extend(notes)
    few = ti.too_few_images(args, len(paths))
    if few:
        plan.notes.append(few)
    if (resized := ti.resize_note(ws.resolution, res)) is not None:
        plan.notes.append(resized)
    previous = latest_run(root)
    if previous is not None:
        plan.notes.append(f"note: starting a new run next to {previous.name}; to continue that one use --resume")
    return plan


def _stored_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.json"
    from stylegan_ada.training.run_dir import run_config_problem

    try:
        record = read_json(path)
    except (OSError, ValueError):
        raise UserError(f"cannot resume {run_dir}: its config.json is missing or damaged; start a new run "
                        "(without --resume)") from None
    problem = run_config_problem(record)
    if problem:
        raise UserError(f"cannot resume {run_dir}: its config.json is damaged ({problem}); restore it or start a "
                        "new run (without --resume)")
    return record


def _differences(stored: tc.TrainArgs, given: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    out = []
    for name in names:
        if name in given and given[name] != getattr(stored, name):
            out.append(f"{tc.flag(name)} {getattr(stored, name)!r} -> {given[name]!r}")
    return out


def plan_resume(ws: Workspace, raw: tc.TrainArgs, given: dict[str, Any], force: bool) -> TrainPlan:
    """Continue the newest run of the class: stored arguments, plus the explicitly ``given`` ones.

    Changing the networks is refused; changing anything else that affects the result needs ``force``.
    """
    from stylegan_ada.training.run_dir import has_snapshots, latest_run

    root = ti.runs_root(ws, raw)
    run_dir = latest_run(root)
    what = f"class {raw.cls!r}" if raw.cls else ("the conditional model" if raw.cond else "--extra-images")
    if run_dir is None:
        raise UserError(f"--resume: there is no previous run of {what} in {root}; start one without --resume")
    record = _stored_config(run_dir)
    stored = tc.TrainArgs.from_dict(record["config"]["args"])
    arch = _differences(stored, given, tc.ARCHITECTURE_ARGS)
    if arch:
        raise UserError(f"--resume: cannot change the network of {run_dir.name} ({'; '.join(arch)}); start a new "
                        "run without --resume")
    conflicts = _differences(stored, given, tc.RESULT_ARGS)
    if conflicts and not force:
        raise UserError(f"--resume: {run_dir.name} was trained with other settings: {'; '.join(conflicts)}; drop "
                        "these flags to continue it as it was, or add --force to continue with the new values")
    args = dataclasses.replace(stored, **given)
    tc.check_user_args(args)
    tc.check_combinations(args)
    device = user_device(args.device, gpus=args.gpus)
    tc.check_device_args(args, device)
    res = tc.training_resolution(ws.resolution, args)
    opts = tc.build_options(args, res, c_dim=len(ws.classes) if args.cond else 0)
    paths, labels, names = ti.training_images(ws, args)
    hashes = ti.data_hashes(ws, paths)
    old_hash = (record.get("data_hashes") or {}).get("training_images_sha256")
    if old_hash and old_hash != hashes["training_images_sha256"] and not force:
        raise UserError(f"--resume: the training images of {run_dir.name} changed since it started (the workspace "
                        "was re-prepared?); start a new run, or add --force to continue on the new images")
    old_training = record["config"]["training"]
    if opts.G_kwargs != old_training["G_kwargs"] or opts.D_kwargs != old_training["D_kwargs"]:
        raise UserError(f"--resume: these settings change the networks of {run_dir.name}; start a new run instead")
    opts = opts.replace(ada_kimg=old_training["ada_kimg"], ema_rampup=old_training["ema_rampup"])
    plan = TrainPlan(ws=ws, args=args, options=opts, runs_root=root, run_dir=run_dir, desc=run_dir.name,
                     images=paths, labels=labels, class_names=names, from_path=None, device=device,
                     data_hashes=hashes, resume=True)
    if not has_snapshots(run_dir) and args.transfer:
        try:  # no snapshot of any kind yet: the run restarts from the beginning, with its transfer source
            plan.from_path = ti.resolve_from(args)
        except UserError as exc:
            plan.init_missing = exc.format_message()
    plan.changes = conflicts + [f"{tc.flag(k)} -> {v!r}" for k, v in given.items()
                                if k not in tc.RESULT_ARGS + tc.ARCHITECTURE_ARGS and v != getattr(stored, k)]
    return plan


def write_config(plan: TrainPlan, command: list[str]) -> None:
    """config.json: provenance record of the plan; a resume appends to its ``resumes`` list."""
    path = plan.run_dir / "config.json"
    seeds = {"seed": plan.args.seed}
    if not plan.resume:
        write_run_record(path, plan.summary(), seeds=seeds, data_hashes=plan.data_hashes, command=command)
        return
    record = read_json(path)
    record.setdefault("resumes", []).append({"time": now_iso(), "command": command, "code_version": code_version(),
                                             "changes": plan.changes})
    record["config"] = plan.summary()
    record["data_hashes"] = plan.data_hashes
    atomic_write_json(path, record)


def make_job(plan: TrainPlan, show_progress: bool, *, share: int = 1) -> Any:
    """The launchable Job of a planned run (``share``: processes training on the same device at once)."""
    from stylegan_ada.training.launch import Job

    return Job(options=plan.options, run_dir=str(plan.run_dir), image_paths=[str(p) for p in plan.images],
               image_sha256=list(getattr(plan.images, "sha256", [])),  # the leak guard's VerifiedPaths
               labels=list(plan.labels), class_names=list(plan.class_names),
               resolution=plan.options.G_kwargs["img_resolution"], training_set_kwargs=plan.training_set_kwargs(),
               device=plan.device, init_from=str(plan.from_path) if plan.from_path else None,
               init_missing=plan.init_missing, workers=plan.args.workers, show_progress=show_progress, share=share)
