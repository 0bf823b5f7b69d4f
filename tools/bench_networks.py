"""Benchmark: G+D forward+backward seconds per image (training mode, fp32) for a preset, on CPU by default.

    .venv/bin/python tools/bench_networks.py                      # thesis config: auto, 256 px, batch 4
    .venv/bin/python tools/bench_networks.py --resolution 32 --cfg tiny --iters 20

Prints one summary line and appends a JSON line to docs/bench.jsonl (unless --no-record).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import bench_common  # first: puts the repository on sys.path
import torch
import torch.nn.functional as F

from stylegan_ada import presets
from stylegan_ada.networks import Discriminator, Generator
from stylegan_ada.ops.cpu_memory import retain_freed_memory

REFERENCE_CPU_S_PER_IMAGE = 2.75  # NVlabs reference, auto 256 px, fp32, this project's 2-core machine


def time_steps(cfg: str, resolution: int, batch: int, iters: int, warmup: int,
               device: str) -> tuple[list[float], list[float]]:
    """(wall, process CPU) seconds of `iters` G+D forward+backward steps after `warmup` untimed ones."""
    p = presets.resolve(cfg, resolution)
    torch.manual_seed(0)
    G = Generator(**p["G_kwargs"]).train().to(device)
    D = Discriminator(**p["D_kwargs"]).train().to(device)
    z = torch.randn([batch, G.z_dim], device=device)
    c = torch.zeros([batch, G.c_dim], device=device)
    times, cpu_times = [], []
    for i in range(warmup + iters):
        start, cpu_start = time.perf_counter(), time.process_time()
        G.zero_grad(set_to_none=True)
        D.zero_grad(set_to_none=True)
        logits = D(G(z, c, force_fp32=True), c, force_fp32=True)
        F.softplus(-logits).sum().backward()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    return times, cpu_times


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cfg", default="auto", choices=presets.PRESETS)
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--no-record", action="store_true", help="do not append to docs/bench.jsonl")
    ap.add_argument("--release-memory", action="store_true",
                    help="leave glibc's default of returning freed memory to the OS (slower; see ops/cpu_memory.py)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    retained = False if args.release_memory else retain_freed_memory()

    times, cpu_times = time_steps(args.cfg, args.resolution, args.batch, args.iters, args.warmup, args.device)
    per_image = statistics.median(times) / args.batch
    cpu_per_image = statistics.median(cpu_times) / args.batch  # all threads; less sensitive to other jobs
    reference = REFERENCE_CPU_S_PER_IMAGE if (args.cfg, args.resolution, args.device) == ("auto", 256, "cpu") else None
    fields = dict(
        cfg=args.cfg, resolution=args.resolution, batch=args.batch, iters=args.iters, device=args.device,
        threads=torch.get_num_threads(), torch=torch.__version__,
        retain_freed_memory=retained, omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"),
        s_per_image=round(per_image, 4), s_per_step=[round(t, 4) for t in times],
        cpu_s_per_image=round(cpu_per_image, 4), reference_s_per_image=reference,
    )
    ref = f", reference {REFERENCE_CPU_S_PER_IMAGE:.2f} s/image" if reference else ""
    bench_common.report("networks_G+D_fwd_bwd", fields,
                        f"G+D fwd+bwd {args.cfg} {args.resolution}px batch {args.batch} on {args.device} "
                        f"({torch.get_num_threads()} threads, load {bench_common.load_avg()}): {per_image:.3f} "
                        f"s/image wall, {cpu_per_image:.3f} CPU-s/image{ref}", record=not args.no_record)


if __name__ == "__main__":
    main()
