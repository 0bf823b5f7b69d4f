"""`classify baseline` on a continuous workspace: the same handcrafted features into regressors (SVR, k-NN, random
forest, extra trees), hyper-parameters and the selected model by cross-validated R² on train+val only.

The CV folds are stratified by the target's quantile bins (the workspace's classes), as the split was.
"""
from __future__ import annotations

import csv
import io
import time
from typing import Any, Sequence

import click
import numpy as np

from augment.io_utils import atomic_dir, atomic_write_json, atomic_write_text
from augment.provenance import code_version, now_iso, write_run_record
from classify.baseline.features import feature_names
from classify.baseline.models import MODELS, cv_folds
from classify.regression import SCORES, plot_scatter, regression_metrics, report_text, summary_row
from classify.results import append_summary, next_run_number, run_id

SELECTION = "highest cv_r2 on train+val (first listed wins ties)"


def _regressor(name: str, seed: int, trees: int) -> tuple[Any, dict[str, list]]:
    """The regressor named like its classifier in classify.baseline.models, and its grid."""
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.svm import SVR

    forest = {"reg__max_features": [1.0, "sqrt", 0.3], "reg__min_samples_leaf": [1, 3]}
    table = {
        "svm_linear": lambda: (SVR(kernel="linear"), {"reg__C": [0.01, 0.1, 1, 10]}),
        "svm_rbf": lambda: (SVR(kernel="rbf"), {"reg__C": [0.1, 1, 10, 100], "reg__gamma": ["scale", 0.01, 0.1]}),
        "knn": lambda: (KNeighborsRegressor(), {"reg__n_neighbors": [1, 3, 5, 9, 15],
                                                "reg__weights": ["uniform", "distance"]}),
        "random_forest": lambda: (RandomForestRegressor(n_estimators=trees, random_state=seed), forest),
        "extra_trees": lambda: (ExtraTreesRegressor(n_estimators=trees, random_state=seed), forest),
    }
    return table[name]()


def fit_regressor(name: str, X: np.ndarray, y: np.ndarray, strata: np.ndarray, groups: np.ndarray, *, seed: int = 0,
                  folds: int = 5, trees: int = 300, jobs: int = 1) -> tuple[Any, dict[str, Any]]:
    """StandardScaler + regressor; grid search by R² over k folds stratified by ``strata`` that keep each group (a
    clip's segments) together; refit on all of X."""
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    reg, grid = _regressor(name, seed, trees)
    if name == "knn":   # k must stay below a training fold's size
        fold_size = len(y) * (folds - 1) // folds
        grid["reg__n_neighbors"] = [k for k in grid["reg__n_neighbors"] if k <= fold_size] or [1]
    splits = list(StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(X, strata, groups))
    search = GridSearchCV(Pipeline([("scale", StandardScaler()), ("reg", reg)]), grid, scoring="r2", cv=splits,
                          n_jobs=jobs, refit=True).fit(X, y)
    best = search.best_index_
    return search.best_estimator_, {
        "best_params": {k.removeprefix("reg__"): v for k, v in search.best_params_.items()},
        "cv_r2": float(search.best_score_), "cv_r2_sd": float(search.cv_results_["std_test_score"][best]),
        "folds": folds}


def fit_and_score(X: np.ndarray, y: np.ndarray, strata: np.ndarray, is_test: np.ndarray, models: Sequence[str], *,
                  groups: np.ndarray | None = None, seed: int = 0, folds: int = 5, trees: int = 300, jobs: int = 1
                  ) -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
    """(selected model, {model: CV record + test scores}, {model: test predictions}). Only train+val rows are fitted
    and cross-validated; the test rows are predicted once and play no part in any choice. ``groups``: the clip of
    each row (default: every row its own)."""
    fit = ~is_test
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    folds = cv_folds(np.unique(strata[fit], return_inverse=True)[1], folds)
    results: dict[str, Any] = {}
    preds: dict[str, np.ndarray] = {}
    for name in models:
        t0 = time.time()
        model, info = fit_regressor(name, X[fit], y[fit], strata[fit], groups[fit], seed=seed, folds=folds,
                                    trees=trees, jobs=jobs)
        preds[name] = model.predict(X[is_test])
        results[name] = {**info, "test": regression_metrics(y[is_test], preds[name]), "seconds": time.time() - t0}
        click.echo(f"{name}: test MAE {results[name]['test']['mae']:.3f} (CV R² {info['cv_r2']:.3f}, "
                   f"{info['best_params']})")
    return max(results, key=lambda n: results[n]["cv_r2"]), results, preds


