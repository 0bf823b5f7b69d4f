"""Intervals and paired comparisons (classify.stats, `classify compare`) against hand-computed cases and scipy."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats as sps
from sklearn.metrics import f1_score

from classify.cli import cli
from classify.stats import (bootstrap_ci, macro_f1_weighted, paired_bootstrap, paired_permutation_p,
                            stratified_weights, t_interval)
from tests.support.workspaces import make_image_workspace


def sk_f1(y, p, c):
    return f1_score(y, p, labels=list(range(c)), average="macro", zero_division=0)


def np_f1(y, p, c):
    """Macro-F1 written out per class (fast enough to run inside scipy's 1024 permutations)."""
    f = [2 * np.sum((y == k) & (p == k)) / max(1, np.sum(y == k) + np.sum(p == k)) for k in range(c)]
    return float(np.mean(f))


def test_t_interval_matches_scipy_and_a_hand_case():
    assert t_interval([0.4, 0.5, 0.6]) == pytest.approx((0.5 - 0.248414, 0.5 + 0.248414), abs=1e-6)
    vals = [0.31, 0.44, 0.29, 0.52, 0.38]
    expected = sps.t.interval(0.95, len(vals) - 1, loc=np.mean(vals), scale=sps.sem(vals))
    assert t_interval(vals) == pytest.approx(expected, abs=1e-12)
    assert t_interval([0.5]) is None


def test_weighted_macro_f1_equals_sklearn_on_every_stratified_resample():
    rng = np.random.default_rng(3)
    y = np.repeat([2, 0, 1], [5, 3, 4])
    p = rng.integers(0, 3, len(y))
    w = stratified_weights(y, n_resamples=50, seed=1)
    for c in range(3):                                   # class sizes are kept in every resample
        assert (w[:, y == c].sum(1) == (y == c).sum()).all()
    ours = macro_f1_weighted(y, p, w, 3)
    for r in range(50):
        idx = np.repeat(np.arange(len(y)), w[r].astype(int))
        assert ours[r] == pytest.approx(sk_f1(y[idx], p[idx], 3), abs=1e-12)
    lo, hi = bootstrap_ci(y, p, 3, n_resamples=50, seed=1)
    assert (lo, hi) == pytest.approx((np.quantile(ours, 0.025), np.quantile(ours, 0.975)))


def test_paired_bootstrap_hand_case_constant_predictor_vs_perfect():
    # stratified resamples keep 4 clips per class: A (always class 0) scores (2·4/12 + 0)/2 = 1/3 in every resample,
    # B (perfect) 1, so the difference and both interval ends are 2/3 exactly
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    a, b = np.zeros((1, 8), int), y[None].copy()
    diff, ci = paired_bootstrap(y, a, b, 2, n_resamples=200)
    assert diff == pytest.approx(2 / 3) and ci == pytest.approx((2 / 3, 2 / 3))
    # only the 4 class-1 clips differ: 16 swap patterns; swapping k of them gives A = (8/(12-k) + 2k/(k+4))/2 and
    # B = (8/(8+k) + 2(4-k)/(8-k))/2, so |T| = 2/3 only for k = 0 and k = 4: p = 2/16
    assert paired_permutation_p(y, a, b, 2) == pytest.approx(2 / 16)
    assert paired_permutation_p(y, a, a, 2) == 1.0


def test_paired_bootstrap_pools_seeds_over_the_same_clips():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 6)
    pa, pb = rng.integers(0, 3, (2, 18)), rng.integers(0, 3, (2, 18))
    pb[:, :9] = y[:9]
    diff, ci = paired_bootstrap(y, pa, pb, 3, n_resamples=40, seed=5)
    assert diff == pytest.approx(np.mean([sk_f1(y, b, 3) - sk_f1(y, a, 3) for a, b in zip(pa, pb)]))
    w = stratified_weights(y, 40, 5)
    naive = []
    for r in range(40):
        idx = np.repeat(np.arange(18), w[r].astype(int))
        naive.append(np.mean([sk_f1(y[idx], b[idx], 3) - sk_f1(y[idx], a[idx], 3) for a, b in zip(pa, pb)]))
    assert ci == pytest.approx((np.quantile(naive, 0.025), np.quantile(naive, 0.975)), abs=1e-12)


def test_exact_permutation_p_matches_scipy():
    rng = np.random.default_rng(7)
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    a, b = rng.integers(0, 3, 10), y.copy()
    b[[1, 4]] = 0
    assert np_f1(y, a, 3) == pytest.approx(sk_f1(y, a, 3))
    ref = sps.permutation_test((a, b), lambda x, z: np_f1(y, z, 3) - np_f1(y, x, 3), permutation_type="samples",
                               vectorized=False, n_resamples=np.inf, alternative="two-sided")
    assert paired_permutation_p(y, a[None], b[None], 3) == pytest.approx(ref.pvalue, abs=1e-12)


