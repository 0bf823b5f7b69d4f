"""`augment prepare --segments N / --hop-seconds S` and csv `start,end`: where the windows lie, one image per window,
every image of a clip in its clip's split, and the leak guard treating a test clip's segments as test data."""
from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from augment.audio.decode import load_clip
from augment.audio.image_mapping import db_to_gray, gray_to_rgb_png
from augment.audio.mel import MelConfig, mel_db
from augment.errors import UserError
from augment.io_utils import sha256_bytes
from augment.segments import Segmenting, plan_windows, segmenting_from_options
from augment.workspace import Workspace
from tests.support.audio import tone

SR = 8000
RES = 16


# ------------------------------------------------------------------------------------------- window planning
@pytest.mark.parametrize("length, seg, kw, expected", [
    (30.0, Segmenting(3), {}, [(0, 10), (10, 20), (20, 30)]),              # exactly 3 × 10 s: consecutive
    (60.0, Segmenting(3), {}, [(0, 10), (25, 35), (50, 60)]),              # long: evenly spaced, end to end
    (25.0, Segmenting(3), {}, [(0, 10), (10, 20), (20, 30)]),              # short: the third holds 5 s (half)
    (24.0, Segmenting(3), {}, [(0, 10), (10, 20)]),                        # ... 4 s: not cut
    (5.0, Segmenting(3), {}, [(0, 10)]),                                   # shorter than one window: padded one
    (None, Segmenting(3), {}, [(0, 10), (10, 20), (20, 30)]),              # unknown length: consecutive
    (30.0, Segmenting(2), {"offset": 2.0}, [(2, 12), (20, 30)]),           # the region starts at --offset
    (30.0, Segmenting(None, 5.0), {}, [(0, 10), (5, 15), (10, 20), (15, 25), (20, 30)]),   # hop: all that fit
    (30.0, Segmenting(3, 5.0), {}, [(0, 10), (5, 15), (10, 20)]),          # hop with --segments: at most N
    (30.0, Segmenting(None, 7.0), {}, [(0, 10), (7, 17), (14, 24)]),       # 21 + 10 > 30: not cut
    (8.0, Segmenting(None, 5.0), {}, [(0, 10)]),                           # hop on a short clip: the first
    (30.0, None, {"start": 5.0, "end": 17.0}, [(5, 15)]),                  # csv start,end, one window
    (30.0, None, {"start": 5.0, "end": 12.0}, [(5, 12)]),                  # ... the row's end stops the audio
    (30.0, Segmenting(2), {"start": 4.0, "end": 28.0}, [(4, 14), (18, 28)]),
    (20.0, Segmenting(2), {"start": 4.0, "end": 28.0}, [(4, 14), (14, 20)]),  # end past the file: the file's end
])
def test_plan_windows_hand_cases(length, seg, kw, expected):
    assert plan_windows(length, 10.0, seg, **kw) == [(float(a), float(b)) for a, b in expected]


def test_a_tiny_hop_is_bounded():
    from augment.segments import MAX_SEGMENTS

    assert len(plan_windows(3600.0, 1.0, Segmenting(None, 0.001))) == MAX_SEGMENTS


def test_segment_options():
    assert segmenting_from_options(None, None) is None and segmenting_from_options(1, None) is None
    assert segmenting_from_options(3, None) == Segmenting(3) and segmenting_from_options(None, 2.5) == Segmenting(
        None, 2.5)
    for bad in ((0, None), (-2, None), (None, 0.0), (None, -1.0)):
        with pytest.raises(UserError, match="--segments|--hop-seconds"):
            segmenting_from_options(*bad)


# ------------------------------------------------------------------------------------------------ prepare
def _clip(seconds: float, freq: float, seed: int) -> np.ndarray:
    """A different tone every second, so every window of a clip has its own image."""
    parts = [tone(1.0, SR, freq=freq + 150.0 * k, seed=seed * 10 + k) for k in range(int(np.ceil(seconds)))]
    return np.concatenate(parts)[: int(round(seconds * SR))]


def _audio(root: Path) -> Path:
    for ci, cls in enumerate(("a", "b")):
        for k in range(5):
            seconds = 1.2 if k == 0 else 3.0                                # clip 0: too short for a second window
            path = root / cls / f"{cls}{k}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, _clip(seconds, 200.0 + 400.0 * ci + 37.0 * k, 10 * ci + k), SR, subtype="FLOAT")
    return root


