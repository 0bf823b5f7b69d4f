"""`classify eval --task regression` and the regression baseline: scores against a hand case and SciPy/sklearn, the
end-to-end run on a tiny continuous workspace, and model choice that never sees test labels."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from augment.workspace import SplitRow, Workspace, write_workspace
from classify.regression import regression_metrics
from tests.support.workspaces import make_image_workspace


def _classify(*args: str | Path):
    from classify.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def test_metrics_of_a_hand_computed_case():
    m = regression_metrics([1, 2, 3, 4], [2, 2, 3, 5])
    # errors 1, 0, 0, 1; SS_tot of the truth = 5, SS_res = 2
    assert m["mae"] == pytest.approx(0.5) and m["rmse"] == pytest.approx(math.sqrt(0.5))
    assert m["r2"] == pytest.approx(1 - 2 / 5)
    assert m["pearson"] == pytest.approx(5 / math.sqrt(30))            # cov 5, var 6 and 5 (sums of squares)
    assert m["spearman"] == pytest.approx(4.5 / math.sqrt(4.5 * 5))    # ranks of the prediction 1.5 1.5 3 4
    assert m["n"] == 4


def test_metrics_agree_with_scipy_and_sklearn():
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import mean_absolute_error, r2_score

    rng = np.random.default_rng(1)
    t = rng.normal(5, 2, 40)
    p = t + rng.normal(0, 1, 40)
    m = regression_metrics(t, p)
    assert m["mae"] == pytest.approx(mean_absolute_error(t, p))
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((t - p) ** 2)))
    assert m["r2"] == pytest.approx(r2_score(t, p))
    assert (m["spearman"], m["spearman_p"]) == pytest.approx(tuple(spearmanr(t, p)))
    assert (m["pearson"], m["pearson_p"]) == pytest.approx(tuple(pearsonr(t, p)))
    flat = regression_metrics(t, np.full(40, 5.0))
    assert flat["pearson"] is None and flat["spearman"] is None      # undefined, and JSON has no NaN
    json.dumps(flat, allow_nan=False)


def test_scores_are_in_target_units_and_per_clip_for_segments():
    from classify.regression import score_split

    info = {"target_scale": {"mean": 10.0, "sd": 2.0}}
    # standardised outputs 0, 1 -> 10, 12; labels likewise
    pred, true, m = score_split(np.array([[0.0], [1.0]]), np.array([0.0, 0.0]), 0.5, info)
    assert list(pred) == [10.0, 12.0] and list(true) == [10.0, 10.0] and m["mae"] == pytest.approx(1.0)
    one = {"target_scale": {"mean": 0.0, "sd": 1.0}}
    _, _, m = score_split(np.array([1.0, 3.0, 2.0, 2.0]), np.array([2.0, 2.0, 5.0, 5.0]), 0.1, one,
                          ["a", "a", "b", "b"])
    # clips: a predicts mean(1, 3) = 2 (true 2), b predicts 2 (true 5) -> MAE (0 + 3) / 2; per segment (1+1+3+3) / 4
    assert m["mae"] == pytest.approx(1.5) and m["n_clips"] == 2 and m["per_segment"]["mae"] == pytest.approx(2.0)


@pytest.fixture(scope="module")
def reg_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A tiny continuous workspace: the image workspace's 3 brightness classes as bins, targets rising with them."""
    root = tmp_path_factory.mktemp("regws")
    base = make_image_workspace(root, ("q1", "q2", "q3"), resolution=16, counts={"train": 8, "val": 4, "test": 4})
    rows = [SplitRow(**{**r.__dict__, "target": 2.0 * base.classes.index(r.cls) + 0.1 * k})
            for k, r in enumerate(base.rows())]
    write_workspace(root, dataset="synthetic-test", options={"continuous": True}, kind="images", classes=base.classes,
                    image={"resolution": 16, "channels": 3}, mel=None, rows=rows,
                    extra={"task": "regression", "target": "valence"})
    return Workspace.load(root)


