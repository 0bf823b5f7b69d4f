"""Training pieces: the LR range test and its pick rule, and the per-run results table."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from classify.lr_range import lr_range_test, suggest_lr
from classify.results import aggregate, table_markdown


def test_pick_rule_is_minimum_of_smoothed_loss_over_ten_ignoring_the_warm_up():
    lrs = list(np.geomspace(1e-6, 1, 40))
    losses = [3.0 if k < 4 else 2.0 - 0.02 * k for k in range(30)] + [5.0] * 10   # min at k=29 (k<4 is warm-up)
    losses[0] = 0.1                                                               # noisy first point: ignored
    assert suggest_lr(lrs, losses) == pytest.approx(lrs[29] / 10)


def test_lr_range_test_sweeps_exponentially_and_restores_the_model():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    loader = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 32, 8)]
    out = lr_range_test(model, opt, loader, lambda b: torch.nn.functional.cross_entropy(model(b[0]), b[1]),
                        start=1e-4, end=10.0, steps=30)
    lrs = out["lrs"]
    assert lrs[0] == pytest.approx(1e-4) and np.allclose(np.diff(np.log(lrs)), np.log(10 / 1e-4) / 29)
    assert len(lrs) <= 30 and out["suggested_lr"] in [lr / 10 for lr in lrs]
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert opt.state_dict()["state"] == {}          # momentum buffers from the sweep are gone too


def test_table_has_val_and_test_rows_with_mean_and_sd():
    runs = [{"run_id": f"0000{s}", "train": "real", "arch": "small_cnn", "mode": "whole", "pretrained": "none",
             "seed": s, "val": {"accuracy": a, "macro_precision": a, "macro_recall": a, "macro_f1": a},
             "test": {"accuracy": a / 2, "macro_precision": a / 2, "macro_recall": a / 2, "macro_f1": a / 2}}
            for s, a in enumerate((0.5, 0.7, 0.6))]
    rows = aggregate(runs)
    assert [r["split"] for r in rows] == ["val", "test"]
    assert rows[0]["macro_f1"] == pytest.approx(0.6) and rows[0]["macro_f1_sd"] == pytest.approx(0.1)
    md = table_markdown(rows, "t")
    # 95 % t interval by hand: 0.6 ± t(0.975, 2) · 0.1 / √3 = 0.6 ± 4.302653 · 0.057735 = [0.3516, 0.8484]
    assert rows[0]["macro_f1_ci95"] == pytest.approx([0.351586, 0.848414], abs=1e-6)
    assert rows[0]["macro_f1_ci_method"] == "t"
    assert ("| real | small_cnn | whole | none | val | 0.60 ± 0.10 | 0.60 ± 0.10 | 0.60 ± 0.10 | 0.60 ± 0.10 | "
            "[0.35, 0.85] (t) | 3 |") in md
    assert "| test | 0.30 ± 0.05 |" in md


def test_single_run_rows_carry_the_runs_bootstrap_interval_and_two_seeds_none():
    one = {"run_id": "00000", "train": "real", "arch": "a", "seed": 0,
           "test": {"accuracy": 0.5, "macro_precision": 0.5, "macro_recall": 0.5, "macro_f1": 0.5,
                    "macro_f1_ci95": [0.41, 0.58]}}
    rows = aggregate([one])
    assert rows[0]["macro_f1_ci95"] == [0.41, 0.58] and rows[0]["macro_f1_ci_method"] == "bootstrap"
    rows = aggregate([one, {**one, "seed": 1}])
    assert rows[0]["macro_f1_ci95"] is None and "| - | 2 |" in table_markdown(rows, "t")
