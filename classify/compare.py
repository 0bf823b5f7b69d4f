"""`classify compare`: is arm B better than arm A? Paired difference in macro-F1 on the same test clips and seeds.

The difference is mean over seeds of macro-F1(B) − macro-F1(A). Its 95 % interval comes from a stratified bootstrap
of the test clips that draws the same clips for both arms and every seed (the pairing), the p-value from a paired
permutation test (per seed and clip, the two arms' predictions are swapped at random; exact when few differ).
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from augment.errors import UserError
from augment.io_utils import atomic_write_json, atomic_write_text, read_json
from augment.provenance import code_version, now_iso
from augment.workspace import Workspace
from classify.stats import N_RESAMPLES, bootstrap_ci, paired_bootstrap, paired_permutation_p, t_interval

FILTER_KEYS = ("arm", "train", "arch", "mode", "pretrained", "seed", "freeze_bn")


@dataclass
class Run:
    run_id: str
    arm: str
    seed: Any
    classes: list[str]
    images: list[str]
    y_true: np.ndarray
    y_pred: np.ndarray
    macro_f1: float


def _run_dirs(results: Path) -> list[Path]:
    return sorted(p for p in results.iterdir() if p.is_dir() and re.match(r"^\d{5}-", p.name)) \
        if results.is_dir() else []


def _matches(m: dict[str, Any], wanted: dict[str, str]) -> bool:
    freeze = m.get("mode") == "freeze"
    have = {"arm": m.get("arm", m.get("train")), "train": m.get("train"), "arch": m.get("arch"),
            "mode": m.get("mode"), "pretrained": m.get("pretrained"), "seed": m.get("seed"),
            "freeze_bn": m.get("freeze_bn") or ("eval" if freeze else None)}    # runs before --freeze-bn: eval
    if freeze and "freeze_bn" not in wanted:
        wanted = {**wanted, "freeze_bn": "eval"}     # never pair `--freeze-bn train` runs by accident
    return all(str(have[k]) == v for k, v in wanted.items())


def select(ws: Workspace, spec: str) -> list[tuple[Path, str | None]]:
    """Run folders named by ``spec``: 'ID,ID,...' (run ids, number prefixes or folders; 'ID:model' picks one model
    of a baseline run) or a filter 'arm=real,arch=small_cnn,mode=whole' (newest run per seed)."""
    spec = spec.strip()
    if "=" in spec:
        wanted = dict(item.split("=", 1) for item in spec.split(",") if "=" in item)
        bad = sorted(set(wanted) - set(FILTER_KEYS))
        if bad:
            raise UserError(f"unknown filter key(s) {', '.join(bad)}; use {', '.join(FILTER_KEYS)}")
        newest: dict[Any, Path] = {}
        for d in _run_dirs(ws.results_dir):
            m = _metrics(d)
            if m.get("arch") != "baseline" and _matches(m, wanted):
                newest[m.get("seed")] = d
        if not newest:
            raise UserError(f"no run in {ws.results_dir} matches {spec!r}; list them in results/summary.csv")
        return [(newest[s], None) for s in sorted(newest, key=str)]
    out = []
    for token in (t.strip() for t in spec.split(",") if t.strip()):
        name, _, model = token.partition(":")
        out.append((_find_run(ws, name), model or None))
    if not out:
        raise UserError("no runs given; pass run ids like 00003,00004,00005 or a filter like arm=real,arch=small_cnn")
    return out


def _find_run(ws: Workspace, name: str) -> Path:
    path = Path(name).expanduser()
    if path.is_dir() and (path / "metrics.json").is_file():
        return path.resolve()
    hits = [d for d in _run_dirs(ws.results_dir) if d.name == name or d.name.split("-", 1)[0] == name]
    if len(hits) > 1:
        raise UserError(f"run {name!r} is ambiguous in {ws.results_dir}: {', '.join(d.name for d in hits)}; give the "
                        "full run id")
    if not hits:
        raise UserError(f"run {name!r} not found in {ws.results_dir} (give a run id, its 5-digit number or a folder)")
    return hits[0]


def _metrics(d: Path) -> dict[str, Any]:
    try:
        m = read_json(d / "metrics.json")
    except (OSError, ValueError) as exc:
        raise UserError(f"{d / 'metrics.json'} is missing or not valid JSON ({exc}); is {d} a finished run?") from exc
    if isinstance(m, dict) and m.get("task") == "regression":
        raise UserError(f"{d.name} is a regression run (--task regression); classify compare pairs classification "
                        "runs by their test macro-F1")
    if not isinstance(m, dict) or "classes" not in m:
        raise UserError(f"{d / 'metrics.json'} is not a classify run's metrics")
    return m


def load_run(d: Path, model: str | None = None) -> Run:
    """A run's test predictions (predictions.csv), with its classes and macro-F1."""
    from classify.metrics import macro_f1

    m = _metrics(d)
    classes = list(m["classes"])
    baseline = m.get("arch") == "baseline"
    if baseline and not model:
        model = m.get("selected")
    try:
        with open(d / "predictions.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise UserError(f"{d / 'predictions.csv'} is missing; re-run that evaluation") from exc
    column = model if baseline else "pred"
    if not rows or column not in rows[0]:
        raise UserError(f"{d / 'predictions.csv'} has no column {column!r}"
                        + (f"; models: {', '.join(m['models'])}" if baseline else ""))
    test = [r for r in rows if r.get("split", "test") == "test"]
    index = {c: i for i, c in enumerate(classes)}
    y_true = np.array([index[r["true"]] for r in test])
    y_pred = np.array([index[r[column]] for r in test])
    arm = f"baseline {model}" if baseline else \
        " ".join(str(x) for x in (m.get("arm", m["train"]), m["arch"], m.get("mode", "")) if x)
    return Run(d.name if not model else f"{d.name}:{model}", arm, m.get("seed"), classes, [r["image"] for r in test],
               y_true, y_pred, macro_f1(y_true, y_pred, len(classes)))


def pair_runs(a: Sequence[Run], b: Sequence[Run]) -> list[tuple[Run, Run]]:
    """Pair A and B runs by seed (one run each: paired as they are); refuse different test splits or classes."""
    if len(a) == 1 and len(b) == 1:
        pairs = [(a[0], b[0])]
    else:
        by_a, by_b = {r.seed: r for r in a}, {r.seed: r for r in b}
        if len(by_a) != len(a) or len(by_b) != len(b) or set(by_a) != set(by_b):
            raise UserError(f"runs are paired by seed: A has seeds {sorted(map(str, (r.seed for r in a)))}, B has "
                            f"{sorted(map(str, (r.seed for r in b)))}; give one run per seed, the same seeds on "
                            "both sides")
        pairs = [(by_a[s], by_b[s]) for s in sorted(by_a, key=str)]
    ref = pairs[0][0]
    for ra, rb in pairs:
        for r in (ra, rb):
            if r.classes != ref.classes:
                raise UserError(f"{r.run_id} has classes {r.classes}, {ref.run_id} has {ref.classes}: not comparable")
            if r.images != ref.images or not np.array_equal(r.y_true, ref.y_true):
                raise UserError(f"{r.run_id} and {ref.run_id} were not scored on the same test split (different "
                                "clips or labels); compare runs of one workspace")
    return pairs


def compare_runs(a: Sequence[Run], b: Sequence[Run], *, n_resamples: int = N_RESAMPLES,
                 seed: int = 0) -> dict[str, Any]:
    pairs = pair_runs(a, b)
    y = pairs[0][0].y_true
    n_classes = len(pairs[0][0].classes)
    pa = np.stack([ra.y_pred for ra, _ in pairs])
    pb = np.stack([rb.y_pred for _, rb in pairs])
    diff, ci = paired_bootstrap(y, pa, pb, n_classes, n_resamples=n_resamples, seed=seed)
    p = paired_permutation_p(y, pa, pb, n_classes, n_resamples=n_resamples, seed=seed)

    def side(runs: list[Run]) -> dict[str, Any]:
        f1 = [r.macro_f1 for r in runs]
        interval = t_interval(f1) if len(f1) >= 3 else None
        return {"arm": runs[0].arm, "runs": [r.run_id for r in runs], "seeds": [r.seed for r in runs],
                "macro_f1": f1, "mean": float(np.mean(f1)), "sd": float(np.std(f1, ddof=1)) if len(f1) > 1 else None,   # undefined for one run
                "ci95": list(interval) if interval else None, "ci_method": "t" if interval else "none",
                "per_run_bootstrap_ci95": [list(bootstrap_ci(r.y_true, r.y_pred, n_classes)) for r in runs]}

    per_seed = [rb.macro_f1 - ra.macro_f1 for ra, rb in pairs]
    seed_ci = t_interval(per_seed) if len(per_seed) >= 3 else None
    return {"a": side([ra for ra, _ in pairs]), "b": side([rb for _, rb in pairs]), "diff": diff, "ci95": list(ci),
            "p_value": p, "per_seed_diff": per_seed, "seed_t_ci95": list(seed_ci) if seed_ci else None, "statistic": "mean over seeds of macro-F1(B) - macro-F1(A)",
            "interval": {"method": "paired stratified bootstrap over test clips, pooled over seeds (percentile)",
                         "resamples": n_resamples, "seed": seed},
            "test": "paired permutation (per seed and clip), two-sided", "n_test": int(len(y)),
            "n_pairs": len(pairs), "classes": pairs[0][0].classes, "created": now_iso(), "code_version": code_version()}


def summary_line(r: dict[str, Any]) -> str:
    lo, hi = r["ci95"]
    seeds = f"; per seed {seed_cell(r)}" if r["n_pairs"] > 1 else ""
    return (f"{r['b']['arm']} vs {r['a']['arm']}: {r['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}], p = {r['p_value']:.3g} "
            f"(macro-F1 {r['b']['mean']:.3f} vs {r['a']['mean']:.3f}; {r['n_pairs']} seed pair(s), "
            f"{r['n_test']} test clips{seeds})")


CSV_FIELDS = ("arm_a", "arm_b", "runs_a", "runs_b", "macro_f1_a", "macro_f1_b", "diff", "ci_low", "ci_high",
              "p_value", "seed_ci_low", "seed_ci_high", "pairs", "n_test")


def _row(r: dict[str, Any]) -> dict[str, Any]:
    return {"arm_a": r["a"]["arm"], "arm_b": r["b"]["arm"], "runs_a": " ".join(r["a"]["runs"]),
            "runs_b": " ".join(r["b"]["runs"]), "macro_f1_a": f"{r['a']['mean']:.4f}",
            "macro_f1_b": f"{r['b']['mean']:.4f}", "diff": f"{r['diff']:.4f}", "ci_low": f"{r['ci95'][0]:.4f}",
            "ci_high": f"{r['ci95'][1]:.4f}", "p_value": f"{r['p_value']:.4g}",
            "seed_ci_low": f"{r['seed_t_ci95'][0]:.4f}" if r["seed_t_ci95"] else "",
            "seed_ci_high": f"{r['seed_t_ci95'][1]:.4f}" if r["seed_t_ci95"] else "", "pairs": r["n_pairs"],
            "n_test": r["n_test"]}


def markdown(r: dict[str, Any]) -> str:
    lo, hi = r["ci95"]
    return "\n".join([
        f"# classify compare: {r['b']['arm']} (B) vs {r['a']['arm']} (A)", "",
        "| A | B | macro-F1 A | macro-F1 B | B − A [95 % CI] | p | per-seed B − A [t 95 %] | test clips |",
        "|---|---|---|---|---|---|---|---|",
        f"| {r['a']['arm']} | {r['b']['arm']} | {_mean_sd(r['a'])} | "
        f"{_mean_sd(r['b'])} | {r['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}] | {r['p_value']:.3g} | "
        f"{seed_cell(r)} | {r['n_test']} |", "",
        "B − A: mean over seeds of the paired macro-F1 difference on the same test clips. 95 % CI: stratified "
        f"bootstrap of the test clips ({r['interval']['resamples']} resamples, the same clips for both arms and all "
        "seeds). p: paired permutation test (two-sided). Both treat these seeds as given: they measure the test "
        "clips' sampling error. The per-seed column adds the seed-to-seed spread (Student-t over the per-seed "
        "differences, 3 or more pairs). An interval that contains 0 (or p ≥ 0.05) means the data cannot tell the "
        "arms apart.", "",
        f"A runs: {', '.join(r['a']['runs'])}", f"B runs: {', '.join(r['b']['runs'])}", ""])


def _mean_sd(side: dict[str, Any]) -> str:
    return f"{side['mean']:.3f} ± {side['sd']:.3f}" if side["sd"] is not None else f"{side['mean']:.3f} (one run)"


def seed_cell(r: dict[str, Any]) -> str:
    diffs = " / ".join(f"{d:+.3f}" for d in r["per_seed_diff"])
    ci = r.get("seed_t_ci95")
    return f"{diffs} [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else diffs


def write_outputs(ws: Workspace, r: dict[str, Any], name: str) -> dict[str, Path]:
    from classify.plots import plot_compare

    base = ws.results_dir / "compare" / name
    paths = {k: base.parent / f"{base.name}.{k}" for k in ("md", "csv", "png", "json")}   # names may hold dots
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerow(_row(r))
    atomic_write_text(paths["md"], markdown(r))
    atomic_write_text(paths["csv"], buf.getvalue())
    plot_compare(r, paths["png"])
    atomic_write_json(paths["json"], r)
    return paths


def default_name(a: Sequence[Run], b: Sequence[Run]) -> str:
    return f"compare-{a[0].run_id[:5]}-vs-{b[0].run_id[:5]}"
