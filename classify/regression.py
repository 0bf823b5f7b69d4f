"""`classify eval --task regression`: a continuous target (`augment prepare --continuous`) predicted by a one-output
linear head trained with MSE (or L1); scores, the predicted-vs-true scatter, the per-run files and the table over
seeds. The training loop is classify/trainer.py's (``TrainConfig.loss``): there the best epoch has the lowest val
loss, so nothing but the val split chooses it.
"""
from __future__ import annotations

import csv
import io
import math
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from augment.errors import UserError
from augment.io_utils import atomic_write_json, atomic_write_text
from classify.metrics import mean_sd

TASKS = ("classification", "regression")
LOSSES = ("mse", "l1")
SCORES = (("mae", "MAE"), ("rmse", "RMSE"), ("r2", "R²"), ("spearman", "Spearman ρ"), ("pearson", "Pearson r"))


# ------------------------------------------------------------------------------------------------------ scores
def _finite(x: float) -> float | None:
    """JSON has no NaN: an undefined score (e.g. a correlation of constant predictions) is None."""
    return float(x) if math.isfinite(x) else None


def regression_metrics(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, Any]:
    """MAE, RMSE, R² (scikit-learn), Spearman ρ and Pearson r with their p-values (SciPy), and n."""
    from scipy.stats import ConstantInputWarning, pearsonr, spearmanr
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    t, p = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)   # constant predictions: the correlations are None
        rho, rho_p = spearmanr(t, p) if len(t) > 1 else (math.nan, math.nan)
        r, r_p = pearsonr(t, p) if len(t) > 1 else (math.nan, math.nan)
    return {"mae": float(mean_absolute_error(t, p)), "rmse": float(math.sqrt(mean_squared_error(t, p))),
            "r2": _finite(r2_score(t, p)) if len(t) > 1 else None, "spearman": _finite(rho),
            "spearman_p": _finite(rho_p), "pearson": _finite(r), "pearson_p": _finite(r_p), "n": int(len(t))}


