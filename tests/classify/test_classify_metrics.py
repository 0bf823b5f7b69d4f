"""Per-run scores against scikit-learn and a hand-computed case, with a class order that is not alphabetical."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from classify.metrics import classification_metrics, report_text
from classify.results import aggregate

CLASSES = ["zeta", "alpha", "mid"]        # not alphabetical: index order is the workspace's, names must follow it


def _case():
    # truth  zeta x4, alpha x3, mid x3; predictions chosen so every class has different P, R and F1
    y = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    p = np.array([0, 0, 1, 2, 1, 1, 0, 2, 0, 0])
    return y, p


def test_scores_match_a_hand_computed_case():
    y, p = _case()
    m = classification_metrics(y, p, CLASSES)
    # zeta: TP 2, predicted 5, true 4 -> P 2/5, R 2/4, F1 4/9; alpha: TP 2, pred 3, true 3 -> 2/3, 2/3, 2/3;
    # mid: TP 1, pred 2, true 3 -> P 1/2, R 1/3, F1 2/5
    hand = {"zeta": (2 / 5, 2 / 4, 4 / 9, 4), "alpha": (2 / 3, 2 / 3, 2 / 3, 3), "mid": (1 / 2, 1 / 3, 2 / 5, 3)}
    for c, (prec, rec, f1, support) in hand.items():
        assert m["per_class"][c] == pytest.approx({"precision": prec, "recall": rec, "f1": f1, "support": support})
        assert m["per_class_f1"][c] == pytest.approx(f1)
    assert m["macro_precision"] == pytest.approx((2 / 5 + 2 / 3 + 1 / 2) / 3)
    assert m["macro_recall"] == pytest.approx((2 / 4 + 2 / 3 + 1 / 3) / 3)
    assert m["macro_f1"] == pytest.approx((4 / 9 + 2 / 3 + 2 / 5) / 3)
    assert m["accuracy"] == pytest.approx(5 / 10) and m["n"] == 10
    # rows = truth, columns = prediction: zeta's 4 clips went to zeta 2, alpha 1, mid 1
    assert m["confusion"] == [[2, 1, 1], [1, 2, 0], [2, 0, 1]]
    assert list(m["per_class"]) == CLASSES


def test_scores_match_sklearn_on_random_predictions_with_string_labels():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 60)
    p = np.where(rng.random(60) < 0.5, y, rng.integers(0, 3, 60))
    m = classification_metrics(y, p, CLASSES)
    names_y, names_p = np.array(CLASSES)[y], np.array(CLASSES)[p]       # sklearn sees names, in our order
    prec, rec, f1, sup = precision_recall_fscore_support(names_y, names_p, labels=CLASSES, zero_division=0)
    for i, c in enumerate(CLASSES):
        assert m["per_class"][c] == pytest.approx({"precision": prec[i], "recall": rec[i], "f1": f1[i],
                                                   "support": sup[i]})
        assert m["per_class_f1"][c] == pytest.approx(f1[i])
    assert m["macro_precision"] == pytest.approx(prec.mean()) and m["macro_recall"] == pytest.approx(rec.mean())
    assert m["macro_f1"] == pytest.approx(f1_score(names_y, names_p, labels=CLASSES, average="macro"))
    assert m["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert m["confusion"] == confusion_matrix(names_y, names_p, labels=CLASSES).tolist()


def test_report_lines_carry_each_class_own_numbers():
    y, p = _case()
    text = report_text(classification_metrics(y, p, CLASSES), "t")
    assert "        zeta     0.400     0.500     0.444         4" in text
    assert "         mid     0.500     0.333     0.400         3" in text
    assert "   macro avg     0.522     0.500     0.504        10" in text


def test_aggregate_groups_by_arm_and_averages_each_split_separately():
    def run(arm, seed, f1):
        s = {"accuracy": f1, "macro_precision": f1 + 0.1, "macro_recall": f1 - 0.1, "macro_f1": f1}
        return {"run_id": f"{seed}", "train": arm.split("~")[0], "arm": arm, "arch": "x", "mode": "whole",
                "pretrained": "none", "seed": seed, "val": {k: v + 0.2 for k, v in s.items()}, "test": s}

    runs = [run("real", 0, 0.30), run("real~thesis", 0, 0.50), run("real", 1, 0.40), run("real~thesis", 1, 0.60),
            run("real", 2, 0.35)]
    rows = {(r["train"], r["split"]): r for r in aggregate(runs)}
    assert set(rows) == {("real", "val"), ("real", "test"), ("real~thesis", "val"), ("real~thesis", "test")}
    t = rows[("real", "test")]
    assert t["seeds"] == [0, 1, 2] and t["macro_f1"] == pytest.approx(0.35)
    assert t["macro_f1_sd"] == pytest.approx(np.std([0.30, 0.40, 0.35], ddof=1))
    assert t["macro_precision"] == pytest.approx(0.45) and t["macro_recall"] == pytest.approx(0.25)
    assert rows[("real", "val")]["macro_f1"] == pytest.approx(0.55)
    assert rows[("real~thesis", "test")]["macro_f1"] == pytest.approx(0.55) and rows[("real~thesis", "test")]["n"] == 2
