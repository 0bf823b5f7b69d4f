"""classify.metrics on a hand-computed case whose class order is not alphabetical, with a class that never occurs
and one that is never predicted (where a missing ``labels=`` or another ``zero_division`` changes the numbers)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from classify.metrics import classification_metrics, macro_f1, mean_sd

CLASSES = ["Q3", "Q1", "Q4", "Q2"]          # index 2 (Q4) occurs in neither truth nor predictions
Y_TRUE = [0, 0, 0, 1, 1, 3, 3, 3]
Y_PRED = [0, 0, 1, 1, 0, 3, 3, 0]


def test_hand_computed_scores_and_confusion():
    m = classification_metrics(Y_TRUE, Y_PRED, CLASSES)
    # by hand: Q3 P 2/4 R 2/3 F1 4/7; Q1 P 1/2 R 1/2 F1 1/2; Q4 all 0 (no support, never predicted); Q2 P 1 R 2/3
    expected = {"Q3": (0.5, 2 / 3, 4 / 7, 3), "Q1": (0.5, 0.5, 0.5, 2), "Q4": (0.0, 0.0, 0.0, 0),
                "Q2": (1.0, 2 / 3, 0.8, 3)}
    assert list(m["per_class"]) == CLASSES and list(m["per_class_f1"]) == CLASSES
    for c, (p, r, f, s) in expected.items():
        got = m["per_class"][c]
        assert (got["precision"], got["recall"], got["f1"], got["support"]) == pytest.approx((p, r, f, s)), c
        assert m["per_class_f1"][c] == pytest.approx(f)
    assert m["macro_precision"] == pytest.approx((0.5 + 0.5 + 0 + 1) / 4)
    assert m["macro_recall"] == pytest.approx((2 / 3 + 0.5 + 0 + 2 / 3) / 4)
    assert m["macro_f1"] == pytest.approx((4 / 7 + 0.5 + 0 + 0.8) / 4)
    assert macro_f1(Y_TRUE, Y_PRED, len(CLASSES)) == pytest.approx(m["macro_f1"])
    assert m["accuracy"] == pytest.approx(5 / 8) and m["n"] == 8
    # rows = truth, columns = prediction, in CLASSES order
    assert m["confusion"] == [[2, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 2]]


def test_mean_and_sample_sd():
    assert mean_sd([2.0]) == (2.0, 0.0)
    mean, sd = mean_sd([1.0, 3.0])
    assert mean == 2.0 and sd == pytest.approx(math.sqrt(2))
    assert mean_sd([0.5, 0.7, 0.9]) == (pytest.approx(0.7), pytest.approx(0.2))


def _run(arm, seed, f1, acc=0.5, arch="small_cnn", test=True, ci=None):
    scores = {"macro_f1": f1, "macro_precision": f1 / 2, "macro_recall": f1 / 3, "accuracy": acc}
    run = {"train": "real", "arm": arm, "arch": arch, "mode": "whole", "pretrained": "imagenet", "seed": seed,
           "val": dict(scores, macro_f1=f1 + 0.1)}
    if test:
        run["test"] = dict(scores, **({"macro_f1_ci95": ci} if ci else {}))
    return run


def test_tables_aggregate_mean_sd_and_t_interval_by_hand():
    """Per (arm, arch, mode, weights) and split: mean, sample sd, and with >= 3 seeds the Student-t 95 % interval
    mean ± t(0.975, n-1) · sd / sqrt(n) (t(0.975, 2) = 4.302652729911275, from tables)."""
    from classify.results import aggregate

    runs = [_run("real", s, f) for s, f in ((0, 0.4), (1, 0.5), (2, 0.9))]
    runs += [_run("synthetic", 0, 0.3, ci=[0.2, 0.45]), _run("real", 0, 0.7, arch="efficientnet_lite0"),
             _run("real", 1, 0.6, arch="efficientnet_lite0"), _run("real+synthetic", 0, 0.2, test=False)]
    rows = {(r["train"], r["arch"], r["split"]): r for r in aggregate(runs)}
    assert set(rows) == {("real", "small_cnn", "val"), ("real", "small_cnn", "test"), ("synthetic", "small_cnn", "val"),
                         ("synthetic", "small_cnn", "test"), ("real", "efficientnet_lite0", "val"),
                         ("real", "efficientnet_lite0", "test"), ("real+synthetic", "small_cnn", "val")}
    r = rows[("real", "small_cnn", "test")]
    sd = math.sqrt(((0.4 - 0.6) ** 2 + (0.5 - 0.6) ** 2 + (0.9 - 0.6) ** 2) / 2)
    assert (r["n"], r["seeds"], r["macro_f1"], r["macro_f1_sd"]) == (3, [0, 1, 2], pytest.approx(0.6), pytest.approx(sd))
    half = 4.302652729911275 * sd / math.sqrt(3)
    assert r["macro_f1_ci95"] == pytest.approx([0.6 - half, 0.6 + half]) and r["macro_f1_ci_method"] == "t"
    assert r["macro_precision"] == pytest.approx(0.3) and r["macro_recall"] == pytest.approx(0.2)
    assert (r["accuracy"], r["accuracy_sd"]) == (pytest.approx(0.5), pytest.approx(0.0))
    assert rows[("real", "small_cnn", "val")]["macro_f1"] == pytest.approx(0.7)
    one = rows[("synthetic", "small_cnn", "test")]  # one run: its own bootstrap interval over the test clips
    assert (one["macro_f1_ci95"], one["macro_f1_ci_method"], one["macro_f1_sd"]) == ([0.2, 0.45], "bootstrap", 0.0)
    two = rows[("real", "efficientnet_lite0", "test")]  # two seeds: too few for t, no single-run bootstrap
    assert (two["macro_f1_ci95"], two["macro_f1_ci_method"]) == (None, "none")
    assert two["macro_f1"] == pytest.approx(0.65) and two["macro_f1_sd"] == pytest.approx(math.sqrt(0.005))


def test_tables_group_by_mode_and_weights_and_interval_every_score():
    from classify.results import aggregate

    runs = [dict(_run("real", s, 0.5, acc=a), mode=mode, pretrained=w)
            for mode, w in (("whole", "imagenet"), ("freeze", "imagenet"), ("whole", "none"))
            for s, a in ((0, 0.2), (1, 0.4), (2, 0.9))]
    for r in runs[3:6]:
        del r["val"]  # a group with test scores only still gets its test row
    no_arm = {k: v for k, v in _run("x", 0, 0.8).items() if k != "arm"}
    runs.append(dict(no_arm, train="real+synthetic"))  # no arm recorded: grouped by its training set
    rows = aggregate(runs)
    assert [(r["train"], r["mode"], r["pretrained"], r["split"], r["n"]) for r in rows] == [
        ("real", "whole", "imagenet", "val", 3), ("real", "whole", "imagenet", "test", 3),
        ("real", "freeze", "imagenet", "test", 3), ("real", "whole", "none", "val", 3),
        ("real", "whole", "none", "test", 3), ("real+synthetic", "whole", "imagenet", "val", 1),
        ("real+synthetic", "whole", "imagenet", "test", 1)]
    sd = float(np.std([0.2, 0.4, 0.9], ddof=1))
    half = 4.302652729911275 * sd / math.sqrt(3)
    assert rows[1]["accuracy_ci95"] == pytest.approx([0.5 - half, 0.5 + half])  # each score its own interval
    assert rows[1]["macro_f1_ci95"] == pytest.approx([0.5, 0.5]) and rows[1]["accuracy_ci_method"] == "t"


@pytest.mark.parametrize("classes", [["zeta", "alpha", "mid"], ["zeta", "a", "a_class_name_of_22_chars"]])
def test_report_has_the_layout_and_numbers_of_sklearns_classification_report(classes):
    """report.txt is scikit-learn's classification_report (digits=3) without its weighted-average row: the same
    words and numbers on the same lines, names right-aligned to the same column (ours has one space less before
    the first number)."""
    from sklearn.metrics import classification_report

    from classify.metrics import report_text

    y, p = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2], [0, 0, 1, 2, 1, 1, 0, 2, 0, 0]
    ours = report_text(classification_metrics(y, p, classes), "the title").split("\n")
    ref = [line for line in classification_report(y, p, labels=[0, 1, 2], target_names=classes, digits=3,
                                                  zero_division=0).split("\n") if "weighted avg" not in line]
    assert ours[:2] == ["the title", ""]
    assert [line.split() for line in ours[2:]] == [line.split() for line in ref]
    width = max(12, *map(len, classes))
    assert all(a[:width + 1] == b[:width + 1] for a, b in zip(ours[2:], ref)), (ours, ref)
    assert len({len(line) for line in ours[2:] if line}) == 1  # every column aligned


def test_a_class_never_predicted_scores_zero_without_a_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn's default zero_division warns (UndefinedMetricWarning)
        m = classification_metrics(Y_TRUE, Y_PRED, CLASSES)
        f1 = macro_f1(Y_TRUE, Y_PRED, len(CLASSES))
    assert m["per_class"]["Q4"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert f1 == pytest.approx(m["macro_f1"])
