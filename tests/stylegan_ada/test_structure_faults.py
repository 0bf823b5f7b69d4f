"""The test-fault hook (STYLEGAN_ADA_FAULT): no plan at all when unset, so the training loop skips it."""
from __future__ import annotations

from stylegan_ada.training.faults import FAULT_ENV, FaultPlan


def test_unset_or_empty_variable_gives_no_plan(monkeypatch):
    monkeypatch.delenv(FAULT_ENV, raising=False)
    assert FaultPlan.from_env() is None
    monkeypatch.setenv(FAULT_ENV, " , ")
    assert FaultPlan.from_env() is None


def test_points_are_parsed_per_key(monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "step=5, snapshot=1,step=9,dir-swap=2")
    plan = FaultPlan.from_env()
    assert plan.points == {"step": {5, 9}, "snapshot": {1}, "dir-swap": {2}}
    assert plan.hits("dir-swap", 2) and not plan.hits("dir-swap", 1) and not plan.hits("stall", 1)
    plan.at_step(4)  # not a fault point: returns (a hit would SIGKILL this test process)

