"""Fréchet distance (FID) and kernel distance (KID) between two sets of image features.

FID (Heusel et al. 2017): ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_f S_r)^(1/2)), with the biased (1/N)
covariance like the reference. The reference takes the trace term from ``scipy.linalg.sqrtm(S_f S_r)``;
by default we get the same number from symmetric eigendecompositions (the eigenvalues of S_f S_r equal
those of S_r^(1/2) S_f S_r^(1/2)), which is ~5x faster at 1280-2048 dims and stays accurate when the
covariances are singular (fewer images than feature dims). ``method='sqrtm'`` gives the reference path.
KID (Bińkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3.
The reference averages it over 100 random subsets of 1000 features; when both sets are no larger
than one subset we use every feature once (the same estimator, without sampling noise).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

ArrayLike = np.ndarray | torch.Tensor


def _as_features(x: ArrayLike, what: str) -> np.ndarray:
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"{what} features must be a 2D array [N >= 2, D], got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} features contain NaN or infinite values")
    return x.astype(np.float64)


def feature_statistics(features: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and biased covariance [D, D] (divided by N, as the reference) in float64."""
    x = _as_features(features, "the")
    mu = x.mean(axis=0)
    centred = x - mu
    return mu, centred.T @ centred / x.shape[0]


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(sigma)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     method: str = "eigh") -> float:
    """Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2)."""
    mean_term = float(np.square(mu1 - mu2).sum())
    if method == "eigh":
        root = _psd_sqrt(sigma2)
        eig = np.linalg.eigvalsh(root @ sigma1 @ root)
        trace_covmean = float(np.sqrt(np.clip(eig, 0, None)).sum())
    elif method == "sqrtm":
        trace_covmean = float(np.real(np.trace(scipy.linalg.sqrtm(sigma1 @ sigma2))))
    else:
        raise ValueError(f"method must be 'eigh' or 'sqrtm', got {method!r}")
    return mean_term + float(np.trace(sigma1) + np.trace(sigma2)) - 2 * trace_covmean


def _polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a @ b.T / a.shape[1] + 1) ** 3


def _mmd2_from_kernels(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray) -> float:
    n, m = kxx.shape[0], kyy.shape[0]
    within_x = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within_x + within_y - 2 * kxy.mean())


_FULL_KERNEL_MAX = 6000  # up to this many features in total, compute every kernel value once


def kernel_distance(real: ArrayLike, fake: ArrayLike, num_subsets: int = 100, max_subset_size: int = 1000,
                    seed: int = 0) -> float:
    """KID: unbiased MMD^2 (cubic polynomial kernel), averaged over random equal-size subsets for large sets."""
    x, y = _as_features(fake, "generated"), _as_features(real, "real")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature sizes differ: {x.shape[1]} (generated) vs {y.shape[1]} (real)")
    if max(x.shape[0], y.shape[0]) <= max_subset_size:
        return _mmd2_from_kernels(_polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y))
    m = min(x.shape[0], y.shape[0], max_subset_size)
    rng = np.random.default_rng(seed)
    full = x.shape[0] + y.shape[0] <= _FULL_KERNEL_MAX
    if full:
        kxx, kyy, kxy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
    total = 0.0
    for _ in range(num_subsets):
        ix = rng.choice(x.shape[0], m, replace=False)
        iy = rng.choice(y.shape[0], m, replace=False)
        if full:
            total += _mmd2_from_kernels(kxx[np.ix_(ix, ix)], kyy[np.ix_(iy, iy)], kxy[np.ix_(ix, iy)])
        else:
            xs, ys = x[ix], y[iy]
            total += _mmd2_from_kernels(_polynomial_kernel(xs, xs), _polynomial_kernel(ys, ys),
                                        _polynomial_kernel(xs, ys))
    return total / num_subsets


def compute_fid_kid(real_features: ArrayLike, fake_features: ArrayLike, *, num_subsets: int = 100,
                    max_subset_size: int = 1000, seed: int = 0) -> dict[str, float]:
    """``{'fid', 'kid', 'num_real', 'num_fake'}`` between two feature sets [N, D] (deterministic for a seed)."""
    real = _as_features(real_features, "real")
    fake = _as_features(fake_features, "generated")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature sizes differ: {real.shape[1]} (real) vs {fake.shape[1]} (generated)")
    mu_r, sigma_r = feature_statistics(real)
    mu_f, sigma_f = feature_statistics(fake)
    return {
        "fid": frechet_distance(mu_f, sigma_f, mu_r, sigma_r),
        "kid": kernel_distance(real, fake, num_subsets=num_subsets, max_subset_size=max_subset_size, seed=seed),
        "num_real": int(real.shape[0]),
        "num_fake": int(fake.shape[0]),
    }
