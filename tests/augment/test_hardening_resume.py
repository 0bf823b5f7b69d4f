"""Resume never starts from scratch while a good network snapshot exists; full disks and a second Ctrl-C.

Each test trains a tiny run in a child process (tests/train_support.py) and damages or interrupts it.
"""
from __future__ import annotations

import json
import os
import signal

import pytest
import torch

from tests.support.training import TINY, g_ema, make_ws, max_abs_diff, only_run, run_child, start_child, wait_for

KIMG = "0.016"  # 4 minibatches of 4; a snapshot every tick of 2 (and tick 0 after the first)


def _train(ws, *extra, kimg=KIMG):
    return ["train", "-w", str(ws), "--class", "a", "--kimg", kimg, *TINY, *extra]


def _records(run_dir) -> list[dict]:
    from stylegan_ada.training.stats import read_jsonl

    return read_jsonl(run_dir / "stats.jsonl")


def test_resume_with_every_training_state_unreadable_continues_from_the_newest_network(tmp_path):
    from stylegan_ada.training.run_dir import network_path, network_tags, state_path, state_tags

    ws = make_ws(tmp_path / "ws").root
    out = tmp_path / "out.txt"
    code, text = run_child(_train(ws), out)
    assert code == 0, text
    run_dir = only_run(ws)
    tags = network_tags(run_dir)
    assert len(tags) == 3 and state_tags(run_dir) == tags
    before = {t: network_path(run_dir, t).read_bytes() for t in tags}
    old_records = _records(run_dir)
    for tag in tags:  # every training state cut by a crash / the disk
        p = state_path(run_dir, tag)
        p.write_bytes(p.read_bytes()[:100])

    code, text = run_child(_train(ws, "--resume", kimg="0.024"), out)
    assert code == 0, text
    newest = tags[-1]
    assert f"warning: no usable training state in {run_dir.name} (3 unusable); continuing from network snapshot " \
           f"{newest}" in text
    assert "Resuming from snapshot" not in text and "Traceback" not in text
    # The good network snapshots are all still there, byte for byte (--keep 3 pruned none of them).
    assert all(network_path(run_dir, t).read_bytes() == data for t, data in before.items())
    assert len(network_tags(run_dir)) == 4
    # Training went on from the snapshot's 16 images, not from image 0: the old ticks stay, one new one follows.
    records = _records(run_dir)
    assert records[:len(old_records)] == old_records
    assert [r["cur_nimg"] for r in records[len(old_records):]] == [24]
    # ... from the snapshot's weights: G_ema after 2 more minibatches is closer to it than to the run's start.
    new = g_ema(network_path(run_dir, network_tags(run_dir)[-1]))
    start, last = g_ema(network_path(run_dir, tags[0])), g_ema(network_path(run_dir, newest))
    assert max_abs_diff(new, last) < max_abs_diff(new, start)
    resume = json.loads((run_dir / "config.json").read_text())["resumes"][-1]
    assert resume["resumed_from"]["kind"] == "network-only" and resume["resumed_from"]["snapshot"] == newest
    assert len(resume["resumed_from"]["unusable"]) == 3


def test_full_disk_while_writing_the_training_state_removes_its_network_half(tmp_path):
    from stylegan_ada.training.run_dir import network_tags, state_tags

    ws = make_ws(tmp_path / "ws").root
    code, text = run_child(_train(ws), tmp_path / "out.txt", env={"TEST_ENOSPC_AT_FILE": "4"})  # state of pair 2
    assert code == 2, text
    last = text.strip().splitlines()[-1]
    assert last.startswith("error: disk full while writing snapshot") and "000000 is intact" in last, last
    run_dir = only_run(ws)
    assert state_tags(run_dir) == ["000000"]
    assert network_tags(run_dir) == ["000000"]  # the complete network file of the failed pair is gone
    assert not list(run_dir.glob(".*.tmp"))


def test_second_ctrl_c_aborts_at_once_without_finishing_the_snapshot(tmp_path):
    from stylegan_ada.training.run_dir import state_tags

    ws = make_ws(tmp_path / "ws").root
    out = tmp_path / "out.txt"
    # The 2nd snapshot stalls for 10 minutes after its network file: the process is busy when the signals come.
    proc = start_child(_train(ws, kimg="1"), out, env={"STYLEGAN_ADA_FAULT": "stall=2"})
    try:
        assert wait_for(lambda: out.exists() and "fault: stalling" in out.read_text(), timeout=240)
        run_dir = only_run(ws)
        states = state_tags(run_dir)
        os.kill(proc.pid, signal.SIGINT)
        assert wait_for(lambda: "signal again to abort at once" in out.read_text(), timeout=60)
        assert proc.is_alive()  # the first Ctrl-C only asks for a stop: the stalled snapshot goes on
        os.kill(proc.pid, signal.SIGINT)
        proc.join(120)  # far less than the stall: only an abort ends it this soon
        assert not proc.is_alive()
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
    text = out.read_text()
    assert proc.exitcode == 130, text
    assert text.strip().splitlines()[-1] in ("error: aborted", "error: interrupted") and "Traceback" not in text
    assert "error: stopped at" not in text  # no final snapshot was written
    assert state_tags(run_dir) == states


