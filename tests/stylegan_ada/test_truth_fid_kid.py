"""FID/KID through the real pipeline — the shipped EfficientNet-Lite0 extractor actually run on images, the
generator's images through the metrics' pixel mapping — against answers known without our code:

- a generator that replays the real images: FID 0 (the same feature set twice), KID the unbiased estimator of two
  identical sets, computed here term by term from the definition;
- the extractor's features of real images against the same features shifted by a constant vector (a shifted
  Gaussian in feature space: same covariance): FID is exactly the squared shift, KID the definition again.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from stylegan_ada.metrics import compute_fid_kid, evaluate_generator, get_feature_extractor
from stylegan_ada.metrics.evaluate import real_features

N, SIZE = 6, 16


def unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Bińkowski et al.'s unbiased MMD² with k(a, b) = (a·b / d + 1)³, written out pair by pair."""
    d = x.shape[1]
    k = lambda a, b: (float(np.dot(a, b)) / d + 1) ** 3  # noqa: E731
    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    xy = sum(k(a, b) for a in x for b in y) / (n * m)
    return xx + yy - 2 * xy


class ReplayG(torch.nn.Module):
    """A 'generator' whose successive outputs are the real images, in [-1, 1] as a generator gives them."""

    z_dim, c_dim, img_resolution, img_channels = 4, 0, SIZE, 3

    def __init__(self, reals: torch.Tensor):
        super().__init__()
        # half a grey level above each value, so x * 127.5 + 128 truncates back to the same uint8 value
        self.images = (reals.float() - 128 + 0.5) / 127.5
        self.pos = 0

    def forward(self, z: torch.Tensor, c: torch.Tensor, **_: object) -> torch.Tensor:
        out = self.images[self.pos:self.pos + len(z)]
        self.pos += len(z)
        return out


@pytest.fixture()
def extractor(monkeypatch):
    ext = get_feature_extractor("efficientnet-lite0")
    monkeypatch.setattr(type(ext), "input_resolution", 64)  # the same network on smaller inputs: ~12x faster
    return ext


@pytest.fixture(scope="module")
def reals() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(N, 1, 4, 4, generator=g), size=SIZE, mode="bilinear")
    return (smooth * 255).to(torch.uint8).repeat(1, 3, 1, 1)  # grey images stored as RGB, like the workspace's


def test_generator_replaying_the_reals_scores_fid_zero(extractor, reals):
    res = evaluate_generator(ReplayG(reals), reals, num_gen=N, batch=4, device="cpu", extractor=extractor)
    assert res["extractor"] == "efficientnet-lite0" and (res["num_real"], res["num_fake"]) == (N, N)
    feats = extractor(reals).numpy().astype(np.float64)  # the extractor run directly, not through the pipeline
    scale = float(np.square(feats - feats.mean(0)).sum(1).mean())  # trace of the covariance: FID's scale
    assert scale > 1e-3  # the images differ, so a zero FID is not trivial
    # 6 images, 1280 dims: singular covariances, whose near-zero eigenvalues cost either FID method ~5e-7 of the scale
    assert abs(res["fid"]) <= 1e-5 * scale
    assert res["kid"] == pytest.approx(unbiased_mmd2(feats, feats), rel=1e-4, abs=1e-7)


def test_shifted_features_give_the_closed_form(extractor, reals):
    feats = real_features(extractor, reals, batch=4).astype(np.float64)
    assert feats.shape == (N, extractor.feature_dim)
    shift = np.random.default_rng(1).standard_normal(feats.shape[1]) * feats.std(0).mean()
    scale = float(np.square(feats - feats.mean(0)).sum(1).mean())
    res = compute_fid_kid(feats, feats + shift)
    assert abs(res["fid"] - float(shift @ shift)) <= 1e-5 * scale  # same covariance: |shift|² alone
    assert res["kid"] == pytest.approx(unbiased_mmd2(feats + shift, feats), rel=1e-9)
    # two Gaussians with the same covariance: sample-level identity, independent of the extractor
    x = np.random.default_rng(2).standard_normal((40, 5)) @ np.diag([1.0, 2.0, 0.5, 3.0, 1.5])
    mu = np.array([1.0, -2.0, 0.0, 0.5, 3.0])
    got = compute_fid_kid(x, x + mu)
    assert got["fid"] == pytest.approx(float(mu @ mu), rel=1e-9)
    assert got["kid"] == pytest.approx(unbiased_mmd2(x + mu, x), rel=1e-9)
