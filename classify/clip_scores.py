"""One answer per clip: the class probabilities of a clip's segments averaged (`augment prepare --segments`).

A clip is a manifest ``source``; every image not in the manifest (a synthetic val image) is a clip of its own, so
an unsegmented workspace scores exactly as before. Val and test report per-clip scores as the headline (the mean of
the softmax probabilities over the clip's images, then argmax) and, when some clip has several images, the
per-image scores under ``per_segment``; the best epoch is chosen on the per-clip val macro-F1.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from augment.errors import UserError
from classify.metrics import classification_metrics, macro_f1
from classify.stats import bootstrap_ci

if TYPE_CHECKING:
    from augment.workspace import Workspace


def clip_ids(ws: "Workspace", samples: Sequence[tuple[Path, int]]) -> list[str]:
    """The clip of each (path, label): its manifest source, else the path itself."""
    source = {str((ws.root / r.image).resolve()): r.source for r in ws.rows()}
    return [source.get(str(Path(p).resolve()), str(p)) for p, _ in samples]


def is_segmented(clips: Sequence[str]) -> bool:
    return len(set(clips)) < len(clips)


def clip_mean(probs: np.ndarray, labels: np.ndarray, clips: Sequence[str]
              ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(mean probabilities [K, C], label [K], clip id [K]) over each clip's rows, clips in first-seen order."""
    if len(clips) != len(probs) or len(labels) != len(probs):
        raise ValueError(f"{len(probs)} predictions, {len(labels)} labels, {len(clips)} clip ids")
    order: dict[str, int] = {}
    index = np.array([order.setdefault(c, len(order)) for c in clips], dtype=np.int64)
    k = len(order)
    sums = np.zeros((k, probs.shape[1]), dtype=np.float64)
    np.add.at(sums, index, probs)
    counts = np.bincount(index, minlength=k)
    clip_label = np.full(k, -1, dtype=np.int64)
    for i, y in zip(index, labels):
        if clip_label[i] not in (-1, y):
            raise UserError(f"clip {list(order)[i]} has images of two classes; re-run `augment prepare --force`")
        clip_label[i] = y
    return sums / counts[:, None], clip_label, list(order)


def split_scores(probs: np.ndarray, labels: np.ndarray, clips: Sequence[str], classes: Sequence[str],
                 loss: float | None) -> dict[str, Any]:
    """metrics.json's val/test entry: per-clip scores (+ 95 % bootstrap CI of their macro-F1), the per-image loss,
    and the per-image scores under ``per_segment`` when some clip has several images."""
    clips = list(clips) or [str(i) for i in range(len(probs))]     # no clip ids: every image its own clip
    cp, cy, _ = clip_mean(probs, labels, clips)
    pred = cp.argmax(1)
    out = {**classification_metrics(cy, pred, classes), **({"loss": loss} if loss is not None else {}),
           "macro_f1_ci95": list(bootstrap_ci(cy, pred, len(classes)))}
    if is_segmented(clips):
        out["per_segment"] = classification_metrics(labels, probs.argmax(1), classes)
        out["n_clips"] = int(len(cy))
    return out


def clip_f1_scorer(clips: Sequence[str]) -> Callable[[np.ndarray, np.ndarray], float] | None:
    """The val score that picks the best epoch: per-clip macro-F1 (None when every clip has one image)."""
    if not is_segmented(clips):
        return None

    def score(probs: np.ndarray, labels: np.ndarray) -> float:
        cp, cy, _ = clip_mean(probs, labels, clips)
        return macro_f1(cy, cp.argmax(1), probs.shape[1])

    return score


# ------------------------------------------------------------------------------------ classify baseline
def image_windows(ws: "Workspace", images: Sequence[str]) -> list[tuple[float, float] | None] | None:
    """The window of each manifest image (augment.json ``segments``), None for a workspace without windows."""
    windows = (ws.config.get("segments") or {}).get("windows") or {}
    if not windows:
        return None
    return [(float(windows[i][0]), float(windows[i][1])) if i in windows else None for i in images]


def per_clip_labels(labels: np.ndarray, clips: Sequence[str]) -> np.ndarray:
    """One label per clip (first-seen order)."""
    return clip_mean(np.zeros((len(labels), 1)), labels, clips)[1]


def baseline_scores(model: Any, X: np.ndarray, pred: np.ndarray, labels: np.ndarray, clips: Sequence[str],
                    classes: Sequence[str]) -> dict[str, Any]:
    """A baseline model's test entry: per clip the mean of its segments' ``predict_proba`` (where the model has it;
    else, e.g. the SVMs, their vote shares), as :func:`split_scores`; one image per clip: its prediction."""
    n = len(classes)
    probs = np.eye(n)[pred]
    if is_segmented(clips) and hasattr(model, "predict_proba"):
        probs = np.zeros((len(X), n))
        probs[:, np.asarray(model.classes_, dtype=np.int64)] = model.predict_proba(X)
    return split_scores(probs, labels, clips, classes, loss=None)
