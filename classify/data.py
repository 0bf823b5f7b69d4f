"""Which images a classifier trains, validates and tests on, and how they are fed to it.

Real images come from the workspace's split manifest; synthetic ones from ``WORKSPACE/synthetic/<class>/*.png``
(written by ``augment generate``). Each image is decoded once, resized to the architecture's input size and kept
in memory as uint8 (the data sets are small), then normalised and optionally augmented on the fly.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from augment.errors import UserError
from augment.workspace import Workspace

TRAIN_SOURCES = ("real", "synthetic", "real+synthetic", "augmented", "real+augmented", "real+synthetic+augmented")
SYNTHETIC_VAL_FRACTION = 0.2        # the thesis' 800 train / 200 val fakes per class
SYNTHETIC_SPLIT_SEED = 42

Sample = tuple[Path, int]


@dataclass
class DataSplits:
    """Labelled image lists for one evaluation, plus what is needed to record where they came from."""

    train: list[Sample]
    val: list[Sample]
    test: list[Sample]
    classes: list[str]
    info: dict[str, Any] = field(default_factory=dict)
    checked: dict[Path, str] = field(default_factory=dict)  # train/val image -> sha256 the leak guard read
    clips: dict[str, list[str]] = field(default_factory=dict)  # "val"/"test": clip id per sample (clip_scores)


# ------------------------------------------------------------------ synthetic images
def _synthetic_class_dirs(ws: Workspace) -> dict[str, Path]:
    root = ws.synthetic_dir
    hint = "run `augment generate --n 1000` first (or choose `--train real`)"
    if not root.is_dir():
        raise UserError(f"no synthetic images: {root} does not exist; {hint}")
    dirs = {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith((".", "_"))}
    extra = sorted(set(dirs) - set(ws.classes))
    if extra:
        raise UserError(f"class mismatch: {root} has folder(s) {', '.join(extra)} that are not classes of this "
                        f"workspace ({', '.join(ws.classes)}); remove them or generate into the right workspace")
    empty = [c for c in ws.classes if c not in dirs or not any(dirs[c].glob("*.png"))]
    if empty:
        from augment.synthetic import fill_command
        raise UserError(f"no synthetic PNGs for class(es) {', '.join(empty)} in {root}; "
                        f"{fill_command(ws, empty[0])} (every class needs fakes)")
    return dirs


def _check_synthetic_manifest(ws: Workspace) -> str | None:
    """Cross-check ``synthetic/manifest.csv`` (when present) against the workspace classes; return its sha256."""
    from augment.io_utils import sha256_file
    from augment.synthetic import MANIFEST_NAME, read_manifest

    path = ws.synthetic_dir / MANIFEST_NAME
    if not path.is_file():
        return None
    unknown = sorted({row.cls for row in read_manifest(ws.synthetic_dir)} - set(ws.classes))
    if unknown:
        raise UserError(f"class mismatch: {path} lists class(es) {', '.join(unknown)} that this workspace lacks "
                        f"({', '.join(ws.classes)}); the fakes were generated for another data set")
    return sha256_file(path)


def synthetic_splits(ws: Workspace, per_class: int) -> tuple[list[Sample], list[Sample], dict[str, Any]]:
    """Up to ``per_class`` fakes per class (first by file name), split 80/20 train/val with a fixed seed."""
    if per_class < 2:
        raise UserError(f"--synthetic-per-class must be at least 2, got {per_class}")
    dirs = _synthetic_class_dirs(ws)
    manifest_sha = _check_synthetic_manifest(ws)
    train, val, used = split_generated(ws, dirs, per_class, "synthetic")
    return train, val, {"synthetic_manifest_sha256": manifest_sha, "synthetic_used": used}


def split_generated(ws: Workspace, dirs: dict[str, Path], per_class: int,
                    kind: str) -> tuple[list[Sample], list[Sample], dict[str, dict[str, int]]]:
    """The 80/20 rule shared by synthetic/ and augmented/: first ``per_class`` files by name, fixed-seed val draw."""
    train: list[Sample] = []
    val: list[Sample] = []
    used: dict[str, dict[str, int]] = {}
    for label, cls in enumerate(ws.classes):
        files = sorted(dirs[cls].glob("*.png"))
        if len(files) < per_class:
            warnings.warn(f"only {len(files)} {kind} images for class {cls} (asked for {per_class}); using all, "
                          "80/20 train/val (with real data, only that 80 % trains: val is real)", stacklevel=2)
        files = files[:per_class]
        order = np.random.default_rng(SYNTHETIC_SPLIT_SEED).permutation(len(files))
        n_val = max(1, int(round(len(files) * SYNTHETIC_VAL_FRACTION))) if len(files) > 1 else 0
        val_idx = set(order[:n_val].tolist())
        for i, f in enumerate(files):
            (val if i in val_idx else train).append((f, label))
        used[cls] = {"train": len(files) - n_val, "val": n_val}
    return train, val, used


def augmented_splits(ws: Workspace, per_class: int) -> tuple[list[Sample], list[Sample], dict[str, Any]]:
    """``augmented/`` (``augment classic``) under synthetic/'s rules; refuses copies rendered from a test clip."""
    from augment.classic import FOLDER_NAME, MANIFEST_NAME, read_manifest
    from augment.io_utils import sha256_file

    if per_class < 2:
        raise UserError(f"--synthetic-per-class must be at least 2, got {per_class}")
    root = ws.root / FOLDER_NAME
    if not root.is_dir():
        raise UserError(f"no augmented images: {root} does not exist; run `augment classic --n 1000` first "
                        "(or choose `--train real`)")
    rows = read_manifest(root)
    unknown = sorted({r["class"] for r in rows} - set(ws.classes))
    if unknown:
        raise UserError(f"class mismatch: {root / MANIFEST_NAME} lists class(es) {', '.join(unknown)} that this "
                        f"workspace lacks ({', '.join(ws.classes)}); the copies were made for another data set")
    test_sources = {r.source_sha256 for r in ws.rows() if r.split == "test"}
    leaked = [r["file"] for r in rows if r["source_sha256"] in test_sources]
    if leaked:
        raise UserError(f"augmented image {leaked[0]} was rendered from a test clip; the test split is never used "
                        "for training — re-run `augment classic --force`")
    dirs = {c: root / c for c in ws.classes}
    empty = [c for c in ws.classes if not any(dirs[c].glob("*.png"))]
    if empty:
        raise UserError(f"no augmented PNGs for class(es) {', '.join(empty)} in {root}; run `augment classic --n 1000`")
    train, val, used = split_generated(ws, dirs, per_class, "augmented")
    return train, val, {"augmented_manifest_sha256": sha256_file(root / MANIFEST_NAME), "augmented_used": used}


