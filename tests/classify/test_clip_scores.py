"""One answer per clip: segment probabilities averaged per clip (hand case, scikit-learn), and `classify eval` on a
tiny segmented workspace reporting per-clip scores as the headline and per-segment ones beside them."""
from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from sklearn.metrics import accuracy_score, f1_score

from classify.clip_scores import clip_f1_scorer, clip_mean, split_scores
from tests.support.audio import tone

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# clip x: 3 segments, clip y: 2, clip z: 1 (an unsegmented clip among them)
PROBS = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7],      # x: per segment 0, 1, 1; mean (0.4667, 0.5333) -> 1
                  [0.6, 0.4], [0.45, 0.55],                 # y: per segment 0, 1; mean (0.525, 0.475) -> 0
                  [0.1, 0.9]])                              # z: 1
LABELS = np.array([0, 0, 0, 0, 0, 1])
CLIPS = ["x", "x", "x", "y", "y", "z"]


def test_clip_mean_hand_case():
    probs, labels, clips = clip_mean(PROBS, LABELS, CLIPS)
    assert clips == ["x", "y", "z"] and labels.tolist() == [0, 0, 1]
    np.testing.assert_allclose(probs, [[1.4 / 3, 1.6 / 3], [0.525, 0.475], [0.1, 0.9]])


def test_split_scores_per_clip_headline_and_per_segment():
    m = split_scores(PROBS, LABELS, CLIPS, ["a", "b"], loss=0.5)
    clip_pred, clip_true = [1, 0, 1], [0, 0, 1]                        # argmax of the hand means above
    assert m["macro_f1"] == pytest.approx(f1_score(clip_true, clip_pred, average="macro"))
    assert m["accuracy"] == pytest.approx(2 / 3) and m["n"] == 3 and m["n_clips"] == 3 and m["loss"] == 0.5
    seg_pred = [0, 1, 1, 0, 1, 1]
    assert m["per_segment"]["macro_f1"] == pytest.approx(f1_score(LABELS, seg_pred, average="macro"))
    assert m["per_segment"]["accuracy"] == pytest.approx(accuracy_score(LABELS, seg_pred)) and \
        m["per_segment"]["n"] == 6
    assert m["per_segment"]["macro_f1"] != pytest.approx(m["macro_f1"])  # the hand case tells them apart
    score = clip_f1_scorer(CLIPS)
    assert score is not None and score(PROBS, LABELS) == pytest.approx(m["macro_f1"])


def test_one_image_per_clip_scores_as_before():
    clips = ["p", "q", "r", "s", "t", "u"]
    m = split_scores(PROBS, LABELS, clips, ["a", "b"], loss=0.1)
    assert "per_segment" not in m and clip_f1_scorer(clips) is None
    assert m["macro_f1"] == pytest.approx(f1_score(LABELS, PROBS.argmax(1), average="macro"))


def test_a_clip_with_two_labels_is_refused():
    from augment.errors import UserError

    with pytest.raises(UserError, match="two classes"):
        clip_mean(PROBS[:2], np.array([0, 1]), ["x", "x"])


def test_fit_keeps_the_epoch_with_the_best_val_score():
    import torch

    from classify.archs import build_model
    from classify.trainer import TrainConfig, fit

    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(8, 3, 16, 16), torch.arange(8) % 2)
    built = build_model("small_cnn", 2, "whole", "none")
    scores, states = iter([0.2, 0.9, 0.5]), []

    def val_score(probs, labels):                   # stands in for the per-clip macro-F1
        states.append({k: v.clone() for k, v in built.model.state_dict().items()})
        return next(scores)

    result = fit(built, data, data, TrainConfig(epochs=3, batch_size=4, lr=0.05), progress=False,
                 val_score=val_score)
    assert result.best_epoch == 2 and [h["val_macro_f1"] for h in result.history] == [0.2, 0.9, 0.5]
    assert all(torch.equal(v, states[1][k]) for k, v in built.model.state_dict().items())   # epoch 2's weights


# ---------------------------------------------------------------------------------------- classify eval
SR = 8000


@pytest.fixture(scope="module")
def segmented_ws(tmp_path_factory) -> Path:
    from augment.cli import cli

    tmp = tmp_path_factory.mktemp("clipscores")
    for ci, cls in enumerate(("a", "b")):
        for k in range(6):
            path = tmp / "audio" / cls / f"{cls}{k}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, tone(3.0, SR, freq=300.0 + 900.0 * ci + 20.0 * k, seed=10 * ci + k, noise=0.3), SR,
                     subtype="FLOAT")
    r = CliRunner().invoke(cli, ["prepare", "--dataset", "folder", "--audio-dir", str(tmp / "audio"), "--duration",
                                 "1", "--segments", "3", "--test-size", "2", "--resolution", "16", "-j", "1",
                                 "-w", str(tmp / "ws")])
    assert r.exit_code == 0, r.output
    return tmp / "ws"


