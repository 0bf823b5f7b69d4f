"""Memorization check: how close is each fake to its nearest real training image of the same class?

For every fake of a class we find the nearest real image among that class's *train and val* images (never test)
under two distances:

* pixel: root-mean-square difference of the gray images scaled to [0, 1] (0 = identical);
* feature: Euclidean distance between embeddings of ``stylegan_ada.metrics.get_feature_extractor`` (the FID
  extractor: Inception-v3 when its weights are on disk, else the documented offline one).

Raw distances mean little on their own, so each is divided by a per-class yardstick: the median distance from a real
image to its nearest *other* real image (leave-one-out). A fake is flagged as a **near-copy** when either ratio is
below ``threshold`` (default 0.5: the fake is less than half as far from a training image as two distinct training
images typically are from each other). Small-data GANs that memorize their training set produce ratios near 0.
"""
from __future__ import annotations

import csv
import io
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from augment.errors import UserError, user_device, warn
from augment.io_utils import atomic_dir, atomic_write_bytes, atomic_write_json, atomic_write_text
from augment.output_guard import check_location, files_only, source_dirs
from augment.provenance import run_record
from augment.synthetic import NOVELTY_DIR, NOVELTY_FILES, FakeRow, read_manifest
from augment.workspace import Workspace
from augment.workspace_lock import workspace_lock

DEFAULT_THRESHOLD = 0.5
REAL_SPLITS = ("train", "val")         # what the GAN may have seen; the test split is never read
MEASURES = ("pixel", "feature")


@dataclass
class NoveltyOptions:
    classes: list[str] | None = None
    threshold: float = DEFAULT_THRESHOLD
    k: int = 8
    features: str = "auto"            # extractor name for get_feature_extractor, or "none" (pixel distance only)
    device: str | None = None
    batch: int = 64

    def check(self) -> None:
        if not 0 < self.threshold < 10:
            raise UserError(f"--threshold must be a ratio in (0, 10), got {self.threshold}")
        if self.k < 1:
            raise UserError(f"--k must be >= 1, got {self.k}")
        if self.batch < 1:
            raise UserError(f"--batch must be >= 1, got {self.batch}")


@dataclass
class Nearest:
    """One distance measure for one class."""
    fake_nn: np.ndarray        # (n,) distance of each fake to its nearest real
    fake_idx: np.ndarray       # (n,) index of that real
    real_nn: np.ndarray        # (m,) distance of each real to its nearest other real

    @property
    def yardstick(self) -> float:
        """Median real-to-real nearest-neighbour distance (exact duplicates among the reals ignored); NaN if none."""
        positive = self.real_nn[self.real_nn > 0]
        return float(np.median(positive)) if positive.size else float("nan")

    @property
    def ratio(self) -> np.ndarray:
        return self.fake_nn / self.yardstick


@dataclass
class ClassNovelty:
    cls: str
    fakes: list[FakeRow]
    reals: list[Path]
    measures: dict[str, Nearest]
    near_copy: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    pairs: list[np.ndarray] = field(default_factory=list)   # closest fakes and their reals, interleaved


