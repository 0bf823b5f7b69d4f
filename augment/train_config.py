"""The user-level record of `augment train` (``TrainArgs``, what ``--resume`` compares) -> ``TrainingOptions``.

The option path: click (no defaults) -> ``TrainArgs`` (None = not given) -> :func:`apply_defaults` (the default set
``thesis`` / ``reference`` and the device) -> :func:`build_options` -> ``stylegan_ada.presets.training_options``
(the preset's network and hyper-parameters, then the given fields; ``TrainingOptions`` checks every range) ->
:func:`complete_args` (the resolved values written into the record, so a resume compares real values).
Each default lives in one place: the default sets here (``DEFAULT_SETS``), ``TrainArgs`` for what only the CLI has
(cfg, device, gpus, workers, ...), the preset for batch / gamma / kimg, ``TrainingOptions`` for the rest.
Range errors come from ``stylegan_ada.training.options`` and are worded here with the flag's name.

``thesis``: what the thesis used (cfg auto at the workspace resolution, mirror, ADA target 0.7, gamma 10, 1000 kimg,
transfer from FFHQ-256, snapshot every 2 ticks = 8 kimg); ``reference``: the reference train.py (target 0.6, the
preset's gamma and kimg, no mirror, from scratch, snapshot every 50 ticks).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from augment.errors import UserError

DEFAULT_SETS: dict[str, dict[str, Any]] = {
    "thesis": dict(kimg=1000.0, gamma=10.0, mirror=True, target=0.7, snap=2, from_="ffhq256"),
    "reference": dict(kimg=None, gamma=None, mirror=False, target=0.6, snap=50, from_="scratch"),
}
TINY_DEFAULT_MAX_RES = 64
FFHQ_RESOLUTION = 256
MAX_GPUS = 64
# Arguments that shape the networks: never changed on resume.
ARCHITECTURE_ARGS = ("cls", "cond", "cfg", "resolution", "freezed")
# Arguments that change what is trained: changing them on resume needs --force.
RESULT_ARGS = ("extra_images", "defaults", "batch", "batch_gpu", "gamma", "mirror", "aug", "augpipe", "target", "p",
               "seed", "from_")
# TrainArgs field -> the TrainingOptions field it sets (the options a user gives directly).
TO_OPTION = {"kimg": "total_kimg", "batch": "batch", "batch_gpu": "batch_gpu", "gamma": "gamma", "mirror": "mirror",
             "aug": "aug", "augpipe": "augpipe", "target": "ada_target", "p": "augment_p", "snap": "snap",
             "tick_kimg": "kimg_per_tick", "metrics": "metrics", "features": "metrics_features", "seed": "seed",
             "keep": "keep",
             "precision": "precision", "channels_last": "channels_last", "compile": "compile",
             "cuda_graphs": "cuda_graphs"}
OPTION_NAMES = {"cls": "--class", "from_": "--from", "extra_images": "--extra-images", "batch_gpu": "--batch-gpu",
                "tick_kimg": "--tick-kimg"}
_OPTION_FLAGS = {**{opt: arg for arg, opt in TO_OPTION.items()}, "freeze_layers": "freezed", "image_snap": "snap"}


def flag(name: str) -> str:
    """The command-line flag of a TrainArgs field (or of the TrainingOptions field it sets)."""
    name = _OPTION_FLAGS.get(name, name)
    return OPTION_NAMES.get(name, "--" + name.replace("_", "-"))


@dataclass
class TrainArgs:
    """The command-line arguments; stored, complete, as ``args`` in the run's config.json. None = not given."""
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
    aug: str | None = None
    augpipe: str | None = None
    target: float | None = None
    p: float | None = None
    snap: int | None = None
    tick_kimg: float | None = None
    metrics: str | None = None
    features: str | None = None
    seed: int | None = None
    freezed: int = 0
    from_: str | None = None
    gpus: int = 1
    workers: int = 4
    device: str = "auto"
    keep: int | None = None
    precision: str | None = None
    channels_last: bool | None = None
    compile: bool | None = None
    cuda_graphs: bool | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainArgs":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def transfer(self) -> bool:
        return self.from_ not in (None, "scratch", "none")


# ------------------------------------------------------------------------------------------------- validation
def _check_int(name: str, value: Any, lo: int, hi: float = math.inf) -> None:
    from stylegan_ada.training.options import OptionError, check_range

    if value is not None:
        try:
            check_range(name, value, lo, hi, integer=True)
        except OptionError as exc:
            raise UserError(f"{flag(name)} {exc.detail}") from None


def check_user_args(a: TrainArgs) -> None:
    """What only the CLI has (everything else is checked by TrainingOptions, see :func:`build_options`)."""
    if a.defaults not in DEFAULT_SETS:
        raise UserError(f"--defaults must be one of {', '.join(DEFAULT_SETS)}, got {a.defaults!r}")
    _check_int("gpus", a.gpus, 1, MAX_GPUS)
    _check_int("workers", a.workers, 1, 256)
    _check_int("resolution", a.resolution, 4)
    _check_int("freezed", a.freezed, 0)
    if a.cls is not None and a.cond:
        raise UserError("give either --class NAME (one model per class) or --cond (one conditional model), not both")
    if a.cond and a.extra_images:
        raise UserError("--extra-images are unlabeled and cannot train a --cond model; use them with --class or alone")


