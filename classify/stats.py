"""Uncertainty of classifier scores: t intervals over seeds, stratified bootstrap over test clips, paired tests.

Macro-F1 of many resamples is computed at once from weighted confusion counts (a resample is a vector of how often
each test clip was drawn), which is what makes thousands of resamples cheap.
"""
from __future__ import annotations

from itertools import product
from typing import Sequence

import numpy as np

N_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
EXACT_MAX_PAIRS = 12        # up to 2**12 sign patterns the permutation test is exact


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float] | None:
    """Student-t interval of the mean (None for fewer than 2 values)."""
    from scipy import stats

    arr = np.asarray(values, dtype=float)
    if len(arr) < 2:
        return None
    half = float(stats.t.ppf(0.5 + level / 2, len(arr) - 1) * arr.std(ddof=1) / np.sqrt(len(arr)))
    return float(arr.mean() - half), float(arr.mean() + half)


def macro_f1_weighted(y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray, n_classes: int) -> np.ndarray:
    """Macro-F1 for each row of ``weights`` [R, N] (clip multiplicities); classes absent from a resample and never
    predicted score 0, as scikit-learn's ``zero_division=0``."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    truth = np.eye(n_classes)[y_true]                      # [N, C]
    pred = np.eye(n_classes)[y_pred]
    tp = weights @ (truth * pred)                          # [R, C]
    denom = weights @ truth + weights @ pred               # 2TP + FP + FN
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp, dtype=float), where=denom > 0)
    return f1.mean(axis=1)


def stratified_weights(y_true: Sequence[int], n_resamples: int = N_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """[R, N] multiplicities of a bootstrap that resamples each class's clips within the class (sizes fixed)."""
    y = np.asarray(y_true)
    rng = np.random.default_rng(seed)
    w = np.zeros((n_resamples, len(y)))
    rows = np.arange(n_resamples)[:, None]
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        draws = idx[rng.integers(0, len(idx), size=(n_resamples, len(idx)))]
        np.add.at(w, (rows, draws), 1)
    return w


def bootstrap_ci(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int, *, n_resamples: int = N_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of macro-F1 of one run over a stratified bootstrap of the test clips."""
    w = stratified_weights(y_true, n_resamples, seed)
    f1 = macro_f1_weighted(np.asarray(y_true), np.asarray(y_pred), w, n_classes)
    alpha = (1 - level) / 2
    return float(np.quantile(f1, alpha)), float(np.quantile(f1, 1 - alpha))


def paired_diff(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, n_classes: int,
                weights: np.ndarray) -> np.ndarray:
    """Mean over seeds of macro-F1(B) − macro-F1(A) per weight row; ``pred_*`` are [S, N] (seed, clip)."""
    return np.mean([macro_f1_weighted(y_true, pb, weights, n_classes) - macro_f1_weighted(y_true, pa, weights,
                                                                                            n_classes)
                    for pa, pb in zip(pred_a, pred_b)], axis=0)


def paired_bootstrap(y_true: Sequence[int], pred_a: np.ndarray, pred_b: np.ndarray, n_classes: int, *,
                     n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                     level: float = 0.95) -> tuple[float, tuple[float, float]]:
    """Observed difference and percentile interval; every resample draws the same clips for every seed and arm."""
    y = np.asarray(y_true)
    pa, pb = np.atleast_2d(pred_a), np.atleast_2d(pred_b)
    observed = float(paired_diff(y, pa, pb, n_classes, np.ones((1, len(y))))[0])
    diffs = paired_diff(y, pa, pb, n_classes, stratified_weights(y, n_resamples, seed))
    alpha = (1 - level) / 2
    return observed, (float(np.quantile(diffs, alpha)), float(np.quantile(diffs, 1 - alpha)))


def paired_permutation_p(y_true: Sequence[int], pred_a: np.ndarray, pred_b: np.ndarray, n_classes: int, *,
                         n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> float:
    """Two-sided p of the paired permutation test: under H0 the arms' predictions of each (seed, clip) are
    exchangeable. Exact (every swap pattern) when at most EXACT_MAX_PAIRS pairs differ, else Monte Carlo."""
    y = np.asarray(y_true)
    pa, pb = np.atleast_2d(pred_a).copy(), np.atleast_2d(pred_b).copy()
    ones = np.ones((1, len(y)))
    observed = abs(float(paired_diff(y, pa, pb, n_classes, ones)[0]))
    # swapping a pair whose predictions agree changes nothing: only the differing pairs matter
    diff_pairs = np.argwhere(pa != pb)
    k = len(diff_pairs)
    if k == 0:
        return 1.0
    exact = k <= EXACT_MAX_PAIRS
    patterns = (np.array(list(product([False, True], repeat=k))) if exact
                else np.random.default_rng(seed).random((n_resamples, k)) < 0.5)
    tol = 1e-12 * max(1.0, observed)
    hits = 0
    for swap in patterns:
        qa, qb = pa.copy(), pb.copy()
        s, i = diff_pairs[swap, 0], diff_pairs[swap, 1]
        qa[s, i], qb[s, i] = pb[s, i], pa[s, i]
        hits += abs(float(paired_diff(y, qa, qb, n_classes, ones)[0])) >= observed - tol
    return hits / len(patterns) if exact else (hits + 1) / (len(patterns) + 1)
