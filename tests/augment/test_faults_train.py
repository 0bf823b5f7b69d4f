"""Fault injection on `augment train`: SIGKILL at seeded random points, SIGTERM, disk full; resume is exact."""
from __future__ import annotations

import random
import shutil
import signal

import pytest

from tests.support.training import TINY, final_network, g_ema, make_ws, max_abs_diff, only_run, run_child, start_child, stop_child, wait_for

KIMG = "0.064"              # 16 minibatches of 4, a tick every 2
STEPS = 16


def _train(ws, *extra):
    return ["train", "-w", str(ws), "--class", "a", "--kimg", KIMG, *TINY, *extra]


def _all_snapshots_readable(run_dir) -> list[str]:
    """Names of snapshot files that do not load (must stay empty whatever was killed when)."""
    from stylegan_ada.training.verify import check_run

    return [check.path.name for check in check_run(run_dir) if not check.ok]


def _ticks(run_dir) -> list[int]:
    """Tick numbers in stats.jsonl: after any kills and resumes, each tick exactly once, in order."""
    from stylegan_ada.training.stats import read_jsonl

    records = read_jsonl(run_dir / "stats.jsonl")
    assert records[-1]["cur_nimg"] == 64 and records[-1]["snapshot"]
    return [r["tick"] for r in records]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of KIMG: (workspace template dir, G_ema of its final snapshot)."""
    root = tmp_path_factory.mktemp("reference")
    template = root / "template"
    make_ws(template)
    ws = root / "ws"
    shutil.copytree(template, ws)
    code, out = run_child(_train(ws), root / "out.txt")
    assert code == 0, out
    run_dir = only_run(ws)
    assert (run_dir / "reals.png").is_file() and (run_dir / "log.txt").is_file()
    assert _ticks(run_dir) == list(range(9))  # 16 minibatches: tick 0 after the first, then every 2
    return template, g_ema(final_network(run_dir)), run_dir


def test_sigkill_at_ten_seeded_points_then_resume_matches_uninterrupted_run(reference, tmp_path):
    template, want, _ = reference
    ws = tmp_path / "ws"
    shutil.copytree(template, ws)
    rng = random.Random(20240607)
    events = [f"step={s}" for s in sorted(rng.sample(range(1, STEPS), 10))]
    for pos in sorted(rng.sample(range(1, len(events)), 2), reverse=True):
        events.insert(pos, "snapshot=1")  # killed between the network file and its training state
    out = tmp_path / "out.txt"
    for i, event in enumerate(events):
        code, text = run_child(_train(ws, *(["--resume"] if i else [])), out, env={"STYLEGAN_ADA_FAULT": event})
        assert code == -signal.SIGKILL, f"attempt {i} ({event}) was not killed: {text}"
        assert _all_snapshots_readable(only_run(ws)) == []
    code, text = run_child(_train(ws, "--resume"), out)
    assert code == 0, text
    assert "Resuming from snapshot" in text
    got = g_ema(final_network(only_run(ws)))
    assert max_abs_diff(got, want) == 0.0  # bit-for-bit
    assert _ticks(only_run(ws)) == list(range(9))


def test_sigterm_writes_a_final_snapshot_and_resume_is_exact(reference, tmp_path):
    from stylegan_ada.training.run_dir import state_tags, tag_nimg

    template, want, _ = reference
    ws = tmp_path / "ws"
    shutil.copytree(template, ws)
    out = tmp_path / "out.txt"
    proc = start_child(_train(ws), out)
    runs = ws / "runs" / "a"
    assert wait_for(lambda: runs.is_dir() and any(tag_nimg(t) >= 12 for r in runs.iterdir()
                                                  for t in state_tags(r)), timeout=240)
    code = stop_child(proc, signal.SIGTERM)
    text = out.read_text()
    assert code == 130, text
    assert "Stop requested" in text and "error: stopped at" in text and "--resume" in text
    assert "Traceback" not in text
    run_dir = only_run(ws)
    assert _all_snapshots_readable(run_dir) == []
    code, text = run_child(_train(ws, "--resume"), out)
    assert code == 0, text
    assert max_abs_diff(g_ema(final_network(run_dir)), want) == 0.0
    assert _ticks(run_dir) == list(range(9))


def test_disk_full_while_writing_a_snapshot_keeps_the_previous_one(reference, tmp_path):
    from stylegan_ada.training.run_dir import state_tags

    template, want, _ = reference
    ws = tmp_path / "ws"
    shutil.copytree(template, ws)
    out = tmp_path / "out.txt"
    code, text = run_child(_train(ws), out, env={"TEST_ENOSPC_AT_SNAPSHOT": "3"})
    assert code == 2, text
    last = text.strip().splitlines()[-1]
    assert last.startswith("error: disk full while writing snapshot") and "is intact" in last, last
    assert "Traceback" not in text
    run_dir = only_run(ws)
    assert len(state_tags(run_dir)) == 2 and _all_snapshots_readable(run_dir) == []
    assert not list(run_dir.glob(".*.tmp"))
    code, text = run_child(_train(ws, "--resume"), out)
    assert code == 0, text
    assert max_abs_diff(g_ema(final_network(run_dir)), want) == 0.0


def test_malicious_pickle_as_from_is_refused_without_running_it(tmp_path):
    import pickle

    from click.testing import CliRunner

    from augment.cli import cli

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"G": Evil()}))
    ws = make_ws(tmp_path / "ws")
    res = CliRunner().invoke(cli, ["train", "-w", str(ws.root), "--class", "a", *TINY, "--from", str(evil)])
    assert res.exit_code == 2, res.output
    assert "refused" in res.output and res.output.startswith("error:")
    assert not marker.exists()
    assert not (ws.root / "runs").exists()


def test_corrupt_newest_snapshots_fall_back_to_the_previous_good_one(reference, tmp_path):
    from stylegan_ada.training.run_dir import network_path, state_path, state_tags

    _, want, ref_run = reference
    ws = tmp_path / "ws"
    shutil.copytree(ref_run.parents[2], ws)
    run_dir = only_run(ws)
    tags = state_tags(run_dir)
    assert len(tags) == 3  # --keep 3
    newest = state_path(run_dir, tags[-1])
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])   # truncated by a crash
    second = network_path(run_dir, tags[-2])
    data = bytearray(second.read_bytes())
    data[len(data) // 2] ^= 0xFF                                           # one flipped bit on disk
    second.write_bytes(bytes(data))
    code, text = run_child(_train(ws, "--resume"), tmp_path / "out.txt")
    assert code == 0, text
    assert f"warning: snapshot {tags[-1]} is unusable" in text
    assert f"warning: snapshot {tags[-2]} is unusable" in text
    assert f"Resuming from snapshot {tags[-3]}" in text
    assert max_abs_diff(g_ema(final_network(run_dir)), want) == 0.0
    assert _all_snapshots_readable(run_dir) == []
