"""`classify eval --defaults NAME`: the named default sets, in this one place. A flag given on the command line wins
over its set's value."""
from __future__ import annotations

from typing import Any

EVAL_DEFAULTS: dict[str, dict[str, str]] = {
    # today's toolkit: min/10 LR pick; freeze keeps the frozen part in eval mode (cached features)
    "toolkit": {"lr_pick": "min10", "freeze_bn": "eval"},
    # the thesis: torch-lr-finder's steepest-descent pick; tutorial-style freezing (the PyTorch fine-tuning
    # tutorial's whole-model train(): batch-norm statistics update, dropout on) -- our reading of it
    "thesis": {"lr_pick": "steepest", "freeze_bn": "train"},
}
DEFAULT_SET = "toolkit"


def resolve_defaults(name: str, **given: Any) -> dict[str, Any]:
    """The set ``name`` with every ``given`` value that is not None in its place."""
    if name not in EVAL_DEFAULTS:
        raise ValueError(f"unknown default set {name!r}")
    return {k: given[k] if given.get(k) is not None else v for k, v in EVAL_DEFAULTS[name].items()}
