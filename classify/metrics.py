"""Classification scores: macro precision/recall/F1, accuracy, per-class report, confusion matrix."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, labels=list(range(n_classes)), average="macro", zero_division=0))


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str]) -> dict[str, Any]:
    """Macro scores, accuracy, per-class precision/recall/F1/support and the confusion matrix (rows = truth)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = list(range(len(classes)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    mp, mr, mf, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    return {
        "macro_f1": float(mf),
        "macro_precision": float(mp),
        "macro_recall": float(mr),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "per_class_f1": {c: float(f[i]) for i, c in enumerate(classes)},
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
                      for i, c in enumerate(classes)},
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "n": int(len(y_true)),
    }


def report_text(metrics: dict[str, Any], title: str) -> str:
    """A per-class report in the layout of scikit-learn's ``classification_report``."""
    width = max(12, *(len(c) for c in metrics["per_class"]))
    lines = [title, "", f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}", ""]
    for c, m in metrics["per_class"].items():
        lines.append(f"{c:>{width}} {m['precision']:9.3f} {m['recall']:9.3f} {m['f1']:9.3f} {m['support']:9d}")
    lines += ["", f"{'accuracy':>{width}} {'':9} {'':9} {metrics['accuracy']:9.3f} {metrics['n']:9d}",
              f"{'macro avg':>{width}} {metrics['macro_precision']:9.3f} {metrics['macro_recall']:9.3f} "
              f"{metrics['macro_f1']:9.3f} {metrics['n']:9d}", ""]
    return "\n".join(lines)


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value)."""
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
