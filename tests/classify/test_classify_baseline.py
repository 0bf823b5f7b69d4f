"""`classify baseline`: librosa features of the source audio -> classic classifiers, cached and scored on test."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from PIL import Image

from augment.audio.image_mapping import mapping_dict
from augment.audio.mel import MelConfig
from augment.io_utils import sha256_file
from augment.workspace import SplitRow, write_workspace
from classify.baseline.features import feature_names
from classify.baseline.models import MODELS
from classify.cli import cli

SR = 8000
COUNTS = {"train": 8, "val": 2, "test": 4}


def _tone(cls: str, k: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(1.0 * SR)) / SR
    if cls == "low":
        y = np.sin(2 * np.pi * (150 + 10 * k) * t)
    elif cls == "high":
        y = np.sin(2 * np.pi * (2500 + 30 * k) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    else:
        y = rng.normal(0, 0.5, t.size)
    return (0.5 * y + rng.normal(0, 0.02, t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def audio_ws(tmp_path_factory):
    """An audio workspace whose manifest points at real (synthesized) source clips."""
    base = tmp_path_factory.mktemp("baseline")
    audio_dir, root = base / "audio", base / "ws"
    rng = np.random.default_rng(0)
    rows = []
    for cls in ("low", "high", "noise"):
        for split, n in COUNTS.items():
            for k in range(n):
                src = audio_dir / cls / f"{split}{k}.wav"
                src.parent.mkdir(parents=True, exist_ok=True)
                sf.write(src, _tone(cls, k, rng), SR)
                img = root / "data" / split / cls / f"{split}{k}.png"
                img.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(img)
                rows.append(SplitRow(img.relative_to(root).as_posix(), cls, split, f"{cls}/{src.name}",
                                     sha256_file(src), sha256_file(img)))
    mel = MelConfig(sr=SR, duration=1.0, n_fft=256, hop=64, n_mels=32)
    write_workspace(root, dataset="tones", options={"audio_dir": str(audio_dir)}, kind="audio",
                    classes=["low", "high", "noise"],
                    image={"resolution": 8, "channels": 3, "mapping": mapping_dict(mel.top_db, (32, mel.n_frames))},
                    mel=mel.to_dict(), rows=rows)
    return root


def run(root: Path, *args: str):
    return CliRunner().invoke(cli, ["baseline", "--workspace", str(root), "--sr", str(SR), "--jobs", "1", "--trees", "10", "--folds", "3",
                                    "--quiet",
                                    *args], catch_exceptions=False)


def test_baseline_scores_every_model_and_caches_features(audio_ws, monkeypatch):
    res = run(audio_ws)
    assert res.exit_code == 0, res.output + res.stderr
    run_dir = next(p for p in (audio_ws / "results").iterdir() if "baseline" in p.name)
    m = json.loads((run_dir / "metrics.json").read_text())
    assert list(m["models"]) == list(MODELS) and (m["n_train"], m["n_test"]) == (30, 12)
    assert len(m["config"]["feature_names"]) == len(feature_names()) == 89
    for name, r in m["models"].items():
        assert r["test"]["macro_f1"] >= 0.9, (name, r["test"])        # tones vs noise are easy
        assert r["best_params"] and 0 <= r["cv_macro_f1"] <= 1
    assert "| svm_rbf |" in (run_dir / "table.md").read_text() and m["config"]["cv_folds"] == 3
    assert (run_dir / "confusion_matrix.png").stat().st_size > 0
    with open(run_dir / "predictions.csv") as f:
        assert len(list(csv.DictReader(f))) == 12
    with open(audio_ws / "results" / "summary.csv") as f:
        summary = [r for r in csv.DictReader(f) if r["kind"] == "baseline"]
    assert [r["arch"] for r in summary[-5:]] == list(MODELS)
    assert len(list((audio_ws / "cache" / "baseline").glob("features-*.npz"))) == 1

    # second run: every feature comes from the cache (extraction would fail loudly)
    import classify.baseline.features as features

    monkeypatch.setattr(features, "extract", lambda *a, **k: (_ for _ in ()).throw(AssertionError("not cached")))
    res = run(audio_ws, "--models", "knn")
    assert res.exit_code == 0, res.output + res.stderr


def test_baseline_bad_input(audio_ws, tmp_path):
    res = run(audio_ws, "--models", "knn,deep_forest")
    assert res.exit_code == 2 and "unknown baseline model deep_forest" in res.stderr
    res = run(audio_ws, "--audio-dir", str(tmp_path / "nowhere"))
    assert res.exit_code == 2 and "not found" in res.stderr


def test_baseline_refuses_changed_source_audio(audio_ws, tmp_path):
    import shutil

    moved = tmp_path / "audio"
    shutil.copytree(json.loads((audio_ws / "augment.json").read_text())["dataset"]["options"]["audio_dir"], moved)
    sf.write(moved / "low" / "train0.wav", np.zeros(SR, np.float32), SR)
    res = run(audio_ws, "--audio-dir", str(moved), "--models", "knn")
    assert res.exit_code == 2 and "changed since `augment prepare`" in res.stderr


def test_baseline_needs_an_audio_workspace(tmp_path):
    from tests.support.workspaces import make_image_workspace

    ws = make_image_workspace(tmp_path / "img")
    res = run(ws.root)
    assert res.exit_code == 2 and "needs source audio" in res.stderr
