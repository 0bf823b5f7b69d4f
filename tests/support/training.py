"""Helpers for the training tests: a tiny CPU config, and `augment train` in child processes that can be killed.

Children come from a forkserver that has torch and the package imported already, so starting one costs
milliseconds instead of seconds; each runs with one torch thread (fast for tiny tensors on a busy 2-core machine,
and the same thread count everywhere keeps the runs bit-comparable).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import time
from pathlib import Path
from typing import Sequence

from tests.support.workspaces import make_image_workspace

RES = 16
BATCH = 4
TICK_KIMG = 0.008          # 2 minibatches of 4 per tick
# Everything small; snapshot every tick so a kill loses at most two steps.
TINY = ["--cfg", "tiny", "--batch", str(BATCH), "--tick-kimg", str(TICK_KIMG), "--snap", "1", "--metrics", "none",
        "--from", "scratch", "--workers", "1", "--device", "cpu", "-q", "--gamma", "1"]
PRELOAD = ["torch", "torch._dynamo", "safetensors.torch", "augment.cli", "augment.commands.train", "augment.train_plan",
           "stylegan_ada.networks",
           "stylegan_ada.augment_pipe", "stylegan_ada.training.training_loop", "stylegan_ada.training.launch"]

_CTX = None


def make_ws(root: Path, resolution: int = RES, classes: Sequence[str] = ("a", "b"),
            counts: dict[str, int] | None = None):
    return make_image_workspace(root, classes, resolution=resolution, counts=counts or {"train": 4, "val": 1,
                                                                                       "test": 2})


def _context():
    global _CTX
    if _CTX is None:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        _CTX = ctx
    return _CTX


def _child_main(argv: list[str], env: dict[str, str], out_path: str) -> None:
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ["OMP_NUM_THREADS"] = "1"  # every run and every DDP worker: 1 thread, so all are bit-comparable
    os.environ.update(env)
    import torch

    torch.set_num_threads(1)
    if env.get("TEST_ENOSPC_AT_SNAPSHOT"):  # the network file of snapshot N fails (a pair per snapshot)
        _fail_snapshot_writes(2 * int(env["TEST_ENOSPC_AT_SNAPSHOT"]) - 1)
    if env.get("TEST_ENOSPC_AT_FILE"):      # the N-th snapshot file fails (even N: a training state)
        _fail_snapshot_writes(int(env["TEST_ENOSPC_AT_FILE"]))
    sys.argv = ["augment", *argv]
    from augment.cli import main

    main()


def _fail_snapshot_writes(first_failing: int) -> None:
    """Make os.write raise ENOSPC from the ``first_failing``-th snapshot file on (a full disk, simulated)."""
    import errno

    real_write = os.write
    seen: list[str] = []

    def write(fd: int, data) -> int:
        try:
            name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            name = ""
        if name.startswith((".network-snapshot-", ".training-state-")):
            if name not in seen:
                seen.append(name)
            if len(seen) >= first_failing:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    os.write = write


def start_child(argv: Sequence[str], out_path: Path, env: dict[str, str] | None = None):
    """`augment <argv>` in a forked child writing stdout+stderr to ``out_path``; returns the Process."""
    proc = _context().Process(target=_child_main, args=(list(argv), dict(env or {}), str(out_path)))
    proc.start()
    return proc


def run_child(argv: Sequence[str], out_path: Path, env: dict[str, str] | None = None,
              timeout: float = 300) -> tuple[int, str]:
    """(exit code, output of this call); the exit code is -9 when the child was SIGKILLed."""
    start = out_path.stat().st_size if out_path.exists() else 0
    proc = start_child(argv, out_path, env)
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        raise TimeoutError(f"augment {' '.join(argv)} did not finish in {timeout} s")
    return proc.exitcode, out_path.read_text(errors="replace")[start:]


def wait_for(predicate, timeout: float = 120, interval: float = 0.05) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(interval)
    return False


def stop_child(proc, sig: int = signal.SIGTERM, timeout: float = 120) -> int:
    os.kill(proc.pid, sig)
    proc.join(timeout)
    return proc.exitcode


def g_ema(path: Path) -> dict:
    """The G_ema tensors of a network snapshot."""
    from safetensors.torch import load_file

    return {k: v for k, v in load_file(str(path)).items() if k.startswith("G_ema.")}


def max_abs_diff(a: dict, b: dict, skip: tuple[str, ...] = ()) -> float:
    assert set(a) == set(b)
    return max(((a[k].double() - b[k].double()).abs().max().item() for k in a if not k.endswith(skip)), default=0.0)


def only_run(ws_root: Path, cls: str = "a") -> Path:
    runs = sorted((ws_root / "runs" / cls).iterdir())
    runs = [r for r in runs if r.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def final_network(run_dir: Path) -> Path:
    from stylegan_ada.training.run_dir import network_path, network_tags

    return network_path(run_dir, network_tags(run_dir)[-1])