def _prepare(*args) -> object:
    from augment.cli import cli

    return CliRunner().invoke(cli, ["prepare", *[str(a) for a in args]])


@pytest.fixture(scope="module")
def seg_ws(tmp_path_factory) -> Workspace:
    tmp = tmp_path_factory.mktemp("segments")
    r = _prepare("--dataset", "folder", "--audio-dir", _audio(tmp / "audio"), "--duration", "1", "--segments", "3",
                 "--test-size", "1", "--resolution", RES, "-j", "1", "-w", tmp / "ws")
    assert r.exit_code == 0, r.output
    assert "images of 10 clips" in r.output
    return Workspace.load(tmp / "ws")


def _expected_sha(path: Path, start: float, stop: float | None = None) -> str:
    """The image of ``path`` from ``start`` (zeroed after ``stop``), straight from the mel pipeline."""
    mel = MelConfig(sr=SR, duration=1.0, offset=start)
    y = load_clip(path, mel).samples.copy()
    if stop is not None:
        y[int(round((stop - start) * SR)):] = 0.0
    return sha256_bytes(gray_to_rgb_png(db_to_gray(mel_db(y, mel), mel.top_db, RES)))


def test_prepare_segments_gives_n_images_per_clip_in_one_split(seg_ws):
    by_clip: dict[str, list] = defaultdict(list)
    for r in seg_ws.rows():
        by_clip[r.source].append(r)
    assert len(by_clip) == 10
    audio = Path(seg_ws.config["dataset"]["options"]["audio_dir"])
    for source, rows in by_clip.items():
        short = source.endswith("0.wav")
        assert len(rows) == (1 if short else 3), source
        assert len({r.split for r in rows}) == 1                            # the clip is the group
        stem = Path(source).stem
        assert sorted(Path(r.image).name for r in rows) == [f"{stem}.seg{k:02d}.png" for k in range(len(rows))]
        for r in rows:                                                       # segment k is seconds k..k+1
            k = int(Path(r.image).name.split(".seg")[1][:2])
            assert r.image_sha256 == _expected_sha(audio / source, float(k)), r.image
            assert seg_ws.config["segments"]["windows"][r.image] == [float(k), float(k + 1)]
    rec = seg_ws.config["segments"]
    assert (rec["count"], rec["hop_seconds"], rec["duration"], rec["short"]) == (3, None, 1.0, 2)
    counts = seg_ws.config["splits"]["counts"]                               # counts are images
    assert sum(sum(c.values()) for c in counts.values()) == len(seg_ws.rows()) == 2 * (1 + 4 * 3)


