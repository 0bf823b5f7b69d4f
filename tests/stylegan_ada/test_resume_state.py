"""Training-state files, RNG capture, snapshot names, retention and the choice of the resume point."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from stylegan_ada.training import run_dir as rd
from stylegan_ada.training.state import (TrainingStateError, capture_rng, load_training_state, restore_rng,
                                         save_training_state)
from stylegan_ada.training.verify import check_state


def _state():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.ones(3))], lr=0.1, betas=(0.0, 0.99))
    opt.param_groups[0]["params"][0].grad = torch.ones(3)
    opt.step()
    return {"cur_nimg": 1234, "G_opt": opt.state_dict(), "pl_mean": torch.tensor(0.5), "history": [{"fid": 3.0}],
            "rng": capture_rng()}


def test_state_round_trip_is_exact_and_weights_only(tmp_path):
    path = tmp_path / "training-state-000001.pt"
    state = _state()
    save_training_state(path, state)
    back = load_training_state(path)
    assert back["cur_nimg"] == 1234 and back["history"] == [{"fid": 3.0}]
    assert torch.equal(back["G_opt"]["state"][0]["exp_avg_sq"], state["G_opt"]["state"][0]["exp_avg_sq"])
    # The outer file itself loads with weights_only=True (no code), as does its payload.
    outer = torch.load(path, weights_only=True)
    assert outer["format"] == "stylegan_ada-training-state-v1" and len(outer["sha256"]) == 64


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_damaged_state_is_detected(tmp_path, damage):
    path = tmp_path / "training-state-000001.pt"
    save_training_state(path, _state())
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) * 2 // 3]
    elif damage == "flip":
        data[len(data) // 2] ^= 0x01
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(b"not a torch file at all")
    path.write_bytes(bytes(data))
    check = check_state(path)  # what `augment verify` reports
    assert not check.ok and "network" not in check.detail, check.detail  # refused for itself, not for its link
    with pytest.raises(TrainingStateError):
        load_training_state(path)


def test_rng_capture_restore_reproduces_every_generator():
    rng = capture_rng()
    a = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng(rng)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_snapshot_tags_are_unique_and_ordered():
    assert rd.snapshot_tag(12008, None) == "000012"
    assert rd.snapshot_tag(12480, 12008) == "000012.480"  # interrupted within the same kimg
    assert rd.snapshot_tag(16008, 12480) == "000016"
    assert rd.tag_nimg("000012.480") == 12480 and rd.tag_nimg("000012") == 12000
    tags = ["000000.016", "000000", "000001", "000000.008"]
    assert sorted(tags, key=rd.tag_nimg) == ["000000", "000000.008", "000000.016", "000001"]
    assert rd.NETWORK_RE.match("network-snapshot-000000.016.safetensors")
    assert rd.STATE_RE.match("training-state-000012.pt")
    assert not rd.STATE_RE.match(".training-state-000012.pt.abc.tmp")


def test_run_numbering(tmp_path):
    a = rd.create_run_dir(tmp_path, "a-tiny")
    b = rd.create_run_dir(tmp_path, "a tiny/../x")
    assert a.name == "00000-a-tiny" and b.name.startswith("00001-") and "/" not in b.name[6:]
    assert rd.latest_run(tmp_path) == b and rd.list_runs(tmp_path) == [a, b]
    assert rd.latest_run(tmp_path / "none") is None


def full_state(cur_nimg: int) -> dict:
    """Everything a resumable training state holds (as the training loop writes it), small."""
    from stylegan_ada.training.snapshots import Progress

    opt = _state()["G_opt"]
    return dict(Progress(cur_nimg=cur_nimg).to_state(), G_opt=opt, D_opt=opt, pl_mean=torch.tensor(0.0),
                ada=None, augment_p=None)


def _fake_pair(run_dir, tag):
    from stylegan_ada.training.snapshots import save_state

    net = rd.network_path(run_dir, tag)
    net.write_bytes(f"weights {tag}".encode())  # find_resume_point checks the sha256 the state records
    save_state(run_dir, tag, net, full_state(rd.tag_nimg(tag)))


def test_resume_point_skips_damaged_pairs_with_a_warning(tmp_path):
    for tag in ("000000", "000004", "000008", "000008.500"):
        _fake_pair(tmp_path, tag)
    rd.network_path(tmp_path, "000008.500").write_bytes(b"other weights")  # pair no longer matches
    path = rd.state_path(tmp_path, "000008")
    path.write_bytes(path.read_bytes()[:100])                            # truncated
    warnings = []
    point, problems = rd.find_resume_point(tmp_path, warn=warnings.append)
    assert point.tag == "000004" and point.state["cur_nimg"] == 4000
    assert len(problems) == 2 and len(warnings) == 2
    assert "000008.500" in warnings[0] and "sha256" in warnings[0] and "000008 " in warnings[1]


def test_prune_keeps_the_newest_and_protected_and_ignores_later_tags(tmp_path):
    for tag in ("000000", "000004", "000008", "000012", "000016"):
        _fake_pair(tmp_path, tag)
    removed = rd.prune_snapshots(tmp_path, "000012", keep=2, protect=["000000"])
    assert rd.state_tags(tmp_path) == ["000008", "000012", "000016"]      # 000016: from a killed attempt
    assert rd.network_tags(tmp_path) == ["000000", "000008", "000012", "000016"]
    assert len(removed) == 3
    assert rd.prune_snapshots(tmp_path, "000016", keep=0) == []