def without_val_sources(ws: Workspace, samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """(kept, left out): copies rendered from a real val clip are left out of training, so the real val split that
    selects the epoch stays unseen (augment classic renders from train+val audio)."""
    from augment.classic import FOLDER_NAME, read_manifest

    root = ws.root / FOLDER_NAME
    val_sources = {r.source_sha256 for r in ws.rows() if r.split == "val"}
    from_val = {(root / r["file"]).resolve() for r in read_manifest(root) if r["source_sha256"] in val_sources}
    kept = [s for s in samples if s[0].resolve() not in from_val]
    return kept, [s for s in samples if s[0].resolve() in from_val]


def build_splits(ws: Workspace, train: str, synthetic_per_class: int = 1000) -> DataSplits:
    """Train/val/test image lists for ``--train`` (see TRAIN_SOURCES); the test split is always real.

    Generated images (synthetic/, augmented/) are split 80/20 train/val per class. An arm with real data trains on
    the real train split plus the generated train parts and keeps the real val split (augmented copies of a val clip
    are then left out of training); one without uses the generated val parts.
    Refuses (UserError) when any train or val image is, or equals, a test image.
    """
    if train not in TRAIN_SOURCES:
        raise UserError(f"--train must be one of {', '.join(TRAIN_SOURCES)}, got {train!r}")
    real_train = ws.labelled_images("train")
    real_val = ws.labelled_images("val")
    test = ws.labelled_images("test")
    info: dict[str, Any] = {"splits_sha256": ws.config["splits"].get("sha256"),
                            "test_sha256": ws.config["splits"].get("test_sha256")}
    parts = train.split("+")
    unused: list[Sample] = []
    tr, va = (list(real_train), list(real_val)) if "real" in parts else ([], [])
    for kind, make in (("synthetic", synthetic_splits), ("augmented", augmented_splits)):
        if kind in parts:
            gen_train, gen_val, gen_info = make(ws, synthetic_per_class)
            info.update(gen_info)
            if kind == "augmented" and "real" in parts:
                gen_train, left_out = without_val_sources(ws, gen_train)
                info["augmented_left_out_val_sources"] = len(left_out)
                unused.extend(left_out)
            tr += gen_train
            # with real data in the arm the real val split selects the epoch; the generated val part is left out
            (unused if "real" in parts else va).extend(gen_val)
    if not tr or not va or not test:
        raise UserError(f"empty split (train {len(tr)}, val {len(va)}, test {len(test)} images); "
                        "re-run `augment prepare` with more data")
    # every selected fake is checked, even the ones real+synthetic leaves out: a test file among them is a red flag
    checked = ws.guard_training_inputs([p for p, _ in tr + va + unused], what="training/validation image")
    from classify.clip_scores import clip_ids

    return DataSplits(list(tr), list(va), list(test), ws.classes, info, checked=checked.digests(),
                      clips={"val": clip_ids(ws, va), "test": clip_ids(ws, test)})


# ------------------------------------------------------------------ decoding and feeding
def check_images(samples: Sequence[Sample], resolution: int) -> int:
    """Warn once if any image is not RGB ``resolution``²; they are converted and resized. Returns the count."""
    from PIL import Image

    odd: list[str] = []
    for path, _ in samples:
        try:
            with Image.open(path) as im:
                if im.mode != "RGB" or im.size != (resolution, resolution):
                    odd.append(f"{path.name} ({im.mode} {im.size[0]}x{im.size[1]})")
        except OSError as exc:
            raise UserError(f"cannot read image {path} ({exc}); regenerate or remove it") from exc
    if odd:
        warnings.warn(f"{len(odd)} image(s) are not RGB {resolution}x{resolution} (e.g. {odd[0]}); "
                      "converting to RGB and resizing them", stacklevel=2)
    return len(odd)


class ImageStore:
    """Decoded images at one input size, as uint8 tensors, shared by every run that uses that size.

    ``checked`` (DataSplits.checked): images decoded only from the bytes the leak guard checked.
    """

    def __init__(self, size: int, checked: dict[Path, str] | None = None):
        self.size = size
        self.checked = checked or {}
        self._cache: dict[Path, Any] = {}

    def get(self, path: Path) -> Any:
        img = self._cache.get(path)
        if img is None:
            img = self._load(path)
            self._cache[path] = img
        return img

    def _load(self, path: Path) -> Any:
        import io

        import torch
        from PIL import Image

        from augment.leak_guard import read_verified

        digest = self.checked.get(path)
        with Image.open(io.BytesIO(read_verified(path, digest)) if digest else path) as im:
            im = im.convert("RGB")
            if im.size != (self.size, self.size):
                im = im.resize((self.size, self.size), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
        # Spectrogram images repeat one channel three times: keep one (a third of the memory).
        if np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
            arr = arr[..., :1]
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


@dataclass(frozen=True)
class SpecAugment:
    """Training-time augmentations for spectrogram images (off by default; presets in classify.image_aug).

    ``time_shift``: roll along the time (width) axis by up to this fraction of the width.
    ``masks``: number of frequency bands (rows) and of time spans (columns) set to the mean, each up to
    ``mask_fraction`` of the image (SpecAugment, Park et al. 2019).
    """

    time_shift: float = 0.0
    masks: int = 0
    mask_fraction: float = 0.1

    @property
    def active(self) -> bool:
        return self.time_shift > 0 or self.masks > 0

    def __call__(self, x: Any) -> Any:
        import torch

        w = x.shape[2]
        if self.time_shift > 0:
            max_shift = int(round(self.time_shift * w))
            if max_shift > 0:
                x = torch.roll(x, int(torch.randint(-max_shift, max_shift + 1, ()).item()), dims=2)
        if self.masks > 0:
            from classify.image_aug import mask_span

            x = x.clone()
            for _ in range(self.masks):
                for axis in (1, 2):
                    mask_span(x, axis, self.mask_fraction)      # 0 after normalisation = the mean
        return x


class ImageDataset:
    """A torch-style dataset over labelled image paths: resize (via the store), scale, normalise, augment."""

    def __init__(self, samples: Sequence[Sample], store: ImageStore, mean: Sequence[float], std: Sequence[float],
                 augment: Any = None, pixel_augment: Any = None):
        """``pixel_augment`` acts on the [0, 1] image before normalisation, ``augment`` on the normalised one."""
        import torch

        self.samples = list(samples)
        self.store = store
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)
        self.augment = augment if augment is not None and augment.active else None
        self.pixel_augment = pixel_augment if pixel_augment is not None and pixel_augment.active else None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        path, label = self.samples[i]
        x = self.store.get(path).float().div_(255.0).expand(3, -1, -1)
        if self.pixel_augment is not None:
            x = self.pixel_augment(x)
        x = (x - self.mean) / self.std
        if self.augment is not None:
            x = self.augment(x)
        return x, label

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.samples]
