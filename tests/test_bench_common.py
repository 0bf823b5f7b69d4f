"""tools/bench_common.py: every benchmark appends one JSON line (date, machine, command) and prints one summary line."""
from __future__ import annotations

import json
import sys

import pytest

from helpers import REPO

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


NOT_RECORDING = {"bench_common.py", "check_imports.py"}  # the helper itself; an import lint that measures nothing


@pytest.mark.parametrize("script", sorted(p.name for p in TOOLS.glob("*.py") if p.name not in NOT_RECORDING))
def test_every_tool_records_through_bench_common(script):
    text = (TOOLS / script).read_text()
    assert "import bench_common" in text and "bench_common.report(" in text
    assert '"bench.jsonl"' not in text and "def append_record" not in text and "from bench_networks" not in text
