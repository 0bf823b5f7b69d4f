"""tools/bench_common.py: a benchmark appends one JSON line (date, machine, command) and prints one summary line."""
from __future__ import annotations

import json
import os
import sys

import pytest

from tests.support.paths import REPO

TOOLS = REPO / "tools"


@pytest.fixture()
def bench_common(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(TOOLS))
    import bench_common

    monkeypatch.setattr(bench_common, "BENCH_LOG", tmp_path / "bench.jsonl")
    return bench_common


def test_report_appends_one_line_with_the_common_fields_and_prints_one(bench_common, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["/x/tools/bench_demo.py", "--n", "3"])
    bench_common.BENCH_LOG.write_text('{"bench": "older"}')  # a last line without its newline
    bench_common.report("demo", {"images_per_s": 12.5}, "demo: 12.5 images/s")
    bench_common.report("demo", {"images_per_s": 1.0}, "not recorded", record=False)
    assert capsys.readouterr().out == "demo: 12.5 images/s\nnot recorded\n"
    lines = bench_common.BENCH_LOG.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0]) == {"bench": "older"}
    rec = json.loads(lines[1])
    assert rec["bench"] == "demo" and rec["images_per_s"] == 12.5 and rec["command"] == ["bench_demo.py", "--n", "3"]
    assert rec["date"] and rec["machine"] and rec["code_version"] and "load_avg" in rec


def test_a_real_benchmark_appends_its_record_and_prints_one_line(bench_common, monkeypatch, capsys):
    """bench_generate end to end at the smallest size (no source inspection): the record reaches the log once."""
    import bench_generate

    monkeypatch.setattr(bench_generate.bench_common, "BENCH_LOG", bench_common.BENCH_LOG)
    argv = ["--cfg", "tiny", "--resolution", "16", "--n", "2", "--batch", "2", "--device", "cpu", "--workers", "1",
            "--release-memory"]  # --release-memory: leave this process's malloc settings alone
    monkeypatch.setattr(sys, "argv", [str(TOOLS / "bench_generate.py"), *argv])
    bench_generate.main(argv)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("generate tiny 16px on cpu: 2 images in ")
    (line,) = bench_common.BENCH_LOG.read_text().splitlines()
    rec = json.loads(line)
    assert rec["bench"] == "generate" and rec["command"] == ["bench_generate.py", *argv]
    assert (rec["n"], rec["batch"], rec["resolution"], rec["device"]) == (2, 2, 16, "cpu")
    assert rec["images_per_s"] > 0 and rec["seconds"] > 0 and f"{os.cpu_count()} cores" in rec["machine"]
    bench_generate.main([*argv, "--no-record"])
    assert len(bench_common.BENCH_LOG.read_text().splitlines()) == 1  # --no-record: printed, not appended
