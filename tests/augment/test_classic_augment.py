"""`augment classic`: seeded audiomentations copies through the workspace's mel mapping, manifest, guards."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from augment.classic import copy_seed
from augment.cli import cli
from augment.io_utils import sha256_file
from augment.workspace import SplitRow, Workspace, write_workspace
from tests.support.workspaces import make_image_workspace


def classic(root: Path, *args: str):
    return CliRunner().invoke(cli, ["classic", "-w", str(root), "-q", *args])


@pytest.fixture()
def ws(demo_workspace, tmp_path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace.root, root, ignore=shutil.ignore_patterns("demo-audio", "results"))
    return root


def manifest(root: Path) -> list[dict[str, str]]:
    with open(root / "augmented" / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_copies_are_deterministic_seeded_per_copy_and_listed(ws, tmp_path):
    res = classic(ws, "--n", "3", "--jobs", "2")
    assert res.exit_code == 0, res.output + res.stderr
    assert res.output.startswith("augmented 12 copies")
    rows = manifest(ws)
    w = Workspace.load(ws)
    sources = {r.source: r for r in w.rows()}
    assert [r["file"] for r in rows] == [f"{c}/aug{k:06d}.png" for c in w.classes for k in range(3)]
    for r in rows:
        src = sources[r["source"]]
        assert src.split in ("train", "val") and src.cls == r["class"] and r["source_sha256"] == src.source_sha256
        ci, k = w.classes.index(r["class"]), int(r["file"][-10:-4])
        assert int(r["seed"]) == copy_seed(0, ci, k)
        assert sha256_file(ws / "augmented" / r["file"]) == r["sha256"]
        assert all(t["name"] in ("pitch_shift", "time_stretch", "gain", "noise") for t in json.loads(r["transforms"]))
    record = json.loads((ws / "augmented" / "classic.json").read_text())
    assert record["format"] == "augment-classic-v1" and record["workspace"]["fingerprint"]
    assert record["config"]["p"] == {"pitch_shift": 0.5, "time_stretch": 0.5, "gain": 0.5, "noise": 0.5}
    # the same command elsewhere gives the same bytes, with any number of workers; another seed gives other copies
    other = tmp_path / "other"
    shutil.copytree(ws, other, ignore=shutil.ignore_patterns("augmented"))
    assert classic(other, "--n", "3", "--jobs", "1").exit_code == 0
    assert (other / "augmented" / "manifest.csv").read_bytes() == (ws / "augmented" / "manifest.csv").read_bytes()
    assert classic(other, "--n", "3", "--seed", "1", "--force").exit_code == 0
    assert [r["sha256"] for r in manifest(other)] != [r["sha256"] for r in rows]
    # --force never deletes what it replaces: the earlier output is moved to archive/ intact
    archived = sorted((other / "archive").glob("*-augmented"))
    assert len(archived) == 1
    assert (archived[0] / "manifest.csv").read_bytes() == (ws / "augmented" / "manifest.csv").read_bytes()


def test_with_every_transform_off_a_copy_is_its_source_image(ws):
    """No transform applied: the copy must be the prepared image of its source, byte for byte (same mel mapping)."""
    res = classic(ws, "--n", "2", "--chain", "gain,noise", "--p", "0")
    assert res.exit_code == 0, res.output + res.stderr
    images = {r.source: r.image for r in Workspace.load(ws).rows()}
    for r in manifest(ws):
        assert json.loads(r["transforms"]) == []
        assert (ws / "augmented" / r["file"]).read_bytes() == (ws / images[r["source"]]).read_bytes()


def test_source_sharing_audio_with_a_test_clip_is_refused(ws):
    w = Workspace.load(ws)
    test_sha = next(r.source_sha256 for r in w.rows() if r.split == "test")
    rows = [SplitRow(r.image, r.cls, r.split, r.source, test_sha if i == 0 else r.source_sha256, r.image_sha256)
            for i, r in enumerate(w.rows())]
    assert rows[0].split == "train"
    write_workspace(ws, dataset=w.dataset_name, options=w.config["dataset"]["options"], kind="audio",
                    classes=w.classes, image=w.config["image"], mel=w.config["mel"], rows=rows)
    res = classic(ws, "--n", "1")
    assert res.exit_code == 2 and "same audio as a test" in res.stderr, res.stderr
    assert not (ws / "augmented").exists()


def test_image_workspace_and_foreign_folders_are_refused(ws, tmp_path):
    img = make_image_workspace(tmp_path / "img")
    res = classic(img.root, "--n", "1")
    assert res.exit_code == 2 and "prepared from images" in res.stderr and "--aug-preset" in res.stderr
    (ws / "augmented").mkdir()
    (ws / "augmented" / "mine.txt").write_text("not yours")
    res = classic(ws, "--n", "1", "--force")
    assert res.exit_code == 2 and "not written by `augment classic`" in res.stderr
    assert (ws / "augmented" / "mine.txt").read_text() == "not yours"
    shutil.rmtree(ws / "augmented")
    assert classic(ws, "--n", "1").exit_code == 0
    res = classic(ws, "--n", "1")
    assert res.exit_code == 2 and "--force" in res.stderr
    for args, message in ((["--chain", "reverb"], "unknown transform reverb"), (["--p", "x=2"], "--p")):
        res = classic(ws, "--n", "1", *args)
        assert res.exit_code == 2 and message in res.stderr and "Traceback" not in res.stderr
