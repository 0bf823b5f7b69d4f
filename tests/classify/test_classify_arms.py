"""Image-level arms (mixup, --aug-preset thesis / specaugment) and the augmented/ training sources."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from augment.io_utils import sha256_file
from classify.cli import cli
from classify.image_aug import SpecAugmentPreset, ThesisAugment, mixup_batch
from tests.support.workspaces import make_image_workspace
from tests.classify.test_classify_selection import no_figures  # noqa: F401  (fixture: figures are not under test here)

pytestmark = pytest.mark.usefixtures("one_torch_thread", "no_figures")
FAST = ["--arch", "small_cnn", "--epochs", "1", "--input-size", "32", "--lr", "0.05", "--seeds", "0", "--quiet"]


def test_thesis_preset_parameters_act_as_documented():
    x = torch.full((1, 64, 64), 0.5).expand(3, -1, -1)
    assert torch.equal(ThesisAugment(0, 0, 0, 0)(x), x)                        # every knob at 0: identity
    torch.manual_seed(0)
    y = ThesisAugment(rotation_deg=0, brightness=0, contrast=0, noise_sd=0.02)(x)
    assert torch.equal(y[0], y[1]) and torch.equal(y[0], y[2])                 # grey stays grey
    assert float((y - x)[0].std()) == pytest.approx(0.02, rel=0.1)
    torch.manual_seed(0)
    z = ThesisAugment(rotation_deg=0, brightness=0.1, contrast=0, noise_sd=0)(x)
    assert float((z - x).abs().max()) <= 0.1 and float((z - x).std()) < 1e-6   # one uniform shift per image
    ramp = torch.linspace(0, 1, 64).expand(64, 64)[None]
    torch.manual_seed(1)
    r = ThesisAugment(rotation_deg=5, brightness=0, contrast=0, noise_sd=0)(ramp)
    assert 0 < float((r - ramp).abs().mean()) < 0.1                            # a small rotation, not a flip


def test_specaugment_preset_masks_at_most_the_papers_widths():
    torch.manual_seed(0)
    for _ in range(20):
        z = SpecAugmentPreset(time_fraction=0.1)(torch.ones(3, 80, 100))
        zero_rows = int((z[0] == 0).all(1).sum())
        zero_cols = int((z[0] == 0).all(0).sum())
        assert zero_rows <= 27 and zero_cols <= 10


def test_mixup_batch_is_the_convex_combination_with_a_seeded_pairing():
    x = torch.arange(12.0).view(4, 3)
    y = torch.tensor([0, 1, 2, 3])
    mixed, y_b, lam = mixup_batch(x, y, 0.4, np.random.default_rng(5))
    ref = np.random.default_rng(5)
    lam_ref = ref.beta(0.4, 0.4)
    perm = ref.permutation(4)
    assert lam == pytest.approx(lam_ref) and torch.equal(y_b, y[perm])
    assert torch.allclose(mixed, lam_ref * x + (1 - lam_ref) * x[perm])


def _first_batches(ws_root: Path, extra: list[str], seed: int, monkeypatch) -> list[torch.Tensor]:
    """The training inputs of the first epoch's batches (after augmentation and mixup) of one run."""
    import classify.trainer as trainer

    seen: list[torch.Tensor] = []
    orig_build = trainer.set_train_mode

    def record(built, training):
        if training and not getattr(built.model, "_hooked", False):
            built.model.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().clone())
                                                  if m.training else None)
            built.model._hooked = True
        return orig_build(built, training)

    monkeypatch.setattr(trainer, "set_train_mode", record)
    res = CliRunner().invoke(cli, ["eval", "-w", str(ws_root), *FAST[:-3], "--seeds", str(seed), "--quiet",
                                   "--batch-size", "8", *extra], catch_exceptions=False)
    assert res.exit_code == 0, res.output + res.stderr
    return seen[:3]


@pytest.fixture(scope="module")
def arm_ws(tmp_path_factory):
    return make_image_workspace(tmp_path_factory.mktemp("arms") / "ws")


_PLAIN: list = []


