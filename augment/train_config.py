"""`augment train` options -> a complete, validated training plan (new run or resume).

Defaults come in two sets: ``thesis`` (what the thesis used: cfg auto at the workspace resolution, mirror, ADA target
0.7, gamma 10, 1000 kimg, transfer from FFHQ-256, snapshot every 2 ticks = 8 kimg) and ``reference`` (the reference
train.py: target 0.6, the preset's gamma and kimg, no mirror, from scratch, snapshot every 50 ticks).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from augment.errors import UserError
from augment.workspace import Workspace

DEFAULT_SETS: dict[str, dict[str, Any]] = {
    "thesis": dict(kimg=1000.0, gamma=10.0, mirror=True, target=0.7, snap=2, from_="ffhq256"),
    "reference": dict(kimg=None, gamma=None, mirror=False, target=0.6, snap=50, from_="scratch"),
}
EXTRA_RUNS = "_extra"
TINY_DEFAULT_MAX_RES = 64
# Arguments that shape the networks: never changed on resume.
ARCHITECTURE_ARGS = ("cls", "cond", "cfg", "resolution", "freezed")
# Arguments that change what is trained: changing them on resume needs --force.
RESULT_ARGS = ("extra_images", "defaults", "batch", "batch_gpu", "gamma", "mirror", "aug", "augpipe", "target", "p",
               "seed", "from_")
OPTION_NAMES = {"cls": "--class", "from_": "--from", "extra_images": "--extra-images", "batch_gpu": "--batch-gpu",
                "tick_kimg": "--tick-kimg"}


def flag(name: str) -> str:
    return OPTION_NAMES.get(name, "--" + name.replace("_", "-"))


@dataclass
class TrainArgs:
    """The command-line arguments after defaults; stored as ``args`` in the run's config.json."""
    cls: str | None = None
    cond: bool = False
    extra_images: str | None = None
    cfg: str = "auto"
    defaults: str = "thesis"
    resolution: int | None = None
    kimg: float | None = None
    batch: int | None = None
    batch_gpu: int | None = None
    gamma: float | None = None
    mirror: bool | None = None
    aug: str = "ada"
    augpipe: str = "bgc"
    target: float | None = None
    p: float | None = None
    snap: int | None = None
    tick_kimg: float = 4.0
    metrics: str | None = None
    seed: int = 0
    freezed: int = 0
    from_: str | None = None
    gpus: int = 1
    workers: int = 4
    device: str = "auto"
    keep: int = 3

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainArgs":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class TrainPlan:
    """Everything `augment train` needs to start or continue a run."""
    ws: Workspace
    args: TrainArgs
    options: Any                          # stylegan_ada.training.options.TrainingOptions
    runs_root: Path
    run_dir: Path | None                  # None: a new run directory is created at launch
    desc: str
    images: list[Path]
    labels: list[int]                     # class index per image (conditional) or empty
    class_names: list[str]
    from_path: Path | None
    device: str
    data_hashes: dict[str, Any]
    resume: bool = False
    notes: list[str] = field(default_factory=list)
    transfer_source: Any = None           # the loaded --from networks (new runs), so they are read only once
    init_missing: str | None = None       # resume of a run without snapshots whose --from file is gone
    changes: list[str] = field(default_factory=list)  # what a resume changed

    def training_set_kwargs(self) -> dict[str, Any]:
        return {"workspace": str(self.ws.root), "class": self.args.cls, "cond": self.args.cond,
                "class_names": self.class_names, "resolution": self.options.G_kwargs["img_resolution"],
                "mirror": self.options.mirror, "num_images": len(self.images),
                "extra_images": self.args.extra_images}

    def summary(self) -> dict[str, Any]:
        """The resolved configuration shown by --dry-run and stored in config.json."""
        return {"args": asdict(self.args), "training": self.options.to_dict(),
                "run_dir": str(self.run_dir) if self.run_dir else None, "resume": self.resume,
                "num_images": len(self.images), "from_path": str(self.from_path) if self.from_path else None,
                "device": self.device, "training_set": self.training_set_kwargs()}


