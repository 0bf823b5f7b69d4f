"""`classify eval` with too few or missing fakes says what is true and which command works (issue 11 §8)."""
from __future__ import annotations

import shutil
import warnings

import pytest

from augment.errors import UserError
from classify.data import build_splits
from tests.support.workspaces import make_image_workspace


@pytest.fixture()
def ws(tmp_path):
    ws = make_image_workspace(tmp_path / "ws", ("a", "b"), counts={"train": 3, "val": 1, "test": 1})
    for cls, seed in (("a", 1), ("b", 2)):
        src = make_image_workspace(tmp_path / f"fakes{cls}", ("a", "b"), counts={"train": 3, "val": 1, "test": 1},
                                   seed=seed)
        (ws.synthetic_dir / cls).mkdir(parents=True)
        for k, p in enumerate(src.images("train", cls)):
            shutil.copy(p, ws.synthetic_dir / cls / f"seed{k:06d}.png")
    return ws


def test_missing_fakes_of_an_untrained_class_suggest_train_then_generate(ws):
    shutil.rmtree(ws.synthetic_dir / "b")
    with pytest.raises(UserError) as err:
        build_splits(ws, "real+synthetic")
    msg = str(err.value)
    train = msg.index(f"augment train --workspace {ws.root} --class b")
    assert msg.index(f"augment generate --workspace {ws.root} --class b --n 1000") > train
    snapshot = ws.runs_dir("b") / "00000-tiny" / "network-snapshot-000004.safetensors"
    snapshot.parent.mkdir(parents=True)
    snapshot.write_bytes(b"")
    with pytest.raises(UserError) as err:  # with a trained model, generating is enough
        build_splits(ws, "real+synthetic")
    assert "augment train" not in str(err.value) and "augment generate --workspace" in str(err.value)


def test_few_fakes_warning_says_validation_is_real_with_real_data(ws):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splits = build_splits(ws, "real+synthetic", synthetic_per_class=10)
    text = " ".join(str(w.message) for w in caught)
    assert "only 3 synthetic images for class a" in text and "val is real" in text
    assert all("/synthetic/" not in str(p) for p, _ in splits.val)
