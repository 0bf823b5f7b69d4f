"""Classic audio augmentation (``augment classic``): seeded audiomentations copies of each class's train+val audio.

Every copy is rendered from one source clip (round-robin over the class's train+val clips, so each source is used
equally often) through a chain of audiomentations transforms, then through the workspace's own mel mapping
(decode → mel dB → grey PNG, exactly as ``augment prepare``). Layout, next to ``synthetic/``::

    augmented/<class>/aug<NNNNNN>.png   one copy; NNNNNN is the copy number within the class
    augmented/manifest.csv              file,class,source,source_sha256,transforms,seed,sha256
    augmented/classic.json              options, workspace identity, code version, environment

``classify eval --train real+augmented`` uses it exactly as synthetic/ is used.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from augment.errors import UserError
from augment.workspace import SplitRow, Workspace

FOLDER_NAME = "augmented"
MANIFEST_NAME = "manifest.csv"
RECORD_NAME = "classic.json"
RECORD_FORMAT = "augment-classic-v1"
MANIFEST_FIELDS = ("file", "class", "source", "source_sha256", "transforms", "seed", "sha256")
DEFAULT_CHAIN = ("pitch_shift", "time_stretch", "gain", "noise")
DEFAULT_P = 0.5

# name -> (audiomentations class, fixed keyword arguments); the ranges are the documented defaults of the command
TRANSFORMS: dict[str, tuple[str, dict[str, Any]]] = {
    "pitch_shift": ("PitchShift", {"min_semitones": -2.0, "max_semitones": 2.0}),
    "time_stretch": ("TimeStretch", {"min_rate": 0.9, "max_rate": 1.1, "leave_length_unchanged": True}),
    "gain": ("Gain", {"min_gain_db": -6.0, "max_gain_db": 6.0}),
    "noise": ("AddGaussianNoise", {"min_amplitude": 0.001, "max_amplitude": 0.015}),
}


@dataclass
class ClassicOptions:
    n: int = 1000                                   # copies per class
    chain: list[str] = field(default_factory=lambda: list(DEFAULT_CHAIN))
    p: dict[str, float] = field(default_factory=dict)   # per-transform probability (DEFAULT_P when absent)
    seed: int = 0
    audio_dir: str | None = None
    force: bool = False
    jobs: int = 1                                   # worker processes (copies are seeded one by one: same bytes)

    def probability(self, name: str) -> float:
        return float(self.p.get(name, DEFAULT_P))

    def check(self) -> None:
        if self.jobs < 1:
            raise UserError(f"--jobs must be at least 1, got {self.jobs}")
        if self.n < 1:
            raise UserError(f"--n must be at least 1, got {self.n}")
        unknown = [c for c in self.chain if c not in TRANSFORMS]
        if not self.chain or unknown:
            raise UserError(f"unknown transform {', '.join(unknown) or '(empty chain)'} in --chain; choose from "
                            f"{', '.join(TRANSFORMS)}")
        bad = {k: v for k, v in self.p.items() if k not in self.chain or not 0.0 <= v <= 1.0}
        if bad:
            raise UserError(f"--p {bad} must name transforms of --chain with probabilities in [0, 1]")


def parse_probabilities(text: str | None, chain: Sequence[str]) -> dict[str, float]:
    """'0.7' (every transform) or 'gain=0.3,noise=1' -> {name: p}; UserError otherwise."""
    if not text:
        return {}
    try:
        if "=" not in text:
            return {name: float(text) for name in chain}
        out = {}
        for item in text.split(","):
            name, value = item.split("=", 1)
            out[name.strip()] = float(value)
        return out
    except ValueError:
        raise UserError(f"--p must be a probability (0.5) or name=p pairs (gain=0.3,noise=1), got {text!r}") from None


def copy_seed(seed: int, class_index: int, copy: int) -> int:
    """The seed of one copy: independent of how many copies are made or which classes are rendered."""
    return int(np.random.SeedSequence([seed, class_index, copy]).generate_state(1)[0])


def build_chain(opts: ClassicOptions) -> Any:
    import audiomentations

    transforms = []
    for name in opts.chain:
        cls_name, kwargs = TRANSFORMS[name]
        transforms.append(getattr(audiomentations, cls_name)(**kwargs, p=opts.probability(name)))
    return audiomentations.Compose(transforms, p=1.0, shuffle=False)


def augment_samples(chain: Any, names: Sequence[str], samples: np.ndarray, sr: int,
                    seed: int) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """One seeded pass of ``chain``; returns the audio and which transforms were applied with which parameters."""
    # audiomentations draws from the global `random` and NumPy generators: seed both for this copy
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    out = chain(samples=samples.astype(np.float32, copy=False), sample_rate=sr)
    applied = []
    for name, t in zip(names, chain.transforms):
        if t.parameters.get("should_apply"):
            params = {k: round(float(v), 6) for k, v in t.parameters.items()
                      if k != "should_apply" and isinstance(v, (int, float, np.floating))}
            applied.append({"name": name, **params})
    return np.asarray(out, dtype=np.float32), applied


IMAGE_WORKSPACE_REFUSAL = ("this workspace was prepared from images and has no source audio; audio-level "
                           "augmentation needs audio — use the image-level arms instead (`classify eval "
                           "--aug-preset thesis`, `--aug-preset specaugment`, `--mixup 0.2`)")


def audio_root(ws: Workspace, override: str | None, refusal: str = IMAGE_WORKSPACE_REFUSAL) -> Path:
    """The workspace's source audio folder (--audio-dir or the one recorded by prepare); ``refusal`` (a UserError)
    for a workspace prepared from images."""
    if ws.config.get("kind") != "audio":
        raise UserError(refusal)
    root = override or ((ws.config.get("dataset") or {}).get("options") or {}).get("audio_dir")
    if not root:
        raise UserError("augment.json records no audio folder; pass --audio-dir DIR (the folder given to prepare)")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise UserError(f"source audio folder {path} not found; pass --audio-dir DIR (the folder given to "
                        "`augment prepare --audio-dir`)")
    return path.resolve()


def source_rows(ws: Workspace) -> dict[str, list[SplitRow]]:
    """Train+val rows per class (never test), each class non-empty, leak-guarded."""
    rows = [r for r in ws.rows() if r.split in ("train", "val")]
    ws.guard_training_inputs([ws.root / r.image for r in rows], what="augmentation source clip")
    by_class = {c: sorted((r for r in rows if r.cls == c), key=lambda r: r.image) for c in ws.classes}
    empty = [c for c, rs in by_class.items() if not rs]
    if empty:
        raise UserError(f"class(es) {', '.join(empty)} have no train/val clips to augment")
    return by_class


def _load_verified(path: Path, expected_sha256: str, mel: Any) -> np.ndarray:
    """Decode a source clip from bytes that were checked against the hash prepare recorded."""
    import hashlib
    import tempfile

    from augment.audio.decode import AudioError, load_clip

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"source audio {path} is missing or unreadable ({exc.strerror or exc}); pass the right "
                        "--audio-dir") from exc
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise UserError(f"source audio {path} changed since `augment prepare` (sha256 mismatch); restore it or "
                        "re-prepare the workspace")
    # decode exactly the verified bytes (a copy in a private temp file keeps the decoder's format detection)
    with tempfile.TemporaryDirectory(prefix="augment-classic-") as tmp:
        local = Path(tmp) / path.name
        local.write_bytes(data)
        try:
            return load_clip(local, mel).samples
        except AudioError as exc:
            raise UserError(f"cannot decode source audio {path}: {exc}") from exc


def manifest_text(rows: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def read_manifest(folder: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of ``augmented/manifest.csv``; a one-line UserError when missing or malformed."""
    from augment.io_utils import read_csv_manifest

    return read_csv_manifest(Path(folder) / MANIFEST_NAME, MANIFEST_FIELDS, make="augment classic")


