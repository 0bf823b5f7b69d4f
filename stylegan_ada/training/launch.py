"""Every way a training job is launched: in this process, in N spawned DDP processes (``--gpus N``), under torchrun
(:func:`torchrun`), and a queue of jobs over device slots, one process per job (:func:`run_queue`).

A :class:`Job` is plain data (picklable; :func:`job_to_dict` makes it JSON-able), so workers rebuild everything
themselves.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from contextlib import ExitStack, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from stylegan_ada.training.distributed import SINGLE, DistContext
from stylegan_ada.training.options import TrainingOptions

RESULT_NAME = ".result.json"


class LaunchError(RuntimeError):
    """A job could not be prepared or its processes failed; one line."""


@dataclass
class Job:
    options: TrainingOptions
    run_dir: str
    image_paths: list[str]
    labels: list[int]
    class_names: list[str]
    resolution: int
    training_set_kwargs: dict[str, Any]
    device: str = "cpu"
    init_from: str | None = None
    init_missing: str | None = None       # why the transfer source is unavailable (only fatal on a fresh start)
    workers: int = 1
    show_progress: bool = True
    share: int = 1                        # jobs training on this device at once (CPU threads are divided)
    log_prefix: str = ""                  # before each printed status line (several classes print at once)
    image_sha256: list[str] = field(default_factory=list)  # per image: the bytes the caller's leak check read


class RunLog:
    """Status lines to stdout and appended to the run's log.txt."""

    def __init__(self, run_dir: str | Path, enabled: bool = True, prefix: str = ""):
        self.path = Path(run_dir) / "log.txt"
        self.enabled, self.prefix = enabled, prefix

    def __call__(self, line: str) -> None:
        if not self.enabled:
            return
        print(self.prefix + line, flush=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def known_errors() -> tuple[type[Exception], ...]:
    """The exceptions a training run raises for a cause the user can fix (one-line messages, no traceback)."""
    from stylegan_ada.pretrained import PretrainedError
    from stylegan_ada.training.compiled import CompileError
    from stylegan_ada.training.data import DataError
    from stylegan_ada.training.run_lock import RunLockedError
    from stylegan_ada.training.state import TrainingStateError
    from stylegan_ada.training.training_loop import TrainingError
    from stylegan_ada.training.transfer import TransferError

    return (TrainingError, TransferError, DataError, TrainingStateError, RunLockedError, PretrainedError, LaunchError,
            CompileError)


def cpu_threads(world_size: int) -> int:
    """Torch threads per process for CPU training: half the cores, shared by the processes.

    Tiny convolutions gain little from more threads and lose a lot when the cores are oversubscribed (6x slower
    measured on a busy 2-core machine). OMP_NUM_THREADS, when set, wins.
    """
    if os.environ.get("OMP_NUM_THREADS"):
        return int(os.environ["OMP_NUM_THREADS"])
    return max(1, (os.cpu_count() or 1) // (2 * world_size))


def load_data(job: Job, show_progress: bool):
    """The job's images as an ImageSet (uint8 in memory), with a progress bar."""
    from tqdm import tqdm

    from stylegan_ada.training.data import ImageSet, load_images, one_hot

    with tqdm(total=len(job.image_paths), unit="img", desc="load images", file=sys.stderr,
              disable=not show_progress, leave=False) as bar:
        images = load_images(job.image_paths, job.resolution, workers=job.workers, progress=bar.update,
                             sha256=job.image_sha256 or None)
    c_dim = len(job.class_names) if job.labels else 0
    labels = one_hot(job.labels, c_dim) if c_dim else one_hot([0] * len(job.image_paths), 0)
    return ImageSet(images, labels, mirror=job.options.mirror, class_names=list(job.class_names))


def run_job(job: Job, ctx: DistContext = SINGLE, *, log: Callable[[str], None] | None = None,
            source: Any = None, stop: Any = None) -> Any:
    """Train ``job`` in this process (as rank ``ctx.rank``); returns the RunResult.

    The caller holds the run's lock (:class:`~stylegan_ada.training.run_lock.RunLock`) for the whole job. ``stop``: an
    installed StopRequest of the caller (jobs in a row: a signal between two of them is not lost).
    """
    from stylegan_ada.training import training_loop
    from stylegan_ada.training.stop import StopRequest
    from stylegan_ada.training.run_dir import state_tags

    import torch

    run_dir = Path(job.run_dir)
    device = torch.device(job.device)
    if device.type == "cuda" and ctx.enabled:
        device = torch.device("cuda", ctx.local_rank)
    log = log or RunLog(run_dir, enabled=ctx.is_main, prefix=job.log_prefix)
    if device.type == "cpu":
        from stylegan_ada.ops.cpu_memory import retain_freed_memory

        torch.set_num_threads(cpu_threads(ctx.world_size * job.share))
        retain_freed_memory()  # no page faults on every step's activations: ~20% faster (docs/benchmarks.md)
    if job.init_missing and not state_tags(run_dir):
        raise training_loop.TrainingError(job.init_missing)
    data = load_data(job, job.show_progress and ctx.is_main)
    inputs = training_loop.RunInputs(data, job.training_set_kwargs, init_from=job.init_from, init_source=source)
    with nullcontext(stop) if stop is not None else StopRequest() as stop:
        return training_loop.run(job.options, run_dir, inputs, device=device, ctx=ctx, log=log,
                                 show_progress=job.show_progress, stop=stop)


# ---------------------------------------------------------------------------------------------- several processes
def result_dict(result: Any) -> dict[str, Any]:
    """A RunResult as the JSON-able dict every launch mode reports."""
    return {"status": result.status, "cur_nimg": result.cur_nimg,
            "network_snapshot": str(result.network_snapshot or ""), "resumed_from": result.resumed_from}


def _write_result(run_dir: Path, payload: dict[str, Any]) -> None:
    from stylegan_ada.fileio import atomic_write_chunks

    atomic_write_chunks(run_dir / RESULT_NAME, [json.dumps(payload).encode("utf-8")])


def _worker(rank: int, job: Job, world_size: int, init_file: str, backend: str) -> None:
    from stylegan_ada.training.distributed import init_process_group, shutdown

    signal.signal(signal.SIGINT, signal.SIG_DFL)  # replaced by StopRequest inside run_job
    ctx = init_process_group(backend, rank=rank, world_size=world_size, init_method=f"file://{init_file}")
    try:
        result = run_job(job, ctx)
        if ctx.is_main:
            _write_result(Path(job.run_dir), result_dict(result))
    except (ValueError, RuntimeError, OSError) as exc:
        if ctx.is_main:
            _write_result(Path(job.run_dir), {"status": "error", "message": str(exc).splitlines()[0]})
        sys.exit(2)
    finally:
        shutdown()


def spawn(job: Job, nprocs: int) -> dict[str, Any]:
    """Run ``job`` in ``nprocs`` fresh processes (gloo on CPU, nccl on CUDA); returns rank 0's result dict.

    SIGTERM to this process is forwarded to the workers (they write a final snapshot); a terminal's SIGINT reaches
    them directly.
    """
    import torch.multiprocessing as mp

    run_dir = Path(job.run_dir)
    (run_dir / RESULT_NAME).unlink(missing_ok=True)
    backend = "nccl" if job.device.startswith("cuda") else "gloo"
    fd, init_file = tempfile.mkstemp(prefix=".ddp-init-", dir=run_dir)
    os.close(fd)
    os.unlink(init_file)
    # CUDA needs fresh interpreters; CPU workers (gloo) can be forked from this process, which has not started
    # any compute threads yet, and so skip re-importing torch.
    method = "fork" if backend == "gloo" and "fork" in mp.get_all_start_methods() else "spawn"
    context = mp.start_processes(_worker, args=(job, nprocs, init_file, backend), nprocs=nprocs, join=False,
                                 start_method=method)

    def forward(signum: int, frame: Any) -> None:
        for p in context.processes:
            if p.is_alive():
                os.kill(p.pid, signum)

    previous = {s: signal.signal(s, h) for s, h in ((signal.SIGTERM, forward), (signal.SIGINT, signal.SIG_IGN))}
    try:
        while True:
            try:
                if context.join():
                    break
            except mp.ProcessExitedException:
                break
            except mp.ProcessRaisedException as exc:
                last = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
                return {"status": "error", "message": f"a training process failed: {last}"}
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        for p in context.processes:
            if p.is_alive():
                p.kill()
        Path(init_file).unlink(missing_ok=True)
    return _read_result(run_dir, [p.exitcode for p in context.processes])


def _read_result(run_dir: Path, codes: list[int | None]) -> dict[str, Any]:
    path = run_dir / RESULT_NAME
    if not path.is_file():
        return {"status": "error", "message": f"training process(es) exited with code(s) {codes} and no result"}
    result = json.loads(path.read_text(encoding="utf-8"))
    path.unlink(missing_ok=True)
    return result


def job_to_dict(job: Job) -> dict[str, Any]:
    return asdict(job)


def job_from_dict(d: dict[str, Any]) -> Job:
    return Job(**dict(d, options=TrainingOptions.from_dict(d["options"])))


# ------------------------------------------------------------------------------------------------------ torchrun
def torchrun(prepare: Callable[[DistContext, ExitStack], Job | None], backend: str) -> tuple[DistContext, Any]:
    """Under torchrun every rank calls this: rank 0 runs ``prepare`` (plan, lock, records; resources it holds go on
    the ExitStack, released after training) and sends the job to the others; every rank trains its share.

    Returns (context, RunResult or None when ``prepare`` returned None). An exception in ``prepare`` is re-raised on
    rank 0 and raised as LaunchError with the same line on the other ranks.
    """
    from stylegan_ada.training.distributed import broadcast_object, init_process_group, shutdown

    ctx = init_process_group(backend)
    with ExitStack() as stack:
        stack.callback(shutdown)
        payload: Any = None
        failure: BaseException | None = None
        if ctx.is_main:
            try:
                job = prepare(ctx, stack)
                payload = {"job": job_to_dict(job) if job is not None else None}
            except Exception as exc:  # noqa: BLE001 - relayed to every rank, then re-raised here
                failure = exc
                payload = {"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
        payload = broadcast_object(payload, ctx)
        if failure is not None:
            raise failure
        if "error" in payload:
            raise LaunchError(payload["error"])
        if payload["job"] is None:
            return ctx, None
        return ctx, run_job(job_from_dict(payload["job"]), ctx)


# --------------------------------------------------------------------------------------------------- job queue
def _queue_child(job: Job) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):  # the parent's handlers; StopRequest replaces them inside run_job
        signal.signal(sig, signal.SIG_DFL)
    try:
        payload = result_dict(run_job(job))
    except Exception as exc:  # noqa: BLE001 - a process boundary: the parent reports it and goes on
        payload = {"status": "error", "message": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
    _write_result(Path(job.run_dir), payload)


def run_queue(jobs: Sequence[Job], slots: Sequence[str], *, on_start: Callable[[int, Job], None] | None = None,
              on_finish: Callable[[int, dict[str, Any]], None] | None = None, poll: float = 0.2) -> list[Any]:
    """Run ``jobs`` one process each, at most one per slot (a device name) at a time, in order.

    SIGTERM/SIGINT stop every running job cleanly (each writes its final snapshot) and start no more. Returns one
    result dict per job (None for a job never started); a failed job is an ``error`` result and the others go on.
    """
    import multiprocessing as mp

    cuda = any(s.startswith("cuda") for s in slots)
    context = mp.get_context("spawn" if cuda or "fork" not in mp.get_all_start_methods() else "fork")
    results: list[Any] = [None] * len(jobs)
    running: dict[int, tuple[Any, int]] = {}  # slot index -> (process, job index)
    pending = list(range(len(jobs)))
    stopping: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        stopping.append(signum)
        if signum == signal.SIGTERM:  # a terminal's Ctrl-C reaches the children directly; SIGTERM is passed on
            for proc, _ in running.values():
                if proc.is_alive():
                    os.kill(proc.pid, signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while pending or running:
            for slot, device in enumerate(slots):
                if slot not in running and pending and not stopping:
                    index = pending.pop(0)
                    job = replace(jobs[index], device=device)
                    (Path(job.run_dir) / RESULT_NAME).unlink(missing_ok=True)
                    if on_start:
                        on_start(index, job)
                    proc = context.Process(target=_queue_child, args=(job,))
                    proc.start()
                    running[slot] = (proc, index)
            for slot, (proc, index) in list(running.items()):
                proc.join(poll / max(len(running), 1))
                if proc.is_alive():
                    continue
                del running[slot]
                results[index] = _read_result(Path(jobs[index].run_dir), [proc.exitcode])
                if on_finish:
                    on_finish(index, results[index])
            if stopping and not running:
                break
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        for proc, _ in running.values():
            if proc.is_alive():
                proc.kill()
    return results
