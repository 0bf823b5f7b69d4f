"""How well `--preset musicnn` images stand in for audio: MusiCNN embeddings from the image path vs the audio path.

    nice -n 10 .venv/bin/python tools/bench_musicnn_agreement.py --workspace WS [--per-class 4] [--model MSD_musicnn]

For real train/val clips of a workspace prepared with `augment prepare --preset musicnn`: the audio path decodes the
source file (16 kHz, the preset's 8.96 s) → float32 log-mel → network; the image path reads the workspace PNG
(256 px: 561 frames and 96 bands squeezed into it, 8-bit, fixed dB reference) → mapped back → network. Reports the
input error, the cosine similarity of the clip embeddings (penultimate, mean over the 3 patches), how much closer
each image embedding is to its own clip than to the nearest other clip, and the top-5 tag overlap.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import bench_common  # first: puts the repository on sys.path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return a @ b.T


def _image(ws: Path, row: dict[str, str], mel, audio_dir: Path, resolution: int | None) -> np.ndarray:
    """The clip's image [H, W, 3]: the workspace PNG, or rendered as `augment prepare` would at ``resolution``."""
    if resolution is None:
        return np.asarray(Image.open(ws / row["image"]).convert("RGB"))
    from augment.audio.decode import load_clip
    from augment.audio.image_mapping import db_to_gray
    from augment.audio.mel import mel_db

    gray = db_to_gray(mel_db(load_clip(audio_dir / row["source"], mel).samples, mel), mel.top_db, resolution)
    return np.repeat(gray[:, :, None], 3, axis=2)


def main() -> None:
    from classify.musicnn import clip_to_input, images_to_input, load_musicnn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", required=True)
    ap.add_argument("--per-class", type=int, default=4)
    ap.add_argument("--model", default="MSD_musicnn")
    ap.add_argument("--resolution", type=int, default=None,
                    help="render the images from the audio at this size instead of reading the workspace PNGs")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    ws = Path(args.workspace)
    config = json.loads((ws / "augment.json").read_text())
    if config.get("mel", {}).get("preset") != "musicnn":
        raise SystemExit(f"error: {ws} was not prepared with --preset musicnn")
    audio_dir = Path(config["dataset"]["options"]["audio_dir"])
    from augment.audio.mel import MelConfig

    mel = MelConfig.from_dict(config["mel"])
    resolution = args.resolution or int(config["image"]["resolution"])
    rows = [r for r in csv.DictReader((ws / "splits.csv").open()) if r["split"] in ("train", "val")]
    picked = [r for c in config["classes"] for r in [r for r in rows if r["class"] == c][: args.per_class]]
    net = load_musicnn(args.model)
    emb = {"audio": [], "image": []}
    tags = {"audio": [], "image": []}
    input_err = []
    with torch.no_grad():
        for r in tqdm(picked, desc="clips", unit="clip"):
            xa = torch.from_numpy(clip_to_input(audio_dir / r["source"]))
            img = torch.from_numpy(_image(ws, r, mel, audio_dir, args.resolution)).permute(2, 0, 1)[None]
            xi = images_to_input(img)[0]
            input_err.append(float((xa - xi).abs().mean()))
            for path, x in (("audio", xa), ("image", xi)):
                out = net(x)
                emb[path].append(out["embedding"].mean(0).numpy())
                tags[path].append(out["taggram"].mean(0).numpy())
    a, i = np.stack(emb["audio"]), np.stack(emb["image"])
    sim = _cos(i, a)
    own = np.diag(sim)
    others = np.where(np.eye(len(a), dtype=bool), -np.inf, sim).max(axis=1)
    top = [len(set(np.argsort(-ta)[:5]) & set(np.argsort(-ti)[:5])) / 5 for ta, ti in zip(tags["audio"], tags["image"])]
    audio_pairs = _cos(a, a)[~np.eye(len(a), dtype=bool)]
    fields = {"model": args.model, "clips": len(picked), "resolution": resolution, "input_mean_abs_err": float(np.mean(input_err)),
              "cosine_own_median": float(np.median(own)), "cosine_own_min": float(own.min()),
              "cosine_nearest_other_median": float(np.median(others)),
              "own_clip_is_nearest": float(np.mean(own > others)),
              "cosine_audio_between_clips_median": float(np.median(audio_pairs)),
              "top5_tag_overlap": float(np.mean(top)), "workspace": str(ws)}
    summary = (f"musicnn image ({resolution} px) vs audio path ({args.model}, {len(picked)} clips): input mean |Δ| "
               f"{fields['input_mean_abs_err']:.3f}; embedding cosine median {fields['cosine_own_median']:.3f} "
               f"(min {fields['cosine_own_min']:.3f}; nearest other clip {fields['cosine_nearest_other_median']:.3f}; "
               f"own clip nearest for {100 * fields['own_clip_is_nearest']:.0f}%); top-5 tags shared "
               f"{100 * fields['top5_tag_overlap']:.0f}%")
    bench_common.report("musicnn_agreement", fields, summary, record=not args.no_record)


if __name__ == "__main__":
    main()
