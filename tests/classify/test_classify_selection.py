"""Nothing is chosen on the test split: with the test labels permuted, every choice stays the same."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from augment.workspace import SplitRow, Workspace, write_workspace
from classify.baseline.run import select_model
from classify.cli import cli
from tests.support.workspaces import make_image_workspace
from tests.classify.test_classify_baseline import audio_ws  # noqa: F401  (module fixture: tone clips with real source audio)
from tests.classify.test_classify_baseline import run as run_baseline

pytestmark = pytest.mark.usefixtures("one_torch_thread", "no_figures")


@pytest.fixture()
def no_figures(monkeypatch):
    """The figures are not under test here and cost most of a tiny run's CPU time."""
    import classify.baseline.run as baseline_run
    import classify.evaluate as evaluate

    for module, name in ((evaluate, "plot_confusion"), (evaluate, "plot_learning_curves"),
                         (baseline_run, "plot_confusion")):
        monkeypatch.setattr(module, name, lambda *a, **k: None)


def permute_test_labels(src: Path, dst: Path) -> Path:
    """A copy of a workspace whose test clips carry the next class's label (every test label wrong)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("results"))      # the feature cache is keyed by source
    ws = Workspace.load(dst)
    nxt = {c: ws.classes[(i + 1) % len(ws.classes)] for i, c in enumerate(ws.classes)}
    rows = [SplitRow(r.image, nxt[r.cls] if r.split == "test" else r.cls, r.split, r.source, r.source_sha256,
                     r.image_sha256) for r in ws.rows()]
    write_workspace(dst, dataset=ws.dataset_name, options=ws.config["dataset"]["options"], kind=ws.config["kind"],
                    classes=ws.classes, image=ws.config["image"], mel=ws.config["mel"], rows=rows)
    return dst


def only_run(root: Path, marker: str) -> dict:
    d = next(p for p in (root / "results").iterdir() if marker in p.name)
    return json.loads((d / "metrics.json").read_text())


def test_select_model_uses_cv_not_test():
    results = {"svm_rbf": {"cv_macro_f1": 0.46, "test": {"macro_f1": 0.41}},
               "extra_trees": {"cv_macro_f1": 0.39, "test": {"macro_f1": 0.50}},
               "knn": {"cv_macro_f1": 0.46, "test": {"macro_f1": 0.45}}}
    assert select_model(results) == "svm_rbf"              # best CV; ties keep the first listed


def test_baseline_choices_ignore_test_labels(audio_ws, tmp_path, monkeypatch):  # noqa: F811
    import classify.baseline.run as baseline_run

    res = run_baseline(audio_ws, "--models", "svm_linear,knn")
    assert res.exit_code == 0, res.output + res.stderr
    permuted = permute_test_labels(audio_ws, tmp_path / "permuted")
    fit = baseline_run.fit_model

    def fit_while_another_run_finishes(*args, **kwargs):
        (permuted / "results" / "00000-real-small_cnn-whole-none-seed0").mkdir(parents=True, exist_ok=True)
        return fit(*args, **kwargs)

    monkeypatch.setattr(baseline_run, "fit_model", fit_while_another_run_finishes)
    res = run_baseline(permuted, "--models", "svm_linear,knn")
    assert res.exit_code == 0, res.output + res.stderr
    a, b = only_run(audio_ws, "baseline"), only_run(permuted, "baseline")
    assert b["run_id"].startswith("00001-")          # numbered when written: no clash with the run made meanwhile
    cv = {name: r["cv_macro_f1"] for name, r in a["models"].items()}
    assert a["selected"] == max(cv, key=cv.get) and f"selected {a['selected']} by CV" in res.output
    assert b["selected"] == a["selected"]
    for name in a["models"]:
        assert b["models"][name]["best_params"] == a["models"][name]["best_params"]
        assert b["models"][name]["cv_macro_f1"] == a["models"][name]["cv_macro_f1"]
        assert b["models"][name]["test"]["macro_f1"] != a["models"][name]["test"]["macro_f1"]   # labels did change
    # the recorded test scores are scikit-learn's on the written predictions (class order low, high, noise)
    with open(next((audio_ws / "results").glob("*baseline*/predictions.csv"))) as f:
        preds = list(csv.DictReader(f))
    for name, r in a["models"].items():
        truth, pred = [p["true"] for p in preds], [p[name] for p in preds]
        prec, rec, f1, _ = precision_recall_fscore_support(truth, pred, labels=a["classes"], zero_division=0)
        assert r["test"]["macro_precision"] == pytest.approx(prec.mean())
        assert r["test"]["macro_recall"] == pytest.approx(rec.mean())
        assert [r["test"]["per_class_f1"][c] for c in a["classes"]] == pytest.approx(list(f1))
        assert r["test"]["confusion"] == confusion_matrix(truth, pred, labels=a["classes"]).tolist()
    table = next((audio_ws / "results").glob("*baseline*/table.md")).read_text()
    assert f"| {a['selected']} **(selected)** |" in table and table.count("(selected)") == 1


def test_eval_choices_ignore_test_labels(tmp_path):
    ws = make_image_workspace(tmp_path / "ws", counts={"train": 6, "val": 3, "test": 4})
    permuted = permute_test_labels(ws.root, tmp_path / "permuted")
    args = ["--arch", "small_cnn", "--epochs", "4", "--input-size", "32", "--lr", "0.05", "--seeds", "0", "--quiet"]
    for root in (ws.root, permuted):
        res = CliRunner().invoke(cli, ["eval", "-w", str(root), *args], catch_exceptions=False)
        assert res.exit_code == 0, res.output + res.stderr
        assert "best test" not in res.output
    a, b = only_run(ws.root, "seed0"), only_run(permuted, "seed0")
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert a["lr"] == b["lr"] and a["best_epoch"] == b["best_epoch"] and strip(a["history"]) == strip(b["history"])
    assert a["val"] == b["val"]
    assert a["test"]["confusion"] != b["test"]["confusion"]                      # the permutation took effect
    assert len({e["val_macro_f1"] for e in a["history"]}) > 1                     # the epoch choice was a real one
