"""A folder switch killed (SIGKILL) at any step leaves the old or the new folder whole; the next writer finishes it.

Each case forks a child that performs the switch with a fault point armed (STYLEGAN_ADA_FAULT) and dies there.
"""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from augment import dir_swap
from augment.dir_swap import recover_stale, swap_in
from augment.io_utils import atomic_dir


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _fill(folder: Path, tag: str) -> dict[str, bytes]:
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    for k in range(3):
        (folder / "sub" / f"{k}.txt").write_text(f"{tag}-{k}")
    return _tree(folder)


def _killed_child(fn, fault: str, *, exchange: bool = True) -> None:
    """Run ``fn`` in a forked child with ``fault`` armed; assert it died of SIGKILL."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.environ["STYLEGAN_ADA_FAULT"] = fault
            if not exchange:
                dir_swap.exchange_paths = lambda a, b: False  # a file system without RENAME_EXCHANGE
            fn()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status


@pytest.mark.parametrize("archive", [False, True])
@pytest.mark.parametrize("exchange, step", [(True, 1), (True, 3), (False, 1), (False, 2), (False, 3)])
def test_killed_switch_leaves_old_or_new_and_recovery_finishes(tmp_path, step, archive, exchange):
    final = tmp_path / "synthetic"
    old = _fill(final, "old")
    archive_to = tmp_path / "ws" / "archive" / "x-synthetic" if archive else None

    def switch():
        tmp = Path(__import__("tempfile").mkdtemp(prefix=dir_swap.partial_prefix(final), suffix=".partial",
                                                   dir=tmp_path))
        _fill(tmp, "new")
        swap_in(tmp, final, archive_to=archive_to)

    _killed_child(switch, f"dir-swap={step}", exchange=exchange)
    seen = _tree(final) if final.is_dir() else None
    switched = seen == {k: v.replace(b"old", b"new") for k, v in old.items()}
    between_renames = not exchange and step == 2   # only without RENAME_EXCHANGE: the journal rolls it back
    assert seen == old or switched or (between_renames and seen is None), "neither the old nor the new folder"
    recover_stale(final)   # what the next writer of the folder does first
    assert _tree(final) == (old if between_renames else seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["synthetic", "ws"] if archive and switched else
                                                          ["synthetic"])
    if archive and switched:  # --force replaces by archiving: the old content is never deleted
        assert _tree(archive_to) == old


def test_stale_partials_of_dead_processes_are_removed_live_ones_kept(tmp_path):
    final = tmp_path / "synthetic"
    dead = subprocess.Popen(["true"])
    dead.wait()
    live = subprocess.Popen(["sleep", "30"])
    try:
        stale = tmp_path / f".synthetic.{dead.pid}-abc.partial"
        busy = tmp_path / f".synthetic.{live.pid}-def.partial"
        other = tmp_path / f".other.{dead.pid}-ghi.partial"  # another folder's: not ours to judge
        for p in (stale, busy, other):
            _fill(p, "x")
        with atomic_dir(final) as tmp:
            (tmp / "f").write_text("new")
        assert not stale.exists() and busy.is_dir() and other.is_dir()
        assert (final / "f").read_text() == "new"
    finally:
        live.kill()
        live.wait()


def test_ctrl_c_during_a_switch_is_held_until_it_is_complete(tmp_path, monkeypatch):
    final = tmp_path / "out"
    old = _fill(final, "old")
    monkeypatch.setattr(dir_swap, "fault_point", lambda key, step: os.kill(os.getpid(), signal.SIGINT)
                        if step == 1 else None)
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(final) as tmp:
            _fill(tmp, "new")
    assert _tree(final) == {k: v.replace(b"old", b"new") for k, v in old.items()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_planted_swap_journal_cannot_name_another_folder(tmp_path):
    import json

    dead = subprocess.Popen(["true"])
    dead.wait()
    final = tmp_path / "synthetic"
    _fill(final, "new")
    data = _fill(tmp_path / "data", "precious")
    journal = tmp_path / f".synthetic.{dead.pid}-zz.partial.json"
    journal.write_text(json.dumps({"final": "synthetic", "old": "data", "archive_to": None,
                                   "old_ino": os.lstat(tmp_path / "data").st_ino}))
    recover_stale(final)
    assert _tree(tmp_path / "data") == data and not journal.exists()
