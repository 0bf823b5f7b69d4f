"""Where results go: run ids, ``results/summary.csv`` (one row per run) and tables across runs (mean ± sd)."""
from __future__ import annotations

import contextlib
import csv
import io
import re
from pathlib import Path
from typing import Any, Iterator, Sequence

from augment.io_utils import atomic_write_json, atomic_write_text
from classify.metrics import mean_sd
from classify.stats import t_interval

SUMMARY_NAME = "summary.csv"
SUMMARY_FIELDS = ("run_id", "created", "kind", "train", "test", "arch", "mode", "pretrained", "seed", "n_train",
                  "n_val", "n_test", "lr", "best_epoch", "val_macro_f1", "val_accuracy", "test_macro_f1",
                  "test_accuracy", "test_macro_precision", "test_macro_recall", "seconds", "code_version")
TABLE_SCORES = (("accuracy", "Accuracy"), ("macro_precision", "Precision"), ("macro_recall", "Recall"),
                ("macro_f1", "F1"))
MIN_SEEDS_FOR_T = 3
_RUN_NUMBER = re.compile(r"^\.?(\d{5})-")


def next_run_number(results_dir: Path) -> int:
    """1 + the highest ``NNNNN-`` prefix among the entries of ``results_dir``, counting runs still being written
    (``.NNNNN-...partial``); 0 when empty."""
    numbers = [int(m.group(1)) for p in results_dir.glob("*") if (m := _RUN_NUMBER.match(p.name))]
    return max(numbers, default=-1) + 1


def run_id(number: int, *parts: Any) -> str:
    return f"{number:05d}-" + "-".join(str(p) for p in parts)


