"""A snapshot pair holds the whole run (G, D, G_ema, ADA p, kwargs, counters); a failed write loses nothing.

Each check compares what the file holds with the modules and values that were written (read back through the
loader, not through the writer's helpers), so a writer that drops or swaps a part fails here.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import random

import pytest
import safetensors.torch  # noqa: F401
import torch
import torch._dynamo  # noqa: F401  (the first network built under a device context imports it: 3 s)

# imported here, not in the tests, so a mutation run's fork server has them loaded once (not once per mutant)
import stylegan_ada.networks  # noqa: F401
from stylegan_ada.augment_pipe import make_augment_pipe
from stylegan_ada.checkpoint import load_snapshot, save_snapshot
from stylegan_ada.training import run_dir as rd
from stylegan_ada.training.snapshots import (Progress, continue_from_network, discard_network, load_networks_into,
                                             progress_from_network, restore_rng_from, save_network, save_state)
from stylegan_ada.training.state import TrainingStateError, capture_rng, load_training_state
from tests.support.networks import tiny_networks

TAG = "000012"
DATA_KWARGS = {"path": "data/train", "resolution": 16, "use_labels": False}


def _run_nets(seed: int = 0) -> tuple[dict[str, torch.nn.Module], torch.nn.Module]:
    """The fixture G, D, G_ema with G_ema moved away from G (as after training), and an ADA pipe at p 0.3."""
    nets = tiny_networks()
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        for key in nets:
            for p in nets[key].parameters():
                p.add_(torch.randn(p.shape, generator=gen) * 0.01)
    return nets, make_augment_pipe("bgc", p=0.3)


def _save(run_dir, nets, pipe, tag=TAG, **kw):
    extra = kw.pop("extra", {"cur_nimg": 12000, "tick": 3, "batch_idx": 750})
    return save_network(run_dir, tag, nets=nets, augment_pipe=pipe, training_set_kwargs=DATA_KWARGS, extra=extra,
                        **kw)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_save_network_writes_d_g_ema_pipe_kwargs_and_extra(tmp_path):
    nets, pipe = _run_nets()
    path = _save(tmp_path, nets, pipe)
    assert path == tmp_path / f"network-snapshot-{TAG}.safetensors"
    snap = load_snapshot(path)
    for key in ("G", "D", "G_ema"):
        assert snap[key] is not None, key
        assert _same_weights(snap[key], nets[key]), key
    assert not _same_weights(snap["G"], snap["G_ema"])  # two different networks, each under its own name
    assert snap["augment_pipe"].init_kwargs == pipe.init_kwargs
    assert float(snap["augment_pipe"].p) == pytest.approx(0.3)
    assert snap["training_set_kwargs"] == DATA_KWARGS
    assert snap["extra"] == {"cur_nimg": 12000, "tick": 3, "batch_idx": 750}


def test_load_networks_into_copies_every_network_and_ada_p(tmp_path):
    nets, pipe = _run_nets(seed=1)
    path = _save(tmp_path, nets, pipe)
    fresh, fresh_pipe = _run_nets(seed=2)  # a restarted process: other weights, p 0.3 -> set to 0 below
    fresh_pipe.p.fill_(0.0)
    extra = load_networks_into(path, fresh, fresh_pipe)
    assert extra == {"cur_nimg": 12000, "tick": 3, "batch_idx": 750}
    assert all(_same_weights(fresh[k], nets[k]) for k in nets)
    assert float(fresh_pipe.p) == pytest.approx(0.3)
    # A run without augmentation loads the same snapshot (its pipe is not needed) ...
    assert load_networks_into(path, _run_nets(seed=3)[0], None)["tick"] == 3
    # ... and a snapshot without a pipe leaves the run's p as the run set it.
    plain = save_network(tmp_path, "000016", nets=nets, augment_pipe=None, training_set_kwargs=None, extra={})
    own = make_augment_pipe("bgc", p=0.6)
    assert load_networks_into(plain, _run_nets(seed=4)[0], own) == {}
    assert float(own.p) == pytest.approx(0.6)


@pytest.mark.parametrize("missing", ["D", "G_ema"])
def test_a_snapshot_without_d_or_g_ema_is_refused_as_a_resume_point(tmp_path, missing):
    nets, _ = _run_nets()
    parts = {k: v for k, v in nets.items() if k != missing}
    path = save_snapshot(tmp_path / "network-snapshot-000004.safetensors", **parts, extra={})
    with pytest.raises(TrainingStateError) as info:
        load_networks_into(path, _run_nets(seed=5)[0], None)
    assert str(info.value) == f"network-snapshot-000004.safetensors has no {missing}"


def test_a_damaged_or_foreign_snapshot_is_a_training_state_error(tmp_path):
    nets, pipe = _run_nets()
    path = _save(tmp_path, nets, pipe)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(TrainingStateError, match=path.name):
        load_networks_into(path, _run_nets()[0], None)
    # weights of another architecture: refused naming the network, not a RuntimeError from torch
    _save(tmp_path, nets, pipe, tag="000016")
    other = {"G": nets["G"], "D": nets["D"], "G_ema": nets["D"]}
    with pytest.raises(TrainingStateError, match="G_ema"):
        load_networks_into(rd.network_path(tmp_path, "000016"), other, None)


def _fail_network_writes(monkeypatch, exc: BaseException) -> None:
    """A full disk (or a Ctrl-C) in the middle of writing a network snapshot's temp file."""
    real_write = os.write

    def write(fd: int, data) -> int:
        try:
            name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            name = ""
        if name.startswith(".network-snapshot-"):
            raise exc
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)