def test_eval_on_segments_reports_per_clip_and_per_segment(segmented_ws):
    from classify.cli import cli

    res = CliRunner().invoke(cli, ["eval", "--workspace", str(segmented_ws), "--train", "real", "--seeds", "0",
                                   "--arch", "small_cnn", "--epochs", "3", "--input-size", "32", "--lr", "0.05",
                                   "--quiet"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    run = next(p for p in (segmented_ws / "results").iterdir() if p.name[:5].isdigit() and "small_cnn" in p.name)
    m = json.loads((run / "metrics.json").read_text())
    assert (f"test macro-F1 {m['test']['macro_f1']:.3f}, accuracy {m['test']['accuracy']:.3f} per clip "
            f"(per segment {m['test']['per_segment']['macro_f1']:.3f})") in res.output
    assert (m["n_train"], m["n_val"], m["n_test"]) == (18, 6, 12)           # images: 3 per clip
    with open(run / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    source = {}
    with open(segmented_ws / "splits.csv") as f:
        source = {r["image"]: r["source"] for r in csv.DictReader(f)}
    for split, n_clips in (("val", 2), ("test", 4)):
        mine = [r for r in rows if r["split"] == split]
        by_clip: dict[str, list] = defaultdict(list)
        for r in mine:
            by_clip[source[r["image"]]].append(r)
        assert len(by_clip) == n_clips and all(len(v) == 3 for v in by_clip.values())
        true = [v[0]["true"] for v in by_clip.values()]
        pred = ["ab"[int(np.argmax(np.mean([[float(r["p_a"]), float(r["p_b"])] for r in v], axis=0)))]
                for v in by_clip.values()]
        assert m[split]["macro_f1"] == pytest.approx(f1_score(true, pred, average="macro"), abs=1e-9)
        assert m[split]["n"] == n_clips and m[split]["n_clips"] == n_clips
        seg = m[split]["per_segment"]
        assert seg["n"] == 3 * n_clips
        assert seg["macro_f1"] == pytest.approx(f1_score([r["true"] for r in mine], [r["pred"] for r in mine],
                                                         average="macro"))
    # the best epoch is the one with the best per-clip val macro-F1, and it is what was kept
    history = [h["val_macro_f1"] for h in m["history"]]
    assert m["best_epoch"] == 1 + int(np.argmax(history))
    assert m["val"]["macro_f1"] == pytest.approx(history[m["best_epoch"] - 1])


def _clips_of(ws: Path) -> dict[str, str]:
    with open(ws / "splits.csv") as f:
        return {r["image"]: r["source"] for r in csv.DictReader(f)}


def test_baseline_on_segments_describes_each_window_and_scores_clips(segmented_ws, monkeypatch):
    import classify.baseline.run as baseline_run
    from classify.baseline.features import FeatureConfig, extract
    from classify.cli import cli

    fit, seen = baseline_run.fit_model, []

    def recording_fit(*args, **kwargs):
        seen.append(kwargs.get("groups"))
        return fit(*args, **kwargs)

    monkeypatch.setattr(baseline_run, "fit_model", recording_fit)
    res = CliRunner().invoke(cli, ["baseline", "--workspace", str(segmented_ws), "--models", "svm_linear,knn",
                                   "--folds", "2", "--jobs", "1", "--sr", "8000", "--quiet"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    source = _clips_of(segmented_ws)
    train_val = sorted(s for i, s in source.items() if not i.startswith("data/test/"))
    assert all(sorted(g.tolist()) == train_val for g in seen)              # CV folds grouped by clip
    run = next(p for p in (segmented_ws / "results").iterdir() if "baseline" in p.name)
    m = json.loads((run / "metrics.json").read_text())
    with np.load(next((segmented_ws / "cache" / "baseline").glob("features-*.npz"))) as z:
        cached = {k: z[k] for k in z.files}
    windows = json.loads((segmented_ws / "augment.json").read_text())["segments"]["windows"]
    assert len(cached) == len(windows) == 36                               # one feature vector per window
    audio = Path(json.loads((segmented_ws / "augment.json").read_text())["dataset"]["options"]["audio_dir"])
    with open(segmented_ws / "splits.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["split"] == "test" and ".seg01" in r["image"])
    assert windows[row["image"]] == [1.0, 2.0]                               # seconds 1-2 of its clip
    np.testing.assert_allclose(cached[f"{row['source_sha256']}@1.0-2.0"],
                               extract(audio / row["source"], FeatureConfig(sr=8000, offset=1.0, duration=1.0)))
    with open(run / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    by_clip: dict[str, list] = defaultdict(list)
    for r in rows:
        by_clip[r["source"]].append(r)
    assert len(by_clip) == 4 and m["models"]["svm_linear"]["test"]["n_clips"] == 4
    true = [v[0]["true"] for v in by_clip.values()]
    vote = [max("ab", key=[r["svm_linear"] for r in v].count) for v in by_clip.values()]   # 3 votes: no tie
    svm = m["models"]["svm_linear"]["test"]
    assert svm["macro_f1"] == pytest.approx(f1_score(true, vote, average="macro"))
    for name in ("svm_linear", "knn"):
        seg = m["models"][name]["test"]["per_segment"]
        assert seg["n"] == 12 and seg["macro_f1"] == pytest.approx(
            f1_score([r["true"] for r in rows], [r[name] for r in rows], average="macro"))