def test_eval_regression_end_to_end(reg_ws: Workspace, one_torch_thread):
    from sklearn.metrics import mean_absolute_error, r2_score

    r = _classify("eval", "-w", reg_ws.root, "--arch", "small_cnn", "--epochs", "2", "--seeds", "0,1", "--lr", "0.01",
                  "--input-size", "16", "--batch-size", "8", "--quiet")
    assert r.exit_code == 0, r.output
    assert "test MAE" in r.output
    runs = sorted(p for p in (reg_ws.results_dir).glob("0000*-real-small_cnn-*") if p.is_dir())
    assert len(runs) == 2
    for run in runs:
        m = json.loads((run / "metrics.json").read_text())
        assert m["task"] == "regression" and m["target"] == "valence" and m["model"]["outputs"] == 1
        # the best epoch has the lowest val loss (selection on val only)
        losses = [h["val_loss"] for h in m["history"]]
        assert m["best_epoch"] == 1 + int(np.argmin(losses))
        with open(run / "predictions.csv", newline="") as f:
            pred = [row for row in csv.DictReader(f)]
        for split in ("val", "test"):
            t = [float(x["true"]) for x in pred if x["split"] == split]
            p = [float(x["pred"]) for x in pred if x["split"] == split]
            assert m[split]["mae"] == pytest.approx(mean_absolute_error(t, p), abs=1e-4)
            assert m[split]["r2"] == pytest.approx(r2_score(t, p), abs=1e-3)
            # the loss is the MSE of the target standardised by the train split's mean and sd
            train = [x.target for x in reg_ws.rows() if x.split == "train"]
            assert m["data"]["target_scale"] == pytest.approx({"mean": np.mean(train), "sd": np.std(train)})
            z = (np.array(t) - np.array(p)) / np.std(train)
            assert m[split]["loss"] == pytest.approx(np.mean(z ** 2), rel=1e-3)
        truth = {reg_ws.root / x.image: x.target for x in reg_ws.rows()}
        assert all(float(x["true"]) == pytest.approx(truth[reg_ws.root / x["image"]]) for x in pred)
        assert (run / "scatter.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert not (run / "confusion_matrix.png").exists()
    table = next((reg_ws.results_dir / "tables").glob("eval-*.md")).read_text()
    test_row = next(line for line in table.splitlines() if "| test |" in line)
    maes = [json.loads((run / "metrics.json").read_text())["test"]["mae"] for run in runs]
    assert f"{np.mean(maes):.3f} ± {np.std(maes, ddof=1):.3f}" in test_row      # mean ± sd over the seeds
    r = _classify("compare", "-w", reg_ws.root, "--runs-a", runs[0].name, "--runs-b", runs[1].name)
    assert r.exit_code == 2 and "is a regression run" in r.output and r.output.count("\n") == 1, r.output


def test_task_and_loss_mistakes_are_one_line_errors(reg_ws: Workspace, tmp_path):
    cls_ws = make_image_workspace(tmp_path / "cls", resolution=16)
    for ws, extra, says in ((reg_ws, ("--task", "classification"), "continuous target"),
                            (reg_ws, ("--train", "synthetic"), "--train real"),
                            (cls_ws, ("--task", "regression"), "--continuous"),
                            (cls_ws, ("--loss", "l1"), "--loss l1 applies to --task regression")):
        before = sorted(ws.results_dir.glob("*"))
        r = _classify("eval", "-w", ws.root, "--epochs", "1", "--seeds", "0", *extra)
        assert r.exit_code == 2 and says in r.output and r.output.strip().count("\n") == 0, r.output
        assert sorted(ws.results_dir.glob("*")) == before           # refused before any training


def test_l1_loss_trains_against_float_targets():
    import torch

    from classify.trainer import output_loss

    out, y = torch.tensor([[1.0], [3.0]]), torch.tensor([2.0, 2.0], dtype=torch.float64)
    assert float(output_loss(out, y, "l1")) == pytest.approx(1.0)
    assert float(output_loss(out, y, "mse")) == pytest.approx(1.0)
    assert float(output_loss(torch.tensor([[0.0], [4.0]]), y, "mse")) == pytest.approx(4.0)


def test_every_head_becomes_one_unbounded_output():
    import torch

    from classify.archs import build_model
    from classify.regression import to_regressor

    for arch in ("small_cnn", "squeezenet1_0"):
        built = to_regressor(build_model(arch, 3, "freeze", "none"))
        head = built.model.get_submodule(built.head_names[0])
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.constant_(head.bias, -2.0)
        built.model.eval()
        with torch.no_grad():
            out = built.model(torch.zeros(2, 3, 64, 64))
        assert out.shape == (2, 1) and torch.allclose(out, torch.full((2, 1), -2.0))    # squeezenet: no ReLU
        assert all(p.requires_grad == any(p is q for q in head.parameters()) for p in built.model.parameters())


def test_baseline_selection_never_sees_test_labels():
    from sklearn.metrics import mean_absolute_error

    from classify.baseline.regressors import fit_and_score

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = 2 * X[:, 0] + np.sin(3 * X[:, 1]) + 0.1 * rng.normal(size=60)
    strata = np.digitize(y, np.quantile(y, [0.2, 0.4, 0.6, 0.8])).astype(str)
    is_test = np.zeros(60, dtype=bool)
    is_test[::4] = True
    models = ("svm_linear", "knn", "random_forest", "extra_trees")
    kw = dict(seed=0, folds=3, trees=10, jobs=1)
    chosen, results, preds = fit_and_score(X, y, strata, is_test, models, **kw)
    permuted = y.copy()
    permuted[is_test] = rng.permutation(y[is_test])[::-1] + 5        # other test labels, train+val untouched
    chosen2, results2, _ = fit_and_score(X, permuted, strata, is_test, models, **kw)
    assert chosen2 == chosen == max(models, key=lambda n: results[n]["cv_r2"])
    assert [results2[n]["cv_r2"] for n in models] == [results[n]["cv_r2"] for n in models]
    assert [results2[n]["best_params"] for n in models] == [results[n]["best_params"] for n in models]
    assert results2[chosen]["test"]["mae"] != results[chosen]["test"]["mae"]     # the test scores did change
    assert results[chosen]["test"]["mae"] == pytest.approx(mean_absolute_error(y[is_test], preds[chosen]))
    assert results["svm_linear"]["cv_r2"] > 0.5      # the signal is there (2·x0 dominates)
