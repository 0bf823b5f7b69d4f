"""`augment train --classes all | a,b,c`: every listed class with the same settings, each in its own run, as one job.

Each class gets exactly the run directory `augment train --class X` would make (so generate, check-novelty, `--from`
and `--resume` work unchanged); the job adds WORKSPACE/runs/_jobs/<NNNNN>-<desc>/job.json: the classes, the given
arguments, the schedule and per class its run, status and summary, rewritten atomically at every change.
Scheduling (:func:`schedule`): one slot runs the classes one after another in this process; several slots
(``--gpus N``: one per GPU, ``--concurrent K``: K per device) form a queue of processes
(``stylegan_ada.training.launch.run_queue``); ``--gpus N --ddp`` trains the classes one after another, each split over
N processes. A class that fails is reported and the others go on; an interrupt stops every class cleanly.
"""
from __future__ import annotations

import dataclasses
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

from augment import train_config as tc
from augment.errors import Interrupted, UserError, user_device
from augment.io_utils import atomic_write_json, read_json
from augment.provenance import code_version, now_iso
from augment.workspace import Workspace

JOBS_DIR = "_jobs"
FORMAT = "augment-train-job-v1"
MAX_CONCURRENT = 16
FINISHED = ("done", "already_done")
_JOB_ONLY = ("gpus",)  # job-level: each class of a queue trains on one device


def parse_classes(ws: Workspace, spec: str) -> list[str]:
    if spec.strip().lower() == "all":
        return list(ws.classes)
    names = [c.strip() for c in spec.split(",") if c.strip()]
    if not names:
        raise UserError(f"--classes must be all or a comma-separated list of classes, got {spec!r}")
    for name in names:
        ws.check_class(name)
    if len(set(names)) != len(names):
        raise UserError(f"--classes lists a class twice: {spec}")
    return names


def schedule(args: tc.TrainArgs, device: str, concurrent: int, ddp: bool) -> tuple[str, list[str]]:
    """(mode, slots): sequential (one slot, this process), queue (a process per slot) or ddp."""
    if ddp:
        if args.gpus < 2:
            raise UserError("--ddp needs --gpus N (N >= 2): each class is split over the N GPUs")
        if concurrent > 1:
            raise UserError("--ddp and --concurrent cannot be combined")
        return "ddp", [device]
    if device.startswith("cuda"):
        first = int(device.split(":")[1]) if ":" in device else 0
        devices = [f"cuda:{first + i}" for i in range(args.gpus)]
    else:
        devices = [device] * args.gpus
    slots = [d for d in devices for _ in range(concurrent)]
    return ("sequential" if len(slots) == 1 else "queue"), slots


class JobRecord:
    """job.json of one `--classes` job."""

    def __init__(self, path: Path, data: dict[str, Any]):
        self.path, self.data = path, data

    @classmethod
    def create(cls, ws: Workspace, classes: list[str], args: dict[str, Any], sched: dict[str, Any]) -> "JobRecord":
        from stylegan_ada.training.run_dir import create_run_dir

        folder = create_run_dir(ws.root / "runs" / JOBS_DIR, "-".join(classes)[:60])
        data = {"format": FORMAT, "created": now_iso(), "code_version": code_version(), "command": list(sys.argv),
                "classes": classes, "args": args, "schedule": sched, "status": "running", "resumes": [],
                "runs": {c: {"status": "pending"} for c in classes}}
        record = cls(folder / "job.json", data)
        record.save()
        return record

    @classmethod
    def newest(cls, ws: Workspace, classes: list[str]) -> "JobRecord":
        from stylegan_ada.training.run_dir import list_runs

        for folder in reversed(list_runs(ws.root / "runs" / JOBS_DIR)):
            try:
                data = read_json(folder / "job.json")
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and data.get("format") == FORMAT and sorted(data.get("classes", [])) == sorted(
                    classes) and isinstance(data.get("runs"), dict) and isinstance(data.get("args"), dict):
                return cls(folder / "job.json", data)
        raise UserError(f"--resume: no earlier `--classes` job of {', '.join(classes)} in {ws.root / 'runs' / JOBS_DIR}"
                        "; start one without --resume (or continue one class with --class X --resume)")

    def save(self) -> None:
        atomic_write_json(self.path, self.data)

    def update(self, cls: str, **fields: Any) -> None:
        self.data["runs"].setdefault(cls, {}).update(fields)
        self.save()


def _class_args(stored: dict[str, Any], cls: str, ddp: bool) -> tc.TrainArgs:
    args = tc.TrainArgs.from_dict(dict(stored, cls=cls))
    if not ddp:
        args.gpus = 1
    return args


