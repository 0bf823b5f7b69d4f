"""Benchmark: near-duplicate detection on the real 4Q set — prepare's audio check, the leak guard's false positives,
its detection of near-copies, and its cost on a 1000-fake synthetic folder.

    .venv/bin/python tools/bench_near_duplicates.py --workspace WS   # a prepared 4Q-full workspace (256 px)
    .venv/bin/python tools/bench_near_duplicates.py                  # prepares 4Q-full into a temp folder first

Reports (one summary line, a JSON line in docs/bench.jsonl unless --no-record):
- prepare: seconds to fingerprint the 900 images and to find every near-duplicate pair among them; the number of
  near-duplicate groups (any splits) and of groups that span splits;
- false positives: every non-test image against every test image and its mirror (the guard's comparison);
- detection: each test image re-saved with a PNG chunk, as JPEG q100, mirrored, one pixel changed; and for
  ``--audio-copies`` test clips, the clip's audio with gain 0.9, 1e-4 noise, a one-sample shift, through the
  prepare pipeline;
- guard cost: `classify eval --train real+synthetic`'s guard call on the real train+val images plus 1000 fakes
  (cold: test fingerprints computed; warm: from the cache).
"""
from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_common  # first: puts the repository on sys.path
import numpy as np
from PIL import Image, PngImagePlugin

from augment import fingerprints as fp
from augment.leak_guard import test_cache_path, test_rows
from augment.near_duplicates import components, near_pairs
from augment.workspace import Workspace

PANDA = bench_common.ROOT.parent / "shared" / "data" / "panda4q"


def _prepare(tmp: Path) -> Path:
    ws = tmp / "ws4q"
    subprocess.run([sys.executable, "-m", "augment", "prepare", "--dataset", "panda4q", "--protocol", "full",
                    "--audio-dir", str(PANDA / "audio"), "--annotations",
                    str(PANDA / "panda_dataset_taffc_annotations.csv"), "-w", str(ws)], check=True)
    return ws


