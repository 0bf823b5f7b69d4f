"""`augment train --features`: the feature extractor of the FID/KID at every snapshot, through the option path."""
from __future__ import annotations

import json
from types import SimpleNamespace

import torch

from stylegan_ada.training.data import ImageSet
from stylegan_ada.training.metrics_hook import evaluate
from tests.cli.test_train_cli import _invoke, _one_error_line, _started_run
from tests.support.networks import fixture_network
from tests.support.training import make_ws


def _dry(ws_root, *extra) -> dict:
    res = _invoke("-w", ws_root, "--class", "a", "--cfg", "tiny", "--device", "cpu", "--dry-run", *extra)
    assert res.exit_code == 0, res.output
    return json.loads(res.output[res.output.index("{"):])


def test_features_reach_the_training_options_and_the_record(tmp_path):
    ws = make_ws(tmp_path / "ws")
    cfg = _dry(ws.root)
    assert cfg["training"]["metrics_features"] == "auto" and cfg["args"]["features"] == "auto"
    cfg = _dry(ws.root, "--metrics", "fid", "--features", "musicnn")
    assert cfg["training"]["metrics_features"] == "musicnn" and cfg["args"]["features"] == "musicnn"


def test_an_unknown_extractor_is_one_error_line(tmp_path):
    ws = make_ws(tmp_path / "ws")
    res = _invoke("-w", ws.root, "--class", "a", "--cfg", "tiny", "--device", "cpu", "--dry-run",
                  "--features", "vgg19")
    assert _one_error_line(res) == ("error: --features must be one of auto, inception, inception-fid, "
                                    "inception-torchvision, efficientnet-lite0, musicnn, got 'vgg19'")


def test_a_resume_may_change_the_extractor_and_keeps_it_otherwise(tmp_path):
    ws = make_ws(tmp_path / "ws")
    _started_run(ws.root, "features", "efficientnet-lite0")  # TrainArgs fields
    res = _invoke("-w", ws.root, "--class", "a", "--resume", "--dry-run")
    assert json.loads(res.output[res.output.index("{"):])["training"]["metrics_features"] == "efficientnet-lite0"
    res = _invoke("-w", ws.root, "--class", "a", "--resume", "--features", "musicnn", "--dry-run")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output[res.output.index("{"):])["training"]["metrics_features"] == "musicnn"


def test_the_snapshot_metric_uses_the_chosen_extractor():
    G = fixture_network("G")
    res = G.img_resolution
    reals = ImageSet(torch.randint(0, 256, (6, G.img_channels, res, res), dtype=torch.uint8), torch.zeros(6, 0))
    logged: list[str] = []
    for name in ("efficientnet-lite0", "musicnn"):
        opts = SimpleNamespace(metrics_num_gen=4, metrics_features=name, batch_gpu=4, seed=0)  # the fields it reads
        out = evaluate(G, reals, opts, torch.device("cpu"), logged.append)
        assert out is not None and out["extractor"] == name, logged
        assert out["fid"] >= 0
    assert logged[-1].endswith("(extractor musicnn)")


def test_weights_missing_for_the_chosen_extractor_are_refused_before_training(tmp_path):
    ws = make_ws(tmp_path / "ws")
    empty = {"AUGMENT_CACHE": str(tmp_path / "cache"), "STYLEGAN_ADA_WEIGHTS_DIR": str(tmp_path / "weights"),
             "TORCH_HOME": str(tmp_path / "torch")}
    base = ("-w", ws.root, "--class", "a", "--cfg", "tiny", "--device", "cpu", "--metrics", "fid", "--kimg", "0.01")
    line = _one_error_line(_invoke(*base, "--features", "musicnn", env=empty))
    assert line.startswith("error: --features musicnn: the MusiCNN weights (the musicnn 0.1.0 wheel) are not at ")
    assert "classify weights fetch musicnn" in line and line.endswith("or choose another --features, or --metrics none")
    line = _one_error_line(_invoke(*base, "--features", "inception-fid", env=empty))
    assert line.startswith("error: --features inception-fid: Inception-v3 weights not found in ")
    assert not (ws.root / "runs").exists()  # refused before any run folder was made
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "musicnn-0.1.0-py3-none-any.whl").write_bytes(b"not a wheel")
    line = _one_error_line(_invoke(*base, "--features", "musicnn", "--dry-run", env=empty))
    assert "is not the musicnn 0.1.0 wheel" in line
    # without a metric nothing needs the extractor; the default 'auto' always has the shipped EfficientNet
    for extra in (("--metrics", "none", "--features", "musicnn"), ()):
        res = _invoke("-w", ws.root, "--class", "a", "--cfg", "tiny", "--device", "cpu", "--dry-run", *extra, env=empty)
        assert res.exit_code == 0, res.output
    res = _invoke(*base, "--dry-run", env=empty)
    assert res.exit_code == 0, res.output
