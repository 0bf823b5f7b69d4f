"""Benchmark: sec/kimg and peak memory of the real training loop (all phases, ADA, G_ema), no snapshots.

    .venv/bin/python tools/bench_train.py --device cuda                    # thesis config: auto, 256 px, batch 16
    .venv/bin/python tools/bench_train.py --cfg tiny --resolution 64 --steps 20
    .venv/bin/python tools/bench_train.py --device cuda --precision tf32   # fp32 blocks with TF32 (no fp16)
    .venv/bin/python tools/bench_train.py --device cuda --knobs            # every speed knob: a table + parity
    .venv/bin/python tools/bench_train.py --device cuda --profile 16       # where the time goes (torch.profiler)
    .venv/bin/python tools/bench_train.py --cfg tiny --resolution 16 --knobs fp32,compile --steps 16 --warmup 2

Random uint8 images stand in for a dataset (speed does not depend on the pixels). Prints one summary line per
measurement and appends a JSON line to docs/bench.jsonl (unless --no-record). ``--knobs [NAMES]`` runs every knob
(or the comma-separated NAMES) from the same initial weights and reports, per knob, sec/kimg, peak GPU memory, the
warm-up time (where ``--compile`` compiles), and the parity with the plain fp32 path after the same minibatches (max
|G_ema difference| and the relative difference of the G and D losses); with ``--profile`` also the GPU busy fraction,
kernels per minibatch and the top-10 kernels of each knob. Knobs this device cannot run (cuda-graphs on a CPU) are
listed as skipped.
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_common  # first: puts the repository on sys.path
import torch

from stylegan_ada import presets
from stylegan_ada.training.data import ImageSet
from stylegan_ada.training.launch import cpu_threads
from stylegan_ada.training.training_loop import SINGLE, RunInputs, Trainer

REFERENCE_V100_S_PER_KIMG = (21.6, 24.2)  # the reference's own table, 256 px, 1 V100
KNOBS = [("fp32", dict(precision="fp32")), ("tf32", dict(precision="tf32")), ("fp16-top", dict(precision="fp16-top")),
         ("fp16-top+channels-last", dict(precision="fp16-top", channels_last=True)), ("bf16", dict(precision="bf16")),
         ("compile", dict(precision="fp32", compile=True)), ("cuda-graphs", dict(precision="fp32", cuda_graphs=True))]
CUDA_ONLY = ("cuda-graphs",)
# Parity the compiled paths must keep with plain fp32 (docs/benchmarks.md): loss means relative, and the G_ema
# difference in units of how far fp32 moved G_ema (measured on CPU after 18 minibatches: 3.5e-5 and 0.019).
PARITY_TOLERANCE = {"compile": (1e-3, 0.05), "cuda-graphs": (1e-3, 0.05)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cfg", default="auto")
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--batch", type=int, default=None, help="default: the preset's (auto at 256 px: 16)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=64, help="timed minibatches (a multiple of 16 covers every phase)")
    ap.add_argument("--warmup", type=int, default=16)
    ap.add_argument("--precision", default="fp16-top", choices=[k for k, _ in KNOBS[:3]] + ["bf16"])
    ap.add_argument("--no-fp16", action="store_true", help="the same as --precision tf32 (kept for old commands)")
    ap.add_argument("--channels-last", action="store_true", help="channels-last activations in the fp16 blocks")
    ap.add_argument("--knobs", nargs="?", const="all", default=None, metavar="NAMES",
                    help=f"measure every knob (or NAMES, comma-separated, of {', '.join(k for k, _ in KNOBS)}); "
                         "print a table")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--profile", type=int, default=0, metavar="STEPS",
                    help="after timing, profile STEPS more minibatches and print where the time goes")
    a = ap.parse_args()

    device = torch.device(a.device)
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(1))
    knobs = chosen_knobs(a.knobs, device) if a.knobs else [(a.precision if not a.no_fp16 else "tf32",
                                                            dict(precision="tf32" if a.no_fp16 else a.precision,
                                                                 channels_last=a.channels_last))]
    rows = []
    for name, knob in knobs:
        print(f"measuring {name}: {a.warmup} warm-up + {a.steps} timed minibatches ...", flush=True)
        rows.append(dict(name=name, **measure(a, device, knob, name)))
    plain = next((r for r in rows if r["name"] == "fp32"), None)
    for row in rows:
        record(a, device, row, plain)
    if a.knobs:
        print_table(rows, plain)
        check_parity(rows, plain)


def chosen_knobs(names: str, device: torch.device) -> list[tuple[str, dict[str, Any]]]:
    """The knobs of ``--knobs NAMES`` (``all``: every one), without those this device cannot run (said once)."""
    table = dict(KNOBS)
    wanted = list(table) if names == "all" else [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in table]
    if unknown:
        raise SystemExit(f"error: unknown knob(s) {', '.join(unknown)}; choose from {', '.join(table)}")
    skipped = [n for n in wanted if n in CUDA_ONLY and device.type != "cuda"]
    if skipped:
        print(f"skipped on {device.type}: {', '.join(skipped)} (needs a CUDA device)")
    return [(n, table[n]) for n in wanted if n not in skipped]


def measure(a: argparse.Namespace, device: torch.device, knob: dict[str, Any], name: str = "") -> dict[str, Any]:
    """sec/kimg, peak memory, final G_ema and loss means of ``steps`` timed minibatches with ``knob``."""
    opts = presets.training_options(a.cfg, a.resolution, batch=a.batch, total_kimg=1e6, gamma=10.0, mirror=True,
                                    snap=10 ** 6, image_snap=10 ** 6, **knob)
    images = torch.randint(0, 256, [64, 3, a.resolution, a.resolution], dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    data = ImageSet(images, torch.zeros([64, 0]), mirror=True)
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(opts, Path(tmp), RunInputs(data, {}), device, SINGLE, log=lambda line: None)
        tr._restore_or_init()
        g_ema_init = floating_state(tr.G_ema)
        warm = time.perf_counter()
        for _ in range(a.warmup):  # --compile compiles here (the first minibatch with each phase)
            tr._step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        warmup_seconds = time.perf_counter() - warm
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
        tr.stats.summarize(lambda t: t, 1)  # only the timed minibatches count in the loss means
        start = time.perf_counter()
        for _ in range(a.steps):
            tr._step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        losses = {k: v["mean"] for k, v in tr.stats.summarize(lambda t: t, 1).items()}
        g_ema = floating_state(tr.G_ema)
        if a.profile:
            print(f"top-10 ops by {'GPU' if device.type == 'cuda' else 'CPU'} time, knob {name}:")
        profile = profile_steps(tr, a.profile, device) if a.profile else {}
    return dict(opts=opts, sec_per_kimg=seconds / (a.steps * opts.batch) * 1000, g_ema=g_ema, losses=losses,
                peak=torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else None,
                warmup_seconds=warmup_seconds, g_ema_init=g_ema_init, **profile)


def floating_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().cpu().clone() for k, v in net.state_dict().items() if v.is_floating_point()}


def parity(row: dict[str, Any], plain: dict[str, Any] | None) -> dict[str, Any]:
    if plain is None:
        return {}
    keys = [k for k in plain["g_ema"] if not k.endswith("w_avg")]
    diff = max((row["g_ema"][k] - plain["g_ema"][k]).abs().max().item() for k in keys)
    # the difference in units of how far plain fp32 moved G_ema over these minibatches (Adam turns rounding in
    # near-zero gradients into whole steps, so the max abs difference alone overstates it)
    moved = torch.cat([(plain["g_ema"][k] - plain["g_ema_init"][k]).flatten() for k in keys]).norm().item()
    apart = torch.cat([(row["g_ema"][k] - plain["g_ema"][k]).flatten() for k in keys]).norm().item()
    rel = apart / max(moved, 1e-30)
    losses = {n: abs(row["losses"][n] - plain["losses"][n]) / max(abs(plain["losses"][n]), 1e-12)
              for n in ("Loss/G/loss", "Loss/D/loss") if n in row["losses"] and n in plain["losses"]}
    return {"g_ema_max_abs_diff_vs_fp32": diff, "g_ema_diff_per_fp32_change": rel, "loss_rel_diff_vs_fp32": losses}


def record(a: argparse.Namespace, device: torch.device, row: dict[str, Any], plain: dict[str, Any] | None) -> None:
    opts, peak, sec = row["opts"], row["peak"], row["sec_per_kimg"]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    fields = {"torch": torch.__version__, "device": a.device, "device_name": name, "cfg": a.cfg,
              "resolution": a.resolution, "batch": opts.batch, "knob": row["name"], "precision": opts.precision,
              "fp16_res": opts.G_kwargs["synthesis_kwargs"].get("num_fp16_res"), "channels_last": opts.channels_last,
              "compile": opts.compile, "cuda_graphs": opts.cuda_graphs, "warmup": a.warmup,
              "warmup_seconds": round(row["warmup_seconds"], 1), "gpu_busy": row.get("gpu_busy"),
              "kernels_per_minibatch": row.get("kernels_per_minibatch"),
              "steps": a.steps, "threads": torch.get_num_threads(), "sec_per_kimg": round(sec, 3),
              "peak_gpu_gb": round(peak, 3) if peak is not None else None,
              "reference_v100_sec_per_kimg": list(REFERENCE_V100_S_PER_KIMG), **parity(row, plain)}
    thesis_like = a.cfg in ("auto", "paper256") and a.resolution == 256 and opts.batch == 16
    compare = (f" (reference on a V100: {REFERENCE_V100_S_PER_KIMG[0]}-{REFERENCE_V100_S_PER_KIMG[1]} s/kimg)"
               if thesis_like else "")
    bench_common.report("train", fields,
                        f"train {a.cfg} {a.resolution}px batch {opts.batch} {row['name']} on {name}: {sec:.2f} s/kimg"
                        + (f", peak {peak:.2f} GB" if peak is not None else "") + compare,
                        record=not a.no_record)


def print_table(rows: list[dict[str, Any]], plain: dict[str, Any] | None) -> None:
    print(f"{'knob':<24} {'s/kimg':>8} {'x fp32':>7} {'peak GB':>8} {'warmup s':>9} {'busy':>5} {'kern/mb':>8} "
          f"{'|dG_ema|':>10} {'dG_ema/mv':>9} {'dG loss':>8} {'dD loss':>8}")
    for row in rows:
        p = parity(row, plain)
        rel = p.get("loss_rel_diff_vs_fp32", {})
        speed = plain["sec_per_kimg"] / row["sec_per_kimg"] if plain else float("nan")
        peak = f"{row['peak']:.2f}" if row["peak"] is not None else "-"
        busy = f"{100 * row['gpu_busy']:.0f}%" if row.get("gpu_busy") is not None else "-"
        kernels = f"{row['kernels_per_minibatch']:.0f}" if row.get("kernels_per_minibatch") is not None else "-"
        print(f"{row['name']:<24} {row['sec_per_kimg']:>8.2f} {speed:>7.2f} {peak:>8} {row['warmup_seconds']:>9.1f} "
              f"{busy:>5} {kernels:>8} {p.get('g_ema_max_abs_diff_vs_fp32', float('nan')):>10.2e} "
              f"{p.get('g_ema_diff_per_fp32_change', float('nan')):>9.2e} "
              f"{100 * rel.get('Loss/G/loss', float('nan')):>7.2f}% {100 * rel.get('Loss/D/loss', float('nan')):>7.2f}%")


def check_parity(rows: list[dict[str, Any]], plain: dict[str, Any] | None) -> None:
    """One line per compiled knob: within PARITY_TOLERANCE of plain fp32 or not."""
    for row in rows:
        if row["name"] not in PARITY_TOLERANCE or plain is None:
            continue
        loss_tol, ema_tol = PARITY_TOLERANCE[row["name"]]
        p = parity(row, plain)
        worst = max(p["loss_rel_diff_vs_fp32"].values(), default=0.0)
        ok = worst <= loss_tol and p["g_ema_diff_per_fp32_change"] <= ema_tol
        print(f"parity {row['name']}: {'within' if ok else 'OVER'} tolerance (loss means {worst:.1e} <= {loss_tol:g} "
              f"relative, G_ema {p['g_ema_diff_per_fp32_change']:.3f} <= {ema_tol:g} of fp32's movement)")


def profile_steps(tr: Trainer, steps: int, device: torch.device) -> dict[str, float]:
    """Print the 10 ops that cost most per minibatch and, on CUDA, kernel launches and how busy the GPU was (also
    returned: gpu_busy, kernels_per_minibatch)."""
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
    print(prof.key_averages().table(sort_by=sort, row_limit=10))
    ops = sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CPU)
    line = f"profile: {wall_ms:.1f} ms wall per minibatch, {ops / steps:.0f} CPU-side op events per minibatch"
    out: dict[str, float] = {}
    if device.type == "cuda":
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        busy_ms = sum(e.time_range.elapsed_us() for e in kernels) / 1000 / steps
        line += (f", {len(kernels) / steps:.0f} GPU kernels per minibatch, GPU busy {busy_ms:.1f} ms "
                 f"({100 * busy_ms / wall_ms:.0f}% of wall: the rest is launch/Python overhead)")
        out = {"gpu_busy": busy_ms / wall_ms, "kernels_per_minibatch": len(kernels) / steps}
    print(line)
    return out


if __name__ == "__main__":
    main()