def check_output(folder: Path, force: bool) -> None:
    """Refuse to replace anything but an earlier ``augment classic`` output, and that one only with --force."""
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return
    record = folder / RECORD_NAME
    ours = False
    if folder.is_dir() and record.is_file():
        try:
            ours = json.loads(record.read_text(encoding="utf-8")).get("format") == RECORD_FORMAT
        except (OSError, ValueError, AttributeError):
            ours = False
    if not ours:
        raise UserError(f"{folder} exists but was not written by `augment classic`; move it away first "
                        "(--force only replaces an earlier `augment classic` output)")
    if not force:
        raise UserError(f"{folder} already holds augmented copies; pass --force to replace them")


@dataclass
class ClassicSummary:
    out: Path
    per_class: dict[str, int]
    seconds: float

    def line(self) -> str:
        n = sum(self.per_class.values())
        rate = n / self.seconds if self.seconds > 0 else float("inf")
        return (f"augmented {n} copies ({', '.join(f'{c} {k}' for c, k in self.per_class.items())}) in "
                f"{self.seconds:.1f} s ({rate:.2f} clips/s) → {self.out}")


def run_classic(ws: Workspace, opts: ClassicOptions, *, progress: bool = True,
                on_copy: Callable[[int], None] | None = None) -> ClassicSummary:
    """Render ``opts.n`` copies per class into ``WORKSPACE/augmented`` (atomically)."""
    import time

    from tqdm.auto import tqdm

    from augment.audio.mel import MelConfig
    from augment.io_utils import atomic_dir, atomic_write_bytes, atomic_write_json, atomic_write_text, sha256_bytes
    from augment.output_guard import archive_path
    from augment.provenance import run_record
    from augment.synthetic import workspace_identity

    t0 = time.time()
    opts.check()
    root = audio_root(ws, opts.audio_dir)
    out = ws.root / FOLDER_NAME
    check_output(out, opts.force)
    by_class = source_rows(ws)
    mel = MelConfig.from_dict(ws.config["mel"])
    audio = {r.source: _load_verified(root / r.source, r.source_sha256, mel)
             for rs in by_class.values() for r in rs}
    global _RENDER
    _RENDER = (build_chain(opts), opts, by_class, audio, mel, ws.resolution)
    jobs = [(ci, cls, k) for ci, cls in enumerate(ws.classes) for k in range(opts.n)]
    rows: list[dict[str, Any]] = []
    # --force never deletes: an earlier output (check_output allowed only ours) is moved to archive/
    archive_to = archive_path(ws.root, out.name) if out.is_dir() and any(out.iterdir()) else None
    with atomic_dir(out, archive_to=archive_to) as tmp, _pool(opts.jobs) as pool, \
            tqdm(total=len(jobs), desc="augment classic", unit="clip", disable=not progress) as bar:
        for row, png in pool(_render_copy, jobs):
            atomic_write_bytes(tmp / row["file"], png)
            rows.append({**row, "sha256": sha256_bytes(png)})
            bar.update(1)
            if on_copy is not None:
                on_copy(len(rows))
        atomic_write_text(tmp / MANIFEST_NAME, manifest_text(rows))
        config = {**asdict(opts), "p": {n: opts.probability(n) for n in opts.chain},
                  "transforms": {n: TRANSFORMS[n][1] for n in opts.chain}, "audio_dir": str(root)}
        atomic_write_json(tmp / RECORD_NAME, {"format": RECORD_FORMAT, "workspace": workspace_identity(ws),
                                              "per_class": {c: opts.n for c in ws.classes},
                                              **run_record(config, seeds={"seed": opts.seed})})
    return ClassicSummary(out, {c: opts.n for c in ws.classes}, time.time() - t0)