def summary_row(metrics: dict[str, Any], kind: str = "cnn") -> dict[str, Any]:
    """The ``summary.csv`` row of one run's metrics.json content."""
    val, test = metrics.get("val") or {}, metrics["test"]
    return {
        "run_id": metrics["run_id"], "created": metrics.get("created", ""), "kind": kind,
        "train": metrics["train"], "test": metrics.get("test_source", "real"), "arch": metrics["arch"],
        "mode": metrics.get("mode", ""), "pretrained": metrics.get("pretrained", ""), "seed": metrics.get("seed", ""),
        "n_train": metrics.get("n_train", ""), "n_val": metrics.get("n_val", ""), "n_test": metrics.get("n_test", ""),
        "lr": _fmt(metrics.get("lr")), "best_epoch": metrics.get("best_epoch", ""),
        "val_macro_f1": _fmt(val.get("macro_f1")), "val_accuracy": _fmt(val.get("accuracy")),
        "test_macro_f1": _fmt(test["macro_f1"]), "test_accuracy": _fmt(test["accuracy"]),
        "test_macro_precision": _fmt(test.get("macro_precision")), "test_macro_recall": _fmt(test.get("macro_recall")),
        "seconds": _fmt(metrics.get("seconds"), 1), "code_version": metrics.get("code_version", ""),
    }


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or x == "":
        return ""
    if isinstance(x, float):
        return f"{x:.{digits}g}" if abs(x) < 1e-3 and x != 0 else f"{x:.{digits}f}"
    return str(x)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (where the OS has one), so parallel runs do not lose summary rows."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock, the rewrite is still atomic
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def append_summary(results_dir: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Add rows to ``results/summary.csv`` (rewritten atomically; columns of older files are kept)."""
    with _locked(results_dir / ".summary.lock"):
        return _append_summary(results_dir, rows)


def _append_summary(results_dir: Path, rows: Sequence[dict[str, Any]]) -> Path:
    path = results_dir / SUMMARY_NAME
    old_rows: list[dict[str, str]] = []
    fields = list(SUMMARY_FIELDS)
    if path.is_file():
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            fields += [c for c in reader.fieldnames or () if c not in fields]
            old_rows = list(reader)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(old_rows)
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())
    return path


def interval(ms: Sequence[dict[str, Any]], split: str, key: str = "macro_f1") -> tuple[list[float] | None, str]:
    """95 % interval of a score: t over seeds (≥ 3 runs), the run's bootstrap over test clips (1 run), else none."""
    if len(ms) >= MIN_SEEDS_FOR_T:
        return list(t_interval([m[split][key] for m in ms]) or ()), "t"
    ci = ms[0][split].get(f"{key}_ci95") if len(ms) == 1 else None
    return (list(ci), "bootstrap") if ci else (None, "none")


def aggregate(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group runs by (arm, arch, mode, pretrained); mean ± sd and a 95 % interval of each score, for val and test."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for m in runs:
        arm = m.get("arm", m["train"])
        groups.setdefault((arm, m["arch"], m.get("mode", ""), m.get("pretrained", "")), []).append(m)
    out = []
    for (train, arch, mode, pretrained), ms in groups.items():
        for split in ("val", "test"):
            if not all(m.get(split) for m in ms):
                continue
            row: dict[str, Any] = {"train": train, "arch": arch, "mode": mode, "pretrained": pretrained,
                                   "split": split, "seeds": [m.get("seed") for m in ms], "n": len(ms)}
            for key, _ in TABLE_SCORES:
                row[key], row[f"{key}_sd"] = mean_sd([m[split][key] for m in ms])
                row[f"{key}_ci95"], row[f"{key}_ci_method"] = interval(ms, split, key)
            out.append(row)
    return out


def _pm(mean: float, sd: float) -> str:
    return f"{mean:.2f} ± {sd:.2f}"


def _ci(row: dict[str, Any], key: str = "macro_f1") -> str:
    ci = row.get(f"{key}_ci95")
    return f"[{ci[0]:.2f}, {ci[1]:.2f}] ({row[f'{key}_ci_method']})" if ci else "-"


def table_markdown(rows: Sequence[dict[str, Any]], title: str) -> str:
    """Thesis-style table: one val and one test row per model, scores as mean ± sd over seeds."""
    head = ["Train", "Model", "Mode", "Weights", "Split"] + [name for _, name in TABLE_SCORES] + ["F1 95 % CI", "Seeds"]
    lines = [f"# {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["train"], r["arch"], r["mode"] or "-", r["pretrained"] or "-", r["split"]]
        cells += [_pm(r[k], r[f"{k}_sd"]) for k, _ in TABLE_SCORES] + [_ci(r), str(r["n"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Macro-averaged precision, recall and F1; mean ± sample sd over seeds. 95 % CI of F1: (t) Student-t "
              f"over seeds (≥ {MIN_SEEDS_FOR_T}), (bootstrap) stratified bootstrap over the clips of that split "
              "for a single run; '-' for 2 seeds. Paired differences between arms: `classify compare`.", ""]
    return "\n".join(lines)


def write_table(results_dir: Path, name: str, runs: Sequence[dict[str, Any]], title: str) -> dict[str, Path]:
    """``results/tables/<name>.{md,csv,json}`` for the given runs' metrics."""
    rows = aggregate(runs)
    base = results_dir / "tables" / name
    buf = io.StringIO()
    fields = ["train", "arch", "mode", "pretrained", "split", "n"] + \
        [f for k, _ in TABLE_SCORES for f in (k, f"{k}_sd", f"{k}_ci_low", f"{k}_ci_high", f"{k}_ci_method")]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows([{k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in _flat_ci(r).items()} for r in rows])
    paths = {"md": base.with_suffix(".md"), "csv": base.with_suffix(".csv"), "json": base.with_suffix(".json")}
    atomic_write_text(paths["md"], table_markdown(rows, title))
    atomic_write_text(paths["csv"], buf.getvalue())
    atomic_write_json(paths["json"], {"title": title, "rows": rows, "runs": [m["run_id"] for m in runs]})
    return paths


def _flat_ci(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key, _ in TABLE_SCORES:
        ci = row.get(f"{key}_ci95")
        out[f"{key}_ci_low"], out[f"{key}_ci_high"] = (ci[0], ci[1]) if ci else ("", "")
    return out
