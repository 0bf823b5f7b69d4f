"""Saved classifiers (classify/saved_model.py) and `classify eval --init` (classify/init_from.py): the weights on disk
are the trained ones bit for bit, --init copies them in (head kept for the same classes, new otherwise), and a
source that trained on the target's test items is refused."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import classify.init_from as init_from
import classify.saved_model as saved_model
from augment.workspace import SplitRow, Workspace, write_workspace
from classify.archs import build_model
from classify.cli import cli
from tests.support.workspaces import copy_workspace, make_image_workspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")
COUNTS = {"train": 4, "val": 2, "test": 2}
FAST = ["--arch", "small_cnn", "--seeds", "0", "--input-size", "16", "--lr", "0.05", "--quiet"]


def _eval(root: Path, *args: str):
    return CliRunner().invoke(cli, ["eval", "--workspace", str(root), *FAST, *args])


def _run_dirs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "results").iterdir() if p.name[:5].isdigit())


def _capture(mp: pytest.MonkeyPatch, module, name: str, into: list) -> None:
    """Wrap ``module.name`` so each call's model state (cloned, on the CPU) is appended to ``into``."""
    real = getattr(module, name)

    def spy(folder_or_built, built_or_saved, *args, **kwargs):
        out = real(folder_or_built, built_or_saved, *args, **kwargs)
        built = built_or_saved if name == "save_model" else folder_or_built
        into.append({k: v.detach().cpu().clone() for k, v in built.model.state_dict().items()})
        return out

    mp.setattr(module, name, spy)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """(workspace, run folder, the model state handed to save_model) of one 2-epoch small_cnn run."""
    ws = make_image_workspace(tmp_path_factory.mktemp("src") / "ws", resolution=16, counts=COUNTS)
    states: list = []
    with torch.random.fork_rng(), pytest.MonkeyPatch.context() as mp:
        _capture(mp, saved_model, "save_model", states)
        res = _eval(ws.root, "--epochs", "2")
    assert res.exit_code == 0, res.output
    (run,) = _run_dirs(ws.root)
    return ws, run, states[0]


def test_saved_weights_are_the_trained_ones_bit_for_bit(source):
    ws, run, state = source
    saved = saved_model.load_saved(run)
    assert set(saved.state) == set(state)
    for k, v in state.items():
        assert saved.state[k].dtype == v.dtype and torch.equal(saved.state[k], v), k
    cfg = json.loads((run / "model.json").read_text())
    assert cfg["weights_sha256"] == hashlib.sha256((run / "model.safetensors").read_bytes()).hexdigest()
    assert (cfg["arch"], cfg["classes"], cfg["input_size"]) == ("small_cnn", ["a", "b", "c"], 16)
    assert cfg["normalisation"]["mean"] == [0.5, 0.5, 0.5] and cfg["workspace"]["kind"] == "images"
    # every non-test item of the source workspace is recorded, no test item is
    rows = ws.rows()
    assert {r.image_sha256 for r in rows if r.split != "test"} <= set(cfg["training_sha256"])
    assert not {r.image_sha256 for r in rows if r.split == "test"} & set(cfg["training_sha256"])
    # the file forms name the same pair
    assert saved_model.model_paths(run / "model.safetensors") == saved_model.model_paths(run)


def test_init_same_classes_keeps_the_head(source, tmp_path, monkeypatch):
    ws, run, state = source
    target = copy_workspace(ws, tmp_path / "ws", ignore=["results"])   # same test split: allowed
    loaded: list = []
    _capture(monkeypatch, init_from, "apply_init", loaded)
    res = _eval(target.root, "--epochs", "1", "--init", str(run))
    assert res.exit_code == 0, res.output
    assert "init: backbone and head from" in res.output and "same test split as the source's" in res.output
    assert set(loaded[0]) == set(state) and all(torch.equal(loaded[0][k], v) for k, v in state.items())
    (new,) = _run_dirs(target.root)
    assert "-init-" in new.name
    weights_sha = hashlib.sha256((run / "model.safetensors").read_bytes()).hexdigest()
    metrics = json.loads((new / "metrics.json").read_text())
    assert metrics["init"]["head"] == "kept" and metrics["init"]["weights_sha256"] == weights_sha
    assert metrics["init"]["config_sha256"] == hashlib.sha256((run / "model.json").read_bytes()).hexdigest()
    assert json.loads((new / "run.json").read_text())["config"]["init"]["weights_sha256"] == weights_sha
    # the new model inherits the source's training items (a chain of --init keeps the check exact)
    first = set(json.loads((run / "model.json").read_text())["training_sha256"])
    assert first <= set(json.loads((new / "model.json").read_text())["training_sha256"])


