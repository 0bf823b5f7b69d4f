"""MusiCNN / VGG ports against the TensorFlow original's outputs (fixture) and a float64 NumPy forward pass."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.support.musicnn import FIXTURE_NPZ, wheel_path

from classify.musicnn import load_labels, load_musicnn
from stylegan_ada.musicnn.tf_checkpoint import open_checkpoint_in_zip

KEYS = ["taggram", "logits", "penultimate", "mean_pool", "max_pool", "timbral", "temporal", "cnn1", "cnn2", "cnn3"]


@pytest.fixture(scope="module")
def fixture():
    with np.load(FIXTURE_NPZ, allow_pickle=False) as d:
        return {k: d[k] for k in d.files if "/extractor/" not in k}


@pytest.mark.parametrize("model", ["MTT_musicnn", "MSD_musicnn"])
def test_musicnn_matches_tensorflow_on_real_clips(fixture, model):
    net = load_musicnn(model)
    assert not net.training
    stems = list(fixture["meta/clip_stems"])
    x = torch.from_numpy(np.concatenate([fixture[f"{model}/{s}/input"] for s in stems]))      # [9, 187, 96]
    with torch.no_grad():
        out = net(x)
    for key in KEYS:
        ref = np.concatenate([fixture[f"{model}/{s}/{'' if key in ('taggram', 'logits') else 'features/'}{key}"]
                              for s in stems])
        ours = out[key].numpy()
        assert ours.shape == ref.shape, key
        assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max(), key
    assert out["logits"].shape == (9, 50) and out["penultimate"].shape == (9, 200)
    assert load_labels(model) == list(fixture[f"meta/{model[:3]}_labels"])


def _conv_same_nhwc(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """float64 3x3 'same' convolution, NHWC, kernel [kh, kw, in, out], by explicit patches."""
    n, h, w, _ = x.shape
    p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    cols = np.stack([p[:, i:i + h, j:j + w, :] for i in range(3) for j in range(3)], axis=3)   # [n,h,w,9,c]
    return cols.reshape(n, h, w, -1) @ k.reshape(-1, k.shape[-1])


def _pool_valid(x: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    n, h, w, c = x.shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.full((n, ho, wo, c), -np.inf)
    for i in range(kh):
        for j in range(kw):
            out = np.maximum(out, x[:, i:i + sh * ho:sh, j:j + sw * wo:sw, :][:, :ho, :wo])
    return out


def _vgg_numpy(v: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    def bn(t, name):
        return (t - v[f"{name}/moving_mean"]) / np.sqrt(v[f"{name}/moving_variance"] + 1e-3) * v[f"{name}/gamma"] \
            + v[f"{name}/beta"]

    t = bn(x[..., None], "batch_normalization")
    pools = [(4, 1, 2, 2), (2, 2, 2, 2), (2, 2, 2, 2), (2, 2, 2, 2), (4, 4, 4, 4)]
    for i, pool in enumerate(pools):
        t = np.maximum(_conv_same_nhwc(t, v[f"{i + 1}CNN/kernel"]) + v[f"{i + 1}CNN/bias"], 0)
        t = _pool_valid(bn(t, f"batch_normalization_{i + 1}"), *pool)
    return t.reshape(t.shape[0], -1) @ v["dense/kernel"] + v["dense/bias"]


@pytest.mark.parametrize("model", ["MTT_vgg"])     # MSD_vgg goes through the same code (same variable names)
def test_vgg_matches_a_float64_numpy_forward(fixture, model):
    ckpt = open_checkpoint_in_zip(wheel_path(), f"musicnn/{model}/")
    v = {n: ckpt.read(n).astype(np.float64) for n in ckpt.entries if "Adam" not in n and "power" not in n}
    x = fixture[f"MTT_musicnn/{fixture['meta/clip_stems'][0]}/input"][:1]
    ref = _vgg_numpy(v, x.astype(np.float64))
    net = load_musicnn(model)
    with torch.no_grad():
        out = net(torch.from_numpy(x))
    assert set(out) >= {"taggram", "logits", "embedding", "pool5"} and out["logits"].shape == (1, 50)
    assert np.abs(out["logits"].numpy() - ref).max() <= 1e-4 * np.abs(ref).max()
    np.testing.assert_allclose(out["taggram"].numpy(), 1 / (1 + np.exp(-ref)), atol=1e-5)


def test_bad_model_name_and_input_shape_are_refused():
    from classify.musicnn import WeightsError

    with pytest.raises(WeightsError, match="choose one of"):
        load_musicnn("MSD_musicnn_big")
    with pytest.raises(ValueError, match=r"\[N, frames, 96\]"):
        load_musicnn("MTT_vgg")(torch.zeros(1, 187, 128))
