"""classify.metrics on a hand-computed case whose class order is not alphabetical, with a class that never occurs
and one that is never predicted (where a missing ``labels=`` or another ``zero_division`` changes the numbers)."""
from __future__ import annotations

import math

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
