"""`augment prepare` replaces a workspace atomically, one process at a time, and every command refuses a workspace
whose augment.json does not match data/ or is malformed (issue 11 §4, §6; issue 16: Ctrl-C during prepare)."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from augment import prepare as prepare_module
from augment import workspace_journal
from augment.cli import cli
from augment.errors import UserError
from augment.workspace import Workspace
from augment.workspace_lock import workspace_lock
from tests.support.workspaces import make_image_workspace
from stylegan_ada.training.run_lock import RunLock

N_MOVES = 8  # runs, synthetic; the old augment.json, splits.csv, data; the new data, splits.csv, augment.json


def _images(root: Path, classes: tuple[str, ...], seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for k in range(6):
            Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8), "L").save(root / cls / f"{k}.png")
    return root


def _prepare(ws: Path, images: Path, resolution: int, *extra: str):
    return CliRunner().invoke(cli, ["prepare", "--dataset", "images", "--image-dir", str(images), "--resolution",
                                    str(resolution), "--test-size", "2", "-j", "1", "-w", str(ws), *extra])


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[Path, Path]:
    """A workspace of dataset A (classes a, b, 8 px) with a run and fakes; plus the image folder of dataset B."""
    base = tmp_path_factory.mktemp("prep")
    ws = base / "ws"
    assert _prepare(ws, _images(base / "A", ("a", "b"), 0), 8).exit_code == 0
    (ws / "runs" / "a" / "00000-x").mkdir(parents=True)
    (ws / "runs" / "a" / "00000-x" / "network-snapshot-000004.safetensors").write_bytes(b"weights")
    (ws / "synthetic").mkdir()
    (ws / "synthetic" / "generate.json").write_text("{}")
    return ws, _images(base / "B", ("x", "y"), 1)


@pytest.fixture()
def ws_a(prepared, tmp_path) -> Path:
    shutil.copytree(prepared[0], tmp_path / "ws")
    return tmp_path / "ws"


def _is_b(ws: Path, old: dict[str, bytes]) -> None:
    """``ws`` holds dataset B whole, and everything of A is in archive/ (nothing deleted, nothing left over)."""
    loaded = Workspace.load(ws)  # finishes an interrupted switch; checks augment.json against data/
    assert loaded.classes == ["x", "y"] and loaded.resolution == 16
    (archived,) = (ws / "archive").iterdir()
    moved = {k: v for k, v in _tree(archived).items() if not k.endswith("/.lock")}  # a run's lock file
    assert moved == old  # runs, synthetic, and the old augment.json, splits.csv, data/
    assert sorted(p.name for p in ws.iterdir()) == ["archive", "augment.json", "data", "splits.csv"]


@pytest.mark.parametrize("step", range(1, N_MOVES + 2))
def test_sigkill_at_every_step_of_the_force_switch(prepared, ws_a, step):
    old = _tree(ws_a)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child: prepare B over A, killed before step `step` of the switch
        try:
            os.environ["STYLEGAN_ADA_FAULT"] = f"prepare-switch={step}"
            _prepare(ws_a, prepared[1], 16, "--force")
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    _is_b(ws_a, old)


def test_sigkill_before_the_switch_leaves_the_workspace_as_it_was(prepared, ws_a):
    old = _tree(ws_a)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.environ["STYLEGAN_ADA_FAULT"] = "prepare=1"   # the new state is complete, the switch not begun
            _prepare(ws_a, prepared[1], 16, "--force")
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status)
    assert Workspace.load(ws_a).classes == ["a", "b"] and _tree(ws_a) != old  # the dead staging folder ...
    assert {k: v for k, v in _tree(ws_a).items() if not k.startswith((".prepare.", ".augment.lock"))} == old
    assert _prepare(ws_a, prepared[1], 16, "--force").exit_code == 0   # ... is removed by the next prepare
    assert not [p for p in ws_a.iterdir() if p.name.startswith(".")]


def test_ctrl_c_while_converting_leaves_the_workspace_as_it_was(prepared, ws_a, monkeypatch):
    old = _tree(ws_a)
    calls = []

    def interrupted(job):
        calls.append(job)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(job)

    real = prepare_module.convert_file
    monkeypatch.setattr(prepare_module, "convert_file", interrupted)
    r = _prepare(ws_a, prepared[1], 16, "--force")
    assert isinstance(r.exception, (KeyboardInterrupt, SystemExit)) and r.exit_code != 0  # click: "Aborted!"
    assert len(calls) == 3 and _tree(ws_a) == old and sorted(p.name for p in ws_a.iterdir()) == sorted(
        p.name for p in prepared[0].iterdir())


def test_ctrl_c_during_the_switch_waits_for_it(prepared, ws_a, monkeypatch):
    old = _tree(ws_a)
    monkeypatch.setattr(workspace_journal, "fault_point",
                        lambda key, step: os.kill(os.getpid(), signal.SIGINT) if step == 4 else None)
    r = _prepare(ws_a, prepared[1], 16, "--force")
    assert r.exit_code != 0 and "Aborted" in r.output   # the interrupt arrives once the switch is complete
    _is_b(ws_a, old)


def test_a_second_prepare_or_a_live_training_run_is_refused(prepared, ws_a):
    old = _tree(ws_a)
    with workspace_lock(ws_a, "test"):
        r = _prepare(ws_a, prepared[1], 16, "--force")
    assert r.exit_code == 2 and f"in use by process {os.getpid()}" in r.stderr and r.stderr.count("error:") == 1
    with RunLock(ws_a / "runs" / "a" / "00000-x"):
        r = _prepare(ws_a, prepared[1], 16, "--force")
    assert r.exit_code == 2 and "00000-x is being trained right now" in r.stderr
    assert {k: v for k, v in _tree(ws_a).items() if not k.endswith("/.lock")} == old


@pytest.mark.parametrize("damage, fragment", [
    (lambda ws: next((ws / "data" / "train" / "a").glob("*.png")).unlink(), "holds 5 PNG(s) but augment.json counts 6"),
    (lambda ws: [Image.new("RGB", (64, 64)).save(p) for p in (ws / "data" / "val" / "b").glob("*.png")],
     "is 64x64 but augment.json says 32x32"),
    (lambda ws: (ws / "data" / "test" / "zz").mkdir(), "test/zz is not a class of this workspace"),
    (lambda ws: shutil.rmtree(ws / "data" / "test"), "data/test is missing"),
])
def test_every_command_refuses_data_that_does_not_match_augment_json(tmp_path, damage, fragment):
    ws = make_image_workspace(tmp_path / "ws", ("a", "b"), counts={"train": 6, "val": 2, "test": 2})
    damage(ws.root)
    with pytest.raises(UserError, match=re.escape(fragment)):
        Workspace.load(ws.root)
    r = CliRunner().invoke(cli, ["check-novelty", "-w", str(ws.root), "--features", "none"])
    assert r.exit_code == 2 and fragment in r.stderr


def _set(path: str, value):
    def edit(cfg):
        *parents, last = path.split(".")
        node = cfg
        for p in parents:
            node = node[p]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
    return edit


@pytest.mark.parametrize("edit, field", [
    (_set("classes", KeyError), "`classes` is missing"),
    (_set("splits", KeyError), "`splits` is missing"),
    (_set("image.resolution", "abc"), "`image.resolution` must be an integer from 4"),
    (_set("image.resolution", 10000), "`image.resolution`"),
    (_set("classes", "ab"), "`classes` must be a non-empty list"),
    (_set("classes", ["a", "../b"]), "`classes` must be folder names"),
    (_set("splits.manifest", "../../etc/passwd"), "`splits.manifest` must be a file name"),
    (_set("splits.counts.train.a", "6"), "`splits.counts.train.a` must be a count"),
    (_set("dataset", []), "`dataset` must be an object"),
    (_set("kind", "video"), "`kind` must be"),
    (_set("prepare", "yesterday"), "`prepare` must be an object"),
    (_set("kind", "audio"), "`mel` is missing (an audio workspace needs its mel settings)"),
    (lambda cfg: "[" * 50_000 + "]" * 50_000, "nested too deeply"),
])
def test_malformed_augment_json_is_one_line_naming_the_field(tmp_path, edit, field):
    ws = make_image_workspace(tmp_path / "ws", ("a", "b"), counts={"train": 2, "val": 1, "test": 1})
    path = ws.root / "augment.json"
    cfg = json.loads(path.read_text())
    changed = edit(cfg)
    path.write_text(changed if isinstance(changed, str) else json.dumps(cfg))
    r = CliRunner().invoke(cli, ["check-novelty", "-w", str(ws.root), "--features", "none"])
    assert r.exit_code == 2, r.output
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert field in line and "unexpected" not in r.output and "Traceback" not in r.output


def test_force_on_a_foreign_folder_archives_its_data_and_leaves_the_rest(prepared, tmp_path):
    ws = tmp_path / "home"
    _tree_before = {"data/mine.txt": b"precious", "results/thesis.tex": b"chapter 1"}
    for rel, data in _tree_before.items():
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_bytes(data)
    r = _prepare(ws, prepared[1], 16)
    assert r.exit_code == 2 and "move that folder to archive/" in r.stderr
    assert _prepare(ws, prepared[1], 16, "--force").exit_code == 0
    (archived,) = (ws / "archive").iterdir()
    assert (archived / "data" / "mine.txt").read_bytes() == b"precious"
    assert (ws / "results" / "thesis.tex").read_bytes() == b"chapter 1"   # not a workspace's: not moved
    assert Workspace.load(ws).classes == ["x", "y"]


def test_workspace_inside_the_class_folders_is_refused(prepared):
    r = _prepare(prepared[1] / "ws", prepared[1], 16)
    assert r.exit_code == 2 and "lies inside the source folder" in r.stderr
    assert not (prepared[1] / "ws").exists()


@pytest.mark.parametrize("image", ["data/test/a/a_test_000.png", "../../elsewhere.png", "data/train/../test/x.png"])
def test_split_manifest_rows_outside_their_split_are_refused(tmp_path, image):
    from augment.io_utils import sha256_bytes

    ws = make_image_workspace(tmp_path / "ws", ("a", "b"), counts={"train": 2, "val": 1, "test": 1})
    lines = (ws.root / "splits.csv").read_text().splitlines()
    i = next(k for k, ln in enumerate(lines) if ",train," in ln)
    lines[i] = ",".join([image] + lines[i].split(",")[1:])   # a "train" row naming another file
    text = "\n".join(lines) + "\n"
    (ws.root / "splits.csv").write_text(text)
    cfg = json.loads((ws.root / "augment.json").read_text())
    cfg["splits"]["sha256"] = sha256_bytes(text.encode())  # as if both files were edited together
    (ws.root / "augment.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match=f"line {i + 1} is malformed"):
        Workspace.load(ws.root).rows()


def test_a_planted_journal_never_deletes_outside_the_workspace(tmp_path):
    ws = make_image_workspace(tmp_path / "ws", ("a", "b"), counts={"train": 2, "val": 1, "test": 1})
    victim = tmp_path / "precious"
    victim.mkdir()
    (victim / "thesis.tex").write_text("chapter 1")
    (ws.root / workspace_journal.JOURNAL_NAME).write_text(json.dumps(
        {"format": workspace_journal.JOURNAL_FORMAT, "moves": [], "cleanup": ["../precious"], "done": 0}))
    with pytest.raises(UserError, match="journal of an interrupted `augment prepare`"):
        Workspace.load(ws.root)
    assert (victim / "thesis.tex").read_text() == "chapter 1"
