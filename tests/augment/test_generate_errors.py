"""`augment generate` refuses bad input with one clear line (exit 2) and leaves earlier output untouched."""
from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from augment.cli import cli
from augment.workspace import Workspace


def generate(ws, *args):
    return CliRunner().invoke(cli, ["generate", "-w", str(ws.root), "-q", *args])


def assert_user_error(result, *fragments):
    assert result.exit_code == 2, result.output
    line = [ln for ln in result.output.splitlines() if ln.startswith("error: ")]
    assert len(line) == 1 and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in line[0], line[0]


@pytest.mark.parametrize("args, fragments", [
    (["--n", "0"], ["--n must be a positive number"]),
    (["--n", "-3"], ["--n must be a positive number"]),
    (["--seeds", "4,4"], ["seed twice"]),
    (["--seeds", "x"], ["--seeds must be"]),
    (["--classes", "nope"], ["unknown class 'nope'"]),
    (["--device", "cuda:99"], ["--device cuda:99"]),
    (["--audio"], ["--audio needs a workspace of mel spectrograms"]),
    (["--cond"], ["no trained conditional model", "--cond"]),
    (["--run", "runs/a/nothing"], ["does not exist"]),
    (["--pick", "best"], ["no FID in stats.jsonl", "--metrics fid"]),
    (["--trunc", "nan"], ["--trunc must be a finite number"]),
])
def test_bad_options(ws, args, fragments):
    assert_user_error(generate(ws, *args), *fragments)


def test_untrained_class_names_the_class_and_the_train_command(ws):
    assert_user_error(generate(ws, "--classes", "a,c"), "no trained model for class 'c'",
                      f"augment train --workspace {ws.root} --class c")
    shutil.rmtree(ws.root / "runs")
    assert_user_error(generate(ws), "no trained model", "augment train --workspace")


def test_output_not_writable(ws, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert_user_error(generate(ws, "--n", "1", "--out", str(blocker / "synthetic")), "not writable")


def test_refuses_foreign_folder_even_forced_and_archives_a_mismatched_one(ws):
    ws.synthetic_dir.mkdir()
    (ws.synthetic_dir / "notes.txt").write_text("mine")
    for extra in ([], ["--force"]):  # not made by generate: never replaced, and the message does not invite --force
        r = generate(ws, "--n", "1", *extra)
        assert_user_error(r, "not made by `augment generate`", "never replaced, even with --force")
        assert (ws.synthetic_dir / "notes.txt").read_text() == "mine"
    (ws.synthetic_dir / "notes.txt").unlink()
    assert generate(ws, "--n", "1").exit_code == 0
    record = ws.synthetic_dir / "generate.json"
    rec = json.loads(record.read_text())
    rec["workspace"]["fingerprint"] = "0" * 64  # as if made for another dataset / split / image format
    record.write_text(json.dumps(rec))
    before = sorted(p.relative_to(ws.synthetic_dir) for p in ws.synthetic_dir.rglob("*"))
    assert_user_error(generate(ws, "--n", "2", "--classes", "a"), "different workspace config", "--force",
                      "moved to")
    assert sorted(p.relative_to(ws.synthetic_dir) for p in ws.synthetic_dir.rglob("*")) == before
    r = generate(ws, "--n", "2", "--classes", "a", "--force")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (ws.synthetic_dir).iterdir() if p.is_dir()) == ["a"]
    (archived,) = (ws.root / "archive").iterdir()  # the replaced folder, whole, with the edited record
    assert archived.name.endswith("-synthetic")
    assert f"moved the replaced {ws.synthetic_dir} to {archived}" in r.stderr  # said by the CLI, not the library
    assert sorted(p.relative_to(archived) for p in archived.rglob("*")) == before
    assert json.loads((archived / "generate.json").read_text())["workspace"]["fingerprint"] == "0" * 64


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_out_force_never_replaces_a_workspace_its_data_runs_or_a_folder_holding_it(ws):
    before = _tree(ws.root)
    for out, fragment in [(ws.root, "is a workspace"),
                          (ws.root / "data" / "test", "lies inside"),
                          (ws.root / "data" / "train" / "new" / "sub", "lies inside"),
                          (ws.root / "runs" / "a", "lies inside"),
                          (ws.root.parent, "contains the workspace")]:
        assert_user_error(generate(ws, "--n", "1", "--out", str(out), "--force"), fragment, "--out")
    assert _tree(ws.root) == before and not (ws.root / "archive").exists()
    assert not (ws.root / "data" / "train" / "new").exists()   # refused before creating anything
    Workspace.load(ws.root)


def test_stale_partial_of_a_killed_generate_is_cleaned(ws, tmp_path):
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = ws.root / f".synthetic.{dead.pid}-x1y2.partial"  # what a SIGKILL mid-generate leaves behind
    (stale / "a").mkdir(parents=True)
    (stale / "a" / "seed000000.png").write_bytes(b"half")
    assert generate(ws, "--n", "1").exit_code == 0
    assert not stale.exists() and (ws.synthetic_dir / "manifest.csv").is_file()


def test_interrupted_generate_leaves_the_output_folder_as_it_was(ws, monkeypatch):
    import augment.generate as gen

    assert generate(ws, "--n", "2").exit_code == 0
    before = _tree(ws.synthetic_dir)
    real = gen.generate_class
    monkeypatch.setattr(gen, "generate_class", lambda ws_, model, cls, *a, **k: (_ for _ in ()).throw(
        KeyboardInterrupt) if cls == "b" else real(ws_, model, cls, *a, **k))
    r = generate(ws, "--n", "3")
    assert r.exit_code != 0 and "Aborted" in r.output   # Ctrl-C while the second class is generated
    assert _tree(ws.synthetic_dir) == before
    assert sorted(p.name for p in ws.root.iterdir()) == ["augment.json", "data", "runs", "splits.csv", "synthetic"]


def test_second_writer_of_a_workspace_is_refused(ws):
    import os

    from augment.workspace_lock import workspace_lock

    with workspace_lock(ws.root, "augment prepare"):
        assert_user_error(generate(ws, "--n", "1"), f"in use by process {os.getpid()}", "wait for it")
    assert not ws.synthetic_dir.exists()
