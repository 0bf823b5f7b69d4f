"""The resumable-state schema (stylegan_ada/training/state.py) refuses exactly the values it says it refuses: a
hand-made state from the real pieces (capture_rng, an Adam state dict), then one field at a time made wrong."""
from __future__ import annotations

import pytest
import torch

from stylegan_ada.training.state import TrainingStateError, capture_rng, check_state


def _state() -> dict:
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.Adam([p])
    p.grad = torch.ones(2)
    opt.step()
    return {"cur_nimg": 8, "cur_tick": 1, "batch_idx": 2, "tick_start_nimg": 4, "data_pos": 8,
            "last_snapshot_nimg": None, "wall_seconds": 1.5, "metric_history": [{"fid": 3.0}],
            "G_opt": opt.state_dict(), "D_opt": opt.state_dict(), "pl_mean": torch.zeros([]),
            "ada": {"count": 0, "minibatches": 2, "adjustments": 0, "sign_sum": 0.0, "r_t": None},
            "augment_p": torch.zeros([]), "network_snapshot": "network-snapshot-000000.safetensors",
            "network_sha256": "0" * 64, "rng": capture_rng()}


def test_a_complete_state_passes():
    check_state(_state(), "x.pt")
    check_state(dict(_state(), cur_nimg=0, last_snapshot_nimg=4, ada=None, augment_p=None), "x.pt")


@pytest.mark.parametrize("value", [-1, True, 1.5, "8", None])
@pytest.mark.parametrize("field", ["cur_nimg", "data_pos"])
def test_counters_must_be_integers_from_zero(field, value):
    with pytest.raises(TrainingStateError, match=f"x.pt: field '{field}' must be an integer >= 0, got "
                                                 f"{type(value).__name__}"):
        check_state(dict(_state(), **{field: value}), "x.pt")


@pytest.mark.parametrize("ada", [{"count": -1}, {"count": True}, {"count": 1.0}])
def test_ada_counters_must_be_integers_from_zero(ada):
    state = _state()
    state["ada"] = dict(state["ada"], **ada)
    with pytest.raises(TrainingStateError, match="field 'ada'"):
        check_state(state, "x.pt")


def test_a_missing_field_is_named():
    state = _state()
    del state["pl_mean"]
    with pytest.raises(TrainingStateError, match=r"x.pt has no 'pl_mean' \(not a complete training state\)"):
        check_state(state, "x.pt")