def test_init_other_classes_gets_a_new_head(source, tmp_path, monkeypatch):
    _, run, state = source
    target = make_image_workspace(tmp_path / "ws", classes=("x", "y"), resolution=16, counts=COUNTS, seed=5)
    loaded: list = []
    _capture(monkeypatch, init_from, "apply_init", loaded)
    res = _eval(target.root, "--epochs", "1", "--mode", "freeze", "--init", str(run))
    assert res.exit_code == 0, res.output
    assert "a new head for classes x, y" in res.output and "had another test split" in res.output
    assert "random features" not in res.output          # the frozen backbone is the trained one
    head = ("classifier.1.weight", "classifier.1.bias")
    assert all(torch.equal(loaded[0][k], v) for k, v in state.items() if k not in head)
    assert loaded[0]["classifier.1.weight"].shape == (2, 128)
    (new,) = _run_dirs(target.root)
    assert json.loads((new / "metrics.json").read_text())["init"]["head"] == "new"


def test_same_classes_in_another_order_get_a_new_head(source):
    _, run, state = source
    saved = saved_model.load_saved(run)
    built = build_model("small_cnn", 3)
    fresh = built.model.state_dict()["classifier.1.weight"].clone()
    assert init_from.apply_init(built, saved, ["c", "b", "a"])["head"] == "new"
    after = built.model.state_dict()
    assert torch.equal(after["classifier.1.weight"], fresh)
    assert torch.equal(after["features.0.0.weight"], state["features.0.0.weight"])


def test_init_refuses_another_arch(source, tmp_path):
    ws, run, _ = source
    target = copy_workspace(ws, tmp_path / "ws", ignore=["results"])
    res = CliRunner().invoke(cli, ["eval", "-w", str(target.root), "--arch", "efficientnet_lite0", "--init", str(run)])
    assert res.exit_code == 2 and "pass `--arch small_cnn`" in res.output


def _swapped(src: Workspace, root: Path) -> Workspace:
    """The source's images with train and test exchanged (same bytes and sources, other splits)."""
    swap = {"train": "test", "test": "train", "val": "val"}
    rows = []
    for r in src.rows():
        rel = Path("data", swap[r.split], *Path(r.image).parts[2:])
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src.root / r.image, root / rel)
        rows.append(SplitRow(rel.as_posix(), r.cls, swap[r.split], r.source, r.source_sha256, r.image_sha256))
    return write_workspace(root, dataset="swapped", options={}, kind="images", classes=src.classes,
                           image={"resolution": src.resolution, "channels": 3}, mel=None, rows=rows)


def test_init_refuses_a_source_trained_on_the_target_test_split(source, tmp_path):
    ws, run, _ = source
    target = _swapped(ws, tmp_path / "ws")
    res = _eval(target.root, "--epochs", "1", "--init", str(run))
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --init") and "test items" in lines[0]
    assert not (target.root / "results").exists()


def test_overlap_by_source_audio_alone_is_refused(source, tmp_path):
    """Other image bytes (another mel setting) of the same source clip: still the same clip."""
    _, run, _ = source
    saved = saved_model.load_saved(run)
    target = make_image_workspace(tmp_path / "ws", resolution=16, counts=COUNTS, seed=9)
    test_row = next(r for r in target.rows() if r.split == "test")
    saved.config["training_sha256"] = [test_row.source_sha256]
    with pytest.raises(Exception, match="1 of this workspace's test items") as exc:
        init_from.check_test_overlap(saved, target, run)
    assert exc.value.exit_code == 2
    saved.config["training_sha256"] = ["0" * 64]
    init_from.check_test_overlap(saved, target, run)        # nothing shared: accepted
