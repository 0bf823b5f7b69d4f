"""Benchmark: `augment prepare` throughput (clips/s) on 4Q-full: 900 real MP3s → 256 px mel PNGs, as the command does.

    .venv/bin/python tools/bench_prepare.py          # 4Q-full, all cores, 256 px; target >= 80 clips/s on 2 cores
    .venv/bin/python tools/bench_prepare.py --jobs 1 --protocol small

Times the whole preparation (hash + probe every file, split, decode 10 s, mel, PNG, manifest) after imports, in a
temporary workspace. Also reports CPU seconds per clip (all processes), which does not depend on other load on the
machine. Prints one summary line and appends a JSON line to docs/bench.jsonl (unless --no-record).
"""
from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import bench_common  # first: puts the repository on sys.path

from augment.audio.mel import resolve_mel
from augment.cli_common import shown_warnings
from augment.datasets import build_dataset
from augment.prepare import prepare_dataset
from augment.prepare_worker import default_jobs

PANDA = bench_common.ROOT.parent / "shared" / "data" / "panda4q"
TARGET_CLIPS_PER_S = 80.0  # issue 2: 4Q-full on 2 cores


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--audio-dir", type=Path, default=PANDA / "audio")
    ap.add_argument("--annotations", type=Path, default=PANDA / "panda_dataset_taffc_annotations.csv")
    ap.add_argument("--protocol", choices=["small", "full"], default="full")
    ap.add_argument("--preset", default="clean")
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--jobs", type=int, default=None, help="worker processes [default: all cores]")
    ap.add_argument("--no-record", action="store_true", help="do not append to docs/bench.jsonl")
    args = ap.parse_args(argv)
    jobs = args.jobs or default_jobs()

    spec = build_dataset("panda4q", {"audio_dir": args.audio_dir, "annotations": args.annotations,
                                     "protocol": args.protocol})
    mel = resolve_mel(args.preset)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        with shown_warnings():  # skipped files as `warning: ...` lines, as `augment prepare` shows them
            report = prepare_dataset(spec, workspace=tmp, mel=mel, resolution=args.resolution, jobs=jobs)
        seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
        clips = len(report.workspace.rows())
    fields = dict(
        protocol=args.protocol, preset=args.preset, resolution=args.resolution, jobs=jobs, cores=default_jobs(),
        clips=clips, scanned=len(spec.sources), seconds=round(seconds, 2), clips_per_s=round(clips / seconds, 1),
        cpu_s_per_clip=round(cpu / clips, 4), loadavg_before=round(load_before, 2),
        target_clips_per_s=TARGET_CLIPS_PER_S if (args.protocol, jobs) == ("full", 2) else None,
    )
    bench_common.report("prepare_4q", fields,
                        f"prepare 4Q-{args.protocol}: {clips} clips in {seconds:.1f} s = {clips / seconds:.1f} "
                        f"clips/s ({jobs} jobs, {args.resolution} px; {1000 * cpu / clips:.1f} ms CPU per clip; load "
                        f"average before {load_before:.1f}; target {TARGET_CLIPS_PER_S:g} clips/s on 2 cores)",
                        record=not args.no_record)


if __name__ == "__main__":
    main()