def _plan_class(ws: Workspace, record: JobRecord, cls: str, given: dict[str, Any], values: dict[str, Any],
                ddp: bool) -> Any:
    """The plan of one class: a resume of its run when the job already made one, else a new run."""
    from augment.train_plan import plan_new, plan_resume

    entry = record.data["runs"].get(cls, {})
    if values["resume"] and entry.get("run_dir"):
        return plan_resume(ws, tc.TrainArgs(cls=cls), given, force=values["force"])
    return plan_new(ws, _class_args(dict(record.data["args"], **given), cls, ddp))


def train_classes(ws: Workspace, args: tc.TrainArgs, given: dict[str, Any], values: dict[str, Any], *,
                  log: Callable[[str], None], out: Callable[[str], None]) -> tuple[str, str] | None:
    """Plan and train every class of ``--classes``; returns (status, summary) like a single run.

    Progress and per-class problems go to ``log`` (the CLI: stderr), the plan/summary table to ``out`` (stdout)."""
    from augment.train_plan import make_job, resolve_options, write_config
    from stylegan_ada.training.run_lock import RunLock, RunLockedError
    from stylegan_ada.training.distributed import launched_by_torchrun
    from stylegan_ada.training.run_dir import create_run_dir

    classes = parse_classes(ws, values["classes"])
    if launched_by_torchrun():
        raise UserError("--classes does not run under torchrun; use `augment train --classes ... --gpus N`")
    if args.cls is not None or args.cond:
        raise UserError("give --classes or --class / --cond, not both")
    concurrent = 1 if values["concurrent"] is None else values["concurrent"]
    if not 1 <= concurrent <= MAX_CONCURRENT:
        raise UserError(f"--concurrent must be between 1 and {MAX_CONCURRENT}, got {concurrent}")
    check = dataclasses.replace(args, cls=classes[0], gpus=args.gpus if values["ddp"] else 1)
    tc.check_user_args(args)
    device = user_device(args.device, gpus=args.gpus)
    mode, slots = schedule(args, device, concurrent, values["ddp"])
    class_given = {k: v for k, v in given.items() if k not in _JOB_ONLY or values["ddp"]}
    if values["resume"]:
        record = JobRecord.newest(ws, classes)
        record.data["resumes"].append({"time": now_iso(), "command": list(sys.argv), "given": class_given})
    else:
        resolve_options(ws, check)  # every flag checked once, before any class starts
        stored = {k: v for k, v in dataclasses.asdict(args).items() if k in given or k == "gpus"}
        record = None if values["dry_run"] else JobRecord.create(ws, classes, stored, {"mode": mode, "slots": slots})
        if record is None:
            record = JobRecord(Path(), {"args": stored, "runs": {}})
    plans: dict[str, Any] = {}
    unplanned: list[str] = []
    with ExitStack() as locks:
        for cls in classes:
            entry = record.data["runs"].get(cls, {})
            if values["resume"] and entry.get("status") in FINISHED and given.get("kimg", 0) <= entry.get("kimg", 0):
                log(f"{cls}: already trained ({entry.get('kimg')} kimg); skipped")
                continue
            try:
                plan = _plan_class(ws, record, cls, class_given, values, values["ddp"])
                for note in plan.notes:
                    kind, _, rest = note.partition(": ")
                    log(f"{kind}: class {cls}: {rest}")
                if values["dry_run"]:
                    plans[cls] = plan
                    continue
                plan.transfer_source = None  # each class loads its source when it starts (not all at once)
                if plan.run_dir is None:
                    plan.run_dir = create_run_dir(plan.runs_root, plan.desc)
                locks.enter_context(RunLock(plan.run_dir))
                write_config(plan, list(sys.argv))
            except (UserError, RunLockedError, OSError) as exc:
                message = exc.format_message() if isinstance(exc, UserError) else (
                    f"cannot write its run directory ({exc.strerror}: {exc.filename})" if isinstance(exc, OSError)
                    else str(exc))
                log(f"error: class {cls}: {message}")
                unplanned.append(cls)
                if not values["dry_run"]:
                    record.update(cls, status="error", message=message)
                continue
            plans[cls] = plan
            record.update(cls, status="queued", run_dir=str(plan.run_dir), target_kimg=plan.options.total_kimg)
        if values["dry_run"]:
            import json

            out(json.dumps({"schedule": {"mode": mode, "slots": slots},
                            "classes": {c: p.summary() for c, p in plans.items()}}, indent=2))
            if unplanned:
                raise UserError(f"--dry-run: {len(unplanned)} class(es) could not be planned: {', '.join(unplanned)}")
            return None
        share = len(slots) if mode == "queue" and not device.startswith("cuda") else concurrent
        jobs = {cls: dataclasses.replace(make_job(plan, not values["quiet"] and mode != "queue", share=share),
                                         log_prefix=f"[{cls}] ") for cls, plan in plans.items()}
        _run(mode, slots, jobs, record, args.gpus, log)
    return _finish(ws, record, classes, out)


