"""`classify eval` end to end with small_cnn on tiny workspaces: real, synthetic, real+synthetic, guards, bad input."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from augment.io_utils import sha256_file
from classify.cli import cli
from tests.support.workspaces import copy_workspace, make_image_workspace, write_synthetic

FAST = ["--arch", "small_cnn", "--epochs", "2", "--input-size", "32", "--lr", "0.05", "--quiet"]



pytestmark = pytest.mark.usefixtures("one_torch_thread")

@pytest.fixture(scope="module")
def base_ws(tmp_path_factory):
    return make_image_workspace(tmp_path_factory.mktemp("cls") / "ws", classes=("a", "b", "c"))


@pytest.fixture()
def ws(base_ws, tmp_path):
    return copy_workspace(base_ws, tmp_path / "ws").root


def add_synthetic(root: Path, per_class: int = 10, classes=("a", "b", "c"), size: int = 32) -> None:
    """A synthetic/ folder like `augment generate` writes (class folders + manifest.csv)."""
    rng = np.random.default_rng(1)
    images = {cls: [np.clip(60 + 50 * ci + rng.normal(0, 12, (size, size)), 0, 255).astype(np.uint8)
                    for _ in range(per_class)] for ci, cls in enumerate(classes)}
    write_synthetic(root / "synthetic", images, classes, snapshot="runs/x/network-snapshot-000010.safetensors")


def run(root: Path, *args: str):
    return CliRunner().invoke(cli, ["eval", "--workspace", str(root), *args], catch_exceptions=False)


def run_dirs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "results").iterdir() if p.name[:5].isdigit())


def test_real_eval_writes_every_output(ws):
    res = run(ws, "--train", "real", "--seeds", "0,1", "--arch", "small_cnn", "--epochs", "2", "--input-size", "32",
              "--lr-range-steps", "8", "--quiet")
    assert res.exit_code == 0, res.output + res.stderr
    dirs = run_dirs(ws)
    assert [d.name for d in dirs] == ["00000-real-small_cnn-whole-none-seed0", "00001-real-small_cnn-whole-none-seed1"]
    m = json.loads((dirs[0] / "metrics.json").read_text())
    for key in ("train", "arch", "mode", "pretrained", "seed", "test", "val", "n_train", "n_test", "config"):
        assert key in m
    assert (m["train"], m["arch"], m["mode"], m["pretrained"], m["seed"]) == ("real", "small_cnn", "whole", "none", 0)
    assert (m["n_train"], m["n_val"], m["n_test"]) == (18, 6, 12)
    for split in ("val", "test"):
        assert set(m[split]["per_class_f1"]) == {"a", "b", "c"} and 0 <= m[split]["macro_f1"] <= 1
        assert 0 <= m[split]["accuracy"] <= 1 and sum(map(sum, m[split]["confusion"])) == m[f"n_{split}"]
    # the LR range test ran (no --lr) and its pick is what trained
    assert m["lr_range"]["suggested_lr"] == m["lr"] and len(m["lr_range"]["lrs"]) >= 2
    assert m["history"][0]["lr"] == pytest.approx(m["lr"]) and len(m["history"]) == 2
    for name in ("confusion_matrix.png", "learning_curves.png", "report.txt", "run.json"):
        assert (dirs[0] / name).stat().st_size > 0
    with open(dirs[0] / "predictions.csv") as f:
        preds = list(csv.DictReader(f))
    assert len(preds) == 18 and {p["split"] for p in preds} == {"val", "test"}
    test_acc = np.mean([int(p["correct"]) for p in preds if p["split"] == "test"])
    assert test_acc == pytest.approx(m["test"]["accuracy"])
    run_record = json.loads((dirs[0] / "run.json").read_text())
    assert run_record["code_version"] and run_record["seeds"] == {"seed": 0}
    assert run_record["data_hashes"]["test_sha256"]
    with open(ws / "results" / "summary.csv") as f:
        summary = list(csv.DictReader(f))
    assert [r["run_id"] for r in summary] == [d.name for d in dirs]
    table = (ws / "results" / "tables" / "eval-00000-00001.md").read_text()
    assert "| real | small_cnn | whole | none | val |" in table and "| test |" in table and " ± " in table
    rows = json.loads((ws / "results" / "tables" / "eval-00000-00001.json").read_text())["rows"]
    f1s = [json.loads((d / "metrics.json").read_text())["test"]["macro_f1"] for d in dirs]
    test_row = next(r for r in rows if r["split"] == "test")
    assert test_row["macro_f1"] == pytest.approx(np.mean(f1s)) and test_row["macro_f1_sd"] == pytest.approx(
        np.std(f1s, ddof=1))


def test_same_seed_gives_same_result_even_with_augmentations(ws):
    for _ in range(2):
        assert run(ws, "--seeds", "3", "--time-shift", "0.2", "--spec-masks", "1", *FAST).exit_code == 0
    a, b = (json.loads((d / "metrics.json").read_text()) for d in run_dirs(ws))
    assert a["config"]["augment"] == {"time_shift": 0.2, "masks": 1, "mask_fraction": 0.1}
    for key in ("train_loss", "val_loss", "val_macro_f1"):
        assert [h[key] for h in a["history"]] == [h[key] for h in b["history"]]
    assert a["test"]["confusion"] == b["test"]["confusion"]


def test_synthetic_and_real_plus_synthetic(ws):
    add_synthetic(ws, per_class=10)
    res = run(ws, "--train", "synthetic", "--seeds", "0", *FAST)
    assert res.exit_code == 0, res.output + res.stderr
    res = run(ws, "--train", "real+synthetic", "--seeds", "0", *FAST)
    assert res.exit_code == 0, res.output + res.stderr
    syn, both = (json.loads((d / "metrics.json").read_text()) for d in run_dirs(ws))
    assert syn["train"] == "synthetic" and (syn["n_train"], syn["n_val"], syn["n_test"]) == (24, 6, 12)
    assert syn["data"]["synthetic_used"]["a"] == {"train": 8, "val": 2} and syn["data"]["synthetic_manifest_sha256"]
    assert both["train"] == "real+synthetic" and (both["n_train"], both["n_val"]) == (18 + 24, 6)
    with open(ws / "results" / "summary.csv") as f:
        assert [r["train"] for r in csv.DictReader(f)] == ["synthetic", "real+synthetic"]


def test_fewer_fakes_than_asked_are_split_80_20_with_a_warning(ws):
    add_synthetic(ws, per_class=5)
    res = run(ws, "--train", "synthetic", "--seeds", "0", "--synthetic-per-class", "1000", *FAST)
    assert res.exit_code == 0 and "warning: only 5 synthetic images for class a" in res.stderr
    m = json.loads((run_dirs(ws)[0] / "metrics.json").read_text())
    assert (m["n_train"], m["n_val"]) == (12, 3)


def test_training_file_equal_to_a_test_file_is_refused(ws):
    add_synthetic(ws, per_class=4)
    test_img = next((ws / "data" / "test" / "b").glob("*.png"))
    shutil.copy(test_img, ws / "synthetic" / "b" / "seed000099.png")
    for train in ("synthetic", "real+synthetic"):
        res = run(ws, "--train", train, "--seeds", "0", *FAST)
        assert res.exit_code == 2 and "identical to a test file" in res.stderr
    assert not (ws / "results").exists()


def test_real_training_image_equal_to_a_test_image_is_refused(tmp_path):
    root = tmp_path / "leaky"
    ws = make_image_workspace(root)
    train_img = ws.images("train", "a")[0]
    shutil.copy(ws.images("test", "a")[0], train_img)      # bytes now equal a test file
    # the manifest's recorded hash is what the guard compares; rebuild it as prepare would have
    from augment.workspace import SplitRow, write_workspace
    rows = [SplitRow(r.image, r.cls, r.split, r.source, r.source_sha256, sha256_file(root / r.image))
            for r in ws.rows()]
    write_workspace(root, dataset="x", options={}, kind="images", classes=ws.classes, image={"resolution": 32},
                    mel=None, rows=rows)
    res = run(root, "--seeds", "0", *FAST)
    assert res.exit_code == 2 and "identical to a test file" in res.stderr


@pytest.mark.parametrize("args, message", [
    (["--arch", "resnet9000"], "unknown architecture resnet9000"),
    (["--seeds", "0,x"], "--seeds must be"),
    (["--seeds", "1,1"], "--seeds must be distinct"),
    (["--seeds", ""], "--seeds must be"),
    (["--train", "synthetic"], "no synthetic images"),
    (["--arch", "inception_v3", "--pretrained", "none"], "--input-size 32 is too small for inception_v3"),
    (["--device", "tpu"], "--device must be"),
])
def test_bad_input_is_one_line_error(ws, args, message):
    res = run(ws, *FAST, *args)
    assert res.exit_code == 2, res.output
    assert message in res.stderr and "Traceback" not in res.stderr


def test_empty_synthetic_class_folder_is_refused(ws):
    add_synthetic(ws, per_class=3)
    for p in (ws / "synthetic" / "c").glob("*.png"):
        p.unlink()
    res = run(ws, "--train", "synthetic", "--seeds", "0", *FAST)
    assert res.exit_code == 2 and "no synthetic PNGs for class(es) c" in res.stderr


def test_synthetic_class_mismatch_is_refused(ws):
    add_synthetic(ws, per_class=3, classes=("a", "b", "c", "zzz"))
    res = run(ws, "--train", "synthetic", "--seeds", "0", *FAST)
    assert res.exit_code == 2 and "class mismatch" in res.stderr and "zzz" in res.stderr
    shutil.rmtree(ws / "synthetic" / "zzz")     # the manifest still lists zzz
    res = run(ws, "--train", "synthetic", "--seeds", "0", *FAST)
    assert res.exit_code == 2 and "class mismatch" in res.stderr and "manifest.csv" in res.stderr


def test_wrong_size_or_mode_image_is_resized_with_a_warning(ws):
    add_synthetic(ws, per_class=4)
    Image.fromarray(np.full((20, 24), 128, np.uint8), "L").save(ws / "synthetic" / "a" / "seed000001.png")
    res = run(ws, "--train", "synthetic", "--seeds", "0", *FAST)
    assert res.exit_code == 0, res.stderr
    assert "warning: 1 image(s) are not RGB 32x32 (e.g. seed000001.png (L 24x20))" in res.stderr


def test_missing_imagenet_weights_stop_before_training(ws, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_weights_here"))
    res = run(ws, "--arch", "squeezenet1_0", "--pretrained", "imagenet", "--seeds", "0", "--quiet")
    assert res.exit_code == 2 and "--pretrained none" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = run(ws, "--arch", "all", "--quiet")          # every missing file named in the one line
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "vgg16_bn-6c64b313.pth" in res.stderr and "inception_v3_google-0cc3c7bd.pth" in res.stderr
    assert not (ws / "results").exists()


def test_spec_augment_shapes_and_masks():
    import torch

    from classify.data import SpecAugment

    torch.manual_seed(0)
    x = torch.ones(3, 40, 50)
    assert torch.equal(SpecAugment()(x), x) and not SpecAugment().active
    y = SpecAugment(time_shift=0.2)(torch.arange(50.0).expand(3, 40, 50))
    assert y.shape == (3, 40, 50) and sorted(y[0, 0].tolist()) == list(range(50))
    z = SpecAugment(masks=2, mask_fraction=0.2)(x)
    assert z.shape == x.shape and (z == 0).any() and x.eq(1).all()


def test_eval_on_the_prepared_demo_workspace(demo_workspace, tmp_path):
    """A workspace written by `augment prepare` (demo audio -> 32 px spectrograms), both modes in one call."""
    root = tmp_path / "demo"
    shutil.copytree(demo_workspace.root, root, ignore=shutil.ignore_patterns("demo-audio"))
    res = run(root, "--seeds", "0", "--mode", "both", *FAST)
    assert res.exit_code == 0, res.output + res.stderr
    assert "warning: small_cnn --mode freeze without pretrained weights" in res.stderr
    freeze, whole = (json.loads((d / "metrics.json").read_text()) for d in run_dirs(root))
    assert (freeze["mode"], whole["mode"]) == ("freeze", "whole")
    assert freeze["config"]["cached_features"] and not whole["config"]["cached_features"]
    assert freeze["model"]["trainable_params"] < whole["model"]["trainable_params"]
    counts = demo_workspace.config["splits"]["counts"]
    assert freeze["n_test"] == sum(counts["test"].values()) and freeze["classes"] == demo_workspace.classes


def test_pretrained_freeze_computes_backbone_features_once_for_all_seeds(ws, monkeypatch):
    import classify.evaluate as evaluate

    calls = []
    real = evaluate.cache_features
    monkeypatch.setattr(evaluate, "cache_features", lambda *a, **k: calls.append(k["desc"]) or real(*a, **k))
    res = run(ws, "--arch", "efficientnet_lite0", "--mode", "freeze", "--pretrained", "imagenet", "--seeds", "0,1",
              "--epochs", "2", "--input-size", "32", "--lr", "0.01", "--quiet")
    assert res.exit_code == 0, res.output + res.stderr
    assert len(calls) == 3 and all("seed0" in c for c in calls)      # train, val, test of the first seed only
    a, b = (json.loads((d / "metrics.json").read_text()) for d in run_dirs(ws))
    assert (a["pretrained"], a["mode"], b["seed"]) == ("imagenet", "freeze", 1)
    assert a["model"]["trainable_params"] == 3 * 1280 + 3


def test_demo_step_runs_every_training_source(ws, monkeypatch):
    import classify.demo
    from classify.demo import demo_step

    from sklearn.metrics import f1_score

    monkeypatch.setattr(classify.demo, "DEMO_EPOCHS", 1)
    add_synthetic(ws, per_class=6)
    demo_step(ws, {"seed": 0})
    runs = {m["train"]: (m, d) for d in run_dirs(ws) for m in [json.loads((d / "metrics.json").read_text())]}
    assert list(runs) == ["real", "synthetic", "real+synthetic"]
    # what each source trained and validated on: 6 real train / 2 val per class; 6 fakes per class -> 5 + 1
    sizes = {t: (m["n_train"], m["n_val"], m["n_test"]) for t, (m, _) in runs.items()}
    assert sizes == {"real": (18, 6, 12), "synthetic": (15, 3, 12), "real+synthetic": (33, 6, 12)}
    for train, (m, d) in runs.items():
        with open(d / "predictions.csv") as f:
            preds = list(csv.DictReader(f))
        val_dirs = {p["image"].split("/")[0] for p in preds if p["split"] == "val"}
        assert val_dirs == ({"synthetic"} if train == "synthetic" else {"data"})     # real val kept with real data
        test = [p for p in preds if p["split"] == "test"]
        assert {p["image"].split("/")[1] for p in test} == {"test"} and len(test) == 12
        expected = f1_score([p["true"] for p in test], [p["pred"] for p in test], labels=["a", "b", "c"],
                            average="macro", zero_division=0)
        assert m["test"]["macro_f1"] == pytest.approx(expected)
