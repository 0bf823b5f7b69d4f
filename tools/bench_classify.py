"""Benchmark: seconds per training epoch of the `classify` architectures, on CPU by default.

    .venv/bin/python tools/bench_classify.py                                  # small_cnn, efficientnet_lite0, squeezenet1_0
    .venv/bin/python tools/bench_classify.py --archs densenet121 --modes whole --device cuda

One epoch = what `classify eval` does per epoch on a 4Q-small workspace: forward+backward over 86 training images
(batch 16) and a forward pass over 21 validation images, at each architecture's input size, from in-memory tensors
(image decoding excluded). Random weights (speed does not depend on them). Prints one summary line and appends a JSON
line to docs/bench.jsonl (unless --no-record).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import bench_common  # first: puts the repository on sys.path
import torch

from classify.archs import ARCHS, build_model, set_train_mode
from classify.trainer import classification_loss


def epoch_seconds(arch: str, mode: str, *, n_train: int, n_val: int, batch: int, device: str,
                  classes: int = 4) -> tuple[float, float]:
    """(wall, process CPU) seconds of one train epoch + one validation pass on random inputs."""
    torch.manual_seed(0)
    built = build_model(arch, classes, mode, "none")
    built.model.to(device)
    size = ARCHS[arch].input_size
    params = [p for p in built.model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    x_all = torch.randn(n_train, 3, size, size)
    y_all = torch.randint(0, classes, (n_train,))
    x_val = torch.randn(n_val, 3, size, size)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    sync()
    start, cpu_start = time.perf_counter(), time.process_time()
    for i in range(0, n_train, batch):
        x, y = x_all[i:i + batch].to(device), y_all[i:i + batch].to(device)
        set_train_mode(built, True)
        opt.zero_grad(set_to_none=True)
        classification_loss(built, built.model(x), y).backward()
        opt.step()
    set_train_mode(built, False)
    with torch.no_grad():
        for i in range(0, n_val, batch):
            built.model(x_val[i:i + batch].to(device))
    sync()
    return time.perf_counter() - start, time.process_time() - cpu_start


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archs", default="small_cnn,efficientnet_lite0,squeezenet1_0")
    ap.add_argument("--modes", default="freeze,whole")
    ap.add_argument("--train-images", type=int, default=86)
    ap.add_argument("--val-images", type=int, default=21)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2, help="epochs timed per setting (median reported)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results, cpu = {}, {}
    for arch in args.archs.split(","):
        for mode in args.modes.split(","):
            if arch == "small_cnn" and mode == "freeze":
                continue          # trains from scratch: only `whole` is meaningful
            epoch_seconds(arch, mode, n_train=args.batch_size, n_val=1, batch=args.batch_size,
                          device=args.device)                                    # warm-up
            times = [epoch_seconds(arch, mode, n_train=args.train_images, n_val=args.val_images,
                                   batch=args.batch_size, device=args.device) for _ in range(args.repeats)]
            key = f"{arch}/{mode}"
            results[key] = round(statistics.median(t[0] for t in times), 2)
            cpu[key] = round(statistics.median(t[1] for t in times), 2)
            print(f"{arch} {mode}: {results[key]:.2f} s/epoch wall, {cpu[key]:.2f} s CPU", file=sys.stderr)
    summary = ", ".join(f"{k} {v:.2f}" for k, v in results.items())
    bench_common.report(
        "classify_epoch",
        {"device": args.device, "threads": torch.get_num_threads(), "train_images": args.train_images,
         "val_images": args.val_images, "batch": args.batch_size, "seconds_per_epoch": results,
         "cpu_seconds_per_epoch": cpu, "torch": torch.__version__},
        f"classify s/epoch wall ({args.train_images} train + {args.val_images} val images, batch {args.batch_size}, "
        f"{args.device}, {torch.get_num_threads()} threads, load average {bench_common.load_avg()}): {summary}",
        record=not args.no_record)


if __name__ == "__main__":
    main()
