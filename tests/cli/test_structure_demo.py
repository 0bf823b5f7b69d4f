"""`augment demo` takes the steps of packages above augment from the entry-point group augment.demo_steps."""
from __future__ import annotations

import tomllib
from importlib.metadata import EntryPoint

import pytest

import classify.demo
from augment.commands import demo
from augment.errors import UserError
from tests.support.paths import REPO


def test_classify_registers_its_demo_step_in_pyproject():
    """The declaration itself (independent of what is installed) names classify's step, which loads."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["entry-points"][demo.STEP_GROUP]
    assert declared == {"classify": "classify.demo:STEP"}
    assert EntryPoint("classify", declared["classify"], demo.STEP_GROUP).load() is classify.demo.STEP


def test_installed_demo_runs_classify_after_augments_own_steps():
    assert demo.STEPS[:len(demo.OWN_STEPS)] == demo.OWN_STEPS
    assert demo.STEPS[len(demo.OWN_STEPS):] == [classify.demo.STEP]
    name, fn = classify.demo.STEP
    assert name.startswith("classify") and fn is classify.demo.demo_step


def test_registered_steps_are_ordered_and_a_broken_one_fails_only_when_run(monkeypatch, tmp_path):
    group = "augment.demo_steps.test"
    found = [EntryPoint("b-classify", "classify.demo:STEP", group),
             EntryPoint("a-missing", "no_such_package.demo:STEP", group)]
    monkeypatch.setattr(demo, "entry_points", lambda group: list(found) if group == "augment.demo_steps.test" else [])
    steps = demo.registered_steps(group)
    assert [name for name, _ in steps] == ["a-missing", classify.demo.STEP[0]]
    assert steps[1][1] is classify.demo.demo_step
    with pytest.raises(UserError, match=r"demo step 'a-missing' \(no_such_package.demo:STEP\) cannot be loaded: "
                                        r"ModuleNotFoundError.*reinstall"):
        steps[0][1](tmp_path, {})
    assert demo.registered_steps("augment.demo_steps.none") == []
