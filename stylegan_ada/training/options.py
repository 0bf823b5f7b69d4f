"""Everything that defines a training run, as one JSON-able dataclass (stored in the run's config.json)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

AUG_MODES = ("ada", "fixed", "noaug")
METRICS = ("fid", "kid", "none")


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
    keep: int = 3                         # snapshot pairs kept (0 = all); the best-metric network is always kept
    seed: int = 0
    mirror: bool = False
    allow_tf32: bool = True
    cudnn_benchmark: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # free-form facts for the snapshot (class, workspace, ...)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainingOptions":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown training option(s) {', '.join(unknown)}")
        return cls(**d)

    def validate(self) -> None:
        """ValueError with a one-line reason for an inconsistent combination."""
        if self.aug not in AUG_MODES:
            raise ValueError(f"aug must be one of {', '.join(AUG_MODES)}, got {self.aug!r}")
        if self.metrics not in METRICS:
            raise ValueError(f"metrics must be one of {', '.join(METRICS)}, got {self.metrics!r}")
        if self.batch < 1 or self.batch_gpu < 1 or self.batch % self.batch_gpu:
            raise ValueError(f"batch {self.batch} must be a positive multiple of batch_gpu {self.batch_gpu}")
        if not 0 <= self.augment_p <= 1 or not 0 <= self.ada_target <= 1:
            raise ValueError("augment_p and ada_target must be in [0, 1]")
        if self.total_kimg <= 0 or self.kimg_per_tick <= 0:
            raise ValueError("total_kimg and kimg_per_tick must be positive")
        if self.snap < 1 or self.image_snap < 1:
            raise ValueError("snap and image_snap must be >= 1")


# Options that do not change the trained weights, so a resumed run may change them freely.
SCHEDULE_ONLY = ("total_kimg", "kimg_per_tick", "snap", "image_snap", "metrics", "metrics_num_gen", "keep",
                 "allow_tf32", "cudnn_benchmark", "extra")


def result_differences(old: TrainingOptions, new: TrainingOptions) -> list[str]:
    """'name: old -> new' for every option that changes training results."""
    a, b = old.to_dict(), new.to_dict()
    return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if k not in SCHEDULE_ONLY and a[k] != b[k]]
