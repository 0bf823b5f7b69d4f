"""tools/experiment_4q_small64.sh with every command stubbed: steps run once, even with two copies at once."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO

RUNBOOK = REPO / "tools" / "experiment_4q_small64.sh"
FROZEN = "efficientnet_lite0 --mode freeze --pretrained imagenet"

# Each stub logs its command line, then takes a moment, so two copies of the runbook overlap on every step; a command
# line that starts with $STUB_FAIL fails with exit 2.
STUB = """#!/usr/bin/env bash
if [[ $(basename "$0") == python && $1 == -c ]]; then exec {real} "$@"; fi
line="$(basename "$0") $*"
echo "$line" >> "$STUB_LOG"
sleep 0.2
if [[ -n ${{STUB_FAIL:-}} && $line == "$STUB_FAIL"* ]]; then echo "error: stub failure" >&2; exit 2; fi
case "$1 $2" in
  "prepare --dataset") mkdir -p "$AUGMENT_WORKSPACE" && echo '{{"classes": ["Q1", "Q2"]}}' > "$AUGMENT_WORKSPACE/augment.json";;
  "generate --n") for c in Q1 Q2; do mkdir -p "$AUGMENT_WORKSPACE/synthetic/$c"; touch "$AUGMENT_WORKSPACE/synthetic/$c/0.png"; done;;
esac
"""


def _stubs(tmp_path: Path, **env: str) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("augment", "classify", "python"):
        (bin_dir / name).write_text(STUB.format(real=sys.executable))
        (bin_dir / name).chmod(0o755)
    defaults = {"CLASSIFIERS": f"{FROZEN};small_cnn --mode whole", "ARMS": "real;synthetic"}
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "STUB_LOG": str(tmp_path / "calls.log"),
            **defaults, **env}


def _run_copies(ws: Path, env: dict[str, str], n: int) -> list[subprocess.CompletedProcess]:
    procs = [subprocess.Popen(["bash", str(RUNBOOK), str(ws)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(n)]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=60), p.communicate()[0]) for p in procs]


def _calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "calls.log").read_text().splitlines()


def _evals(calls: list[str]) -> list[str]:
    """'ARM ARCH... seeds S' per classify eval, in the order run."""
    out = []
    for c in calls:
        if c.startswith("classify eval"):
            words = c.split()
            arch = " ".join(words[words.index("--arch") + 1:words.index("--seeds")])
            out.append(f"{words[3]} {arch} seeds {words[words.index('--seeds') + 1]}")
    return out


def test_two_copies_at_once_run_every_step_once_and_share_the_seeds(tmp_path):
    ws, env = tmp_path / "ws", _stubs(tmp_path)
    for done in _run_copies(ws, env, 2):
        assert done.returncode == 0, done.stdout
    calls = [c for c in _calls(tmp_path) if not c.startswith("python tools/report_4q_small64.py")]
    assert len(calls) == len(set(calls)), calls  # no step ran twice
    assert sorted(" ".join(c.split()[:2]) for c in calls if not c.startswith("classify eval")) == sorted([
        "augment prepare", "augment train", "augment generate", "augment check-novelty", "augment listen",
        "augment listen", "augment classic", "classify baseline"])
    # the frozen classifier's seeds in one eval (features computed once), small_cnn's one eval per seed
    assert sorted(_evals(calls)) == sorted(
        [f"{arm} {FROZEN} seeds 0,1,2" for arm in ("real", "synthetic")]
        + [f"{arm} small_cnn --mode whole seeds {s}" for arm in ("real", "synthetic") for s in range(3)])

    (tmp_path / "calls.log").unlink()
    _run_copies(ws, env, 1)
    assert _calls(tmp_path) == [f"python tools/report_4q_small64.py {ws} --compare"]  # every step done: skipped


def test_one_copy_runs_the_arms_in_arms_order_and_a_whole_arm_stamp_covers_its_seeds(tmp_path):
    ws, env = tmp_path / "ws", _stubs(tmp_path, CLASSIFIERS="small_cnn --mode whole", ARMS="synthetic;real")
    (ws / ".runbook").mkdir(parents=True)
    (ws / ".runbook" / "eval-small_cnn___mode_whole_real.done").write_text("2026-12-01T00:00:00Z\n")  # seeds in one step
    assert _run_copies(ws, env, 1)[0].returncode == 0
    assert _evals(_calls(tmp_path)) == [f"synthetic small_cnn --mode whole seeds {s}" for s in range(3)]


def test_a_failed_eval_stops_the_runbook_and_is_not_stamped_done(tmp_path):
    ws, env = tmp_path / "ws", _stubs(tmp_path, CLASSIFIERS="small_cnn --mode whole",
                                       STUB_FAIL="classify eval --train real --test real --arch small_cnn --mode whole --seeds 1")
    done = _run_copies(ws, env, 1)[0]
    assert done.returncode == 2 and "error: stub failure" in done.stdout
    assert _evals(_calls(tmp_path)) == ["real small_cnn --mode whole seeds 0", "real small_cnn --mode whole seeds 1"]
    stamps = sorted(p.name for p in (ws / ".runbook").glob("eval-*.done"))
    assert stamps == ["eval-small_cnn___mode_whole_real-seed0.done"]  # seed 0 kept; seed 1 runs again next time


def test_controls_only_skips_the_gans_fakes_and_every_arm_with_fakes(tmp_path):
    ws, env = tmp_path / "ws", _stubs(tmp_path, CLASSIFIERS=FROZEN, CONTROLS_ONLY="1")
    assert _run_copies(ws, env, 1)[0].returncode == 0
    calls = _calls(tmp_path)
    assert [" ".join(c.split()[:2]) for c in calls] == ["augment prepare", "augment classic", "classify eval",
                                                        "classify baseline"]
    assert _evals(calls) == [f"real {FROZEN} seeds 0,1,2"]


def test_planted_links_in_the_stamp_folder_never_get_written_through(tmp_path):
    ws, env = tmp_path / "ws", _stubs(tmp_path, CLASSIFIERS=FROZEN, CONTROLS_ONLY="1")
    (ws / ".runbook").mkdir(parents=True)
    keep, other = tmp_path / "keep.txt", tmp_path / "other.txt"
    keep.write_text("precious\n")
    (ws / ".runbook" / "prepare.lock").symlink_to(keep)   # a lock is opened, never truncated
    (ws / ".runbook" / "classic.done").symlink_to(other)  # dangling: classic runs, and its stamp replaces the link
    (ws / ".runbook" / "classic.done.tmp").symlink_to(keep)  # a temporary name a stamp might have used
    assert _run_copies(ws, env, 1)[0].returncode == 0
    assert keep.read_text() == "precious\n" and not other.exists()
    assert not (ws / ".runbook" / "classic.done").is_symlink()