def check_combinations(a: TrainArgs) -> None:
    """Flags that contradict each other (after the defaults)."""
    if a.aug == "noaug" and a.p is not None:
        raise UserError("--p has no effect with --aug noaug; drop it or use --aug fixed")
    if a.aug == "fixed" and a.p is None:
        raise UserError("--aug fixed needs --p (the constant augmentation probability)")
    if a.aug != "ada" and a.target is not None:
        raise UserError(f"--target only applies to --aug ada (got --aug {a.aug})")


def check_device_args(a: TrainArgs, device: str) -> None:
    """Knobs the resolved device cannot use (new runs and resumes: a resume may change --device)."""
    import torch

    from stylegan_ada.training.compiled import CompileError, check_supported

    try:
        check_supported(bool(a.compile), bool(a.cuda_graphs), torch.device(device))
    except CompileError as exc:
        raise UserError(str(exc)) from None


def apply_defaults(a: TrainArgs, device: str, resolution: int) -> list[str]:
    """Fill unset arguments from the chosen default set (and the device, for metrics); returns notes."""
    from stylegan_ada.training.options import option_default

    notes = []
    d = DEFAULT_SETS[a.defaults]
    if a.from_ is None and d["from_"] == "ffhq256" and resolution != FFHQ_RESOLUTION:
        a.from_ = "scratch"
        notes.append(f"note: training from scratch (the default --from ffhq256 is a {FFHQ_RESOLUTION} px network, "
                     f"this run is {resolution} px)")
    a.aug = a.aug or option_default("aug")
    for key in ("kimg", "gamma", "mirror", "target", "snap", "from_"):
        if getattr(a, key) is None and d[key] is not None and (key != "target" or a.aug == "ada"):
            setattr(a, key, d[key])
    if a.metrics is None:
        a.metrics = "fid" if device.startswith("cuda") else "none"
    return notes


def training_resolution(workspace_resolution: int, a: TrainArgs) -> int:
    # a classifier workspace of another size (48 px faces) trains at the next power of two: the loader resizes
    top = 1 << (workspace_resolution - 1).bit_length()
    res = a.resolution
    if res is None:
        res = min(top, TINY_DEFAULT_MAX_RES) if a.cfg in ("tiny", "small") else top
    if res & (res - 1) or res > top:
        limit = f"the workspace's {top} px" if top == workspace_resolution else \
            f"{top} px (the workspace's {workspace_resolution} px rounded up)"
        raise UserError(f"--resolution must be a power of two <= {limit}, got {res}")
    return res


# ------------------------------------------------------------------------------------------------------ options
def build_options(a: TrainArgs, resolution: int, c_dim: int) -> Any:
    """TrainingOptions from the arguments through the preset; any range error as one line naming the flag."""
    from stylegan_ada import presets
    from stylegan_ada.training.options import OptionError, d_freezable_layers

    given = {TO_OPTION[k]: getattr(a, k) for k in TO_OPTION}
    try:
        opts = presets.training_options(
            a.cfg, resolution, a.gpus, c_dim=c_dim, freeze_layers=a.freezed, transfer=a.transfer,
            image_snap=a.snap, extra={"class": a.cls, "cond": a.cond, "cfg": a.cfg, "from": a.from_}, **given)
    except OptionError as exc:
        detail = exc.detail
        if exc.name == "freeze_layers":
            detail += (f" (a {resolution} px D has {d_freezable_layers({'img_resolution': resolution})} layers "
                       "above its 4x4 output block; Freeze-D freezes the first N of them)")
        raise UserError(f"{flag(exc.name)} {detail}") from None
    except presets.PresetError as exc:
        raise UserError(f"--cfg {a.cfg}: {exc}") from None
    if opts.metrics != "none":  # now, not as a warning at every snapshot of a run that may last hours
        from stylegan_ada.metrics.extractors import unavailable_reason

        reason = unavailable_reason(opts.metrics_features)
        if reason:
            raise UserError(f"--features {opts.metrics_features}: {reason}; or choose another --features, or "
                            "--metrics none")
    return opts


def complete_args(a: TrainArgs, opts: Any) -> None:
    """Write what the preset and the library chose into ``a``, so the record (and a resume) has every value."""
    a.resolution = opts.G_kwargs["img_resolution"]
    for arg, opt in TO_OPTION.items():
        if getattr(a, arg) is None and arg not in ("p", "target"):  # p / target stay unset where they do not apply
            setattr(a, arg, getattr(opts, opt))
    if a.aug == "ada" and a.target is None:
        a.target = opts.ada_target


def run_desc(a: TrainArgs, resolution: int, opts: Any) -> str:
    what = a.cls or ("cond" if a.cond else "extra")
    aug = f"ada{opts.ada_target:g}" if a.aug == "ada" else (f"p{opts.augment_p:g}" if a.aug == "fixed" else "noaug")
    source = Path(str(a.from_)).stem if a.transfer else "scratch"
    return f"{what}-{a.cfg}{resolution}-{aug}-g{opts.gamma:g}-b{opts.batch}-{source}"