# ------------------------------------------------------------------------------------------------- validation
def _check_range(name: str, value: Any, lo: float, hi: float = math.inf, *, integer: bool = False) -> None:
    if value is None:
        return
    if integer and (not isinstance(value, int) or isinstance(value, bool)):
        raise UserError(f"{flag(name)} must be an integer, got {value!r}")
    if not isinstance(value, (int, float)) or not math.isfinite(value) or not lo <= value <= hi:
        bound = f"between {lo:g} and {hi:g}" if math.isfinite(hi) else f">= {lo:g}"
        raise UserError(f"{flag(name)} must be {bound}, got {value!r}")


def validate_args(a: TrainArgs) -> None:
    """One-line UserError for any out-of-range or contradictory argument."""
    if a.defaults not in DEFAULT_SETS:
        raise UserError(f"--defaults must be one of {', '.join(DEFAULT_SETS)}, got {a.defaults!r}")
    _check_range("kimg", a.kimg, 1e-3)
    _check_range("batch", a.batch, 1, integer=True)
    _check_range("batch_gpu", a.batch_gpu, 1, integer=True)
    _check_range("gamma", a.gamma, 0)
    _check_range("target", a.target, 0, 1)
    _check_range("p", a.p, 0, 1)
    _check_range("snap", a.snap, 1, integer=True)
    _check_range("tick_kimg", a.tick_kimg, 1e-3)
    _check_range("seed", a.seed, 0, 2 ** 32 - 1, integer=True)
    _check_range("freezed", a.freezed, 0, integer=True)
    _check_range("gpus", a.gpus, 1, 64, integer=True)
    _check_range("workers", a.workers, 1, 256, integer=True)
    _check_range("keep", a.keep, 0, integer=True)
    _check_range("resolution", a.resolution, 4, integer=True)
    if a.cls is not None and a.cond:
        raise UserError("give either --class NAME (one model per class) or --cond (one conditional model), not both")
    if a.cond and a.extra_images:
        raise UserError("--extra-images are unlabeled and cannot train a --cond model; use them with --class or alone")
    if a.aug == "noaug" and (a.p is not None):
        raise UserError("--p has no effect with --aug noaug; drop it or use --aug fixed")
    if a.aug == "fixed" and a.p is None:
        raise UserError("--aug fixed needs --p (the constant augmentation probability)")
    if a.aug != "ada" and a.target is not None:
        raise UserError(f"--target only applies to --aug ada (got --aug {a.aug})")
    if a.metrics not in (None, "fid", "kid", "none"):
        raise UserError(f"--metrics must be fid, kid or none, got {a.metrics!r}")


FFHQ_RESOLUTION = 256


def apply_defaults(a: TrainArgs, device: str, resolution: int) -> list[str]:
    """Fill unset arguments from the chosen default set (and the device, for metrics); returns notes."""
    notes = []
    d = DEFAULT_SETS[a.defaults]
    if a.from_ is None and d["from_"] == "ffhq256" and resolution != FFHQ_RESOLUTION:
        a.from_ = "scratch"
        notes.append(f"note: training from scratch (the default --from ffhq256 is a {FFHQ_RESOLUTION} px network, "
                     f"this run is {resolution} px)")
    for key in ("kimg", "gamma", "mirror", "target", "snap", "from_"):
        if getattr(a, key) is None and d[key] is not None and (key != "target" or a.aug == "ada"):
            setattr(a, key, d[key])
    if a.metrics is None:
        a.metrics = "fid" if device.startswith("cuda") else "none"
    return notes


def resolve_device(device: str, gpus: int) -> str:
    import torch

    name = device.strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: no CUDA GPU is visible; use --device cpu")
        if gpus > torch.cuda.device_count():
            raise UserError(f"--gpus {gpus} but only {torch.cuda.device_count()} GPU(s) are visible")
    elif name != "cpu":
        raise UserError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    return name


