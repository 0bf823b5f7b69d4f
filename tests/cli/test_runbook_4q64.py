"""tools/experiment_4q_small64.sh with every command stubbed: steps run once, even with two copies at once."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO

RUNBOOK = REPO / "tools" / "experiment_4q_small64.sh"

# Each stub logs its command line, then takes a moment, so two copies of the runbook overlap on every step.
STUB = """#!/usr/bin/env bash
if [[ $(basename "$0") == python && $1 == -c ]]; then exec {real} "$@"; fi
echo "$(basename "$0") $*" >> "$STUB_LOG"
sleep 0.2
case "$1 $2" in
  "prepare --dataset") mkdir -p "$AUGMENT_WORKSPACE" && echo '{{"classes": ["Q1", "Q2"]}}' > "$AUGMENT_WORKSPACE/augment.json";;
  "generate --n") for c in Q1 Q2; do mkdir -p "$AUGMENT_WORKSPACE/synthetic/$c"; touch "$AUGMENT_WORKSPACE/synthetic/$c/0.png"; done;;
esac
"""


def _stubs(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("augment", "classify", "python"):
        (bin_dir / name).write_text(STUB.format(real=sys.executable))
        (bin_dir / name).chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", STUB_LOG=str(tmp_path / "calls.log"),
               CLASSIFIERS="small_cnn --mode whole", ARMS="real;synthetic")
    return env


def _run_copies(ws: Path, env: dict[str, str], n: int) -> None:
    procs = [subprocess.Popen(["bash", str(RUNBOOK), str(ws)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(n)]
    for p in procs:
        out = p.communicate(timeout=60)[0]
        assert p.returncode == 0, out


def test_two_copies_at_once_run_every_step_once_and_a_rerun_only_reports(tmp_path):
    ws, env = tmp_path / "ws", _stubs(tmp_path)
    _run_copies(ws, env, 2)
    calls = (tmp_path / "calls.log").read_text().splitlines()
    steps = [c for c in calls if not c.startswith("python tools/report_4q_small64.py")]
    assert len(steps) == len(set(steps)), calls  # no step ran twice
    assert [" ".join(c.split()[:2]) for c in steps] == [
        "augment prepare", "augment train", "augment generate", "augment check-novelty", "augment listen",
        "augment listen", "augment classic", "classify eval", "classify eval", "classify baseline"]
    assert [c.split(" --test")[0] for c in steps if c.startswith("classify eval")] == [
        "classify eval --train real", "classify eval --train synthetic"]  # in ARMS' order

    (tmp_path / "calls.log").unlink()
    _run_copies(ws, env, 1)
    assert (tmp_path / "calls.log").read_text().splitlines() == [
        f"python tools/report_4q_small64.py {ws} --compare"]  # every step done before: skipped


def test_controls_only_skips_the_gans_fakes_and_every_arm_with_fakes(tmp_path):
    ws, env = tmp_path / "ws", _stubs(tmp_path)
    _run_copies(ws, dict(env, CONTROLS_ONLY="1"), 1)
    calls = [c.split(" --test")[0] for c in (tmp_path / "calls.log").read_text().splitlines()]
    assert [" ".join(c.split()[:2]) for c in calls] == ["augment prepare", "augment classic", "classify eval",
                                                 "classify baseline"]
    assert "classify eval --train real" in calls