_RENDER: tuple | None = None        # (chain, options, sources per class, audio, mel, resolution); inherited by forks


def _render_copy(job: tuple[int, str, int]) -> tuple[dict[str, Any], bytes]:
    """Copy ``k`` of class ``cls``: its manifest row (without sha256) and PNG bytes."""
    from augment.audio.image_mapping import db_to_gray, gray_to_rgb_png
    from augment.audio.mel import mel_db

    assert _RENDER is not None
    chain, opts, by_class, audio, mel, resolution = _RENDER
    ci, cls, k = job
    src = by_class[cls][k % len(by_class[cls])]
    seed = copy_seed(opts.seed, ci, k)
    y, applied = augment_samples(chain, opts.chain, audio[src.source], mel.sr, seed)
    png = gray_to_rgb_png(db_to_gray(mel_db(y, mel), mel.top_db, resolution))
    return {"file": f"{cls}/aug{k:06d}.png", "class": cls, "source": src.source, "source_sha256": src.source_sha256,
            "transforms": json.dumps(applied, separators=(",", ":")), "seed": seed}, png


@contextlib.contextmanager
def _pool(jobs: int) -> Iterator[Callable]:
    """An ordered map over ``jobs`` forked processes (in-process for 1, or where fork is unavailable)."""
    import multiprocessing as mp

    if jobs <= 1 or "fork" not in mp.get_all_start_methods():
        yield map
        return
    with mp.get_context("fork").Pool(jobs, initializer=_single_thread) as pool:
        yield lambda fn, items: pool.imap(fn, items, chunksize=4)


def _single_thread() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
