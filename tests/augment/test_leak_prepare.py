"""`augment prepare` keeps near-duplicate audio and whole groups (--group-by) on one side of the split."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import soundfile as sf

from augment.workspace import Workspace
from tests.support.audio import tone

SR = 8000
RES = "16"


def _write(path: Path, y: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y.astype(np.float32), SR, subtype="FLOAT")
    return path


def test_near_duplicate_audio_across_splits_keeps_the_test_copy(tmp_path, augment_cli):
    root = tmp_path / "audio"
    for ci, cls in enumerate(("a", "b")):
        for k in range(8):
            _write(root / cls / f"{cls}{k:02d}.wav", tone(0.5, SR, freq=220.0 * (ci + 1) + 7 * k, seed=100 * ci + k))
    y = tone(0.5, SR, freq=220.0, seed=0)                           # a00's audio, copied three ways
    noise = 1e-4 * np.random.default_rng(1).standard_normal(y.size)
    copies = {"a_gain.wav": 0.9 * y, "a_noise.wav": y + noise, "a_shift.wav": np.concatenate([[0.0], y[:-1]])}
    for name, v in copies.items():
        _write(root / "a" / name, v)
    r = augment_cli("prepare", "--dataset", "folder", "--audio-dir", root, "--duration", "0.5", "--test-size", "0.5",
                    "--resolution", RES, "-j", "1", "-w", tmp_path / "ws")
    assert r.exit_code == 0, r.output
    ws = Workspace.load(tmp_path / "ws")
    split_of = {r.source: r.split for r in ws.rows()}
    family = ["a/a00.wav"] + [f"a/{n}" for n in copies]
    kept = [s for s in family if s in split_of]
    excluded = [s for s in family if s not in split_of]
    assert len({split_of[s] for s in kept}) == 1                    # one side only ...
    assert split_of[kept[0]] == "test" and excluded                 # ... the test side, which this seed puts there
    for s in excluded:
        line = next(ln for ln in r.stderr.splitlines() if ln.startswith(f"warning: {s}:"))
        assert "near-duplicate of " in line and any(k in line for k in kept), line
    # no distinct clip was taken for a copy
    assert {s for s in split_of} == {f"{c}/{c}{k:02d}.wav" for c in "ab" for k in range(8)} | set(kept)
    # and the leak guard accepts what prepare kept
    assert len(ws.guard_training_inputs(ws.images(["train", "val"]))) == len(ws.images(["train", "val"]))


def _song_folder(root: Path) -> Path:
    """5 songs per class, 1-3 clips each: <class>/song<n>_<clip>.wav."""
    seed = 0
    for ci, cls in enumerate(("a", "b")):
        for song in range(5):
            for clip in range(1 + song % 3):
                seed += 1
                _write(root / cls / f"{cls}song{song}_{clip}.wav",
                       tone(0.25, SR, freq=200.0 + 150 * ci + 20 * song + 3 * clip, seed=seed))
    return root


def _groups_of(ws: Workspace, pattern: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in ws.rows():
        out.setdefault(re.search(pattern, Path(r.source).name).group(1), set()).add(r.split)
    return out


def test_group_by_regex_keeps_each_song_in_one_split_and_the_guard_refuses_test_songs(tmp_path, augment_cli):
    audio = _song_folder(tmp_path / "audio")
    args = ("prepare", "--dataset", "folder", "--audio-dir", audio, "--duration", "0.25", "--test-size", "0.3",
            "--resolution", RES, "-j", "1")
    r = augment_cli(*args, "--group-by", r"^(.+?)_", "-w", tmp_path / "ws")
    assert r.exit_code == 0, r.output
    ws = Workspace.load(tmp_path / "ws")
    groups = _groups_of(ws, r"^(.+?)_")
    assert len(groups) == 10 and all(len(s) == 1 for s in groups.values()), groups
    assert {r.cls for r in ws.rows() if r.split == "test"} == {"a", "b"}
    assert ws.config["groups"]["of"]["a/asong1_1.wav"] == "asong1"
    again = augment_cli(*args, "--group-by", r"^(.+?)_", "-w", tmp_path / "ws2")
    assert again.exit_code == 0 and (tmp_path / "ws2" / "splits.csv").read_bytes() == ws.manifest_path.read_bytes()
    # an extra image named after a test song is refused by the guard (`augment train --extra-images`)
    test_song = next(g for g, s in groups.items() if s == {"test"})
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / f"{test_song}_remix.png").write_bytes((ws.root / ws.rows()[0].image).read_bytes())
    res = augment_cli("train", "-w", ws.root, "--extra-images", extra, "--cfg", "tiny", "--from", "scratch",
                      "--device", "cpu", "--metrics", "none", "--dry-run")
    assert res.exit_code == 2 and f"belongs to group {test_song!r}" in res.output, res.output


def test_group_by_csv_column_and_a_fixed_split_that_straddles_a_group(tmp_path, augment_cli):
    audio = _song_folder(tmp_path / "audio")
    files = sorted(audio.rglob("*.wav"))
    manifest = tmp_path / "audio" / "list.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "split", "track"])
        for p in files:
            song = p.stem.split("_")[0]
            # song 2 of each class straddles: clip 0 in test, clip 1 in train (which must go)
            split = "test" if song.endswith(("0", "1")) or p.stem.endswith("song2_0") else "train"
            w.writerow([p.relative_to(manifest.parent).as_posix(), p.parent.name, split, song])
    r = augment_cli("prepare", "--dataset", "csv", "--manifest", manifest, "--duration", "0.25", "--resolution", RES,
                    "-j", "1", "--group-by", "track", "-w", tmp_path / "ws")
    assert r.exit_code == 0, r.output
    ws = Workspace.load(tmp_path / "ws")
    sources = {r.source for r in ws.rows()}
    assert "a/asong2_0.wav" in sources and "a/asong2_1.wav" not in sources and "b/bsong2_1.wav" not in sources
    assert "warning: a/asong2_1.wav: group 'asong2' has test clips" in r.stderr
    bad = augment_cli("prepare", "--dataset", "csv", "--manifest", manifest, "--group-by", "artist", "-w",
                      tmp_path / "ws3")
    assert bad.exit_code == 2 and "has no such column" in bad.output


def test_group_by_regex_that_misses_a_file_is_one_clear_error(tmp_path, augment_cli):
    audio = _song_folder(tmp_path / "audio")
    for pattern, message in (("^(zzz)", "does not match the file name"), ("(", "not a valid regular expression")):
        r = augment_cli("prepare", "--dataset", "folder", "--audio-dir", audio, "--group-by", pattern, "-w",
                        tmp_path / "ws")
        assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, r.output