def _variants(im: Image.Image) -> dict[str, bytes]:
    out = {}
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "re-saved")
    for name, save in (("png_chunk", lambda b: im.save(b, "PNG", pnginfo=info)),
                       ("jpeg_q100", lambda b: im.save(b, "JPEG", quality=100)),
                       ("mirrored", lambda b: im.transpose(Image.FLIP_LEFT_RIGHT).save(b, "PNG"))):
        buf = io.BytesIO()
        save(buf)
        out[name] = buf.getvalue()
    a = np.asarray(im).copy()
    a[a.shape[0] // 2, a.shape[1] // 3] ^= 0x80
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    out["one_pixel"] = buf.getvalue()
    return out


def _audio_copies(ws: Workspace, rows: list, n: int, audio_dir: Path) -> dict[str, list[np.ndarray]]:
    """Fingerprints of the images prepare would make from gain / noise / shift copies of ``n`` test clips."""
    import librosa
    import soundfile as sf

    from augment.audio.decode import load_clip
    from augment.audio.image_mapping import db_to_gray
    from augment.audio.mel import MelConfig, mel_db

    cfg = MelConfig.from_dict(ws.config["mel"])
    out: dict[str, list[np.ndarray]] = {"gain_0.9": [], "noise_1e-4": [], "shift_1_sample": []}
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for r in rows[:n]:
            y, sr = librosa.load(audio_dir / r.source, sr=None, mono=True, duration=cfg.offset + cfg.duration + 1)
            for name, v in (("gain_0.9", 0.9 * y), ("noise_1e-4", y + 1e-4 * rng.standard_normal(y.size)),
                            ("shift_1_sample", np.concatenate([[0.0], y[:-1]]))):
                path = Path(tmp) / f"{name}.wav"
                sf.write(path, v.astype(np.float32), sr, subtype="FLOAT")
                grey = db_to_gray(mel_db(load_clip(path, cfg).samples, cfg), cfg.top_db, ws.resolution)
                out[name].append(fp.fingerprint_image(Image.fromarray(grey)))
    return out


def _fakes(ws: Workspace, folder: Path, n: int) -> list[Path]:
    """``n`` fake-like PNGs: real train images rolled in time by a random amount, plus noise (none a near-copy)."""
    rng = np.random.default_rng(1)
    train = ws.images("train")
    paths = []
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        with Image.open(train[k % len(train)]) as im:
            a = np.asarray(im.convert("L"), dtype=np.int16)
        a = np.roll(a, int(rng.integers(a.shape[1] // 8, a.shape[1] // 2)), axis=1) + rng.integers(-8, 9, a.shape)
        g = np.clip(a, 0, 255).astype(np.uint8)
        path = folder / f"seed{k:06d}.png"
        Image.fromarray(np.stack([g] * 3, -1), "RGB").save(path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", type=Path, default=None, help="a prepared 4Q workspace [default: prepare one]")
    ap.add_argument("--audio-dir", type=Path, default=PANDA / "audio")
    ap.add_argument("--audio-copies", type=int, default=20, help="test clips copied with gain/noise/shift")
    ap.add_argument("--fakes", type=int, default=1000)
    ap.add_argument("--no-record", action="store_true", help="do not append to docs/bench.jsonl")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.load(args.workspace or _prepare(Path(tmp)))
        rows = ws.rows()
        t0, c0 = time.perf_counter(), time.process_time()
        fps = np.stack([fp.fingerprint_bytes((ws.root / r.image).read_bytes()) for r in rows])
        t_fp, c_fp = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        any_pairs = near_pairs(fps, [str(i) for i in range(len(rows))])   # every pair, whatever the splits
        t_pairs, c_pairs = time.perf_counter() - t0, time.process_time() - c0
        groups = components(len(rows), any_pairs)
        cross = components(len(rows), near_pairs(fps, [r.split for r in rows]))

        is_test = np.array([r.split == "test" for r in rows])
        refs = fp.with_mirrors(fps[is_test])
        t0 = time.perf_counter()
        mad, corr = fp.closest(fps[~is_test, 0], refs)
        t_exact = time.perf_counter() - t0
        false_pos = int(fp.is_near(mad, corr).sum())

        tests = test_rows(ws)
        detected: dict[str, float] = {}
        per_kind: dict[str, list[np.ndarray]] = {}
        for r in tests:
            with Image.open(ws.root / r.image) as im:
                for name, data in _variants(im.convert("RGB")).items():
                    per_kind.setdefault(name, []).append(fp.fingerprint_bytes(data))
        per_kind.update(_audio_copies(ws, tests, args.audio_copies, args.audio_dir))
        for name, f in per_kind.items():
            detected[name] = float((fp.first_matches(np.stack(f)[:, 0], refs) >= 0).mean())

        fakes = _fakes(ws, Path(tmp) / "fakes", args.fakes)
        inputs = ws.images(["train", "val"]) + fakes
        cache = test_cache_path(ws, tests)
        cache.unlink(missing_ok=True)
        t0, c0 = time.perf_counter(), time.process_time()
        ws.guard_training_inputs(inputs, what="bench input")
        t_cold, c_cold = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        ws.guard_training_inputs(inputs, what="bench input")
        t_warm, c_warm = time.perf_counter() - t0, time.process_time() - c0
        shutil.rmtree(Path(tmp) / "fakes", ignore_errors=True)

    fields = dict(images=len(rows), fingerprint_s=round(t_fp, 2), pair_search_s=round(t_pairs, 2),
                  fingerprint_cpu_s=round(c_fp, 2), pair_search_cpu_s=round(c_pairs, 2),
                  guard_cold_cpu_s=round(c_cold, 2), guard_warm_cpu_s=round(c_warm, 2),
                  near_duplicate_groups=len(groups), cross_split_groups=len(cross),
                  guard_pairs=int((~is_test).sum()) * len(refs), guard_false_positives=false_pos,
                  min_mean_abs_diff=round(float(mad.min()), 2), max_correlation=round(float(corr.max()), 4),
                  exact_distances_s=round(t_exact, 2), detected=detected, guard_inputs=len(inputs),
                  guard_cold_s=round(t_cold, 2), guard_warm_s=round(t_warm, 2),
                  thresholds={"grid": fp.GRID, "max_mean_abs_diff": fp.MAX_MEAN_ABS_DIFF,
                              "min_correlation": fp.MIN_CORRELATION})
    shown = ", ".join(f"{k} {100 * v:.0f}%" for k, v in detected.items())
    bench_common.report(
        "near_duplicates", fields,
        f"near-duplicates on {len(rows)} real 4Q images: {len(groups)} groups ({len(cross)} across splits), "
        f"fingerprints {t_fp:.1f} s ({c_fp:.1f} s CPU) + pair search {t_pairs:.2f} s ({c_pairs:.2f} s CPU); guard false positives {false_pos} of "
        f"{fields['guard_pairs']} non-test×test pairs (closest {mad.min():.2f} grey levels, r {corr.max():.3f}); "
        f"detected: {shown}; guard on {len(inputs)} inputs ({args.fakes} fakes): {t_cold:.1f} s cold "
        f"({c_cold:.1f} s CPU), {t_warm:.1f} s warm ({c_warm:.1f} s CPU); load average {bench_common.load_avg()}",
        record=not args.no_record)


if __name__ == "__main__":
    main()