# ----------------------------------------------------------------------------------------------------- inputs
def training_images(ws: Workspace, a: TrainArgs) -> tuple[list[Path], list[int], list[str]]:
    """(paths, labels, class names): the class's (or every class's) train+val images, plus --extra-images."""
    from stylegan_ada.training.data import list_image_files

    if a.cls is None and not a.cond and not a.extra_images:
        raise UserError(f"say what to train: --class NAME (one of {', '.join(ws.classes)}), --cond, or "
                        "--extra-images DIR")
    paths: list[Path] = []
    labels: list[int] = []
    names: list[str] = []
    if a.cond:
        pairs = ws.labelled_images(["train", "val"])
        paths, labels, names = [p for p, _ in pairs], [c for _, c in pairs], ws.classes
        empty = [c for i, c in enumerate(ws.classes) if i not in set(labels)]
        if empty:
            raise UserError(f"class(es) {', '.join(empty)} have no train/val images; a --cond model needs every "
                            "class (re-run `augment prepare`)")
    elif a.cls is not None:
        ws.check_class(a.cls)
        paths, names = ws.images(["train", "val"], a.cls), [a.cls]
        if not paths:
            raise UserError(f"class {a.cls!r} has no train/val images in {ws.root}; re-run `augment prepare` "
                            "or pick another class")
    if a.extra_images:
        folder = Path(a.extra_images).expanduser()
        if not folder.is_dir():
            raise UserError(f"--extra-images {a.extra_images} is not a directory")
        extra = list_image_files(folder)
        if not extra:
            raise UserError(f"--extra-images {a.extra_images} holds no .png/.jpg images")
        paths = paths + extra
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"training image {missing[0]} is missing ({len(missing)} in all); re-run `augment prepare`")
    ws.guard_training_inputs(paths)
    return paths, labels, names


def data_hashes(ws: Workspace, a: TrainArgs, paths: list[Path]) -> dict[str, Any]:
    """sha256 over the training images (manifest hashes; file hashes for extra images) + the split hashes."""
    from augment.io_utils import sha256_file

    known = {str((ws.root / r.image).resolve()): r.image_sha256 for r in ws.rows()}
    h = hashlib.sha256()
    for p in paths:
        digest = known.get(str(p.resolve())) or sha256_file(p)
        h.update(f"{digest}\n".encode())
    return {"training_images_sha256": h.hexdigest(), "num_images": len(paths),
            "manifest_sha256": ws.config["splits"].get("sha256"),
            "test_sha256": ws.config["splits"].get("test_sha256")}


def runs_root(ws: Workspace, a: TrainArgs) -> Path:
    if a.cls is None and not a.cond:
        return ws.root / "runs" / EXTRA_RUNS
    return ws.runs_dir(a.cls)


def training_resolution(ws: Workspace, a: TrainArgs) -> int:
    res = a.resolution
    if res is None:
        res = min(ws.resolution, TINY_DEFAULT_MAX_RES) if a.cfg == "tiny" else ws.resolution
    if res & (res - 1) or res > ws.resolution:
        raise UserError(f"--resolution must be a power of two <= the workspace's {ws.resolution} px, got {res}")
    return res


def resolve_from(a: TrainArgs) -> Path | None:
    """The transfer source file, or None for --from scratch. Clear error if the FFHQ file is not on disk."""
    if a.from_ in (None, "scratch", "none"):
        return None
    from stylegan_ada.pretrained import PretrainedError, resolve

    try:
        return resolve(a.from_)
    except PretrainedError as exc:
        raise UserError(f"--from {a.from_}: {exc}; or train without transfer: --from scratch") from None


