"""`augment train --classes`: per-class runs identical to single-class runs, a failing class, stop + --resume, queue."""
from __future__ import annotations

import json
import signal

from tests.support.training import TINY, final_network, g_ema, make_ws, max_abs_diff, only_run, run_child, start_child, stop_child, wait_for

KIMG = ["--kimg", "0.012"]  # 3 minibatches per class: ticks end at 0.004 and 0.012 kimg, a snapshot at each


def _job(ws_root):
    (folder,) = (ws_root / "runs" / "_jobs").iterdir()
    return json.loads((folder / "job.json").read_text())


def test_classes_job_equals_single_runs_survives_a_failing_class_and_resumes_after_a_stop(tmp_path):
    job_ws, single_ws, stop_ws = (make_ws(tmp_path / n, classes=("a", "b", "c")) for n in ("job", "single", "stop"))
    (job_ws.root / "runs").mkdir()
    (job_ws.root / "runs" / "c").write_text("a file where class c's runs folder belongs")  # c fails; a, b go on

    code, out = run_child(["train", "-w", str(job_ws.root), "--classes", "all", *TINY, *KIMG], tmp_path / "job.txt")
    assert code == 2, out
    assert "error: class c: cannot write its run directory" in out
    assert out.splitlines()[-1].startswith("error: 1 of 3 classes failed (c: cannot write")
    job = _job(job_ws.root)
    assert [job["runs"][c]["status"] for c in "abc"] == ["done", "done", "error"] and job["status"] == "failed"
    for c in "ab":
        entry = job["runs"][c]
        assert entry["kimg"] == 0.012 and entry["sec_per_kimg"] > 0 and entry["best_fid"] is None
        assert entry["newest_snapshot"] == final_network(only_run(job_ws.root, c)).name
    table = out[out.index("class        status"):]
    assert "a            done" in table and "c            error" in table

    code, out = run_child(["train", "-w", str(single_ws.root), "--class", "a", *TINY, *KIMG], tmp_path / "one.txt")
    assert code == 0, out
    job_a, single_a = only_run(job_ws.root, "a"), only_run(single_ws.root, "a")
    assert job_a.name == single_a.name  # the very run directory `--class a` makes
    assert max_abs_diff(g_ema(final_network(job_a)), g_ema(final_network(single_a))) == 0.0
    cfg = [json.loads((r / "config.json").read_text())["config"] for r in (job_a, single_a)]
    assert cfg[0]["training"] == cfg[1]["training"] and cfg[0]["args"] == cfg[1]["args"]

    # SIGTERM while class a trains: a writes its final snapshot, b never starts; --resume finishes both, with
    # two classes at once in a queue of processes, and ends exactly where the uninterrupted job ended.
    argv = ["train", "-w", str(stop_ws.root), "--classes", "a,b", *TINY, *KIMG]
    proc = start_child(argv, tmp_path / "stop.txt")
    assert wait_for(lambda: list((stop_ws.root / "runs" / "a").glob("*/network-snapshot-000000.safetensors")))
    assert stop_child(proc, signal.SIGTERM) == 130, (tmp_path / "stop.txt").read_text()
    job = _job(stop_ws.root)
    assert job["status"] == "stopped" and job["runs"]["b"]["status"] in ("pending", "queued", "stopped")
    assert "--classes a,b --resume" in (tmp_path / "stop.txt").read_text()
    code, out = run_child([*argv, "--resume", "--concurrent", "2"], tmp_path / "resume.txt")
    assert code == 0, out
    job = _job(stop_ws.root)
    assert job["status"] == "done" and [job["runs"][c]["status"] for c in "ab"] == ["done", "done"]
    assert "c" not in job["runs"] and len(job["resumes"]) == 1
    for c in "ab":
        assert max_abs_diff(g_ema(final_network(only_run(stop_ws.root, c))),
                            g_ema(final_network(only_run(job_ws.root, c)))) == 0.0
    code, out = run_child([*argv, "--resume"], tmp_path / "again.txt")  # nothing left: no class is touched
    assert code == 0 and "a: already trained (0.012 kimg); skipped" in out and "Training to" not in out, out


def _sleeping_child(job):
    """Stands in for a training process: runs until SIGTERM, then reports a clean stop."""
    import json as _json
    import os
    import time

    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    open(os.path.join(job.run_dir, "started"), "w").close()
    while not stop:
        time.sleep(0.01)
    with open(os.path.join(job.run_dir, ".result.json"), "w") as f:
        _json.dump({"status": "stopped", "cur_nimg": 0}, f)


def test_queue_runs_one_job_per_slot_and_a_sigterm_stops_them_all(tmp_path, monkeypatch):
    import os
    import threading

    from stylegan_ada import presets
    from stylegan_ada.training import launch

    opts = presets.training_options("tiny", 16, batch=4, total_kimg=0.004)
    jobs = []
    for name in "abc":
        (tmp_path / name).mkdir()
        jobs.append(launch.Job(options=opts, run_dir=str(tmp_path / name), image_paths=[], labels=[],
                               class_names=[name], resolution=16, training_set_kwargs={}))
    monkeypatch.setattr(launch, "_queue_child", _sleeping_child)
    started = []

    def stop_when_two_run():
        assert wait_for(lambda: all((tmp_path / n / "started").exists() for n in "ab"), timeout=60)
        os.kill(os.getpid(), signal.SIGTERM)  # to the parent only: it must pass it on

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=stop_when_two_run)
    thread.start()
    results = launch.run_queue(jobs, ["cpu", "cpu"], on_start=lambda i, job: started.append((i, job.device)))
    thread.join()
    assert started == [(0, "cpu"), (1, "cpu")]  # two slots: the third job waits, then never starts
    assert [r and r["status"] for r in results] == ["stopped", "stopped", None]
    assert signal.getsignal(signal.SIGTERM) is before and not (tmp_path / "c" / "started").exists()
