"""`classify baseline`: features of the workspace's source audio -> classic classifiers -> real test split."""
from __future__ import annotations

import csv
import io
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import click
import numpy as np

from augment.errors import UserError
from augment.io_utils import atomic_dir, atomic_write_json, atomic_write_text, sha256_file
from augment.provenance import code_version, now_iso, write_run_record
from augment.workspace import SplitRow, Workspace
from classify.baseline.features import FeatureConfig, feature_names, features_for
from classify.baseline.models import MODELS, cv_folds, fit_model
from classify.clip_scores import baseline_scores, image_windows, is_segmented, per_clip_labels
from classify.metrics import report_text
from classify.plots import plot_confusion
from classify.results import append_summary, next_run_number, run_id, summary_row


def parse_models(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["all"]:
        return list(MODELS)
    bad = [n for n in names if n not in MODELS]
    if not names or bad:
        raise UserError(f"unknown baseline model {', '.join(bad) or repr(text)}; choose from {', '.join(MODELS)} "
                        "or 'all'")
    return names


def audio_root(ws: Workspace, override: str | None) -> Path:
    """Where the workspace's source audio lives: --audio-dir, else augment.json dataset.options.audio_dir."""
    from augment.classic import audio_root as source_audio_root

    return source_audio_root(ws, override, "the baseline needs source audio, but this workspace was prepared from "
                                           "images")


def source_files(ws: Workspace, root: Path) -> list[tuple[SplitRow, Path]]:
    """Every manifest row with its audio file, checked against the recorded source sha256."""
    out = []
    for row in ws.rows():
        path = root / row.source
        if not path.is_file():
            raise UserError(f"source audio {path} (listed in {ws.manifest_path.name}) is missing; "
                            "pass the right --audio-dir")
        out.append((row, path))
    return out


def verify_sources(files: Sequence[tuple[SplitRow, Path]]) -> None:
    """Refuse audio whose bytes differ from what prepare hashed (the split would no longer be the same data)."""
    for row, path in files:
        if sha256_file(path) != row.source_sha256:
            raise UserError(f"source audio {path} changed since `augment prepare` (sha256 mismatch); restore it or "
                            "re-prepare the workspace")


def run_baseline(ws: Workspace, *, models: list[str], audio_dir: str | None = None, sr: int = 22050,
                 seed: int = 0, trees: int = 300, folds: int = 5, jobs: int = 0, progress: bool = True) -> dict[str, Any]:
    t0 = time.time()
    root = audio_root(ws, audio_dir)
    files = source_files(ws, root)
    verify_sources(files)
    # before any feature is computed: no training clip may be, equal or nearly equal a test clip
    ws.guard_training_inputs([ws.root / r.image for r, _ in files if r.split != "test"], what="baseline training clip")
    mel = ws.config.get("mel") or {}
    cfg = FeatureConfig(sr=sr, offset=float(mel.get("offset", 0.0)), duration=float(mel.get("duration", 10.0)))
    X = features_for([(p, r.source_sha256) for r, p in files], cfg, ws.root / "cache" / "baseline",
                     jobs=jobs, progress=progress, windows=image_windows(ws, [r.image for r, _ in files]))
    if ws.task == "regression":     # a continuous target: regressors, chosen by CV R² on train+val
        from classify.baseline.regressors import run_regressors

        return run_regressors(ws, files, X, models=models, seed=seed, trees=trees, folds=folds, jobs=jobs,
                              settings={"features": asdict(cfg), "audio_dir": str(root)}, t0=t0)
    classes = ws.classes
    y = np.array([classes.index(r.cls) for r, _ in files])
    is_test = np.array([r.split == "test" for r, _ in files])
    fit_X, fit_y = X[~is_test], y[~is_test]          # train + val: the hyper-parameters come from CV on it
    clips = np.array([r.source for r, _ in files])
    groups = clips[~is_test] if is_segmented(list(clips)) else None  # CV folds keep a clip's segments together
    folds = cv_folds(fit_y if groups is None else per_clip_labels(fit_y, list(groups)), folds)
    results: dict[str, Any] = {}
    preds: dict[str, np.ndarray] = {}
    for name in models:
        tm = time.time()
        model, info = fit_model(name, fit_X, fit_y, seed=seed, folds=folds, trees=trees, jobs=jobs or -1,
                                groups=groups)
        preds[name] = model.predict(X[is_test])
        test = baseline_scores(model, X[is_test], preds[name], y[is_test], list(clips[is_test]), classes)
        results[name] = {**info, "test": test, "seconds": time.time() - tm}
        click.echo(f"{name}: test macro-F1 {results[name]['test']['macro_f1']:.3f} "
                   f"(CV macro-F1 {info['cv_macro_f1']:.3f}, {info['best_params']})")
    config = {"models": models, "features": asdict(cfg), "feature_names": feature_names(), "seed": seed,
              "trees": trees, "cv_folds": folds, "audio_dir": str(root), "workspace": str(ws.root)}
    selected = select_model(results)
    click.echo(f"selected by CV macro-F1 on train+val: {selected} (test macro-F1 "
               f"{results[selected]['test']['macro_f1']:.3f})")
    # numbered when written (as eval runs are), so a run finishing meanwhile in this workspace keeps its own number
    rid = run_id(next_run_number(ws.results_dir), "baseline", f"seed{seed}")
    metrics = {"run_id": rid, "created": now_iso(), "code_version": code_version(), "train": "real",
               "selected": selected, "selection": "highest cv_macro_f1 on train+val (first listed wins ties)",
               "test_source": "real", "arch": "baseline", "seed": seed, "classes": classes,
               "n_train": int((~is_test).sum()), "n_test": int(is_test.sum()), "models": results,
               "seconds": time.time() - t0, "config": config}
    test_rows = [r for (r, _), t in zip(files, is_test) if t]
    _write(ws, metrics, preds, test_rows, y[is_test])
    append_summary(ws.results_dir, [summary_row({**metrics, "arch": name, "mode": "", "pretrained": "",
                                                 "test": res["test"], "val": {"macro_f1": res["cv_macro_f1"]},
                                                 "seconds": res["seconds"]}, kind="baseline")
                                    for name, res in results.items()])
    return metrics


def select_model(results: dict[str, Any]) -> str:
    """The model with the best cross-validation macro-F1 on train+val; test scores play no part."""
    return max(results, key=lambda name: results[name]["cv_macro_f1"])     # max keeps the first of equals


def table_markdown(metrics: dict[str, Any]) -> str:
    lines = [f"# classify baseline ({metrics['run_id']})", "",
             "| Model | CV macro-F1 (train+val) | Test accuracy | Test precision | Test recall | Test F1 | "
             "Test F1 95 % CI |", "|---|---|---|---|---|---|---|"]
    for name, r in metrics["models"].items():
        t = r["test"]
        mark = " **(selected)**" if name == metrics.get("selected") else ""
        ci = t.get("macro_f1_ci95")
        lines.append(f"| {name}{mark} | {r['cv_macro_f1']:.2f} ± {r['cv_macro_f1_sd']:.2f} | {t['accuracy']:.2f} | "
                     f"{t['macro_precision']:.2f} | {t['macro_recall']:.2f} | {t['macro_f1']:.2f} | "
                     + (f"[{ci[0]:.2f}, {ci[1]:.2f}] |" if ci else "- |"))
    return "\n".join(lines + ["", f"Features: {len(metrics['config']['feature_names'])} (librosa, mean and std over "
                              f"frames); {metrics['config']['cv_folds']}-fold stratified CV for hyper-parameters. "
                              "The selected model has the best CV macro-F1 on train+val (± sd over folds); every "
                              "model's test score is listed, none is chosen by it. Test CI: stratified bootstrap "
                              "over the test clips.", ""])


def _write(ws: Workspace, metrics: dict[str, Any], preds: dict[str, np.ndarray], test_rows: list[SplitRow],
           y_test: np.ndarray) -> None:
    classes = metrics["classes"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["image", "source", "true"] + list(preds))
    for i, row in enumerate(test_rows):
        w.writerow([row.image, row.source, classes[y_test[i]]] + [classes[p[i]] for p in preds.values()])
    with atomic_dir(ws.results_dir / metrics["run_id"]) as d:
        atomic_write_json(d / "metrics.json", metrics)
        atomic_write_text(d / "predictions.csv", buf.getvalue())
        atomic_write_text(d / "table.md", table_markdown(metrics))
        atomic_write_text(d / "report.txt", "\n".join(report_text(r["test"], f"{name} - real test split")
                                                      for name, r in metrics["models"].items()))
        chosen = metrics["selected"]
        r = metrics["models"][chosen]
        plot_confusion(r["test"]["confusion"], classes, d / "confusion_matrix.png",
                       f"selected baseline {chosen} (by CV): test macro-F1 {r['test']['macro_f1']:.3f}")
        write_run_record(d / "run.json", metrics["config"], seeds={"seed": metrics["seed"]},
                         data_hashes={"splits_sha256": ws.config["splits"].get("sha256"),
                                      "test_sha256": ws.config["splits"].get("test_sha256")})
