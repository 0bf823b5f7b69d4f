"""FID/KID maths, feature extractors (EfficientNet-Lite0 offline, Inception-v3 from local files), evaluation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylegan_ada.metrics import (EfficientNetLite0Extractor, FeatureExtractor, compute_fid_kid, evaluate_generator,
                                  feature_statistics, frechet_distance, get_feature_extractor, kernel_distance)
from stylegan_ada.metrics import evaluate as evaluate_mod
from stylegan_ada.metrics import extractors as extractors_mod
from stylegan_ada.metrics import fid_kid as fid_kid_mod
from stylegan_ada.metrics.efficientnet_lite0 import build_efficientnet_lite0, normalize_uint8_range


def axis_points(mean, stds):
    """Points ±sqrt(d)·std_i·e_i around ``mean``: mean and biased covariance are exactly (mean, diag(std²))."""
    d = len(mean)
    axes = np.eye(d) * np.sqrt(d) * np.asarray(stds)
    offsets = np.concatenate([axes, -axes])
    return np.asarray(mean) + offsets


# ----------------------------------------------------------------------------------------------- FID / KID
def test_fid_analytic_identity_and_shift():
    real = axis_points([0.0, 1.0, 2.0], [1.0, 2.0, 0.5])
    fake = axis_points([1.0, 1.0, 0.0], [3.0, 2.0, 1.0])
    expected = (1 + 0 + 4) + (1 - 3) ** 2 + 0 + (0.5 - 1) ** 2  # |mu diff|^2 + sum (sigma_r - sigma_f)^2
    assert compute_fid_kid(real, fake)["fid"] == pytest.approx(expected, rel=1e-9)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 16))
    assert abs(compute_fid_kid(x, x)["fid"]) < 1e-8
    fids = [compute_fid_kid(x, x + shift)["fid"] for shift in (0.1, 0.5, 1.0)]
    assert fids == pytest.approx([16 * 0.01, 16 * 0.25, 16.0], rel=1e-6)  # covariances equal: only the mean term


def test_fid_eigh_matches_reference_sqrtm():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((400, 24)) @ rng.standard_normal((24, 24))
    b = rng.standard_normal((400, 24)) * 1.3 + 0.2
    (m1, s1), (m2, s2) = feature_statistics(a), feature_statistics(b)
    ours, ref = frechet_distance(m1, s1, m2, s2), frechet_distance(m1, s1, m2, s2, method="sqrtm")
    assert ours == pytest.approx(ref, rel=1e-12)  # measured ~1e-15 (docs/metrics.md)
    few = rng.standard_normal((10, 24))  # fewer samples than dims: singular covariance, still finite
    assert np.isfinite(compute_fid_kid(few, few + 1)["fid"])


def test_kid_known_case_same_distribution_and_shift():
    # 1-D features, kernel (x y + 1)^3: within-fake k(0,1)=1, within-real k(2,3)=343, cross mean 93/4.
    assert kernel_distance(np.array([[2.0], [3.0]]), np.array([[0.0], [1.0]])) == pytest.approx(1 + 343 - 46.5)
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((500, 16)), rng.standard_normal((500, 16))
    same = compute_fid_kid(a, b)["kid"]
    shifted = compute_fid_kid(a, b + 0.5)["kid"]
    assert shifted > 0.01 and abs(same) < 0.05 * shifted


def test_kid_subsets_deterministic_and_both_paths_agree(monkeypatch):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((60, 8)), rng.standard_normal((70, 8)) + 0.3
    full_kernel = kernel_distance(a, b, num_subsets=10, max_subset_size=40, seed=5)
    assert full_kernel == kernel_distance(a, b, num_subsets=10, max_subset_size=40, seed=5)
    assert full_kernel != kernel_distance(a, b, num_subsets=10, max_subset_size=40, seed=6)
    monkeypatch.setattr(fid_kid_mod, "_FULL_KERNEL_MAX", 0)
    assert kernel_distance(a, b, num_subsets=10, max_subset_size=40, seed=5) == pytest.approx(full_kernel, rel=1e-12)


def test_bad_feature_arrays_are_rejected():
    ok = np.zeros((4, 3))
    for bad in (np.zeros((4, 2)), np.zeros((1, 3)), np.full((4, 3), np.nan), np.zeros(5)):
        with pytest.raises(ValueError):
            compute_fid_kid(ok, bad)
    assert compute_fid_kid(torch.randn(5, 3), torch.randn(6, 3))["num_fake"] == 6  # torch tensors accepted


# ------------------------------------------------------------------------------------------- extractors
@pytest.fixture
def no_inception(monkeypatch, tmp_path):
    monkeypatch.delenv(extractors_mod.WEIGHTS_DIR_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


def test_efficientnet_lite0_weights_classify_real_photos(no_inception):
    from sklearn.datasets import load_sample_images

    net = get_feature_extractor("efficientnet-lite0").net  # shared with the other tests (loaded once)
    assert net._bn1.running_var.std() > 0.1  # real BN statistics, not the init values
    photos = torch.stack([torch.from_numpy(np.array(im)).permute(2, 0, 1) for im in load_sample_images().images])
    x = F.interpolate(photos.float(), size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        top = net(normalize_uint8_range(x)).argmax(1).tolist()
    assert top[0] in {442, 449, 483, 497, 538, 663, 698, 832}  # china.jpg: temple (bell cote, palace, ...)
    assert top[1] == 985  # flower.jpg: daisy
    head = build_efficientnet_lite0(pretrained=True, num_classes=7)
    assert head._fc.weight.shape == (7, 1280)
    assert torch.equal(head._conv_head.weight, net._conv_head.weight)


def test_auto_extractor_is_offline_efficientnet(no_inception):
    ext = get_feature_extractor("auto")
    assert isinstance(ext, EfficientNetLite0Extractor) and ext.name == "efficientnet-lite0"
    assert get_feature_extractor("efficientnet-lite0") is ext  # cached per process
    g = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=g)
    rgb[1] = rgb[1, :1]  # a grey image stored as RGB
    feats = ext(rgb)
    assert feats.shape == (2, 1280) and feats.dtype == torch.float32 and feats.abs().sum() > 0
    assert torch.allclose(ext(rgb[1:, :1]), feats[1:], atol=1e-4)  # grey input, batch-independent, deterministic
    with pytest.raises(ValueError, match="uint8"):
        ext(rgb.float())
    with pytest.raises(FileNotFoundError, match="pt_inception-2015-12-05"):
        get_feature_extractor("inception")
    with pytest.raises(ValueError, match="efficientnet-lite0"):
        get_feature_extractor("vgg")


def test_inception_preference_order(monkeypatch, tmp_path):
    monkeypatch.setenv(extractors_mod.WEIGHTS_DIR_ENV, str(tmp_path))
    assert extractors_mod.weight_dirs()[0] == tmp_path
    assert extractors_mod.find_weights("inception-fid") is None
    for variant in ("inception-torchvision", "inception-fid"):
        (tmp_path / extractors_mod._WEIGHT_FILES[variant][0]).write_bytes(b"")
        assert extractors_mod.find_weights(variant) is not None
    monkeypatch.setattr(extractors_mod, "_EXTRACTORS", {})
    with pytest.raises(ValueError, match="FID Inception"):  # 'auto' prefers the FID network (file is empty here)
        get_feature_extractor("auto")


def test_fid_inception_extractor_from_local_file(monkeypatch, tmp_path):
    from stylegan_ada.metrics import inception

    variant = "inception-fid"
    monkeypatch.setattr(extractors_mod, "_EXTRACTORS", {})  # keep the throw-away model out of the process cache
    monkeypatch.setenv(extractors_mod.WEIGHTS_DIR_ENV, str(tmp_path))
    build = inception.fid_inception_v3
    torch.manual_seed(0)
    weights = tmp_path / extractors_mod._WEIGHT_FILES[variant][0]
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in build().state_dict().items()}, weights)
    monkeypatch.setattr(extractors_mod.InceptionExtractor, "input_resolution", 75)  # smallest valid size: fast
    ext = get_feature_extractor("auto")
    assert ext.name == variant and ext.feature_dim == 2048
    assert ext(torch.zeros(1, 3, 16, 16, dtype=torch.uint8)).shape == (1, 2048)
    torch.save({"not": torch.zeros(1)}, weights)
    monkeypatch.setattr(extractors_mod, "_EXTRACTORS", {})
    with pytest.raises(ValueError, match="state dict"):
        get_feature_extractor(variant)


def test_fid_inception_blocks_pool_like_tensorflow():
    from torchvision.models import inception as tv

    from stylegan_ada.metrics.inception import FIDInceptionA, FIDInceptionEMaxPool

    torch.manual_seed(0)
    x = torch.randn(1, 8, 6, 6)
    ours, theirs = FIDInceptionA(8, pool_features=4).eval(), tv.InceptionA(8, pool_features=4).eval()
    theirs.load_state_dict(ours.state_dict())
    a, b = ours(x), theirs(x)
    assert torch.equal(a[:, :-4], b[:, :-4])  # only the pooling branch (last channels) differs ...
    assert torch.allclose(a[:, -4:, 1:-1, 1:-1], b[:, -4:, 1:-1, 1:-1], atol=1e-6)  # ... and only at the border
    assert not torch.allclose(a[:, -4:], b[:, -4:])
    ours_e, theirs_e = FIDInceptionEMaxPool(8).eval(), tv.InceptionE(8).eval()
    theirs_e.load_state_dict(ours_e.state_dict())
    a, b = ours_e(x), theirs_e(x)
    assert torch.equal(a[:, :-192], b[:, :-192]) and not torch.allclose(a[:, -192:], b[:, -192:])


# ------------------------------------------------------------------------------------- evaluate_generator
class PixelStats(FeatureExtractor):
    """Cheap weight-free extractor: 4x4 average-pooled pixels. Counts the images it saw."""

    name = cache_tag = "pixel-stats-test"
    feature_dim = 48
    input_resolution = 16

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros([]))
        self.seen = 0

    def normalize(self, x):
        return x / 127.5 - 1

    def embed(self, x):
        self.seen += x.shape[0]
        return F.adaptive_avg_pool2d(x, 4).flatten(1)


class ToyG(torch.nn.Module):
    z_dim, c_dim, img_resolution, img_channels = 8, 0, 16, 3

    def __init__(self, offset: float = 0.0):
        super().__init__()
        self.proj = torch.nn.Linear(8, 3 * 4 * 4)
        self.offset = offset

    def forward(self, z, c, noise_mode="random"):
        base = F.interpolate(torch.tanh(self.proj(z)).view(-1, 3, 4, 4), size=16, mode="bilinear")
        return (base + 0.05 * torch.randn_like(base) + self.offset).clamp(-1, 1)


def test_evaluate_generator_deterministic_cached_and_rng_neutral(tmp_path, monkeypatch):
    torch.manual_seed(0)
    G = ToyG()
    with torch.no_grad():
        reals = evaluate_mod.images_to_uint8(G(torch.randn(40, 8), None))
    ext = PixelStats()
    monkeypatch.setattr(evaluate_mod, "_REAL_CACHE", {})
    state = torch.get_rng_state()
    first = evaluate_generator(G, reals, num_gen=40, batch=16, device="cpu", extractor=ext, seed=3, cache_dir=tmp_path)
    assert torch.equal(torch.get_rng_state(), state)  # training's RNG untouched
    assert set(first) >= {"fid", "kid", "extractor", "num_real", "num_fake"} and first["extractor"] == ext.name
    assert ext.seen == 80
    again = evaluate_generator(G, reals, num_gen=40, batch=16, device="cpu", extractor=ext, seed=3)
    assert ext.seen == 120  # real features came from the cache
    assert (again["fid"], again["kid"]) == (first["fid"], first["kid"])
    monkeypatch.setattr(evaluate_mod, "_REAL_CACHE", {})  # a new process: the disk cache answers
    evaluate_generator(G, reals, num_gen=40, batch=16, device="cpu", extractor=ext, seed=3, cache_dir=tmp_path)
    assert ext.seen == 160 and len(list(tmp_path.glob("real-features-*.npy"))) == 1
    G.offset = 0.6  # the same generator, brighter: farther from the reals
    shifted = evaluate_generator(G, reals, num_gen=40, batch=16, device="cpu", extractor=ext, seed=3)
    assert shifted["fid"] > first["fid"] and shifted["kid"] > first["kid"]


def test_evaluate_generator_checks_labels_and_images():
    G = ToyG()
    G.c_dim = 2
    reals = torch.zeros(4, 3, 16, 16, dtype=torch.uint8)
    with pytest.raises(ValueError, match="conditional"):
        evaluate_generator(G, reals, num_gen=4, batch=2, device="cpu", extractor=PixelStats())
    with pytest.raises(ValueError, match="uint8"):
        evaluate_generator(ToyG(), reals.float(), num_gen=4, batch=2, device="cpu", extractor=PixelStats())