def _run(mode: str, slots: list[str], jobs: dict[str, Any], record: JobRecord, gpus: int,
         log: Callable[[str], None]) -> None:
    from stylegan_ada.training import launch
    from stylegan_ada.training.stop import StopRequest

    names = list(jobs)

    def finished(index: int, result: dict[str, Any]) -> None:
        cls = names[index]
        log(f"{cls}: {result['status']}" + (f" ({result.get('message')})" if result.get("message") else ""))
        record.update(cls, **_entry(Path(jobs[cls].run_dir), result))

    if mode == "queue":
        log(f"Training {len(names)} classes, {len(slots)} at a time on {', '.join(sorted(set(slots)))}")
        launch.run_queue([jobs[c] for c in names], slots,
                         on_start=lambda i, job: record.update(names[i], status="running", device=job.device),
                         on_finish=finished)
        return
    with StopRequest() as stop:  # a signal between two classes: start no more
        for index, cls in enumerate(names):
            if stop.requested:
                break
            record.update(cls, status="running")
            log(f"Class {cls} ({index + 1}/{len(names)}): run {jobs[cls].run_dir}")
            if mode == "ddp":
                result = launch.spawn(jobs[cls], gpus)
            else:
                result = _run_here(jobs[cls], stop)
            finished(index, result)
            if result["status"] == "stopped":
                break


def _run_here(job: Any, stop: Any) -> dict[str, Any]:
    from stylegan_ada.training import launch

    try:
        return launch.result_dict(launch.run_job(job, stop=stop))
    except launch.known_errors() as exc:
        return {"status": "error", "message": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
    except Exception as exc:  # noqa: BLE001 - one class failing must not stop the others; reported, exit 2 at the end
        return {"status": "error", "message": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}


def _entry(run_dir: Path, result: dict[str, Any]) -> dict[str, Any]:
    from stylegan_ada.training.reporting import run_summary

    entry = {"status": result["status"], "message": result.get("message")}
    if result["status"] != "error":
        entry.update(run_summary(run_dir))
        entry["kimg"] = result.get("cur_nimg", 0) / 1000
        if result.get("network_snapshot"):
            entry["newest_snapshot"] = Path(result["network_snapshot"]).name
    return entry


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _finish(ws: Workspace, record: JobRecord, classes: list[str], out: Callable[[str], None]) -> tuple[str, str]:
    runs = record.data["runs"]
    lines = [f"{'class':<12} {'status':<12} {'kimg':>9} {'s/kimg':>8} {'best FID':>9}  newest snapshot"]
    for cls in classes:
        e = runs.get(cls, {})
        lines.append(f"{cls:<12} {e.get('status', 'pending'):<12} {_fmt(e.get('kimg'), '.3f'):>9} "
                     f"{_fmt(e.get('sec_per_kimg'), '.2f'):>8} {_fmt(e.get('best_fid'), '.2f'):>9}  "
                     f"{e.get('newest_snapshot') or '-'}")
    statuses = [runs.get(c, {}).get("status", "pending") for c in classes]
    failed = [c for c, s in zip(classes, statuses) if s == "error"]
    unfinished = [c for c, s in zip(classes, statuses) if s not in FINISHED and s != "error"]
    record.data["status"] = "failed" if failed else ("stopped" if unfinished else "done")
    record.save()
    out("\n".join(lines))
    spec = ",".join(classes)
    if unfinished:
        raise Interrupted(f"stopped with {len(unfinished)} class(es) unfinished ({', '.join(unfinished)}); continue "
                          f"with `augment train --workspace {ws.root} --classes {spec} --resume`"
                          + (f"; failed: {', '.join(failed)}" if failed else ""))
    if failed:
        reasons = "; ".join(f"{c}: {runs[c].get('message')}" for c in failed)
        raise UserError(f"{len(failed)} of {len(classes)} classes failed ({reasons}); the others are trained "
                        f"(job record {record.path})")
    return "done", f"trained {len(classes)} classes; job record {record.path}"