def score_split(outputs: np.ndarray, labels: np.ndarray, loss: float, info: dict[str, Any],
                clips: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(predictions, true values) per image in the target's units, and metrics.json's val/test entry: the scores plus
    the mean loss (on the standardised target the network trains on, see :func:`with_targets`). A segmented
    workspace scores one answer per clip (the mean of its segments' predictions), per image under ``per_segment``."""
    mean, sd = info["target_scale"]["mean"], info["target_scale"]["sd"]
    pred = np.asarray(outputs, dtype=float).reshape(len(labels)) * sd + mean
    true = np.asarray(labels, dtype=float) * sd + mean
    scores = {**regression_metrics(true, pred), "loss": loss}
    if len(set(clips)) < len(clips):
        index = np.unique(np.asarray(clips), return_inverse=True)[1]
        counts = np.bincount(index)
        per_clip = regression_metrics(np.bincount(index, true) / counts, np.bincount(index, pred) / counts)
        scores = {**per_clip, "loss": loss, "n_clips": len(counts), "per_segment": scores}
    return pred, true, scores


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def report_text(metrics: dict[str, Any], title: str) -> str:
    return "\n".join([title, ""] + [f"{name:>12} {_fmt(metrics[key])}" for key, name in SCORES]
                     + [f"{'n':>12} {metrics['n']}", ""])


def run_line(metrics: dict[str, Any]) -> str:
    """The one line `classify eval` prints per regression run."""
    t, v = metrics["test"], metrics["val"]
    return (f"{metrics['run_id']}: test MAE {t['mae']:.3f}, R² {_fmt(t['r2'])}, Spearman {_fmt(t['spearman'])} "
            f"(val MAE {v['mae']:.3f}, best epoch {metrics['best_epoch']} by val loss)")


# ------------------------------------------------------------------------------------------------ the options
def resolve_task(ws: Any, task: str | None, loss: str | None, train: str) -> tuple[str, str]:
    """(task, loss) for `classify eval`: --task defaults to the workspace's; one UserError line for a mismatch."""
    task = task or ws.task
    if task not in TASKS:
        raise UserError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    if task == "regression" and ws.task != "regression":
        raise UserError(f"--task regression needs a continuous target, but workspace {ws.root} has classes; prepare "
                        "one with `augment prepare ... --continuous`")
    if task == "classification" and ws.task == "regression":
        raise UserError(f"workspace {ws.root} holds the continuous target {ws.target_name!r}: --task classification "
                        "would classify its quantile bins; use --task regression (its default) or prepare the "
                        "3-class --target without --continuous")
    if task == "classification":
        if loss is not None:
            raise UserError(f"--loss {loss} applies to --task regression; classification trains with cross-entropy")
        return task, "cross_entropy"
    if train != "real":
        raise UserError(f"--train {train} needs per-class synthetic or augmented images; a continuous workspace "
                        "trains on --train real")
    if (loss or "mse") not in LOSSES:
        raise UserError(f"--loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    return task, loss or "mse"


def with_targets(ws: Any, splits: Any) -> Any:
    """The same DataSplits with each image's continuous target as its label, standardised by the mean and sd of the
    train split (``info["target_scale"]``; val and test play no part), so a fresh head starts near the mean on any
    rating scale; :func:`score_split` turns predictions back into the target's units."""
    targets = ws.targets()
    train = np.array([targets[p] for p, _ in splits.train])
    mean, sd = float(train.mean()), float(train.std()) or 1.0

    def relabel(samples: list[tuple[Path, Any]]) -> list[tuple[Path, float]]:
        return [(p, (targets[p] - mean) / sd) for p, _ in samples]

    return replace(splits, train=relabel(splits.train), val=relabel(splits.val), test=relabel(splits.test),
                   info={**splits.info, "target_scale": {"mean": mean, "sd": sd}})


def to_regressor(built: Any) -> Any:
    """``built`` with every head replaced by a fresh one-output layer (trainable in both modes); returns it."""
    from classify.archs import _replace_head

    for name in built.head_names:
        _replace_head(built.model, name, 1)
    if built.spec.name == "squeezenet1_0":
        from torch import nn

        built.model.num_classes = 1
        relu = built.model.classifier[2]    # after its 1x1-convolution head: a regression output may be negative
        if isinstance(relu, nn.ReLU):
            built.model.classifier[2] = nn.Identity()
    built.info.update(params=sum(p.numel() for p in built.model.parameters()),
                      trainable_params=sum(p.numel() for p in built.model.parameters() if p.requires_grad),
                      outputs=1)
    return built


# --------------------------------------------------------------------------------------------- files of a run
def plot_scatter(y_true: Sequence[float], y_pred: Sequence[float], path: Path, title: str) -> None:
    """Predicted against true values with the identity line; MAE and R² in the title."""
    from classify.plots import _figure, _save

    plt = _figure()
    t, p = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    m = regression_metrics(t, p)
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    ax.scatter(t, p, s=14, alpha=0.7)
    lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
    ax.plot([lo, hi], [lo, hi], color="gray", ls="--", lw=1, label="predicted = true")
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.legend(fontsize=8)
    ax.set_title(f"{title}\nMAE {m['mae']:.3f}, R² {_fmt(m['r2'])}, Spearman {_fmt(m['spearman'])}", fontsize=9)
    _save(fig, path)


def plot_losses(history: Sequence[dict[str, float]], best_epoch: int, path: Path, title: str, loss: str) -> None:
    """Train and val loss per epoch with the best epoch (lowest val loss) marked."""
    from classify.plots import _figure, _save

    plt = _figure()
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    epochs = [h["epoch"] for h in history]
    for key in ("train_loss", "val_loss"):
        ax.plot(epochs, [h[key] for h in history], marker="o", ms=3, label=key.split("_")[0])
    ax.axvline(best_epoch, color="gray", ls="--", lw=1, label=f"best epoch {best_epoch}")
    ax.set(xlabel="epoch", ylabel=loss.upper(), title=title)
    ax.legend(fontsize=8)
    _save(fig, path)


def predictions_csv(root: Path, scored: dict[str, Any], splits: Any) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["split", "image", "true", "pred", "error"])
    for split in ("val", "test"):
        preds, true, _ = scored[split]
        for (path, _), target, pred in zip(getattr(splits, split), true, preds):
            w.writerow([split, _rel(root, path), f"{target:.6g}", f"{pred:.6g}", f"{pred - target:.6g}"])
    return buf.getvalue()


def _rel(root: Path, path: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def write_run_files(folder: Path, root: Path, metrics: dict[str, Any], scored: dict[str, Any], splits: Any,
                    title: str) -> None:
    """report.txt, predictions.csv, scatter.png (test) and learning_curves.png of one regression run."""
    rid = metrics["run_id"]
    atomic_write_text(folder / "report.txt", report_text(metrics["val"], f"{rid} - validation (best epoch)") + "\n"
                      + report_text(metrics["test"], f"{rid} - real test split"))
    atomic_write_text(folder / "predictions.csv", predictions_csv(root, scored, splits))
    preds, true, _ = scored["test"]
    plot_scatter(true, preds, folder / "scatter.png", f"{title}: {metrics['target']}, test")
    plot_losses(metrics["history"], metrics["best_epoch"], folder / "learning_curves.png", title,
                metrics["config"]["train_config"]["loss"])


def summary_row(metrics: dict[str, Any], kind: str = "regression") -> dict[str, Any]:
    """results/summary.csv's row of a regression run: its classification columns stay empty."""
    from classify.results import summary_row as row

    empty = {"macro_f1": None, "accuracy": None}
    return row({**metrics, "val": empty, "test": empty}, kind=kind)


# ------------------------------------------------------------------------------------------ table over seeds
def aggregate(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± sample sd over seeds of every score, per (arm, arch, mode, weights) and split."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for m in runs:
        groups.setdefault((m.get("arm", m["train"]), m["arch"], m.get("mode", ""), m.get("pretrained", "")),
                          []).append(m)
    rows = []
    for (arm, arch, mode, weights), ms in groups.items():
        for split in ("val", "test"):
            row: dict[str, Any] = {"train": arm, "arch": arch, "mode": mode, "pretrained": weights, "split": split,
                                   "seeds": [m.get("seed") for m in ms], "n": len(ms)}
            for key, _ in SCORES:
                values = [m[split][key] for m in ms if m[split].get(key) is not None]
                row[key], row[f"{key}_sd"] = mean_sd(values) if values else (None, None)
            rows.append(row)
    return rows


def write_table(results_dir: Path, name: str, runs: Sequence[dict[str, Any]], title: str) -> dict[str, Path]:
    """``results/tables/<name>.{md,csv,json}``: mean ± sd over seeds of MAE, RMSE, R², Spearman and Pearson."""
    rows = aggregate(runs)
    head = ["Train", "Model", "Mode", "Weights", "Split"] + [n for _, n in SCORES] + ["Seeds"]
    lines = [f"# {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["train"], r["arch"], r["mode"] or "-", r["pretrained"] or "-", r["split"]]
        cells += ["-" if r[k] is None else f"{r[k]:.3f} ± {r[f'{k}_sd']:.3f}" for k, _ in SCORES]
        lines.append("| " + " | ".join(cells + [str(r["n"])]) + " |")
    lines += ["", "Mean ± sample sd over seeds; the best epoch of each run has the lowest val loss.", ""]
    buf = io.StringIO()
    fields = ["train", "arch", "mode", "pretrained", "split", "n"] + [f for k, _ in SCORES for f in (k, f"{k}_sd")]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    base = results_dir / "tables" / name
    paths = {"md": base.with_suffix(".md"), "csv": base.with_suffix(".csv"), "json": base.with_suffix(".json")}
    atomic_write_text(paths["md"], "\n".join(lines))
    atomic_write_text(paths["csv"], buf.getvalue())
    atomic_write_json(paths["json"], {"title": title, "rows": rows, "runs": [m["run_id"] for m in runs]})
    return paths
