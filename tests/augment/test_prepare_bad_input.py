"""Every bad-input case of `augment prepare`: warnings that name the file, or one error line and nothing written."""
from __future__ import annotations

import shutil

import numpy as np
import soundfile as sf

from augment.workspace import Workspace

FAST = ("--duration", "0.5", "--resolution", "8", "-j", "1")


def _prepare(augment_cli, audio, ws, *extra):
    return augment_cli("prepare", "--dataset", "folder", "--audio-dir", audio, "--test-size", "2", *FAST,
                       "-w", ws, *extra)


def _nothing_written(ws):
    return not ws.exists() or sorted(p.name for p in ws.iterdir()) == []


def test_unusable_files_are_skipped_named_and_counted(tmp_path, audio_folder, write_wav, augment_cli):
    audio = audio_folder({"a": 6, "b": 6})
    (audio / "a" / "zero.wav").write_bytes(b"")
    (audio / "a" / "broken.mp3").write_bytes(np.random.default_rng(0).bytes(4000))
    (audio / "b" / "notes.txt").write_text("liner notes")
    (audio / "b" / ".DS_Store").write_bytes(b"\0\1")  # hidden: ignored silently
    (audio / "b" / "copy.wav").write_bytes((audio / "b" / "b00.wav").read_bytes())
    write_wav(audio / "a" / "short.wav", 0.2, seed=99)
    for k in (1, 2):  # different files, identical (black) images
        sf.write(audio / "b" / f"silent{k}.wav", np.zeros(800 * k, np.float32), 8000)
    ws = tmp_path / "ws"
    r = _prepare(augment_cli, audio, ws)
    assert r.exit_code == 0, r.output
    assert "warning: a/zero.wav: empty file (0 bytes); skipped" in r.stderr
    assert "warning: a/broken.mp3: unreadable or corrupt audio" in r.stderr
    assert "warning: b/notes.txt: not an audio file; skipped" in r.stderr
    assert "b/copy.wav: same bytes as b/b00.wav" in r.stderr
    assert ".DS_Store" not in r.stderr
    assert "its image is identical to that of b/silent" in r.stderr
    assert "14 clips, 2 classes" in r.stdout and "2 padded, 5 skipped" in r.stdout
    cfg = Workspace.load(ws).config
    skipped = {s["source"] for s in cfg["prepare"]["skipped"]}
    (dropped,) = skipped & {"b/silent1.wav", "b/silent2.wav"}  # exactly one of the twins
    kept = ({"b/silent1.wav", "b/silent2.wav"} - {dropped}).pop()
    assert skipped == {"a/zero.wav", "a/broken.mp3", "b/notes.txt", "b/copy.wav", dropped}
    assert cfg["prepare"]["padded"] == ["a/short.wav", kept]
    assert len({r.image_sha256 for r in Workspace.load(ws).rows()}) == 14
    assert not any(".partial" in p.name for p in ws.iterdir())


def test_stereo_and_odd_sample_rates_are_converted(tmp_path, write_wav, augment_cli):
    audio = tmp_path / "audio"
    for k, (sr, ch) in enumerate([(44100, 2), (11025, 1), (22050, 2), (48000, 1), (8000, 1), (16000, 6)]):
        write_wav(audio / "a" / f"a{k}.wav", 0.6, sr, channels=ch, seed=k)
        write_wav(audio / "b" / f"b{k}.wav", 0.6, sr, channels=ch, seed=50 + k, freq=900)
    sf.write(audio / "a" / "a9.flac", np.zeros((4000, 2), np.float32) + 0.1, 7350)
    r = _prepare(augment_cli, audio, tmp_path / "ws")
    assert r.exit_code == 0, r.output
    cfg = Workspace.load(tmp_path / "ws").config
    assert sum(sum(c.values()) for c in cfg["splits"]["counts"].values()) == 13
    assert cfg["prepare"]["resampled"] == 11 and cfg["prepare"]["downmixed"] == 7
    assert cfg["prepare"]["padded"] == []