def test_leak_guard_refuses_a_test_segment_copied_into_train(seg_ws, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(seg_ws.root, root)
    ws = Workspace.load(root)
    train_val = ws.images(["train", "val"])
    assert len(ws.guard_training_inputs(train_val)) == len(train_val)        # the clean workspace passes
    test_seg = next(r for r in ws.rows() if r.split == "test" and r.image.endswith(".seg01.png"))
    copy = root / "data" / "train" / test_seg.cls / "renamed.png"
    shutil.copyfile(root / test_seg.image, copy)
    with pytest.raises(UserError, match="identical to a test file"):
        ws.guard_training_inputs(train_val + [copy])


def test_segmented_workspace_is_another_dataset(seg_ws, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(seg_ws.root, root)
    r = _prepare("--dataset", "folder", "--audio-dir", seg_ws.config["dataset"]["options"]["audio_dir"],
                 "--duration", "1", "--test-size", "1", "--resolution", RES, "-j", "1", "-w", root)
    assert r.exit_code == 2 and "already holds a different dataset" in r.output


def _csv_workspace(tmp_path: Path, clip: int, start: str, end: str, *options: str) -> tuple[Path, Workspace]:
    """(audio folder, workspace) of a csv manifest whose rows of clip number ``clip`` give ``start,end``."""
    audio = _audio(tmp_path / "audio")
    rows = ["path,label,start,end"] + [f"{c}/{c}{k}.wav,{c},{start if k == clip else ''},{end if k == clip else ''}"
                                       for c in "ab" for k in range(5)]
    (audio / "list.csv").write_text("\n".join(rows) + "\n")
    r = _prepare("--dataset", "csv", "--manifest", audio / "list.csv", "--duration", "1", *options,
                 "--test-size", "1", "--resolution", RES, "-j", "1", "-w", tmp_path / "ws")
    assert r.exit_code == 0, r.output
    return audio, Workspace.load(tmp_path / "ws")


def test_csv_start_end(tmp_path):
    audio, ws = _csv_workspace(tmp_path, 1, "0.5", "2.0", "--segments", "2")
    windows = ws.config["segments"]["windows"]
    got = {r.image: (r.source, r.image_sha256) for r in ws.rows()}
    a1 = sorted(i for i, (s, _) in got.items() if s == "a/a1.wav")
    assert [windows[i] for i in a1] == [[0.5, 1.5], [1.5, 2.0]]              # 1.5 s region: consecutive
    assert got[a1[1]][1] == _expected_sha(audio / "a/a1.wav", 1.5, 2.0)     # the second zeroed after 2.0 s
    a2 = sorted(i for i, (s, _) in got.items() if s == "a/a2.wav")
    assert [windows[i] for i in a2] == [[0.0, 1.0], [2.0, 3.0]]              # no start,end: the whole 3 s file


@pytest.mark.parametrize("args, message", [
    (("--segments", "0"), "--segments must be"),
    (("--hop-seconds", "-1"), "--hop-seconds must be"),
])
def test_bad_segment_options_exit_2(tmp_path, args, message):
    r = _prepare("--dataset", "folder", "--audio-dir", _audio(tmp_path / "audio"), *args, "-w", tmp_path / "ws")
    assert r.exit_code == 2 and message in r.output and not (tmp_path / "ws" / "augment.json").exists()


def test_bad_start_end_exit_2(tmp_path):
    audio = _audio(tmp_path / "audio")
    (audio / "list.csv").write_text("path,label,start,end\na/a1.wav,a,3,2\n")
    r = _prepare("--dataset", "csv", "--manifest", audio / "list.csv", "-w", tmp_path / "ws")
    assert r.exit_code == 2 and "line 2: end 2 is not after start 3" in r.output


def test_segments_record_is_validated(seg_ws, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(seg_ws.root, root)
    cfg = json.loads((root / "augment.json").read_text())
    cfg["segments"]["count"] = "three"
    (root / "augment.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="field `segments`"):
        Workspace.load(root)


def test_csv_start_end_without_segments(tmp_path):
    audio, ws = _csv_workspace(tmp_path, 2, "1.5", "2.2")
    assert len(ws.rows()) == 10                                              # one image per clip
    row = next(r for r in ws.rows() if r.source == "a/a2.wav")
    windows = ws.config["segments"]["windows"]
    assert Path(row.image).name == "a2.png" and windows[row.image] == [1.5, 2.2]
    assert row.image_sha256 == _expected_sha(audio / "a/a2.wav", 1.5, 2.2)
    plain = next(r for r in ws.rows() if r.source == "a/a3.wav")            # no start,end: the first second
    assert windows[plain.image] == [0.0, 1.0] and plain.image_sha256 == _expected_sha(audio / "a/a3.wav", 0.0)


def test_segments_with_group_by_keep_each_group_in_one_split(tmp_path):
    r = _prepare("--dataset", "folder", "--audio-dir", _audio(tmp_path / "audio"), "--duration", "1", "--segments",
                 "2", "--group-by", r"(\d)\.wav$", "--test-size", "1", "--resolution", RES, "-j", "1",
                 "-w", tmp_path / "ws")
    assert r.exit_code == 0, r.output
    ws = Workspace.load(tmp_path / "ws")
    split_of: dict[str, set] = defaultdict(set)
    for row in ws.rows():                                   # group k: a<k>.wav and b<k>.wav, all their segments
        split_of[Path(row.source).stem[1:]].add(row.split)
    assert len(split_of) == 5 and all(len(s) == 1 for s in split_of.values())
    assert {next(iter(s)) for s in split_of.values()} == {"train", "val", "test"}
    assert len(ws.rows()) == 2 * (1 + 4 * 2)
