"""`augment prepare --continuous`: a numeric target per clip, splits stratified by its quantile bins; GAN commands
refuse such a workspace."""
from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from augment.datasets.base import Source, binned_sources
from augment.datasets.splits import SplitPlan, assign_splits
from augment.workspace import Workspace
from tests.support.audio import tone
from tests.support.paths import SHARED

FAST = ("--duration", "0.5", "--resolution", "8", "-j", "1")
N_CLIPS = 20


def _cli(*args: str | Path):
    from augment.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def _wav(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(0.5, 8000, freq=200.0 + 37 * seed, seed=seed), 8000, subtype="PCM_16")
    return path


def _targets() -> dict[str, float]:
    rng = np.random.default_rng(3)
    values = np.round(rng.uniform(1, 9, N_CLIPS), 2)
    values[:4] = 5.0                      # ties across a bin edge
    return {f"clip{k:02d}.wav": float(v) for k, v in enumerate(values)}


@pytest.fixture(scope="module")
def csv_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    root = tmp_path_factory.mktemp("csvset")
    targets = _targets()
    for k, name in enumerate(targets):
        _wav(root / name, k)
    with open(root / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        w.writerows([[name, f"{v:g}"] for name, v in targets.items()])
    return root / "m.csv", targets


@pytest.fixture(scope="module")
def continuous_ws(csv_set, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = tmp_path_factory.mktemp("ws")
    r = _cli("prepare", "--dataset", "csv", "--manifest", csv_set[0], "--continuous", *FAST, "-w", ws)
    assert r.exit_code == 0, r.output
    return Workspace.load(ws)


def test_quantile_bins_stratify_the_split():
    rng = np.random.default_rng(0)
    values = np.round(rng.normal(5, 1.5, 50), 1)            # many ties at one decimal
    sources = [Source(Path(f"/x/{k:02d}.wav"), f"{k:02d}.wav", "", target=float(v)) for k, v in enumerate(values)]
    bins, binned = binned_sources(sources)
    assert bins == ["q1", "q2", "q3", "q4", "q5"]
    by_bin: dict[str, list[Source]] = {b: [s for s in binned if s.cls == b] for b in bins}
    assert [len(v) for v in by_bin.values()] == [10] * 5
    # quantile bins: every value of a bin is <= every value of the next (hand truth: the sorted values in fifths)
    ordered = np.sort(values)
    for k, b in enumerate(bins):
        assert sorted(s.target for s in by_bin[b]) == pytest.approx(list(ordered[10 * k:10 * (k + 1)]))
    splits = assign_splits(by_bin, SplitPlan(test=0.2, val_fraction=0.25))
    per_split = Counter((b, sp) for b, items in splits.items() for _, sp in items)
    # each bin keeps the proportions of the whole set: 2 test, 2 val, 6 train out of 10
    assert all(per_split[(b, "test")] == 2 and per_split[(b, "val")] == 2 and per_split[(b, "train")] == 6
               for b in bins)


def test_prepare_csv_continuous_round_trip(continuous_ws: Workspace, csv_set):
    manifest, targets = csv_set
    ws = continuous_ws
    cfg = json.loads((ws.root / "augment.json").read_text())
    assert cfg["task"] == "regression" and cfg["target"] == "label" and cfg["dataset"]["options"]["continuous"]
    assert ws.task == "regression" and ws.classes == ["q1", "q2", "q3", "q4", "q5"]
    with open(ws.manifest_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["source"]: float(r["target"]) for r in rows} == targets       # the manifest's own numbers
    assert {p.name.removesuffix(".png") + ".wav": v for p, v in ws.targets().items()} == targets
    # 4 per bin: 1 test (ceil 0.2 x 4), 1 val (ceil 0.2 x 3), 2 train
    assert Counter(r["split"] for r in rows) == {"test": 5, "train": 10, "val": 5}
    assert all(Counter(r["split"] for r in rows if r["class"] == b)["test"] == 1 for b in ws.classes)
    assert cfg["splits"]["test_sha256"]
    # re-preparing the same data is byte-identical and keeps the workspace
    before = ws.manifest_path.read_bytes()
    r = _cli("prepare", "--dataset", "csv", "--manifest", manifest, "--continuous", *FAST, "-w", ws.root)
    assert r.exit_code == 0, r.output
    assert ws.manifest_path.read_bytes() == before
    assert "target label in 5 quantile bins" in r.output


def test_soundtracks360_continuous_keeps_the_mean_rating(tmp_path):
    real = SHARED / "data" / "soundtracks360" / "mean_ratings_set1.csv"
    lines = real.read_text(encoding="utf-8-sig").splitlines()
    (tmp_path / "r.csv").write_text("\n".join(lines[:N_CLIPS + 1]) + "\n", encoding="utf-8")
    truth = {int(r["number"]): float(r["valence"]) for r in csv.DictReader(lines[1:N_CLIPS + 1],
                                                                              fieldnames=lines[0].split(","))}
    for n in truth:
        _wav(tmp_path / "audio" / f"{n:03d}.wav", n)
    base = ("prepare", "--dataset", "soundtracks360", "--audio-dir", tmp_path / "audio", "--ratings",
            tmp_path / "r.csv", *FAST)
    r = _cli(*base, "--target", "valence", "--continuous", "--test-size", "1", "-w", tmp_path / "ws")
    assert r.exit_code == 0, r.output
    ws = Workspace.load(tmp_path / "ws")
    assert ws.target_name == "valence"
    from augment.datasets.soundtracks360 import DATASET

    spec = DATASET.build({"audio_dir": tmp_path / "audio", "ratings": tmp_path / "r.csv", "target": "valence",
                          "continuous": True})
    assert spec.plan.test == 30 and spec.classes == ["q1", "q2", "q3", "q4", "q5"]   # 5 x 30 = the 3-class 150
    assert sorted(s.target for s in spec.sources if s.cls == "q5") == sorted(truth.values())[-4:]
    assert {int(p.stem): v for p, v in ws.targets().items()} == truth
    for extra, says in ((("--continuous",), "dimension --target"),
                        (("--target", "energy", "--continuous", "--thresholds", "3,5"), "--thresholds")):
        r = _cli(*base, *extra, "-w", tmp_path / "ws2")
        assert r.exit_code == 2 and says in r.output and r.output.count("\n") == 1, r.output


def test_a_given_split_column_is_kept_in_one_stratum(tmp_path, csv_set):
    manifest, targets = csv_set
    rows = [f"{manifest.parent / name},{v:g},{'test' if k < 3 else 'train'}" for k, (name, v) in
            enumerate(sorted(targets.items()))]
    (tmp_path / "s.csv").write_text("path,label,split\n" + "\n".join(rows) + "\n")
    r = _cli("prepare", "--dataset", "csv", "--manifest", tmp_path / "s.csv", "--continuous", *FAST, "-w",
             tmp_path / "w")
    assert r.exit_code == 0, r.output
    ws = Workspace.load(tmp_path / "w")
    assert ws.classes == ["q1"]
    assert sorted(Path(row.source).name for row in ws.rows() if row.split == "test") == sorted(targets)[:3]


def test_bad_continuous_inputs_are_one_line_errors(tmp_path, csv_set):
    manifest = tmp_path / "bad.csv"
    manifest.write_text(f"path,label\n{csv_set[0].parent / 'clip00.wav'},high\n")
    r = _cli("prepare", "--dataset", "csv", "--manifest", manifest, "--continuous", *FAST, "-w", tmp_path / "w")
    assert r.exit_code == 2 and "'high' is not a number" in r.output and r.output.count("\n") == 1, r.output
    _wav(tmp_path / "a" / "x" / "1.wav", 1)
    r = _cli("prepare", "--dataset", "folder", "--audio-dir", tmp_path / "a", "--continuous", *FAST, "-w",
             tmp_path / "w")
    assert r.exit_code == 2 and "--continuous does not apply" in r.output, r.output
    assert not (tmp_path / "w" / "augment.json").exists()


@pytest.mark.parametrize("command", [("train", "--class", "q1", "--kimg", "1"), ("generate", "--n", "2"),
                                     ("classic", "--n", "2")])
def test_gan_commands_refuse_a_continuous_workspace(continuous_ws: Workspace, command):
    r = _cli(command[0], "-w", continuous_ws.root, *command[1:])
    assert r.exit_code == 2, r.output
    line = r.output.strip()
    assert "\n" not in line and line.startswith("error:") and "per-class GANs need classes" in line
    assert "3-class" in line and "--target" in line


def test_a_regression_workspace_without_targets_is_refused(continuous_ws: Workspace, tmp_path):
    from tests.support.workspaces import copy_workspace

    ws = copy_workspace(continuous_ws, tmp_path / "c")
    text = ws.manifest_path.read_text()
    lines = text.splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0] + ","               # first row loses its target
    ws.manifest_path.write_text("\n".join(lines) + "\n")
    cfg = json.loads((ws.root / "augment.json").read_text())
    from augment.io_utils import sha256_bytes

    cfg["splits"]["sha256"] = sha256_bytes(ws.manifest_path.read_bytes())
    (ws.root / "augment.json").write_text(json.dumps(cfg))
    with pytest.raises(Exception, match="no finite target"):
        Workspace.load(ws.root).rows()
    assert math.isfinite(min(continuous_ws.targets().values()))