# ---------------------------------------------------------------------------------------------------- distances
def nearest(queries: np.ndarray, keys: np.ndarray, *, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance from each row of ``queries`` to its nearest row of ``keys`` (and that row's index).

    ``exclude_self``: queries are the keys; a row may not be its own neighbour (leave-one-out).
    """
    import torch

    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float64))
    k = torch.from_numpy(np.ascontiguousarray(keys, dtype=np.float64))
    if q.shape[0] == 0 or k.shape[0] - int(exclude_self) <= 0:
        return np.full(q.shape[0], np.nan), np.full(q.shape[0], -1)
    d = torch.cdist(q, k)
    if exclude_self:
        d.fill_diagonal_(float("inf"))
    dist, idx = d.min(dim=1)
    return dist.numpy(), idx.numpy()


def load_gray(paths: Sequence[Path]) -> np.ndarray:
    """Images as uint8 gray (N, H, W): the mean of R, G, B (the workspace stores three equal channels)."""
    from PIL import Image

    out = []
    for p in paths:
        try:
            with Image.open(p) as im:
                out.append(np.asarray(im.convert("RGB"), dtype=np.float32).mean(axis=2))
        except OSError as exc:
            raise UserError(f"cannot read image {p} ({exc}); re-run `augment generate` or `augment prepare`") from exc
    shapes = {a.shape for a in out}
    if len(shapes) > 1:
        raise UserError(f"images of different sizes {sorted(shapes)}; fakes and reals must share the workspace size")
    return np.rint(np.stack(out)).astype(np.uint8) if out else np.zeros((0, 1, 1), np.uint8)


def pixel_vectors(gray: np.ndarray) -> np.ndarray:
    """Flattened gray images scaled so Euclidean distance = RMS pixel difference in [0, 1] units."""
    n = gray.shape[0]
    d = gray[0].size if n else 1
    return gray.reshape(n, -1).astype(np.float64) / (255.0 * np.sqrt(d))


def measure_class(fakes: np.ndarray, reals: np.ndarray, extractor: Any | None, *, batch: int,
                  progress: bool = False) -> dict[str, Nearest]:
    """Nearest-real distances of every fake and the real-to-real yardstick, per measure."""
    out = {}
    spaces = {"pixel": (pixel_vectors(fakes), pixel_vectors(reals))}
    if extractor is not None:
        from stylegan_ada.metrics import extract_features

        spaces["feature"] = tuple(extract_features(extractor, imgs[:, None], batch=batch, progress=progress,
                                                   desc=f"features ({what})")
                                  for what, imgs in (("fakes", fakes), ("reals", reals)))
    for name, (f, r) in spaces.items():
        fake_nn, fake_idx = nearest(f, r)
        real_nn, _ = nearest(r, r, exclude_self=True)
        out[name] = Nearest(fake_nn, fake_idx, real_nn)
    return out


def flag_near_copies(measures: dict[str, Nearest], threshold: float) -> np.ndarray:
    """True where any measure's ratio is below ``threshold`` (NaN ratios never flag)."""
    n = next(iter(measures.values())).fake_nn.shape[0]
    flags = np.zeros(n, dtype=bool)
    for m in measures.values():
        with np.errstate(invalid="ignore", divide="ignore"):
            flags |= np.nan_to_num(m.ratio, nan=np.inf) < threshold
    return flags


# ---------------------------------------------------------------------------------------------------- driver
@dataclass
class NoveltyReport:
    out: Path
    classes: list[ClassNovelty]
    threshold: float
    extractor: str
    seconds: float

    @property
    def n_fakes(self) -> int:
        return sum(len(c.fakes) for c in self.classes)

    @property
    def n_near_copies(self) -> int:
        return int(sum(c.near_copy.sum() for c in self.classes))

    def line(self) -> str:
        reals = sum(len(c.reals) for c in self.classes)
        return (f"novelty: {self.n_fakes} fakes of {len(self.classes)} class(es) checked against {reals} real "
                f"train/val images in {self.seconds:.1f} s; {self.n_near_copies} near-copies (distance < "
                f"{self.threshold:g} x median real-to-real) -> {self.out}")


def _get_extractor(name: str, device: str) -> tuple[Any | None, str]:
    if name == "none":
        return None, "none"
    from stylegan_ada.metrics import get_feature_extractor

    try:
        extractor = get_feature_extractor(name, device=device)
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(f"--features {name}: {exc}; or use --features none for the pixel distance only") from exc
    return extractor, str(getattr(extractor, "name", name))


def check_novelty(ws: Workspace, folder: str | Path, opts: NoveltyOptions, *, progress: bool = True,
                  command: list[str] | None = None) -> NoveltyReport:
    """Measure every fake of ``folder`` against the real train/val images and write ``folder/_novelty/``."""
    opts.check()
    device = user_device(opts.device)
    folder = check_location(folder, root=ws.root, sources=source_dirs(ws.config), option="--synthetic")
    with workspace_lock(ws.root, "augment check-novelty"):
        return _check_novelty(ws, folder, opts, device, progress=progress, command=command)


def _check_novelty(ws: Workspace, folder: Path, opts: NoveltyOptions, device: str, *, progress: bool,
                   command: list[str] | None) -> NoveltyReport:
    from tqdm import tqdm

    rows = read_manifest(folder)
    out = folder / NOVELTY_DIR
    if out.exists() and not files_only(out, NOVELTY_FILES):
        raise UserError(f"{out} holds files `augment check-novelty` did not write; it is never replaced: move it "
                        "away, then run the check again")
    present = [c for c in ws.classes if any(r.cls == c for r in rows)]
    classes = [ws.check_class(c) for c in opts.classes] if opts.classes else present
    missing = [c for c in classes if c not in present]
    if missing:
        raise UserError(f"no fakes of class {missing[0]!r} in {folder}; run `augment generate --classes {missing[0]}`")
    t0 = time.perf_counter()
    extractor, extractor_name = _get_extractor(opts.features, device)
    results = []
    for cls in tqdm(classes, desc="novelty", unit="class", file=sys.stderr, disable=not progress, leave=False):
        fakes = [r for r in rows if r.cls == cls]
        reals = ws.images(REAL_SPLITS, cls)
        if not reals:
            raise UserError(f"class {cls!r} has no train/val images to compare against; check the workspace")
        fake_gray, real_gray = load_gray([folder / r.file for r in fakes]), load_gray(reals)
        if fake_gray.shape[1:] != real_gray.shape[1:]:
            raise UserError(f"fakes of class {cls!r} are {fake_gray.shape[1:]} but the real images are "
                            f"{real_gray.shape[1:]}; regenerate with `augment generate --force`")
        measures = measure_class(fake_gray, real_gray, extractor, batch=opts.batch, progress=progress)
        res = ClassNovelty(cls, fakes, reals, measures, flag_near_copies(measures, opts.threshold),
                           closest_pairs(fake_gray, real_gray, measures["pixel"], opts.k))
        results.append(res)
        _warn_class(res, opts.threshold)
    report = NoveltyReport(out, results, opts.threshold, extractor_name, time.perf_counter() - t0)
    with atomic_dir(report.out) as tmp:
        write_report(tmp, ws, report, opts, command)
    return report


def _warn_class(res: ClassNovelty, threshold: float) -> None:
    if len(res.reals) < 2:
        warn(f"class {res.cls} has {len(res.reals)} real train/val image; no real-to-real distance to calibrate the "
             "near-copy threshold, so nothing is flagged")
        return
    n, k = len(res.fakes), int(res.near_copy.sum())
    if k:
        warn(f"class {res.cls}: {k} of {n} fakes ({100 * k / n:.0f}%) are near-copies of training images "
             f"(distance < {threshold:g} x the median real-to-real distance) — the GAN is memorizing; see "
             f"closest-{res.cls}.png. Use an earlier snapshot (--pick best), stronger augmentation or more data")


# ---------------------------------------------------------------------------------------------------- report
def _quantiles(a: np.ndarray) -> dict[str, float | None]:
    a = a[np.isfinite(a)]
    if not a.size:
        return {k: None for k in ("min", "p05", "median", "p95", "max")}
    q = np.quantile(a, [0, 0.05, 0.5, 0.95, 1])
    return dict(zip(("min", "p05", "median", "p95", "max"), (float(v) for v in q)))


def class_summary(res: ClassNovelty, threshold: float) -> dict[str, Any]:
    out: dict[str, Any] = {"fakes": len(res.fakes), "reals": len(res.reals),
                           "near_copies": int(res.near_copy.sum()),
                           "near_copy_fraction": float(res.near_copy.mean()) if len(res.fakes) else 0.0}
    for name, m in res.measures.items():
        out[name] = {"yardstick_median_real_to_real": m.yardstick, "threshold_distance": threshold * m.yardstick,
                     "fake_to_nearest_real": _quantiles(m.fake_nn), "real_to_nearest_real": _quantiles(m.real_nn),
                     "ratio": _quantiles(m.ratio)}
    return out


def csv_text(ws: Workspace, report: NoveltyReport) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", "class", "seed"] + [f"{m}_{c}" for m in MEASURES for c in ("nearest_real", "distance", "ratio")]
               + ["near_copy"])
    for res in report.classes:
        for i, row in enumerate(res.fakes):
            cells: list[Any] = [row.file, row.cls, row.seed]
            for name in MEASURES:
                m = res.measures.get(name)
                if m is None or m.fake_idx[i] < 0:
                    cells += ["", "", ""]
                else:
                    real = res.reals[int(m.fake_idx[i])].relative_to(ws.root).as_posix()
                    cells += [real, f"{m.fake_nn[i]:.6g}", f"{m.ratio[i]:.6g}"]
            w.writerow(cells + [int(res.near_copy[i])])
    return buf.getvalue()


def write_report(folder: Path, ws: Workspace, report: NoveltyReport, opts: NoveltyOptions,
                 command: list[str] | None) -> None:
    """novelty.json, novelty.csv, novelty-hist.png and closest-<class>.png into ``folder``."""
    summary = {
        "definition": (f"near-copy: distance to the nearest real train/val image of the class < {report.threshold:g} x "
                       "the median real-to-real nearest-neighbour distance of that class, for the pixel (RMS in [0,1]) "
                       "or the feature distance"),
        "threshold": report.threshold, "extractor": report.extractor, "real_splits": list(REAL_SPLITS),
        "fakes": report.n_fakes, "near_copies": report.n_near_copies,
        "classes": {res.cls: class_summary(res, report.threshold) for res in report.classes},
        "run": run_record({"threshold": opts.threshold, "k": opts.k, "features": opts.features,
                           "classes": [c.cls for c in report.classes]}, command=command),
    }
    atomic_write_json(folder / "novelty.json", summary)
    atomic_write_text(folder / "novelty.csv", csv_text(ws, report))
    atomic_write_bytes(folder / "novelty-hist.png", histogram_png(report))
    from augment.png_output import save_gray_grid

    for res in report.classes:
        save_gray_grid(folder / f"closest-{res.cls}.png", res.pairs, 2)


def closest_pairs(fakes: np.ndarray, reals: np.ndarray, pixel: Nearest, k: int) -> list[np.ndarray]:
    """The k fakes closest to a real image (pixel distance), interleaved with their nearest reals: f0, r0, f1, r1..."""
    order = np.argsort(pixel.fake_nn, kind="stable")[:k]
    return [im for i in order for im in (fakes[i], reals[int(pixel.fake_idx[i])])]


def histogram_png(report: NoveltyReport) -> bytes:
    """One row per class, one column per measure: fake→nearest-real vs real→nearest-other-real distances."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = [n for n in MEASURES if any(n in r.measures for r in report.classes)]
    fig = Figure(figsize=(5 * len(names), 2.6 * len(report.classes)), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(report.classes), len(names), squeeze=False)
    for row, res in enumerate(report.classes):
        for col, name in enumerate(names):
            ax, m = axes[row][col], res.measures.get(name)
            if m is None:
                ax.set_axis_off()
                continue
            fin = [a[np.isfinite(a)] for a in (m.fake_nn, m.real_nn)]
            top = max([float(a.max()) for a in fin if a.size] + [report.threshold * np.nan_to_num(m.yardstick), 1e-6])
            bins = np.linspace(0.0, top * 1.05, 31)
            ax.hist(fin[0], bins=bins, alpha=0.6, density=True, label="fake → nearest real")
            ax.hist(fin[1], bins=bins, alpha=0.6, density=True, label="real → nearest other real")
            if np.isfinite(m.yardstick):
                ax.axvline(report.threshold * m.yardstick, color="k", ls="--", label="near-copy threshold")
            ax.set_title(f"{res.cls}: {name} distance ({int(res.near_copy.sum())}/{len(res.fakes)} near-copies)",
                         fontsize=9)
            ax.legend(fontsize=7)
    fig.subplots_adjust(left=0.08, right=0.97, top=1 - 0.3 / len(report.classes), bottom=0.25 / len(report.classes),
                        hspace=0.6, wspace=0.25)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