def check_transfer_source(path: Path, G_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Load the --from network (never executing anything) and check it fits; returns the loaded networks."""
    from stylegan_ada.training.transfer import TransferError, load_source

    try:
        source = load_source(path)
    except TransferError as exc:
        raise UserError(str(exc)) from None
    G = source.get("G_ema") or source.get("G")
    if G is None:
        raise UserError(f"--from {path.name} holds no generator; give a StyleGAN2(-ADA) network file")
    res = G_kwargs["img_resolution"]
    if G.img_resolution != res:
        raise UserError(f"--from {path.name} is a {G.img_resolution} px network but this run trains {res} px; use "
                        f"a {res} px network, --resolution {G.img_resolution} (if the workspace allows), or "
                        "--from scratch")
    return source


# ------------------------------------------------------------------------------------------------------ options
def build_options(a: TrainArgs, resolution: int, c_dim: int) -> Any:
    """TrainingOptions from the arguments and the preset (stylegan_ada.presets)."""
    from stylegan_ada import presets
    from stylegan_ada.training.options import TrainingOptions

    try:
        p = presets.resolve(a.cfg, resolution, a.gpus, batch=a.batch, gamma=a.gamma, c_dim=c_dim,
                            freeze_layers=a.freezed or None)
    except presets.PresetError as exc:
        raise UserError(f"--cfg {a.cfg}: {exc}") from None
    batch_gpu = a.batch_gpu or p["batch_gpu"]
    per_gpu = p["batch"] // a.gpus
    if per_gpu % batch_gpu:
        raise UserError(f"--batch-gpu {batch_gpu} must divide the per-GPU batch {per_gpu} (--batch {p['batch']} / "
                        f"--gpus {a.gpus})")
    group = p["D_kwargs"]["epilogue_kwargs"].get("mbstd_group_size") or 1
    if batch_gpu % min(group, batch_gpu):
        raise UserError(f"--batch-gpu {batch_gpu} must be a multiple of the minibatch-std group {group}")
    pretrained = a.from_ not in (None, "scratch", "none")
    snap = a.snap or 50
    opts = TrainingOptions(
        G_kwargs=p["G_kwargs"], D_kwargs=p["D_kwargs"], G_opt_kwargs=p["G_opt_kwargs"],
        D_opt_kwargs=p["D_opt_kwargs"], batch=p["batch"], batch_gpu=batch_gpu,
        total_kimg=float(a.kimg if a.kimg is not None else p["kimg"]), gamma=float(p["gamma"]),
        ema_kimg=float(p["ema_kimg"]), ema_rampup=None if pretrained else p["ema_rampup"],
        G_reg_interval=p.get("G_reg_interval", 4), D_reg_interval=p.get("D_reg_interval", 16),
        pl_weight=float(p.get("pl_weight", 2)), pl_batch_shrink=int(p.get("pl_batch_shrink", 2)),
        pl_decay=float(p.get("pl_decay", 0.01)), style_mixing_prob=float(p.get("style_mixing_prob", 0.9)),
        aug=a.aug, augpipe=a.augpipe, augment_p=float(a.p or 0.0),
        ada_target=float(a.target if a.target is not None else 0.6),
        ada_kimg=100.0 if pretrained else 500.0,  # react faster when starting from a trained network
        kimg_per_tick=float(a.tick_kimg), snap=snap, image_snap=snap, metrics=a.metrics or "none",
        keep=a.keep, seed=a.seed, mirror=bool(a.mirror),
        extra={"class": a.cls, "cond": a.cond, "cfg": a.cfg, "from": a.from_})
    try:
        opts.validate()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return opts


def run_desc(a: TrainArgs, resolution: int, opts: Any) -> str:
    what = a.cls or ("cond" if a.cond else "extra")
    aug = f"ada{opts.ada_target:g}" if a.aug == "ada" else (f"p{opts.augment_p:g}" if a.aug == "fixed" else "noaug")
    source = "scratch" if a.from_ in (None, "scratch", "none") else Path(str(a.from_)).stem
    return f"{what}-{a.cfg}{resolution}-{aug}-g{opts.gamma:g}-b{opts.batch}-{source}"
