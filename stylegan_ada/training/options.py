"""The library contract of a training run: one JSON-able dataclass, checked when it is made (stored in config.json).

Every range lives in :data:`RANGES` and is checked by :func:`check_option`, the one validation of the option path:
``TrainingOptions`` runs it on construction, and the presets run it on the values they are given before using them.
A value out of range raises :class:`OptionError` naming the field and the valid range, so a front end (the CLI) can
say it with its own flag names.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

AUG_MODES = ("ada", "fixed", "noaug")
METRICS = ("fid", "kid", "none")
AUGPIPES = ("blit", "geom", "color", "bg", "bgc", "bgcf", "bgcfn", "bgcfnc")
PRECISIONS = ("fp32", "tf32", "fp16-top", "bf16")  # what each means: stylegan_ada/training/precision.py
CHOICES: dict[str, tuple[str, ...]] = {"aug": AUG_MODES, "metrics": METRICS, "augpipe": AUGPIPES,
                                       "precision": PRECISIONS}

# field -> (low, high, integer, low exclusive). None-able fields (ema_rampup, *_reg_interval) skip None.
INF = math.inf
RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "batch": (1, INF, True, False),
    "batch_gpu": (1, INF, True, False),
    "total_kimg": (0, INF, False, True),
    "gamma": (0, INF, False, False),
    "ema_kimg": (0, INF, False, False),
    "ema_rampup": (0, INF, False, False),
    "G_reg_interval": (1, INF, True, False),
    "D_reg_interval": (1, INF, True, False),
    "pl_weight": (0, INF, False, False),
    "pl_batch_shrink": (1, INF, True, False),
    "pl_decay": (0, 1, False, False),
    "style_mixing_prob": (0, 1, False, False),
    "augment_p": (0, 1, False, False),
    "ada_target": (0, 1, False, False),
    "ada_interval": (1, INF, True, False),
    "ada_kimg": (0, INF, False, True),
    "kimg_per_tick": (0, INF, False, True),
    "snap": (1, INF, True, False),
    "image_snap": (1, INF, True, False),
    "metrics_num_gen": (1, INF, True, False),
    "keep": (0, INF, True, False),
    "seed": (0, 2 ** 32 - 1, True, False),
}


class OptionError(ValueError):
    """A training option out of its range or inconsistent; ``name`` is the field, ``detail`` the reason."""

    def __init__(self, name: str, detail: str):
        super().__init__(f"{name} {detail}")
        self.name, self.detail = name, detail


def range_text(lo: float, hi: float, exclusive: bool = False) -> str:
    """'between 0 and 1', '>= 1' or '> 0'."""
    def num(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else f"{x:g}"

    if math.isinf(hi):
        return f"{'>' if exclusive else '>='} {num(lo)}"
    return f"> {num(lo)} and <= {num(hi)}" if exclusive else f"between {num(lo)} and {num(hi)}"


def check_range(name: str, value: Any, lo: float, hi: float = math.inf, *, integer: bool = False,
                exclusive: bool = False) -> None:
    """OptionError unless ``value`` is a (finite) number in [lo, hi] (or (lo, hi] when ``exclusive``)."""
    if integer and (not isinstance(value, int) or isinstance(value, bool)):
        raise OptionError(name, f"must be an integer, got {value!r}")
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (lo < value if exclusive else lo <= value) or value > hi:
        raise OptionError(name, f"must be {range_text(lo, hi, exclusive)}, got {value!r}")


def check_option(name: str, value: Any) -> None:
    """The range (or choice) check of one TrainingOptions field; None passes for the None-able fields."""
    if name in CHOICES:
        if value not in CHOICES[name]:
            raise OptionError(name, f"must be one of {', '.join(CHOICES[name])}, got {value!r}")
    elif name == "metrics_features":
        from stylegan_ada.metrics.extractors import EXTRACTOR_NAMES  # here, not at the top: it imports torch

        if value not in EXTRACTOR_NAMES:
            raise OptionError(name, f"must be one of {', '.join(EXTRACTOR_NAMES)}, got {value!r}")
    elif name in RANGES and value is not None:
        lo, hi, integer, exclusive = RANGES[name]
        check_range(name, value, lo, hi, integer=integer, exclusive=exclusive)


def d_freezable_layers(D_kwargs: dict[str, Any]) -> int:
    """Layers of D above its 4x4 output block, the ones Freeze-D (``freeze_layers``) counts.

    Each block from the image resolution down to 8 px has conv0, conv1 and (resnet) a skip; the first block (or
    every block with architecture 'skip') also a fromrgb layer.
    """
    blocks = int(math.log2(int(D_kwargs["img_resolution"]))) - 2
    arch = D_kwargs.get("architecture", "resnet")
    per_block = 3 if arch == "resnet" else 2
    fromrgb = blocks if arch == "skip" else 1
    return blocks * per_block + fromrgb


@dataclass
class TrainingOptions:
    G_kwargs: dict[str, Any]
    D_kwargs: dict[str, Any]
    G_opt_kwargs: dict[str, Any]          # lr, betas, eps (before the lazy-regularization adjustment)
    D_opt_kwargs: dict[str, Any]
    batch: int                            # global minibatch
    batch_gpu: int                        # images per process per round (batch = batch_gpu * gpus * rounds)
    total_kimg: float                     # train until this many thousand real images were shown (total)
    gamma: float = 10.0                   # R1 weight
    ema_kimg: float = 10.0                # G_ema half-life in kimg
    ema_rampup: float | None = None       # G_ema half-life at most cur_nimg * ema_rampup; None = off
    G_reg_interval: int | None = 4        # lazy path-length regularization; None = every step ('Gboth')
    D_reg_interval: int | None = 16       # lazy R1; None = every step ('Dboth')
    pl_weight: float = 2.0
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    style_mixing_prob: float = 0.9
    aug: str = "ada"                      # ada | fixed | noaug
    augpipe: str = "bgc"
    augment_p: float = 0.0                # initial (ada) or constant (fixed) augmentation probability
    ada_target: float = 0.6
    ada_interval: int = 4
    ada_kimg: float = 500.0
    kimg_per_tick: float = 4.0
    snap: int = 50                        # network snapshot every `snap` ticks (and at the end)
    image_snap: int = 50                  # fakes grid every `image_snap` ticks
    metrics: str = "none"                 # fid | kid | none, evaluated at every network snapshot
    metrics_num_gen: int = 1000
    metrics_features: str = "auto"       # their feature extractor (stylegan_ada.metrics.EXTRACTOR_NAMES)
    keep: int = 3                         # snapshot pairs kept (0 = all); the best-metric network is always kept
    seed: int = 0
    mirror: bool = False
    allow_tf32: bool = True
    cudnn_benchmark: bool = True
    precision: str = "fp16-top"          # fp32 | tf32 | fp16-top | bf16 (stylegan_ada/training/precision.py)
    channels_last: bool = False           # channels-last activations in the fp16 blocks
    compile: bool = False                 # torch.compile of the main phases' G and D (training/compiled.py)
    cuda_graphs: bool = False             # ... with CUDA-graph capture (CUDA only; implies compile)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form facts for the snapshot (class, workspace, ...)

    def __post_init__(self) -> None:
        self.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainingOptions":
        unknown = sorted(set(d) - set(field_names()))
        if unknown:
            raise OptionError(unknown[0], f"is not a training option ({len(unknown)} unknown: {', '.join(unknown)})")
        return cls(**d)

    def replace(self, **changes: Any) -> "TrainingOptions":
        """A copy with ``changes``, checked like a new one."""
        return dataclasses.replace(self, **changes)

    def validate(self) -> None:
        """OptionError with a one-line reason for a value out of range or an inconsistent combination."""
        for name in field_names():
            check_option(name, getattr(self, name))
        if self.batch % self.batch_gpu:
            raise OptionError("batch_gpu", f"{self.batch_gpu} must divide the batch {self.batch}")
        for name in ("G_kwargs", "D_kwargs"):
            kwargs = getattr(self, name)
            if not isinstance(kwargs, dict) or "img_resolution" not in kwargs:
                raise OptionError(name, "must be the network's constructor kwargs (with img_resolution)")
        if self.G_kwargs["img_resolution"] != self.D_kwargs["img_resolution"]:
            raise OptionError("D_kwargs", "must have the generator's img_resolution")
        freeze = (self.D_kwargs.get("block_kwargs") or {}).get("freeze_layers", 0)
        check_range("freeze_layers", freeze, 0, d_freezable_layers(self.D_kwargs), integer=True)


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainingOptions)]


def option_default(name: str) -> Any:
    """The library default of a TrainingOptions field (the one place it is written)."""
    f = TrainingOptions.__dataclass_fields__[name]
    return f.default_factory() if f.default is dataclasses.MISSING else f.default