def test_fatal_errors_write_nothing(tmp_path, audio_folder, augment_cli):
    ws = tmp_path / "ws"
    few = audio_folder({"a": 6, "b": 3}, name="few")
    r = _prepare(augment_cli, few, ws)
    assert r.exit_code == 2 and r.stderr.count("error: ") == 1 and "error: class 'b' has 3 usable clip(s)" in r.stderr
    assert "needs 4" in r.stderr and _nothing_written(ws)

    empty = audio_folder({"a": 6, "b": 6}, name="empty")
    (empty / "c").mkdir()
    r = _prepare(augment_cli, empty, ws)
    assert r.exit_code == 2 and "class folder" in r.stderr and "/c is empty" in r.stderr and _nothing_written(ws)

    junk = audio_folder({"a": 6}, name="junk")
    (junk / "b").mkdir()
    for k in range(6):
        (junk / "b" / f"{k}.txt").write_text("x")
    r = _prepare(augment_cli, junk, ws)
    assert r.exit_code == 2 and "class 'b' has 0 usable clip(s)" in r.stderr and _nothing_written(ws)

    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "x.wav").write_bytes(b"")
    r = _prepare(augment_cli, flat, ws)
    assert r.exit_code == 2 and "no class subfolders" in r.stderr

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    r = _prepare(augment_cli, few, blocker / "ws")
    assert r.exit_code == 2 and "not writable" in r.stderr


def test_option_mistakes_are_one_line_errors(tmp_path, audio_folder, augment_cli):
    audio = audio_folder()
    r = _prepare(augment_cli, audio, tmp_path / "ws", "--ratings", "x.csv")
    assert r.exit_code == 2 and "--ratings do(es) not apply to --dataset folder" in r.stderr
    r = augment_cli("prepare", "--dataset", "folder", "--audio-dir", audio, "--resolution", "2", "-w", tmp_path)
    assert r.exit_code == 2 and "--resolution must be from 4 to 8192 px" in r.stderr
    r = augment_cli("prepare", "--dataset", "folder", "--audio-dir", audio, "--hop", "0", "-w", tmp_path)
    assert r.exit_code == 2 and "--hop must be > 0" in r.stderr
    r = augment_cli("prepare", "--dataset", "panda4q", "--audio-dir", audio, "-w", tmp_path)
    assert r.exit_code == 2 and "--annotations is required" in r.stderr
    ann = tmp_path / "ann.csv"
    ann.write_text("Song,Label\nx,Q1\n")
    r = augment_cli("prepare", "--dataset", "panda4q", "--audio-dir", audio, "--annotations", ann, "-w", tmp_path)
    assert r.exit_code == 2 and "missing column(s) Quadrant" in r.stderr


def test_workspace_holding_another_dataset(tmp_path, audio_folder, augment_cli):
    audio = audio_folder({"a": 6, "b": 6})
    ws = tmp_path / "ws"
    assert _prepare(augment_cli, audio, ws).exit_code == 0
    manifest = (ws / "splits.csv").read_bytes()
    (ws / "runs" / "a" / "00000-x").mkdir(parents=True)
    # the same dataset again (from another copy of the folder): allowed, identical, runs kept
    shutil.copytree(audio, tmp_path / "copy")
    r = _prepare(augment_cli, tmp_path / "copy", ws)
    assert r.exit_code == 0 and (ws / "splits.csv").read_bytes() == manifest and (ws / "runs" / "a").is_dir()
    # a different dataset: refused, nothing touched
    other = audio_folder({"x": 6, "y": 6}, name="other")
    r = _prepare(augment_cli, other, ws)
    assert r.exit_code == 2 and "already holds a different dataset (folder)" in r.stderr and "--force" in r.stderr
    assert (ws / "splits.csv").read_bytes() == manifest
    # same settings but changed files would change the splits: refused
    (tmp_path / "copy" / "a" / "a00.wav").unlink()
    r = _prepare(augment_cli, tmp_path / "copy", ws)
    assert r.exit_code == 2 and "would change its splits" in r.stderr
    assert (ws / "splits.csv").read_bytes() == manifest and not any(".partial" in p.name for p in ws.iterdir())
    # --force replaces it and moves the old runs aside
    r = _prepare(augment_cli, other, ws, "--force")
    assert r.exit_code == 0, r.output
    assert Workspace.load(ws).classes == ["x", "y"] and not (ws / "runs").exists()
    assert [p.name for p in (ws / "archive").iterdir()][0].endswith("-folder")
    assert sorted(p.name for p in (ws / "data" / "train").iterdir()) == ["x", "y"]


def test_foreign_data_folder_is_not_overwritten(tmp_path, audio_folder, augment_cli):
    ws = tmp_path / "ws"
    (ws / "data").mkdir(parents=True)
    (ws / "data" / "mine.txt").write_text("precious")
    r = _prepare(augment_cli, audio_folder(), ws)
    assert r.exit_code == 2 and "not a prepared workspace" in r.stderr
    assert (ws / "data" / "mine.txt").read_text() == "precious"
    (ws / "augment.json").write_text("{broken")
    r = _prepare(augment_cli, audio_folder(), ws)
    assert r.exit_code == 2 and "unreadable" in r.stderr
    assert (ws / "augment.json").read_text() == "{broken"