def test_training_state_with_a_wrong_value_type_is_skipped_naming_the_field(tmp_path):
    from stylegan_ada.training import run_dir as rd
    from stylegan_ada.training.snapshots import save_state
    from tests.stylegan_ada.test_resume_state import full_state

    for tag in ("000000", "000004"):
        net = rd.network_path(tmp_path, tag)
        net.write_bytes(f"weights {tag}".encode())
        state = full_state(rd.tag_nimg(tag))
        if tag == "000004":
            state["cur_nimg"] = "4000"  # today: a TypeError once training goes on with it
        save_state(tmp_path, tag, net, state)
    warnings: list[str] = []
    point, _ = rd.find_resume_point(tmp_path, warn=warnings.append)
    assert point.tag == "000000"
    assert "field 'cur_nimg' must be an integer >= 0, got str" in warnings[0] and "\n" not in warnings[0]
    from stylegan_ada.training.state import TrainingStateError, check_state

    for field, value in (("rng", {"torch_cpu": torch.zeros(3)}), ("G_opt", [1]), ("pl_mean", 0.5),
                         ("metric_history", {"fid": 1})):
        state = dict(point.state, **{field: value})
        with pytest.raises(TrainingStateError, match=f"field '{field}'"):
            check_state(state, "x.pt")


def test_damaged_run_config_json_is_one_line_naming_the_field(tmp_path):
    from click.testing import CliRunner

    from augment.cli import cli

    ws = make_ws(tmp_path / "ws").root
    run = ws / "runs" / "a" / "00000-a-tiny16"
    run.mkdir(parents=True)
    args = {"cls": "a", "cfg": "tiny", "from_": "scratch", "device": "cpu"}
    training = {"G_kwargs": {}, "D_kwargs": {}, "ada_kimg": 100, "ema_rampup": None}
    for record, field in (({"config": {"args": args, "training": {}}}, "config.training.G_kwargs"),  # KeyError today
                          ({"config": {"args": args, "training": dict(training, ada_kimg="x")}},
                           "config.training.ada_kimg"),
                          ({"config": {"args": dict(args, cfg={"x": 1}), "training": training}}, "config.args.cfg"),
                          ({"config": {"args": args}}, "config.training"),
                          ([1], "not a JSON object")):
        (run / "config.json").write_text(json.dumps(record))
        res = CliRunner().invoke(cli, ["train", "-w", str(ws), "--class", "a", "--resume", "--dry-run"])
        assert res.exit_code == 2, (record, res.output, res.exception)
        line = res.output.strip()
        assert line.startswith("error: cannot resume") and "\n" not in line and field in line, line


def test_a_replay_never_overwrites_a_good_network_snapshot_with_other_weights(tmp_path):
    from tests.support.networks import tiny_networks
    from stylegan_ada.checkpoint import load_snapshot
    from stylegan_ada.training.run_dir import network_path, network_tags
    from stylegan_ada.training.snapshots import save_network

    nets = tiny_networks()
    kw = dict(nets=nets, augment_pipe=None, training_set_kwargs={}, extra={"cur_nimg": 12})
    logged: list[str] = []
    save_network(tmp_path, "000012", **kw, log=logged.append)
    save_network(tmp_path, "000012", **kw, log=logged.append)  # a bit-exact replay: nothing to keep
    assert sorted(p.name for p in tmp_path.iterdir()) == ["network-snapshot-000012.safetensors"] and not logged
    old = network_path(tmp_path, "000012").read_bytes()
    with torch.no_grad():
        nets["G"].mapping.fc0.weight.add_(1.0)  # a replay on another machine: other weights
    save_network(tmp_path, "000012", **kw, log=logged.append)
    kept = tmp_path / "network-snapshot-000012.replaced-1.safetensors"
    assert kept.read_bytes() == old and "kept it as " + kept.name in logged[0]
    assert network_tags(tmp_path) == ["000012"]  # the kept file is no resume point and is never pruned
    assert torch.equal(load_snapshot(network_path(tmp_path, "000012"))["G"].mapping.fc0.weight,
                       nets["G"].mapping.fc0.weight)


def test_resume_refuses_when_every_snapshot_file_is_damaged(tmp_path):
    from stylegan_ada.training.snapshots import continue_from_network
    from stylegan_ada.training.state import TrainingStateError

    (tmp_path / "network-snapshot-000004.safetensors").write_bytes(b"cut")
    with pytest.raises(TrainingStateError, match="no usable snapshot") as info:
        continue_from_network(tmp_path, {}, None, ["training-state-000004.pt: truncated"], log=lambda line: None)
    assert "\n" not in str(info.value)
    assert continue_from_network(tmp_path / "empty", {}, None, [], log=print) is None  # nothing at all: fresh start
