"""FID/KID of G_ema at a snapshot, through :mod:`stylegan_ada.metrics`."""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from stylegan_ada.training.data import ImageSet
from stylegan_ada.training.options import TrainingOptions

def evaluate(G_ema: torch.nn.Module, data: ImageSet, opts: TrainingOptions, device: torch.device,
             log: Callable[[str], None]) -> dict[str, Any] | None:
    """{'fid', 'kid', 'extractor', 'num_gen'}; None (with a warning) if the metric cannot be computed."""
    from stylegan_ada import metrics

    c = None
    if data.c_dim:  # labels in the proportions of the training set, the same at every snapshot
        pick = torch.randint(data.labels.shape[0], [opts.metrics_num_gen], generator=torch.Generator().manual_seed(
            opts.seed))
        c = data.labels.cpu()[pick]
    try:
        extractor = metrics.get_feature_extractor(opts.metrics_features, device=device)  # cached by the package
        result = metrics.evaluate_generator(G_ema, data.images, num_gen=opts.metrics_num_gen,
                                            batch=max(opts.batch_gpu, 16), device=device, extractor=extractor,
                                            c=c, seed=opts.seed)
    except (RuntimeError, ValueError, OSError) as exc:
        log(f"warning: metrics skipped at this snapshot ({type(exc).__name__}: {exc})")
        return None
    out = {k: float(result[k]) for k in ("fid", "kid") if k in result and result[k] is not None}
    out = {k: v for k, v in out.items() if math.isfinite(v)}
    out["extractor"] = str(result.get("extractor", "?"))
    out["num_gen"] = opts.metrics_num_gen
    log("Metrics: " + " ".join(f"{k} {v:.4g}" for k, v in out.items() if isinstance(v, float))
        + f" (extractor {out['extractor']})")
    return out
