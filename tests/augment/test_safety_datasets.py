"""Dataset listings: symlinked class folders are followed or named; manifest label conflicts are named."""
from __future__ import annotations

import os

import pytest

from augment.datasets import build_dataset
from augment.errors import UserError


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _folder(root):
    return build_dataset("folder", {"audio_dir": str(root)})


def test_symlinked_class_folders_and_subfolders_are_followed(tmp_path):
    store = tmp_path / "store"
    _touch(store / "album" / "s1.wav")
    _touch(store / "happy" / "h1.wav")
    root = tmp_path / "audio"
    (root / "sad").mkdir(parents=True)
    os.symlink(store / "album", root / "sad" / "album")      # a class folder whose files sit in a linked folder
    os.symlink(store / "happy", root / "happy")               # a class folder that is itself a link
    os.symlink(root / "sad", root / "sad" / "loop")           # a link back up the tree: read once, no loop
    spec = _folder(root)
    assert spec.classes == ["happy", "sad"]
    assert sorted(s.name for s in spec.sources) == ["happy/h1.wav", "sad/album/s1.wav"]


def test_broken_symlinks_are_named_not_reported_empty(tmp_path):
    root = tmp_path / "audio"
    _touch(root / "a" / "a1.wav")
    os.symlink(tmp_path / "gone", root / "b")
    with pytest.raises(UserError, match="b is a symlink to .*gone, which does not exist"):
        _folder(root)
    os.unlink(root / "b")
    (root / "b").mkdir()
    os.symlink(tmp_path / "gone.wav", root / "b" / "b1.wav")
    with pytest.raises(UserError, match="holds only broken symlinks, e.g. b1.wav"):
        _folder(root)
    _touch(root / "b" / "b2.wav")
    notes = dict(_folder(root).notes)
    assert "symlink to" in notes["b/b1.wav"] and "does not exist; ignored" in notes["b/b1.wav"]


def _manifest(tmp_path, lines):
    for name in ("x.wav", "y.wav", "z.wav"):
        _touch(tmp_path / name)
    (tmp_path / "m.csv").write_text("path,label\n" + "\n".join(lines) + "\n")
    return build_dataset("csv", {"manifest": str(tmp_path / "m.csv")})


def test_manifest_path_listed_under_two_labels_says_they_conflict(tmp_path):
    with pytest.raises(UserError, match=r"line 3: x.wav is listed twice with conflicting labels 'happy' \(line 2\) "
                                        r"and 'sad'"):
        _manifest(tmp_path, ["x.wav,happy", "x.wav,sad"])


def test_manifest_labels_differing_by_case_or_spaces_are_flagged(tmp_path):
    with pytest.raises(UserError, match=r"labels 'happy' \(line 2\) and 'Happy' \(line 3\) differ only by case"):
        _manifest(tmp_path, ["x.wav,happy", "y.wav,Happy"])
    spec = _manifest(tmp_path, ["x.wav,happy", "y.wav, happy ", "z.wav,sad"])
    assert spec.classes == ["happy", "sad"]
    assert ("m.csv line 3", "label ' happy ' has surrounding spaces; read as 'happy'") in spec.notes
