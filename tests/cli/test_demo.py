"""`augment demo` and its synthesized toy audio set."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import soundfile as sf
from PIL import Image

from augment.commands.demo import DEMO_AUDIO, STEPS
from augment.demo_data import CLASSES, DEMO_SECONDS, STYLES, synthesize_clip
from augment.workspace import Workspace


def test_demo_workspace_fixture_is_a_small_prepared_dataset(demo_workspace):
    ws = demo_workspace
    assert ws.classes == sorted(CLASSES) and ws.resolution == 32 and ws.config["mel"]["duration"] == DEMO_SECONDS
    counts = ws.config["splits"]["counts"]
    assert all(counts[s] == {c: n for c in CLASSES} for s, n in (("train", 9), ("val", 3), ("test", 4)))
    img = Image.open(ws.images("val", "sad")[0])
    assert img.size == (32, 32) and img.mode == "RGB"
    assert len(ws.images(["train", "val", "test"])) == 64


def test_classes_differ_in_loudness_and_tempo():
    def stats(cls, k):
        y = synthesize_clip(STYLES[cls], np.random.default_rng([5, k]))
        frames = np.sqrt(np.mean(y[: y.size // 200 * 200].reshape(-1, 200) ** 2, axis=1))  # 25 ms RMS
        onsets = np.sum(frames[1:] > 1.5 * frames[:-1] + 1e-4)                              # note attacks
        return np.sqrt(np.mean(y ** 2)), onsets

    s = {c: np.mean([stats(c, k) for k in range(4)], axis=0) for c in CLASSES}
    for loud in ("happy", "angry"):
        for quiet in ("sad", "calm"):
            assert s[loud][0] > 1.5 * s[quiet][0] and s[loud][1] > 2 * s[quiet][1], s


def test_demo_command_end_to_end_matches_fixture(tmp_path, demo_workspace):
    assert [name for name, _ in STEPS][:2] == ["synthesize audio", "prepare"] and len(STEPS) == 5
    ws_dir = tmp_path / "demo"
    cmd = [sys.executable, "-m", "augment", "demo", "--workspace", str(ws_dir)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=400)  # ~50 s idle: docs/benchmarks.md
    assert r.returncode == 0, r.stderr
    assert "== demo step 2/" in r.stdout and "prepared demo: 64 clips, 4 classes (train 36, val 12, test 16)" in \
        r.stdout and "happy      9      3      4     16" in r.stdout
    # the later steps ran on what the earlier ones wrote: a tiny GAN per class, fakes, three classifier runs
    assert "generated 400 images for 4 class(es)" in r.stdout
    for train in ("real", "synthetic", "real+synthetic"):
        assert f"classify --train {train}: test macro-F1" in r.stdout
    for cls in CLASSES:
        assert list((ws_dir / "runs" / cls).glob("*/network-snapshot-*.safetensors"))
        assert len(list((ws_dir / "synthetic" / cls).glob("seed*.png"))) == 100
    # same bytes as the fixture's independent run: synthesized audio and split manifest are deterministic
    for cls in CLASSES:
        a = (ws_dir / DEMO_AUDIO / cls / f"{cls}_03.wav").read_bytes()
        assert a == (demo_workspace.root / DEMO_AUDIO / cls / f"{cls}_03.wav").read_bytes()
    assert (ws_dir / "splits.csv").read_bytes() == (demo_workspace.root / "splits.csv").read_bytes()
    assert sf.info(ws_dir / DEMO_AUDIO / "sad" / "sad_00.wav").duration == DEMO_SECONDS
    assert Workspace.load(ws_dir).config["splits"]["sha256"] == demo_workspace.config["splits"]["sha256"]
