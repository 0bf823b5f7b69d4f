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
