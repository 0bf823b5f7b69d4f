"""LR range test pick rules: torch-lr-finder's steepest descent (the thesis' rule) and minimum / 10, on hand curves."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from classify.cli import cli
from classify.eval_defaults import resolve_defaults
from classify.lr_range import lr_range_test, lrfinder_smooth, pick_candidates, steepest_lr, suggest_lr
from tests.support.workspaces import make_image_workspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# the toolkit's sweep: 50 steps from 1e-6 to 1, lr_k = 1e-6 * 1e6 ** (k / 49)
LRS = list(np.geomspace(1e-6, 1.0, 50))


def test_lrfinder_smoothing_by_hand():
    # s0 = 1; s1 = 0.05*2 + 0.95*1 = 1.05; s2 = 0.05*3 + 0.95*1.05 = 1.1475
    assert lrfinder_smooth([1.0, 2.0, 3.0]) == pytest.approx([1.0, 1.05, 1.1475])


def test_steepest_is_the_drop_after_trimming_start_and_end_and_can_exceed_a_tenth():
    # one drop between k=43 and k=44; points 45..49 are trimmed (skip_end 5), so the kept curve ends at k=44 where
    # numpy's one-sided edge gradient is l44 - l43 = -1 (k=43: (l44 - l42) / 2 = -0.5): the pick is lr_44
    curve = [2.0] * 44 + [1.0] * 6
    lr, note = steepest_lr(LRS, curve)
    assert lr == pytest.approx(10 ** (-6 + 6 * 44 / 49)) and note is None      # = 0.244
    assert lr > 0.1
    # min/10 on the same curve: the first minimum (k=44, after the 10 % warm-up) / 10 -> 0.0244
    assert suggest_lr(LRS, curve) == pytest.approx(10 ** (-6 + 6 * 44 / 49) / 10)


def test_steepest_ignores_drops_in_the_skipped_start():
    # a steeper drop at k=3..4 lies in the first 10 points torch-lr-finder skips; the pick is the later one at k=30
    curve = [5.0] * 4 + [2.0] * 26 + [1.5] * 20
    lr, _ = steepest_lr(LRS, curve)
    assert lr == pytest.approx(LRS[29])     # central differences: k=29 and k=30 tie at -0.25, argmin takes the first


def test_on_a_smooth_curve_steepest_finds_the_inflection_min10_cannot_pass_a_tenth():
    # smoothed loss 2 - tanh(2 (log10 lr - log10 0.15)): steepest descent at lr = 0.15 by construction, i.e. at
    # k = 49 (6 + log10 0.15) / 6 = 42.3 -> the grid point k = 42 (lr 0.139), inside the kept points 10..44
    curve = [2.0 - np.tanh(2 * (np.log10(lr) - np.log10(0.15))) for lr in LRS]
    lr, note = steepest_lr(LRS, curve)
    assert lr == pytest.approx(LRS[42]) and lr > 0.1 and note is None
    # the curve falls to the end of the sweep, so min/10 is lr_max / 10 = 0.1: it can never pick above that
    assert suggest_lr(LRS, curve) == pytest.approx(0.1)


def test_candidates_smooth_the_raw_losses_as_each_rule_does():
    raw = [2.0] * 20 + [1.0] * 30              # torch-lr-finder's smoothing decays the step over ~20 steps
    candidates, note = pick_candidates(LRS, raw)
    # smoothed: s_19 = 2, s_k = 1 + 0.95 ** (k - 19) after; central differences: k=20 (s21 - s19) / 2 = -0.04875,
    # k=21 (s22 - s20) / 2 = -0.04631, shrinking by 0.95 each step: the most negative is at k=20
    assert candidates["steepest"] == pytest.approx(LRS[20]) and note is None
    # the bias-corrected EMA 0.9 reaches its minimum at the last point: min10 = 1.0 / 10
    assert candidates["min10"] == pytest.approx(0.1)


def test_too_short_sweep_falls_back_to_the_untrimmed_curve():
    lr, note = steepest_lr(LRS[:8], [3, 3, 2, 1, 1, 1, 1, 1])
    assert note and "--lr-range-steps" in note
    assert lr == pytest.approx(LRS[2])      # gradients: k=2 (1-3)/2 = -1, k=3 (1-2)/2 = -0.5


def test_range_test_records_both_candidates_and_uses_the_chosen_one():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    loader = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 32, 8)]
    out = lr_range_test(model, opt, loader, lambda b: torch.nn.functional.cross_entropy(model(b[0]), b[1]),
                        start=1e-4, end=10.0, steps=30, pick="steepest")
    assert out["pick"] == "steepest" and out["suggested_lr"] == out["candidates"]["steepest"]
    assert out["candidates"]["steepest"] in out["lrs"][10:len(out["lrs"]) - 5]
    assert out["candidates"]["min10"] in [lr / 10 for lr in out["lrs"]]
    assert out["lrfinder_losses"] == pytest.approx(lrfinder_smooth(out["raw_losses"]))


def test_defaults_sets_and_explicit_flags():
    assert resolve_defaults("toolkit") == {"lr_pick": "min10", "freeze_bn": "eval"}
    assert resolve_defaults("thesis") == {"lr_pick": "steepest", "freeze_bn": "train"}
    assert resolve_defaults("thesis", lr_pick="min10", freeze_bn=None)["lr_pick"] == "min10"


def test_eval_with_thesis_defaults_trains_at_the_steepest_pick_and_records_both(tmp_path):
    ws = make_image_workspace(tmp_path / "ws", classes=("a", "b"), counts={"train": 4, "val": 2, "test": 2},
                              resolution=16)
    res = CliRunner().invoke(cli, ["eval", "--workspace", str(ws.root), "--arch", "small_cnn", "--epochs", "1",
                                   "--seeds", "0", "--input-size", "16", "--lr-range-steps", "20",
                                   "--lr-range-end", "10", "--defaults", "thesis", "--quiet"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    run_dir = next(p for p in (ws.root / "results").iterdir() if p.name[:5].isdigit())
    m = json.loads((run_dir / "metrics.json").read_text())
    lr_range = m["lr_range"]
    assert lr_range["pick"] == "steepest" and "torch-lr-finder" in lr_range["rule"]
    assert set(lr_range["candidates"]) == {"min10", "steepest"}
    assert m["lr"] == lr_range["candidates"]["steepest"] == lr_range["suggested_lr"]
    assert m["config"]["train_config"]["lr_pick"] == "steepest"
    assert lr_range["end"] == 10 and max(lr_range["lrs"]) <= 10 + 1e-9
