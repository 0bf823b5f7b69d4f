"""The leak guard, branch by branch, through each command that trains: `augment train`, `classify eval`,
`classify baseline`. Each leaky workspace is built by hand, so only the branch under test can catch it."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from PIL import Image

from augment.io_utils import sha256_file
from augment.workspace import SplitRow, Workspace, write_workspace

RES = 16
SR = 8000
COUNTS = {"train": 3, "val": 1, "test": 2}
CLASSES = ("a", "b")
GROUPS = {"by": "^(.+?)_", "kind": "regex"}


def _image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    g = np.random.default_rng(seed).integers(0, 256, (RES, RES), dtype=np.uint8)
    Image.fromarray(np.stack([g] * 3, -1), "RGB").save(path)


def _audio(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.random.default_rng(seed).normal(0, 0.3, SR // 4).astype(np.float32), SR)


def _write(root: Path, rows: list[SplitRow], groups: dict | None = None) -> None:
    write_workspace(root, dataset="leaky", options={"audio_dir": str(root.parent / "audio")}, kind="audio",
                    classes=list(CLASSES), image={"resolution": RES, "channels": 3},
                    mel={"sr": SR, "offset": 0.0, "duration": 0.25}, rows=rows,
                    extra={"groups": groups} if groups else None)


def _row(root: Path, image: str, cls: str, split: str, source: str) -> SplitRow:
    audio = root.parent / "audio" / source
    return SplitRow(image, cls, split, source, sha256_file(audio), sha256_file(root / image))


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """Random 16 px images and random-noise source clips: song<k>_<n>.wav, groups song<k> (no group in two splits)."""
    root = tmp_path_factory.mktemp("leak") / "ws"
    rows, seed = [], 0
    for cls in CLASSES:
        for split, n in COUNTS.items():
            for k in range(n):
                seed += 1
                name = f"{cls}_{split}{k}"
                _image(root / "data" / split / cls / f"{name}.png", seed)
                _audio(root.parent / "audio" / cls / f"song{seed}_{k}.wav", seed)
                rows.append(_row(root, f"data/{split}/{cls}/{name}.png", cls, split, f"{cls}/song{seed}_{k}.wav"))
    _write(root, rows, {**GROUPS, "of": {r.source: r.source.split("/")[1].split("_")[0] for r in rows}})
    return root


def _copy(clean: Path, tmp_path: Path) -> tuple[Path, Workspace]:
    shutil.copytree(clean.parent, tmp_path / "w")
    root = tmp_path / "w" / "ws"
    return root, Workspace.load(root)


def _first(ws: Workspace, split: str, cls: str = "a") -> SplitRow:
    return next(r for r in ws.rows() if r.split == split and r.cls == cls)


def leak_path(root: Path, ws: Workspace) -> None:
    """A train row whose image is a symlink into data/test (resolved, the path lies inside the test split)."""
    link = root / "data" / "train" / "a" / "link.png"
    link.symlink_to(root / _first(ws, "test").image)
    _audio(root.parent / "audio" / "a" / "link_0.wav", 999)
    _write(root, ws.rows() + [_row(root, "data/train/a/link.png", "a", "train", "a/link_0.wav")],
           ws.config["groups"])


def leak_source(root: Path, ws: Workspace) -> None:
    """A train row whose source audio has the same bytes as a test clip's (its image is new)."""
    test = _first(ws, "test")
    shutil.copy(root.parent / "audio" / test.source, root.parent / "audio" / "a" / "dup_0.wav")
    _image(root / "data" / "train" / "a" / "dup.png", 998)
    _write(root, ws.rows() + [_row(root, "data/train/a/dup.png", "a", "train", "a/dup_0.wav")],
           ws.config["groups"])


def leak_group(root: Path, ws: Workspace) -> None:
    """A train row of the same group (song) as a test clip; new image, new audio."""
    group = ws.config["groups"]["of"][_first(ws, "test").source]
    _image(root / "data" / "train" / "a" / "same_song.png", 997)
    _audio(root.parent / "audio" / "a" / f"{group}_9.wav", 997)
    row = _row(root, "data/train/a/same_song.png", "a", "train", f"a/{group}_9.wav")
    groups = dict(ws.config["groups"])
    groups["of"] = {**groups["of"], row.source: group}
    _write(root, ws.rows() + [row], groups)


def leak_bytes(root: Path, ws: Workspace) -> None:
    """A test PNG copied over a train PNG listed in the manifest (the manifest still has the old hash)."""
    shutil.copy(root / _first(ws, "test").image, root / _first(ws, "train").image)


def leak_content(root: Path, ws: Workspace) -> None:
    """A train PNG replaced by the mirrored test image with one pixel changed (new bytes, same content)."""
    with Image.open(root / _first(ws, "test").image) as im:
        a = np.asarray(im.transpose(Image.FLIP_LEFT_RIGHT)).copy()
    a[3, 5] = (a[3, 5].astype(int) + 40) % 256
    Image.fromarray(a, "RGB").save(root / _first(ws, "train").image)


LEAKS = {"path": (leak_path, "is in the test split"),
         "source": (leak_source, "comes from the same audio as a test file"),
         "group": (leak_group, "belongs to group"),
         "bytes": (leak_bytes, "is identical to a test file"),
         "content": (leak_content, "is a near-copy of test image")}


def augment_train(root: Path):
    from augment.cli import cli

    return CliRunner().invoke(cli, ["train", "-w", str(root), "--class", "a", "--cfg", "tiny", "--from", "scratch",
                                    "--device", "cpu", "--metrics", "none", "--dry-run"])


def classify_eval(root: Path):
    from classify.cli import cli

    return CliRunner().invoke(cli, ["eval", "-w", str(root), "--train", "real", "--seeds", "0", "--arch",
                                    "small_cnn", "--epochs", "1", "--input-size", "32", "--quiet"])


def classify_baseline(root: Path):
    from classify.cli import cli

    return CliRunner().invoke(cli, ["baseline", "-w", str(root), "--models", "knn", "--sr", str(SR), "--jobs", "1",
                                    "--folds", "2", "--quiet"])


COMMANDS = {"augment train": augment_train, "classify eval": classify_eval, "classify baseline": classify_baseline}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("leak", LEAKS)
def test_each_leak_is_refused_by_each_command_that_trains(clean, tmp_path, leak, command):
    root, ws = _copy(clean, tmp_path)
    make, message = LEAKS[leak]
    make(root, ws)
    res = COMMANDS[command](root)
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output, res.output
    assert not (root / "results").exists() and not (root / "runs").exists()


def test_the_clean_workspace_passes_the_guard(clean):
    """The control: nothing in the hand-built workspace trips a branch (so each refusal above is the leak's)."""
    ws = Workspace.load(clean)
    paths = ws.images(["train", "val"])
    checked = ws.guard_training_inputs(paths)
    assert list(checked) == paths and checked.sha256 == [sha256_file(p) for p in paths]