def run_regressors(ws: Any, files: Sequence[tuple[Any, Any]], X: np.ndarray, *, models: Sequence[str], seed: int,
                   trees: int, folds: int, jobs: int, settings: dict[str, Any], t0: float) -> dict[str, Any]:
    """The regression baseline of a continuous workspace on precomputed features; writes its results folder."""
    rows = [r for r, _ in files]
    y = np.array([float(r.target) for r in rows])
    strata = np.array([r.cls for r in rows])
    is_test = np.array([r.split == "test" for r in rows])
    selected, results, preds = fit_and_score(X, y, strata, is_test, models, groups=np.array([r.source for r in rows]),
                                             seed=seed, folds=folds, trees=trees, jobs=jobs or -1)
    click.echo(f"selected by CV R² on train+val: {selected} (test MAE {results[selected]['test']['mae']:.3f})")
    config = {"models": list(models), **settings, "feature_names": feature_names(), "seed": seed, "trees": trees,
              "cv_folds": next(iter(results.values()))["folds"], "workspace": str(ws.root)}
    rid = run_id(next_run_number(ws.results_dir), "baseline", f"seed{seed}")
    metrics = {"run_id": rid, "created": now_iso(), "code_version": code_version(), "task": "regression",
               "target": ws.target_name, "train": "real", "selected": selected, "selection": SELECTION,
               "test_source": "real", "arch": "baseline", "seed": seed, "n_train": int((~is_test).sum()),
               "n_test": int(is_test.sum()), "models": results, "seconds": time.time() - t0, "config": config}
    test_rows = [r for r, t in zip(rows, is_test) if t]
    _write(ws, metrics, preds, test_rows, y[is_test])
    append_summary(ws.results_dir, [summary_row({**metrics, "arch": name, "mode": "", "pretrained": "",
                                                 "seconds": res["seconds"]}, kind="baseline")
                                    for name, res in results.items()])
    return metrics


def table_markdown(metrics: dict[str, Any]) -> str:
    head = ["Model", "CV R² (train+val)"] + [f"Test {n}" for _, n in SCORES]
    lines = [f"# classify baseline ({metrics['run_id']}), target {metrics['target']}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in metrics["models"].items():
        mark = " **(selected)**" if name == metrics["selected"] else ""
        cells = [f"{name}{mark}", f"{r['cv_r2']:.2f} ± {r['cv_r2_sd']:.2f}"]
        cells += ["-" if r["test"][k] is None else f"{r['test'][k]:.3f}" for k, _ in SCORES]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines + ["", "The selected model has the best CV R² on train+val (± sd over folds stratified "
                              "by the target's quantile bins); every model's test score is listed, none is chosen "
                              "by it.", ""])


def _write(ws: Any, metrics: dict[str, Any], preds: dict[str, np.ndarray], test_rows: list[Any],
           y_test: np.ndarray) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["image", "source", "true"] + list(preds))
    for i, row in enumerate(test_rows):
        w.writerow([row.image, row.source, f"{y_test[i]:.6g}"] + [f"{p[i]:.6g}" for p in preds.values()])
    chosen = metrics["selected"]
    texts = {"predictions.csv": buf.getvalue(), "table.md": table_markdown(metrics),
             "report.txt": "\n".join(report_text(r["test"], f"{name} - real test split")
                                     for name, r in metrics["models"].items())}
    with atomic_dir(ws.results_dir / metrics["run_id"]) as d:
        atomic_write_json(d / "metrics.json", metrics)
        for name, text in texts.items():
            atomic_write_text(d / name, text)
        plot_scatter(y_test, preds[chosen], d / "scatter.png", f"selected baseline {chosen} (by CV), test")
        write_run_record(d / "run.json", metrics["config"], seeds={"seed": metrics["seed"]},
                         data_hashes={"splits_sha256": ws.config["splits"].get("sha256"),
                                      "test_sha256": ws.config["splits"].get("test_sha256")})


__all__ = ["MODELS", "fit_and_score", "fit_regressor", "run_regressors"]
