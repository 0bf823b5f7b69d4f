"""Benchmark: `augment generate` throughput (images/s) — generator + PNG encoding + writing, as the command runs them.

    .venv/bin/python tools/bench_generate.py                          # thesis G: auto, 256 px, random weights
    .venv/bin/python tools/bench_generate.py --cfg tiny --resolution 64
    .venv/bin/python tools/bench_generate.py --device cuda --n 1000    # target: 1000 images at 256 px in <= 5 s (H100)

Defaults: CUDA when present (1000 images, batch 64), else CPU (32 images, batch 8). Also times the generator alone
(no encoding) on the same seeds, to show whether PNG encoding holds the device back. Prints one summary line and
appends a JSON line to docs/bench.jsonl (unless --no-record).
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import bench_common  # first: puts the repository on sys.path
import torch

from augment.generate import GenerateOptions, render_to_dir, synthesize
from augment.png_output import ImageWriter, default_workers
from stylegan_ada import presets
from stylegan_ada.networks import Generator
from stylegan_ada.ops.cpu_memory import retain_freed_memory

TARGET_S_PER_1000 = 5.0  # issue 5: 1000 images at 256 px in <= 5 s on an H100


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_pipeline(G: torch.nn.Module, opts: GenerateOptions, seeds: list[int], workers: int | None) -> float:
    """Seconds to synthesize ``seeds`` and write their PNGs (encode + sha256 + write), like `augment generate`."""
    with tempfile.TemporaryDirectory() as tmp:
        writer = ImageWriter(workers)
        try:
            start = time.perf_counter()
            render_to_dir(G, seeds, Path(tmp), writer, label=None, opts=opts)
            writer.drain()
            seconds = time.perf_counter() - start
        finally:
            writer.close()
    return seconds


def time_generator_only(G: torch.nn.Module, opts: GenerateOptions, seeds: list[int]) -> float:
    start = time.perf_counter()
    for _ in synthesize(G, seeds, label=None, truncation_psi=opts.truncation_psi, noise_mode=opts.noise_mode,
                        batch=opts.batch, device=str(opts.device)):
        pass
    _sync(str(opts.device))
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cfg", default="auto", choices=presets.PRESETS)
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--n", type=int, default=None, help="images to generate [default: 1000 on CUDA, 32 on CPU]")
    ap.add_argument("--batch", type=int, default=None, help="[default: 64 on CUDA, 8 on CPU]")
    ap.add_argument("--device", default=None, help="cpu, cuda [default: cuda when present]")
    ap.add_argument("--workers", type=int, default=None, help="PNG encoder threads [default: min(16, cores)]")
    ap.add_argument("--no-record", action="store_true", help="do not append to docs/bench.jsonl")
    ap.add_argument("--release-memory", action="store_true",
                    help="on CPU, skip retain_freed_memory() (which `augment generate` calls), to compare")
    args = ap.parse_args(argv)

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.startswith("cuda")
    retained = not cuda and not args.release_memory and retain_freed_memory()
    n = args.n or (1000 if cuda else 32)
    opts = GenerateOptions(n=n, batch=args.batch or (64 if cuda else 8), device=device)
    opts.check()
    torch.manual_seed(0)
    G = Generator(**presets.resolve(args.cfg, args.resolution)["G_kwargs"]).eval().requires_grad_(False).to(device)
    seeds = list(range(n))
    time_generator_only(G, opts, seeds[:opts.batch])  # warm-up: kernels, CUDA extension build/load, allocator
    g_only = time_generator_only(G, opts, seeds)
    seconds = time_pipeline(G, opts, seeds, args.workers)
    ips = n / seconds
    workers = args.workers or default_workers()
    has_target = cuda and args.cfg == "auto" and args.resolution == 256
    fields = dict(
        cfg=args.cfg, resolution=args.resolution, n=n, batch=opts.batch, device=device,
        threads=torch.get_num_threads(), png_workers=workers, retain_freed_memory=retained,
        device_name=torch.cuda.get_device_name(0) if cuda else platform.processor() or platform.machine(),
        torch=torch.__version__, seconds=round(seconds, 3), images_per_s=round(ips, 2),
        generator_only_images_per_s=round(n / g_only, 2), s_per_1000=round(1000 / ips, 2),
        target_s_per_1000=TARGET_S_PER_1000 if has_target else None,
    )
    target = ""
    if has_target:
        met = 1000 / ips <= TARGET_S_PER_1000
        target = f"; target <= {TARGET_S_PER_1000:g} s per 1000: {'met' if met else 'MISSED'}"
    bench_common.report("generate", fields,
                        f"generate {args.cfg} {args.resolution}px on {device}: {n} images in {seconds:.2f} s = "
                        f"{ips:.1f} images/s (generator alone {n / g_only:.1f} images/s, batch {opts.batch}, "
                        f"{workers} PNG threads){target}", record=not args.no_record)


if __name__ == "__main__":
    main()