@pytest.mark.parametrize("extra", [["--mixup", "0.4"], ["--aug-preset", "thesis"], ["--aug-preset", "specaugment"]])
def test_each_arm_changes_training_inputs_deterministically_per_seed(arm_ws, tmp_path, monkeypatch, extra):
    ws = arm_ws
    if not _PLAIN:
        _PLAIN.append(_first_batches(ws.root, [], 0, monkeypatch))
    plain = _PLAIN[0]
    shutil.rmtree(ws.root / "results", ignore_errors=True)
    a = _first_batches(ws.root, extra, 0, monkeypatch)
    b = _first_batches(ws.root, extra, 0, monkeypatch)
    assert all(torch.equal(u, v) for u, v in zip(a, b))                  # same seed: the same inputs
    assert not all(torch.equal(u, v) for u, v in zip(a, plain))          # the arm changed them
    m = json.loads(next((ws.root / "results").glob("*seed0/metrics.json")).read_text())
    assert m["augmentation"]["preset"] == (extra[1] if extra[0] == "--aug-preset" else "none")
    assert m["config"]["cached_features"] is False and "~" in m["arm"]


# ------------------------------------------------------------------ augmented/ as a training source
def add_augmented(root: Path, per_class: int, classes=("a", "b", "c"), source_sha: str | None = None) -> None:
    """An augmented/ folder as `augment classic` writes it (class folders + manifest)."""
    rng = np.random.default_rng(2)
    rows = []
    for ci, cls in enumerate(classes):
        for k in range(per_class):
            g = np.clip(70 + 50 * ci + rng.normal(0, 10, (32, 32)), 0, 255).astype(np.uint8)
            path = root / "augmented" / cls / f"aug{k:06d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.stack([g] * 3, -1), "RGB").save(path)
            rows.append({"file": f"{cls}/{path.name}", "class": cls, "source": f"{cls}/000.png",
                         "source_sha256": source_sha or "0" * 64, "transforms": "[]", "seed": k,
                         "sha256": sha256_file(path)})
    with open(root / "augmented" / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def test_augmented_arms_use_the_synthetic_rules(tmp_path):
    ws = make_image_workspace(tmp_path / "ws")
    add_augmented(ws.root, per_class=10)
    from tests.classify.test_classify_eval import add_synthetic

    add_synthetic(ws.root, per_class=5)
    counts = {}
    for train in ("augmented", "real+augmented", "real+synthetic+augmented"):
        res = CliRunner().invoke(cli, ["eval", "-w", str(ws.root), "--train", train, "--synthetic-per-class", "5",
                                       *FAST], catch_exceptions=False)
        assert res.exit_code == 0, res.output + res.stderr
        m = json.loads(next((ws.root / "results").glob(f"*-{train}-small_cnn-*/metrics.json")).read_text())
        counts[train] = (m["n_train"], m["n_val"])
        assert m["data"]["augmented_used"]["a"] == {"train": 4, "val": 1} and m["data"]["augmented_manifest_sha256"]
    # 5 per class (the same option as synthetic/), 80/20; real val (6) kept whenever real data is in the arm
    assert counts == {"augmented": (12, 3), "real+augmented": (18 + 12, 6), "real+synthetic+augmented": (18 + 24, 6)}


def test_copies_of_real_val_clips_are_left_out_where_real_val_selects(tmp_path):
    ws = make_image_workspace(tmp_path / "ws")
    val_sha = next(r.source_sha256 for r in ws.rows() if r.split == "val")
    add_augmented(ws.root, per_class=5, source_sha=val_sha)         # every copy rendered from one real val clip
    res = CliRunner().invoke(cli, ["eval", "-w", str(ws.root), "--train", "real+augmented", *FAST],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output + res.stderr
    m = json.loads(next((ws.root / "results").glob("*/metrics.json")).read_text())
    assert (m["n_train"], m["n_val"]) == (18, 6) and m["data"]["augmented_left_out_val_sources"] == 12


def test_augmented_copy_of_a_test_clip_is_refused(tmp_path):
    ws = make_image_workspace(tmp_path / "ws")
    test_row = next(r for r in ws.rows() if r.split == "test")
    add_augmented(ws.root, per_class=3, source_sha=test_row.source_sha256)
    res = CliRunner().invoke(cli, ["eval", "-w", str(ws.root), "--train", "real+augmented", *FAST])
    assert res.exit_code == 2 and "rendered from a test clip" in res.stderr
    shutil.rmtree(ws.root / "augmented")
    add_augmented(ws.root, per_class=3)
    shutil.copy(ws.root / test_row.image, ws.root / "augmented" / "a" / "aug000009.png")
    res = CliRunner().invoke(cli, ["eval", "-w", str(ws.root), "--train", "augmented", *FAST])
    assert res.exit_code == 2 and "test" in res.stderr and "Traceback" not in res.stderr
    shutil.rmtree(ws.root / "augmented")
    res = CliRunner().invoke(cli, ["eval", "-w", str(ws.root), "--train", "augmented", *FAST])
    assert res.exit_code == 2 and "augment classic" in res.stderr
