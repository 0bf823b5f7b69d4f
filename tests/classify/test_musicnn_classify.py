"""MusiCNN/VGG as classify architectures, the FID/novelty extractor, and `classify weights fetch musicnn`."""
from __future__ import annotations

import hashlib
import subprocess

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from tests.support.musicnn import wheel_path

from classify.archs import build_model, set_train_mode
from classify.cli import cli
from classify.musicnn import images_to_input, load_musicnn
from stylegan_ada.musicnn.weights import WHEEL_SHA256


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (2, 3, 64, 64), generator=g, dtype=torch.uint8)


def test_freeze_model_averages_patch_logits_of_the_pretrained_network(images):
    built = build_model("musicnn_msd", 4, "freeze", "imagenet")
    assert built.info["trainable_params"] == 200 * 4 + 4
    set_train_mode(built, False)
    with torch.no_grad():
        ours = built.model(images.float() / 255)                      # what classify feeds (mean 0, std 1)
        net = load_musicnn("MSD_musicnn")
        patches = images_to_input(images)                             # [2, 3, 187, 96]
        emb = net(patches.flatten(0, 1))["penultimate"]
        fc = built.model.fc
        per_patch = (emb @ fc.weight.T + fc.bias).view(2, 3, 4)
    assert ours.shape == (2, 4)
    torch.testing.assert_close(ours, per_patch.mean(dim=1), rtol=1e-4, atol=1e-5)


def test_whole_mode_trains_on_one_patch_and_keeps_the_pretrained_norms(images):
    built = build_model("vgg_mtt", 3, "whole", "imagenet")
    assert built.info["trainable_params"] == built.info["params"]
    set_train_mode(built, True)
    bn = built.model.backbone.bns[0]
    before = bn.running_mean.clone()
    seen = []
    hook = built.model.backbone.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape))
    built.model(images.float() / 255).sum().backward()
    hook.remove()
    assert seen == [torch.Size([2, 187, 96])]                         # one of the 3 patches per clip
    assert not bn.training and torch.equal(bn.running_mean, before)
    assert built.model.backbone.convs[0].weight.grad is not None


def test_musicnn_feature_extractor_is_the_patch_mean_of_penultimate(images, monkeypatch):
    from augment.novelty import _get_extractor
    from stylegan_ada.metrics import get_feature_extractor

    extractor, name = _get_extractor("musicnn", "cpu")
    assert name == "musicnn" and extractor is get_feature_extractor("musicnn")
    feats = extractor(images[:1])
    with torch.no_grad():
        ref = load_musicnn("MSD_musicnn")(images_to_input(images[:1])[0])["penultimate"].mean(0, keepdim=True)
    assert feats.shape == (1, 200)
    torch.testing.assert_close(feats, ref, rtol=1e-4, atol=1e-5)
    assert get_feature_extractor("auto").name != "musicnn"
    monkeypatch.setenv("STYLEGAN_ADA_FEATURES", "musicnn")         # what 'auto' means when set
    assert get_feature_extractor("auto") is extractor


def _fetch(*args: str):
    return CliRunner().invoke(cli, ["weights", "fetch", *args])


def test_fetch_from_file_verifies_and_copies_into_the_cache(tmp_path, monkeypatch):
    source = wheel_path()
    monkeypatch.setenv("AUGMENT_CACHE", str(tmp_path / "cache"))
    result = _fetch("musicnn", "--from", str(source))
    assert result.exit_code == 0, result.output
    copied = tmp_path / "cache" / "musicnn-0.1.0-py3-none-any.whl"
    assert hashlib.sha256(copied.read_bytes()).hexdigest() == WHEEL_SHA256
    bad = tmp_path / "fake.whl"
    bad.write_bytes(b"PK\x03\x04 not the wheel")
    result = _fetch("musicnn", "--from", str(bad))
    assert result.exit_code == 2 and "is not the musicnn 0.1.0 wheel" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert _fetch("vggish").exit_code == 2


def test_fetch_offline_says_what_to_run_and_loading_says_how_to_fetch(tmp_path, monkeypatch):
    from stylegan_ada import pretrained

    monkeypatch.setenv("AUGMENT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(pretrained, "REPO_PRETRAINED_DIR", tmp_path / "repo")
    calls = []

    def no_network(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version (network unreachable)")

    monkeypatch.setattr(subprocess, "run", no_network)
    result = _fetch("musicnn")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "pip download --no-deps musicnn==0.1.0 -d DIR" in result.output and "--from DIR/" in result.output
    assert calls and calls[0][1:5] == ["-m", "pip", "download", "--no-deps"]
    result = CliRunner().invoke(cli, ["archs"])
    assert "not fetched (run `classify weights fetch musicnn`)" in result.output
    from augment.errors import UserError

    with pytest.raises(UserError, match="classify weights fetch musicnn"):
        build_model("musicnn_mtt", 2, "freeze", "imagenet")
    assert np.isfinite(build_model("musicnn_mtt", 2, "whole", "none").model.fc.weight.detach().numpy()).all()