@pytest.mark.parametrize("fault", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_rewrite_puts_the_previous_network_file_back(tmp_path, monkeypatch, fault):
    nets, pipe = _run_nets()
    path = _save(tmp_path, nets, pipe)
    old = path.read_bytes()
    with torch.no_grad():
        nets["G"].mapping.fc0.weight.add_(1.0)  # the replay differs: the old file is set aside while writing
    _fail_network_writes(monkeypatch, fault)
    with pytest.raises(type(fault)):
        _save(tmp_path, nets, pipe)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file, nothing left aside
    assert path.read_bytes() == old


def test_a_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    nets, pipe = _run_nets()
    _fail_network_writes(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OSError, match="disk full"):
        _save(tmp_path, nets, pipe)
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_file_at_the_tag_is_replaced_not_kept(tmp_path):
    nets, pipe = _run_nets()
    path = rd.network_path(tmp_path, TAG)
    path.write_bytes(b"cut off by a crash")
    logged: list[str] = []
    _save(tmp_path, nets, pipe, log=logged.append)
    assert [p.name for p in tmp_path.iterdir()] == [path.name] and not logged
    assert path.read_bytes() != b"cut off by a crash"


def test_every_differing_replay_is_kept_under_its_own_name(tmp_path):
    nets, pipe = _run_nets()
    versions = []
    for _ in range(3):
        versions.append(_save(tmp_path, nets, pipe, log=lambda line: None).read_bytes())
        with torch.no_grad():
            nets["D"].b4.out.weight.add_(1.0)
    assert (tmp_path / f"network-snapshot-{TAG}.replaced-1.safetensors").read_bytes() == versions[0]
    assert (tmp_path / f"network-snapshot-{TAG}.replaced-2.safetensors").read_bytes() == versions[1]
    assert rd.network_path(tmp_path, TAG).read_bytes() == versions[2]


def test_discard_network_removes_the_half_pair_and_tolerates_none(tmp_path):
    path = tmp_path / "network-snapshot-000004.safetensors"
    path.write_bytes(b"x")
    discard_network(path)
    assert not path.exists()
    discard_network(path)  # already gone (the write itself failed)
    discard_network(None)


def test_save_state_names_its_network_file_and_its_sha256(tmp_path):
    net = rd.network_path(tmp_path, TAG)
    net.write_bytes(b"the network half")
    random.seed(7)
    expected_draw = random.random()
    random.seed(7)
    path = save_state(tmp_path, TAG, net, Progress(cur_nimg=12000).to_state())
    assert path == tmp_path / f"training-state-{TAG}.pt"
    state = load_training_state(path)
    assert state["version"] == 1 and state["cur_nimg"] == 12000
    assert state["network_snapshot"] == net.name
    assert state["network_sha256"] == hashlib.sha256(b"the network half").hexdigest()
    random.seed(99)
    restore_rng_from(state)  # the state's RNG is the one at save time
    assert random.random() == expected_draw


def test_restore_rng_from_a_state_without_rng_changes_nothing():
    random.seed(3)
    expected = random.random()
    random.seed(3)
    restore_rng_from({"cur_nimg": 0})
    assert random.random() == expected
    random.seed(3)
    rng = capture_rng()
    random.random()
    restore_rng_from({"rng": rng})
    assert random.random() == expected


def test_progress_round_trips_every_counter():
    p = Progress(cur_nimg=1, cur_tick=2, batch_idx=3, tick_start_nimg=4, data_pos=5, last_snapshot_nimg=6,
                 wall_seconds=7.5, metric_history=[{"fid": 8.0}])
    state = p.to_state()
    assert state == dict(cur_nimg=1, cur_tick=2, batch_idx=3, tick_start_nimg=4, data_pos=5, last_snapshot_nimg=6,
                         wall_seconds=7.5, metric_history=[{"fid": 8.0}])
    state["metric_history"].append({"fid": 9.0})  # a copy: the state never aliases the live list
    assert p.metric_history == [{"fid": 8.0}]
    assert Progress.from_state(dict(p.to_state(), version=1, rng={})) == p
    assert Progress().to_state()["last_snapshot_nimg"] is None and Progress().metric_history == []


def _stats(run_dir, records) -> None:
    (run_dir / rd.STATS_NAME).write_text("".join(json.dumps(r) + "\n" for r in records))


def test_progress_from_network_takes_counters_from_extra_and_history_from_stats(tmp_path):
    path = rd.network_path(tmp_path, TAG)
    _stats(tmp_path, [
        {"cur_nimg": 4000, "total_sec": 10.0, "metrics": {"fid": 50.0}},
        ["not a record"],
        {"cur_nimg": "8000", "metrics": {"fid": 1.0}},                      # not a count: ignored
        {"cur_nimg": 8000, "total_sec": 20.0},
        {"cur_nimg": 12000, "total_sec": 30.5, "snapshot": path.name, "metrics": {"fid": 40.0}},
        {"cur_nimg": 16000, "total_sec": 40.0, "metrics": {"fid": 30.0}},  # after the snapshot: dropped
    ])
    progress = progress_from_network(path, {"cur_nimg": 12000, "tick": 3, "batch_idx": 750}, tmp_path)
    assert progress == Progress(cur_nimg=12000, cur_tick=3, batch_idx=750, tick_start_nimg=12000, data_pos=12000,
                                last_snapshot_nimg=12000, wall_seconds=30.5,
                                metric_history=[{"fid": 50.0}, {"fid": 40.0}])
    # a run at image 0 (the tick-0 snapshot) is a valid point; no stats line for it: no wall time yet
    zero = progress_from_network(rd.network_path(tmp_path, "000000"), {"cur_nimg": 0, "tick": 0, "batch_idx": 0},
                                 tmp_path)
    assert zero.cur_nimg == 0 and zero.wall_seconds == 0.0 and zero.metric_history == []


def test_progress_from_network_ignores_a_wall_time_that_is_no_number(tmp_path):
    path = rd.network_path(tmp_path, TAG)
    _stats(tmp_path, [{"cur_nimg": 12000, "total_sec": "30", "snapshot": path.name}])
    assert progress_from_network(path, {"cur_nimg": 12000, "tick": 3, "batch_idx": 750},
                                 tmp_path).wall_seconds == 0.0


@pytest.mark.parametrize("key,value", [("cur_nimg", None), ("tick", True), ("batch_idx", -1), ("cur_nimg", 1.5),
                                       ("tick", "3")])
def test_progress_from_network_refuses_a_snapshot_without_valid_counters(tmp_path, key, value):
    extra = {"cur_nimg": 12000, "tick": 3, "batch_idx": 750}
    if value is None:
        del extra[key]
    else:
        extra[key] = value
    path = rd.network_path(tmp_path, TAG)
    with pytest.raises(TrainingStateError) as info:
        progress_from_network(path, extra, tmp_path)
    assert str(info.value) == f"{path.name} does not record its {key!r}; cannot continue from it"


def test_continue_from_network_skips_a_damaged_newest_snapshot(tmp_path):
    nets, pipe = _run_nets(seed=1)
    _save(tmp_path, nets, pipe, tag="000008", extra={"cur_nimg": 8000, "tick": 2, "batch_idx": 500})
    newest = _save(tmp_path, nets, pipe, tag="000012")
    newest.write_bytes(newest.read_bytes()[:1000])
    _stats(tmp_path, [{"cur_nimg": 8000, "total_sec": 12.5, "snapshot": rd.network_path(tmp_path, "000008").name}])
    fresh, fresh_pipe = _run_nets(seed=2)
    fresh_pipe.p.fill_(0.0)  # a new process starts at p 0; the snapshot's 0.3 must come back
    logged: list[str] = []
    tag, progress = continue_from_network(tmp_path, fresh, fresh_pipe, ["a", "b"], log=logged.append)
    assert tag == "000008" and progress.cur_nimg == 8000 and progress.cur_tick == 2
    assert progress.wall_seconds == 12.5  # the wall time the stats recorded for that very snapshot
    assert all(_same_weights(fresh[k], nets[k]) for k in nets) and float(fresh_pipe.p) == pytest.approx(0.3)
    assert logged == [
        "warning: network snapshot 000012 is damaged too; trying the previous one",
        f"warning: no usable training state in {tmp_path.name} (2 unusable); continuing from network snapshot "
        "000008 (8.000 kimg: weights and ADA p) with FRESH optimizer state -- not bit-identical to an "
        "uninterrupted run"]


def test_continue_from_network_refuses_when_only_damaged_training_states_exist(tmp_path):
    # no network snapshot at all, but the training states that were there are unusable: not a fresh start
    with pytest.raises(TrainingStateError) as info:
        continue_from_network(tmp_path, {}, None, ["training-state-000004.pt: truncated"], log=lambda line: None)
    assert str(info.value) == f"no usable snapshot in {tmp_path} (every network snapshot and training state is " \
                              "damaged); start a new run without --resume (the damaged files are left in place)"
    # a damaged network snapshot and no training state at all: refused too
    rd.network_path(tmp_path, "000004").write_bytes(b"cut")
    with pytest.raises(TrainingStateError, match="no usable snapshot"):
        continue_from_network(tmp_path, {}, None, [], log=lambda line: None)
