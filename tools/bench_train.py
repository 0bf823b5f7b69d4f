"""Benchmark: sec/kimg and peak memory of the real training loop (all phases, ADA, G_ema), no snapshots.

    .venv/bin/python tools/bench_train.py --device cuda                    # thesis config: auto, 256 px, batch 16
    .venv/bin/python tools/bench_train.py --cfg tiny --resolution 64 --steps 20
    .venv/bin/python tools/bench_train.py --device cuda --no-fp16          # the same with fp32 everywhere
    .venv/bin/python tools/bench_train.py --device cuda --profile 16       # where the time goes (torch.profiler)

Random uint8 images stand in for a dataset (speed does not depend on the pixels). Prints one summary line and appends
a JSON line to docs/bench.jsonl (unless --no-record).
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import bench_common  # first: puts the repository on sys.path
import torch

from stylegan_ada import presets
from stylegan_ada.training.data import ImageSet
from stylegan_ada.training.launch import cpu_threads
from stylegan_ada.training.options import TrainingOptions
from stylegan_ada.training.training_loop import SINGLE, RunInputs, Trainer

REFERENCE_V100_S_PER_KIMG = (21.6, 24.2)  # the reference's own table, 256 px, 1 V100


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cfg", default="auto")
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--batch", type=int, default=None, help="default: the preset's (auto at 256 px: 16)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=64, help="timed minibatches (a multiple of 16 covers every phase)")
    ap.add_argument("--warmup", type=int, default=16)
    ap.add_argument("--no-fp16", action="store_true", help="num_fp16_res=0")
    ap.add_argument("--channels-last", action="store_true", help="channels-last memory in the fp16 blocks")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--profile", type=int, default=0, metavar="STEPS",
                    help="after timing, profile STEPS more minibatches and print where the time goes")
    a = ap.parse_args()

    device = torch.device(a.device)
    overrides = {"batch": a.batch} if a.batch else {}
    if a.no_fp16:
        overrides["num_fp16_res"] = 0
    p = presets.resolve(a.cfg, a.resolution, **overrides)
    if a.channels_last:
        p["G_kwargs"]["synthesis_kwargs"]["fp16_channels_last"] = True
        p["D_kwargs"].setdefault("block_kwargs", {})["fp16_channels_last"] = True
    opts = TrainingOptions(G_kwargs=p["G_kwargs"], D_kwargs=p["D_kwargs"], G_opt_kwargs=p["G_opt_kwargs"],
                           D_opt_kwargs=p["D_opt_kwargs"], batch=p["batch"], batch_gpu=p["batch_gpu"],
                           total_kimg=1e6, gamma=10.0, ema_kimg=p["ema_kimg"], ema_rampup=p["ema_rampup"],
                           aug="ada", mirror=True, snap=10 ** 6, image_snap=10 ** 6)
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(1))
    images = torch.randint(0, 256, [64, 3, a.resolution, a.resolution], dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    data = ImageSet(images, torch.zeros([64, 0]), mirror=True)
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(opts, Path(tmp), RunInputs(data, {}), device, SINGLE, log=lambda line: None)
        tr._restore_or_init()
        for _ in range(a.warmup):
            tr._step()
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        for _ in range(a.steps):
            tr._step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        if a.profile:
            profile_steps(tr, a.profile, device)
    sec_per_kimg = seconds / (a.steps * opts.batch) * 1000
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    fields = {"torch": torch.__version__, "device": a.device, "device_name": name, "cfg": a.cfg,
              "resolution": a.resolution, "batch": opts.batch,
              "fp16_res": p["G_kwargs"]["synthesis_kwargs"].get("num_fp16_res"), "channels_last": a.channels_last,
              "steps": a.steps, "threads": torch.get_num_threads(), "sec_per_kimg": round(sec_per_kimg, 3),
              "peak_gpu_gb": round(peak, 3) if peak is not None else None,
              "reference_v100_sec_per_kimg": list(REFERENCE_V100_S_PER_KIMG)}
    thesis_like = a.cfg in ("auto", "paper256") and a.resolution == 256 and opts.batch == 16
    compare = (f" (reference on a V100: {REFERENCE_V100_S_PER_KIMG[0]}-{REFERENCE_V100_S_PER_KIMG[1]} s/kimg)"
               if thesis_like else "")
    bench_common.report("train", fields,
                        f"train {a.cfg} {a.resolution}px batch {opts.batch} on {name}: {sec_per_kimg:.2f} s/kimg"
                        + (f", peak {peak:.2f} GB" if peak is not None else "") + compare,
                        record=not a.no_record)


def profile_steps(tr: Trainer, steps: int, device: torch.device) -> None:
    """Print the ops that cost most per minibatch and, on CUDA, kernel launches and how busy the GPU was."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    start = time.perf_counter()
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(steps):
            tr._step()
        if device.type == "cuda":
            torch.cuda.synchronize()
    wall_ms = (time.perf_counter() - start) * 1000 / steps
    sort = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=20))
    ops = sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CPU)
    line = f"profile: {wall_ms:.1f} ms wall per minibatch, {ops / steps:.0f} CPU-side op events per minibatch"
    if device.type == "cuda":
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        busy_ms = sum(e.time_range.elapsed_us() for e in kernels) / 1000 / steps
        line += (f", {len(kernels) / steps:.0f} GPU kernels per minibatch, GPU busy {busy_ms:.1f} ms "
                 f"({100 * busy_ms / wall_ms:.0f}% of wall: the rest is launch/Python overhead)")
    print(line)


if __name__ == "__main__":
    main()