# ------------------------------------------------------------------ the command
def _fake_run(root: Path, number: int, arm: str, seed: int, preds: list[str], truth: list[str],
              classes=("b", "a"), mode: str = "whole", **extra) -> str:
    rid = f"{number:05d}-{arm}-small_cnn-{mode}-none-seed{seed}"
    d = root / "results" / rid
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({"run_id": rid, "train": arm.split("~")[0], "arm": arm,
                                                "arch": "small_cnn", "mode": mode, "pretrained": "none",
                                                "seed": seed, "classes": list(classes), **extra}))
    with open(d / "predictions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["split", "image", "true", "pred", "correct"])
        w.writerow(["val", "data/val/a/x.png", "a", "b", 0])          # val rows are ignored
        for i, (t, p) in enumerate(zip(truth, preds)):
            w.writerow(["test", f"data/test/{t}/{i}.png", t, p, int(t == p)])
    return rid


def test_compare_command_hand_case(tmp_path):
    ws = make_image_workspace(tmp_path / "ws")
    truth = ["b"] * 4 + ["a"] * 4
    for s in (0, 1, 2):
        _fake_run(ws.root, s, "real", s, ["b"] * 8, truth)
        _fake_run(ws.root, 10 + s, "real~thesis", s, truth, truth)
    res = CliRunner().invoke(cli, ["compare", "-w", str(ws.root), "--runs-a", "00000,00001,00002", "--runs-b",
                                   "arm=real~thesis", "--resamples", "200", "--name", "thesis-0.2"],
                           catch_exceptions=False)
    assert res.exit_code == 0, res.output + res.stderr
    lines = res.output.strip().splitlines()
    assert lines[0].startswith("real~thesis small_cnn whole vs real small_cnn whole: +0.667 [+0.667, +0.667]")
    out = json.loads(Path(lines[-1]).read_text())
    assert Path(lines[-1]) == ws.root / "results" / "compare" / "thesis-0.2.json"
    assert out["diff"] == pytest.approx(2 / 3) and out["ci95"] == pytest.approx([2 / 3, 2 / 3])
    # 3 seeds x 4 differing clips: exact over 4096 patterns; |T| = 2/3 needs every seed unswapped or all swapped
    assert out["p_value"] == pytest.approx(2 / 4096)
    assert out["a"]["seeds"] == [0, 1, 2] and out["n_test"] == 8
    assert out["per_seed_diff"] == pytest.approx([2 / 3] * 3) and out["seed_t_ci95"] == pytest.approx([2 / 3, 2 / 3])
    for ext in ("md", "csv", "png"):
        assert (ws.root / "results" / "compare" / f"thesis-0.2.{ext}").stat().st_size > 0


def test_compare_refuses_unpaired_or_different_test_splits(tmp_path):
    ws = make_image_workspace(tmp_path / "ws")
    truth = ["a", "b", "a", "b"]
    _fake_run(ws.root, 0, "real", 0, truth, truth)
    _fake_run(ws.root, 1, "real", 1, truth, truth)
    _fake_run(ws.root, 2, "real~x", 0, truth, truth)
    _fake_run(ws.root, 3, "real~x", 2, truth, truth)
    _fake_run(ws.root, 4, "real~y", 0, truth, ["b", "a", "a", "b"])
    run = lambda a, b: CliRunner().invoke(cli, ["compare", "-w", str(ws.root), "--runs-a", a, "--runs-b", b])
    res = run("00000,00001", "00002,00003")
    assert res.exit_code == 2 and "paired by seed" in res.stderr
    res = run("00000", "00004")
    assert res.exit_code == 2 and "same test split" in res.stderr
    res = run("00000", "99999")
    assert res.exit_code == 2 and "not found" in res.stderr
    _fake_run(ws.root, 4, "real~z", 0, truth, truth)               # a second 00004-... run
    res = run("00000", "00004")
    assert res.exit_code == 2 and "ambiguous" in res.stderr


def test_a_freeze_filter_never_mixes_frozen_and_training_batch_norm_runs(tmp_path):
    from classify.compare import select

    ws = make_image_workspace(tmp_path / "ws")
    truth = ["a", "b"]
    _fake_run(ws.root, 0, "real", 0, truth, truth, mode="freeze")                      # before --freeze-bn: eval
    _fake_run(ws.root, 1, "real", 1, truth, truth, mode="freeze", freeze_bn="eval")
    _fake_run(ws.root, 2, "real", 1, truth, truth, mode="freeze", freeze_bn="train")  # newer, same seed
    names = lambda spec: [d.name[:5] for d, _ in select(ws, spec)]
    assert names("arm=real,mode=freeze") == ["00000", "00001"]
    assert names("arm=real,mode=freeze,freeze_bn=train") == ["00002"]


def test_one_run_per_arm_has_no_spread_to_report(tmp_path):
    ws = make_image_workspace(tmp_path / "ws")
    truth = ["b", "b", "a", "a"]
    _fake_run(ws.root, 0, "real", 0, ["b", "b", "b", "a"], truth)
    _fake_run(ws.root, 1, "real~x", 0, truth, truth)
    res = CliRunner().invoke(cli, ["compare", "-w", str(ws.root), "--runs-a", "00000", "--runs-b", "00001",
                                   "--resamples", "100", "--name", "one"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads((ws.root / "results" / "compare" / "one.json").read_text())
    assert out["a"]["sd"] is None and out["b"]["sd"] is None         # a sample sd of one value is undefined
    md = (ws.root / "results" / "compare" / "one.md").read_text()
    assert "± 0.000" not in md and "0.733 (one run)" in md and "1.000 (one run)" in md
