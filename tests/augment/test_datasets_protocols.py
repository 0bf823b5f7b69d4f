"""The thesis protocols on the real label files in ../shared: 360-set (stand-in audio) and 4Q (real audio)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from PIL import Image

from augment.datasets import build_dataset
from augment.datasets.soundtracks360 import label_ratings
from augment.datasets.splits import assign_splits
from augment.workspace import Workspace
from tests.support.paths import SHARED

RATINGS = SHARED / "data" / "soundtracks360" / "mean_ratings_set1.csv"
PANDA = SHARED / "data" / "panda4q"
PANDA_ARGS = ("--dataset", "panda4q", "--audio-dir", PANDA / "audio", "--annotations",
              PANDA / "panda_dataset_taffc_annotations.csv")


def test_ratings_file_has_bom_and_reproduces_thesis_totals():
    assert RATINGS.read_bytes().startswith(b"\xef\xbb\xbf")
    classes, labels = label_ratings(RATINGS, "emotions")
    assert [Counter(labels.values())[c] for c in classes] == [51, 93, 65, 75, 76]
    classes, labels = label_ratings(RATINGS, "valence")
    assert classes == ["negative", "neutral", "positive"]
    assert [Counter(labels.values())[c] for c in classes] == [104, 118, 138]
    # thresholds are an option (energy/tension totals of the thesis follow no single pair)
    _, default = label_ratings(RATINGS, "energy")
    _, wider = label_ratings(RATINGS, "energy", (2.5, 5.5))
    assert Counter(wider.values())["medium"] > Counter(default.values())["medium"]


@pytest.fixture()
def standin_360(tmp_path, write_wav):
    """Distinct 0.25 s stand-ins NNN.wav for the 360 excerpts (the real audio is not on these machines)."""
    for n in range(1, 361):
        write_wav(tmp_path / "audio360" / f"{n:03d}.wav", 0.25, freq=100 + n, seed=n)
    return tmp_path / "audio360"


def test_soundtracks360_emotions_end_to_end(standin_360, tmp_path, augment_cli):
    r = augment_cli("prepare", "--dataset", "soundtracks360", "--audio-dir", standin_360, "--ratings", RATINGS,
                    "--preset", "thesis", "--duration", 0.25, "--resolution", 8, "-j", 2, "-w", tmp_path / "ws")
    assert r.exit_code == 0, r.output
    assert r.stderr.count("27 of 128 mel bands are empty") == 1 and "Empty filters" not in r.output
    counts = Workspace.load(tmp_path / "ws").config["splits"]["counts"]
    assert counts["test"] == {c: 40 for c in ("anger", "fear", "happy", "sad", "tender")}
    assert {c: counts["train"][c] + counts["val"][c] for c in counts["train"]} == \
        {"anger": 11, "fear": 53, "happy": 25, "sad": 35, "tender": 36}
    assert "360 clips, 5 classes (train 126, val 34, test 200)" in r.stdout


def test_soundtracks360_bad_inputs(tmp_path, write_wav, augment_cli):
    standin_360 = tmp_path / "few"
    for n in range(1, 11):
        write_wav(standin_360 / f"{n:03d}.wav", 0.25, seed=n)
    r = augment_cli("prepare", "--dataset", "soundtracks360", "--audio-dir", standin_360, "--ratings", RATINGS,
                    "--target", "arousal", "-w", tmp_path / "ws")
    assert r.exit_code == 2 and "'arousal' is not one of" in r.output
    broken = tmp_path / "ratings.csv"
    broken.write_text("\ufeffnumber,valence,energy,tension,anger,happy,sad,tender\n001,4,4,4,1,7,1,1\n",
                      encoding="utf-8")
    r = augment_cli("prepare", "--dataset", "soundtracks360", "--audio-dir", standin_360, "--ratings", broken,
                    "-w", tmp_path / "ws")
    assert r.exit_code == 2 and r.stderr.count("error: ") == 1 and "missing column(s) fear" in r.stderr
    assert not (tmp_path / "ws" / "augment.json").exists()
    (standin_360 / "001.wav").unlink()
    spec = build_dataset("soundtracks360", {"audio_dir": standin_360, "ratings": RATINGS, "target": "valence"})
    assert len(spec.sources) == 9 and len(spec.notes) == 351
    assert spec.notes[0][0] == "001.mp3" and "no audio file" in spec.notes[0][1]
    assert spec.plan.test == 50


def _panda_spec(protocol: str):
    return build_dataset("panda4q", {"audio_dir": PANDA / "audio", "protocol": protocol,
                                     "annotations": PANDA / "panda_dataset_taffc_annotations.csv"})


def test_panda4q_small_and_full_share_the_test_split():
    splits = {}
    for protocol in ("small", "full"):
        spec = _panda_spec(protocol)
        by_class = {c: [s for s in spec.sources if s.cls == c] for c in spec.classes}
        assert [len(v) for v in by_class.values()] == [225] * 4
        splits[protocol] = assign_splits(by_class, spec.plan)
    test = {p: {s.name for pairs in a.values() for s, sp in pairs if sp == "test"} for p, a in splits.items()}
    assert test["small"] == test["full"] and len(test["full"]) == 160
    full = Counter(s.cls for pairs in splits["full"].values() for s, sp in pairs if sp != "test")
    assert full == {c: 185 for c in ("Q1", "Q2", "Q3", "Q4")}


def test_panda4q_small_acceptance_256px_twice_identical(tmp_path, augment_cli):
    """The issue's acceptance: train+val 25/11/35/36, test 40 each, byte-identical manifests, 256×256 RGB."""
    manifests = []
    for run in ("a", "b"):
        r = augment_cli("prepare", *PANDA_ARGS, "--protocol", "small", "-j", 2, "-w", tmp_path / run)
        assert r.exit_code == 0, r.output
        manifests.append((tmp_path / run / "splits.csv").read_bytes())
    assert manifests[0] == manifests[1]
    ws = Workspace.load(tmp_path / "a")
    counts = ws.config["splits"]["counts"]
    assert {c: counts["train"][c] + counts["val"][c] for c in ws.classes} == {"Q1": 25, "Q2": 11, "Q3": 35, "Q4": 36}
    assert counts["test"] == {c: 40 for c in ws.classes}
    assert len(ws.rows()) == 267 and len({r.source_sha256 for r in ws.rows()}) == 267
    for path in ws.images("test")[:3] + ws.images("train")[:3]:
        img = Image.open(path)
        arr = np.asarray(img)
        assert img.size == (256, 256) and img.mode == "RGB" and (arr[..., 0] == arr[..., 2]).all()
