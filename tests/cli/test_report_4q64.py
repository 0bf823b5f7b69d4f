"""tools/report_4q_small64.py: an arm that has not run every seed of its reference is listed, not paired on fewer."""
from __future__ import annotations

import pytest

import classify.compare as compare
from tests.support.paths import REPO

CLF = "small_cnn whole"


@pytest.fixture()
def report(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "tools"))
    import report_4q_small64

    return report_4q_small64


def _runs(**arms: tuple[int, ...]) -> dict:
    return {(CLF, arm.replace("_", "+")): {s: {"seed": s} for s in seeds} for arm, seeds in arms.items()}


def test_missing_seeds_names_what_each_side_lacks(report):
    runs = _runs(real=(0, 1, 2), synthetic=(0,), real_synthetic=(0, 1, 2))
    assert report.missing_seeds(runs, CLF, "real", "real+synthetic") == ""
    assert report.missing_seeds(runs, CLF, "real", "synthetic") == "synthetic lacks seed(s) 1, 2"
    assert report.missing_seeds(runs, CLF, "synthetic", "real") == "synthetic lacks seed(s) 1, 2"


@pytest.fixture()
def compared(monkeypatch) -> list:
    """classify.compare stubbed: each pairing made is recorded as (A's run selector, B's)."""
    made: list = []
    monkeypatch.setattr(compare, "select", lambda ws, spec: [(spec, None)])
    monkeypatch.setattr(compare, "load_run", lambda d, model: d)
    monkeypatch.setattr(compare, "write_outputs", lambda *a: None)
    monkeypatch.setattr(compare, "summary_line", lambda r: "")

    def fake_compare(a, b):
        made.append((a[0], b[0]))
        return {"diff": 0.01, "ci95": [-0.02, 0.04], "p_value": 0.5, "per_seed_diff": [0.0, 0.01, 0.02], "n_pairs": 3}

    monkeypatch.setattr(compare, "compare_runs", fake_compare)
    return made


def test_comparisons_pair_complete_arms_and_list_the_incomplete_ones(report, compared):
    table = report.comparisons(None, _runs(real=(0, 1, 2), synthetic=(0,), real_synthetic=(0, 1, 2)))
    assert compared == [("arm=real,arch=small_cnn,mode=whole", "arm=real+synthetic,arch=small_cnn,mode=whole")]
    assert f"| {CLF} | real | synthetic | not compared yet: synthetic lacks seed(s) 1, 2 | – | – | – |" in table
    assert f"| {CLF} | real | real+synthetic | +0.010 [-0.020, +0.040] | 0.5 | +0.000 / +0.010 / +0.020 | 3 |" in table


def test_pairs_added_after_the_protocol_are_made_and_labelled_so(report, compared):
    three = (0, 1, 2)
    table = report.comparisons(None, _runs(real=three, real_augmented=three, real_synthetic=three))
    sel = "arm={},arch=small_cnn,mode=whole".format
    assert compared[-1] == (sel("real+augmented"), sel("real+synthetic"))
    assert (sel("real+augmented"), sel("real+synthetic+augmented")) not in compared  # that arm has not run
    assert f"| {CLF} | real+augmented | real+synthetic (after the protocol) | +0.010 [-0.020, +0.040] |" in table
    assert f"| {CLF} | real | real+augmented | +0.010" in table  # the protocol's rows, unlabelled
