"""Memorization check: copies of training images are flagged, novel fakes are not; reports; never the test split."""
from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from augment.cli import cli
from augment.io_utils import sha256_file
from augment.novelty import NoveltyOptions, check_novelty, nearest
from augment.synthetic import FakeRow, manifest_text
from augment.workspace import Workspace
from tests.support.workspaces import make_image_workspace, write_synthetic
from tests.support.workspaces import trained_workspace

RES = 32


def write_fakes(ws: Workspace, images: dict[str, list[np.ndarray]]) -> None:
    """A synthetic folder holding the given gray images (as augment generate would write them)."""
    write_synthetic(ws.synthetic_dir, images, ws.classes)


def gray(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


@pytest.fixture()
def ws(tmp_path):
    """Class a's fakes copy training images (plus slight noise); class b's fakes are unrelated noise."""
    ws = make_image_workspace(tmp_path / "ws", ("a", "b"), resolution=RES)
    rng = np.random.default_rng(1)
    copies = [np.clip(gray(p).astype(int) + rng.integers(-2, 3, (RES, RES)), 0, 255).astype(np.uint8)
              for p in ws.images("train", "a")[:3]]
    noise = [rng.integers(0, 256, (RES, RES), dtype=np.uint8) for _ in range(4)]
    write_fakes(ws, {"a": copies, "b": noise})
    return ws


def test_nearest_excludes_self_for_real_to_real():
    pts = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    dist, idx = nearest(pts, pts, exclude_self=True)
    assert np.allclose(dist, [1.0, np.sqrt(18.0), 1.0]) and idx.tolist() == [2, 2, 0]
    dist, idx = nearest(np.array([[3.0, 3.0]]), pts)
    assert np.isclose(dist[0], 1.0) and idx[0] == 1


def test_copies_are_flagged_novel_fakes_are_not(ws):
    report = check_novelty(ws, ws.synthetic_dir, NoveltyOptions(features="none", k=8), progress=False)
    by_class = {r.cls: r for r in report.classes}
    assert by_class["a"].near_copy.all() and not by_class["b"].near_copy.any()
    assert report.n_near_copies == 3 and "3 near-copies" in report.line()
    a = by_class["a"].measures["pixel"]
    assert (a.ratio < 0.1).all()  # within ±2 grey levels of a training image
    assert [ws.images("train", "a")[i] for i in a.fake_idx] == ws.images("train", "a")[:3]
    out = ws.synthetic_dir / "_novelty"
    summary = json.loads((out / "novelty.json").read_text())
    assert summary["near_copies"] == 3 and summary["classes"]["a"]["reals"] == 8  # 6 train + 2 val
    assert summary["classes"]["b"]["pixel"]["ratio"]["min"] > 0.5
    with open(out / "novelty.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7 and all(not r["pixel_nearest_real"].startswith("data/test/") for r in rows)
    assert [r["near_copy"] for r in rows] == ["1"] * 3 + ["0"] * 4
    with Image.open(out / "closest-a.png") as im:
        assert im.size == (2 * RES, 3 * RES)  # 3 fakes, each left of its nearest real
        pair = np.asarray(im.convert("L"))[:RES]
    assert np.abs(pair[:, :RES].astype(int) - pair[:, RES:].astype(int)).max() <= 2
    assert (out / "novelty-hist.png").stat().st_size > 1000


def test_never_compares_against_the_test_split(ws):
    test_imgs = [gray(p) for p in ws.images("test", "a")[:2]]
    shutil.rmtree(ws.synthetic_dir)
    write_fakes(ws, {"a": test_imgs})
    report = check_novelty(ws, ws.synthetic_dir, NoveltyOptions(features="none"), progress=False)
    nearest_reals = {ws.images(("train", "val"), "a")[i] for i in report.classes[0].measures["pixel"].fake_idx}
    assert not any("/test/" in str(p) for p in nearest_reals)
    assert report.classes[0].measures["pixel"].fake_nn.min() > 0


def test_cli_warns_about_near_copies(ws):
    result = CliRunner().invoke(cli, ["check-novelty", "-w", str(ws.root), "--features", "none", "-q"])
    assert result.exit_code == 0, result.output
    assert "warning: class a: 3 of 3 fakes (100%) are near-copies" in result.output
    assert "warning: class b" not in result.output and "novelty: 7 fakes of 2 class(es)" in result.output


@pytest.mark.parametrize("args, message", [
    (["--threshold", "0"], "--threshold must be"),
    (["--k", "0"], "--k must be"),
    (["--classes", "zzz"], "unknown class"),
])
def test_bad_options(ws, args, message):
    result = CliRunner().invoke(cli, ["check-novelty", "-w", str(ws.root), "--features", "none", *args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_without_fakes_says_to_generate(tmp_path):
    ws = make_image_workspace(tmp_path / "ws", ("a", "b"), resolution=RES)
    result = CliRunner().invoke(cli, ["check-novelty", "-w", str(ws.root), "--features", "none"])
    assert result.exit_code == 2 and "run `augment generate` first" in result.output


def _truth(fakes: np.ndarray, reals: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Nearest real (index, Euclidean distance) of each fake and the median leave-one-out real-to-real distance,
    by scipy."""
    from scipy.spatial.distance import cdist

    d = cdist(fakes, reals)
    rr = cdist(reals, reals)
    np.fill_diagonal(rr, np.inf)
    return d.argmin(1), d.min(1), float(np.median(rr.min(1)))


def test_generate_with_novelty_flag_measures_pixels_and_features(tmp_path, monkeypatch):
    from stylegan_ada.metrics import get_feature_extractor

    ext = get_feature_extractor("auto")  # what --novelty uses: the offline EfficientNet-Lite0 here
    monkeypatch.setattr(type(ext), "input_resolution", 64)  # the same network on smaller inputs: faster on CPU
    ws = trained_workspace(tmp_path / "ws", ("a", "b"), trained=("a",), counts={"train": 3, "val": 1, "test": 1})
    result = CliRunner().invoke(cli, ["generate", "-w", str(ws.root), "--n", "2", "--novelty", "-q"])
    assert result.exit_code == 0, result.output
    assert "novelty: 2 fakes of 1 class(es) checked against 4 real train/val images" in result.output
    summary = json.loads((ws.synthetic_dir / "_novelty" / "novelty.json").read_text())
    a = summary["classes"]["a"]
    assert summary["extractor"] == ext.name and a["fakes"] == 2 and a["reals"] == 4
    with open(ws.synthetic_dir / "_novelty" / "novelty.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # the truth: the PNGs on disk, the extractor run here, scipy's distances
    reals = ws.images(("train", "val"), "a")
    fake_gray = np.stack([gray(ws.synthetic_dir / r["file"]) for r in rows]).astype(np.float64)
    real_gray = np.stack([gray(p) for p in reals]).astype(np.float64)
    as_rgb = lambda g: torch.from_numpy(g.astype(np.uint8))[:, None].repeat(1, 3, 1, 1)  # noqa: E731
    spaces = {"pixel": (fake_gray.reshape(2, -1) / (255 * RES), real_gray.reshape(4, -1) / (255 * RES)),
              "feature": (ext(as_rgb(fake_gray)).numpy().astype(np.float64),
                          ext(as_rgb(real_gray)).numpy().astype(np.float64))}
    for name, (f, r) in spaces.items():
        idx, dist, yardstick = _truth(f, r)
        assert a[name]["yardstick_median_real_to_real"] == pytest.approx(yardstick, rel=1e-4), name
        for row, i, d in zip(rows, idx, dist):
            assert row[f"{name}_nearest_real"] == reals[i].relative_to(ws.root).as_posix(), name
            assert float(row[f"{name}_distance"]) == pytest.approx(d, rel=1e-4), name
            assert float(row[f"{name}_ratio"]) == pytest.approx(d / yardstick, rel=1e-4), name


def test_never_replaces_a_novelty_folder_it_did_not_write_nor_writes_into_a_workspace(ws):
    mine = ws.synthetic_dir / "_novelty" / "my-notes.txt"
    mine.parent.mkdir()
    mine.write_text("precious")
    result = CliRunner().invoke(cli, ["check-novelty", "-w", str(ws.root), "--features", "none", "-q"])
    assert result.exit_code == 2 and "did not write; it is never replaced" in result.output, result.output
    assert mine.read_text() == "precious"
    result = CliRunner().invoke(cli, ["check-novelty", "-w", str(ws.root), "--features", "none",
                                      "--synthetic", str(ws.root)])
    assert result.exit_code == 2 and "is a workspace" in result.output, result.output
    assert not (ws.root / "_novelty").exists()
