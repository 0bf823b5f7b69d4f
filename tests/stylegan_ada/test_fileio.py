"""Atomic writes: one core (`stylegan_ada.fileio`) under both APIs; modes, failures, augment's one-line errors."""
from __future__ import annotations

import errno
import os
import stat

import pytest

from augment import io_utils
from augment.errors import UserError
from stylegan_ada import fileio


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _no_temp_files(folder) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_both_apis_give_umask_modes_not_mkstemp_0600(tmp_path, monkeypatch, umask):
    monkeypatch.setattr(fileio, "FILE_MODE", 0o666 & ~umask)  # the module reads the umask once, at import
    fileio.atomic_write_chunks(tmp_path / "a.bin", [b"x", memoryview(b"yz")])
    io_utils.atomic_write_text(tmp_path / "b.txt", "hello")
    assert (tmp_path / "a.bin").read_bytes() == b"xyz" and (tmp_path / "b.txt").read_text() == "hello"
    assert _mode(tmp_path / "a.bin") == _mode(tmp_path / "b.txt") == 0o666 & ~umask


def test_umask_is_read_at_import():
    current = os.umask(0)
    os.umask(current)
    assert fileio.FILE_MODE == 0o666 & ~current and fileio.DIR_MODE == 0o777 & ~current


def test_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "f.json"
    target.write_text("old")

    def chunks():
        yield b"new"
        raise RuntimeError("writer crashed")

    with pytest.raises(RuntimeError):
        fileio.atomic_write_chunks(target, chunks())
    def reject(tmp):
        assert tmp.read_bytes() == b"new"  # the complete temp file is vetted before the rename
        raise ValueError("bad content")

    with pytest.raises(ValueError, match="bad content"):
        fileio.atomic_write_chunks(target, [b"new"], check=reject)
    with pytest.raises(KeyError):
        with io_utils.atomic_open(target, "w") as f:
            f.write("new")
            raise KeyError("caller failed")
    assert target.read_text() == "old" and _no_temp_files(tmp_path)


def _full_disk(monkeypatch):
    def write(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", write)


def test_disk_full_library_error_and_augment_one_line_error(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    _full_disk(monkeypatch)
    with pytest.raises(OSError) as info:
        fileio.atomic_write_chunks(target, [b"new"])
    assert info.value.errno == errno.ENOSPC and "previous file (if any) is intact" in str(info.value)
    monkeypatch.undo()

    def fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")  # a full disk often shows only at fsync

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(UserError, match=r"^disk full while writing .*f\.bin; free some space"):
        io_utils.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and _no_temp_files(tmp_path)


def test_permission_denied_is_one_line(tmp_path, monkeypatch):
    def mkstemp(**kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(fileio.tempfile, "mkstemp", mkstemp)
    with pytest.raises(UserError, match="permission denied; choose a writable location") as info:
        io_utils.atomic_write_json(tmp_path / "x.json", {"a": 1})
    assert "\n" not in str(info.value)


def test_hashes_are_shared():
    assert io_utils.sha256_file is fileio.sha256_file and io_utils.sha256_bytes is fileio.sha256_bytes
    assert fileio.sha256_bytes(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
