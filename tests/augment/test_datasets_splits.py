"""Shared split logic and the generic dataset kinds (folder, csv, images)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.model_selection import train_test_split

from augment.datasets import build_dataset
from augment.datasets.base import Source
from augment.datasets.splits import SplitPlan, assign_splits, draw, parse_test_size
from augment.errors import UserError
from augment.workspace import Workspace


def _sources(counts: dict[str, int]) -> dict[str, list[Source]]:
    return {c: [Source(Path(f"/x/{c}/{k:03d}.wav"), f"{c}/{k:03d}.wav", c) for k in range(n)]
            for c, n in counts.items()}


def _split_counts(assigned) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for cls, pairs in assigned.items():
        for _, split in pairs:
            out.setdefault(cls, {}).setdefault(split, 0)
            out[cls][split] += 1
    return out


def test_draw_is_seeded_and_order_independent_of_other_classes():
    items = list(range(50))
    a, rest = draw(items, 10, 0)
    assert a == draw(items, 10, 0)[0] and sorted(a + rest) == items and len(set(a)) == 10
    assert a != draw(items, 10, 1)[0]
    # adding a class never changes another class's split
    one = assign_splits(_sources({"a": 30}), SplitPlan(test=5))
    two = assign_splits(_sources({"a": 30, "b": 12}), SplitPlan(test=5))
    assert one["a"] == two["a"]


def test_train_val_is_sklearn_train_test_split_random_state_42():
    by_class = _sources({"a": 17})
    assigned = assign_splits(by_class, SplitPlan(test=4))
    test = [s for s, sp in assigned["a"] if sp == "test"]
    pool = [s for s in sorted(by_class["a"], key=lambda s: s.name) if s not in test]
    train, val = train_test_split(pool, test_size=0.2, random_state=42)
    assert {s for s, sp in assigned["a"] if sp == "train"} == set(train)
    assert {s for s, sp in assigned["a"] if sp == "val"} == set(val)
    assert _split_counts(assigned)["a"] == {"test": 4, "train": 10, "val": 3}


def test_pool_and_fraction_and_too_few():
    assigned = assign_splits(_sources({"a": 60, "b": 60}), SplitPlan(test=40, pool={"a": 11, "b": 15}))
    counts = _split_counts(assigned)
    assert counts["a"]["train"] + counts["a"]["val"] == 11 and counts["b"]["train"] + counts["b"]["val"] == 15
    assert _split_counts(assign_splits(_sources({"a": 10}), SplitPlan(test=0.25)))["a"]["test"] == 3  # ceil(2.5)
    with pytest.raises(UserError, match=r"class 'a' has 41 usable clip\(s\) but .* needs 42"):
        assign_splits(_sources({"a": 41}), SplitPlan(test=40))
    with pytest.raises(UserError, match="4Q-small protocol needs 51"):
        assign_splits(_sources({"a": 50}), SplitPlan(test=40, pool={"a": 11}, protocol="4Q-small"))
    for bad in ("0", "-3", "1.5", "abc"):
        with pytest.raises(UserError, match="--test-size"):
            parse_test_size(bad, 0.2)
    with pytest.raises(UserError, match="--val-size"):
        SplitPlan(val_fraction=1.0)


def test_fixed_splits_kept_and_val_carved_from_train():
    src = [Source(Path(f"/x/{k}.wav"), f"{k}.wav", "a", "test" if k < 3 else "train") for k in range(13)]
    counts = _split_counts(assign_splits({"a": src}, SplitPlan()))
    assert counts["a"] == {"test": 3, "train": 8, "val": 2}
    src[3] = Source(src[3].path, src[3].name, "a", "val")
    assert _split_counts(assign_splits({"a": src}, SplitPlan()))["a"] == {"test": 3, "train": 9, "val": 1}


def test_csv_dataset_with_and_without_split(tmp_path, write_wav, augment_cli):
    lines = ["path,label,split"]
    for k in range(8):
        for cls in ("x", "y"):
            write_wav(tmp_path / "clips" / f"{cls}{k}.wav", 0.3, seed=k + (100 if cls == "y" else 0))
            lines.append(f"clips/{cls}{k}.wav,{cls},{'test' if k < 2 else 'train'}")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    r = augment_cli("prepare", "--dataset", "csv", "--manifest", tmp_path / "m.csv", "--duration", 0.3,
                    "--resolution", 8, "-j", 1, "-w", tmp_path / "ws")
    assert r.exit_code == 0, r.output
    ws = Workspace.load(tmp_path / "ws")
    assert ws.config["splits"]["counts"]["test"] == {"x": 2, "y": 2}
    assert {r.source for r in ws.rows() if r.split == "test"} == {"clips/x0.wav", "clips/x1.wav", "clips/y0.wav",
                                                                 "clips/y1.wav"}
    # without the split column: generic 0.2 test fraction
    (tmp_path / "n.csv").write_text("\n".join(",".join(l.split(",")[:2]) for l in lines) + "\n")
    spec = build_dataset("csv", {"manifest": tmp_path / "n.csv"})
    assert spec.classes == ["x", "y"] and all(s.split is None for s in spec.sources) and spec.plan.test == 0.2
    (tmp_path / "slash.csv").write_text("path,label\nclips/x0.wav,a/b\n")
    r = augment_cli("prepare", "--dataset", "csv", "--manifest", tmp_path / "slash.csv", "-w", tmp_path / "ws2")
    assert r.exit_code == 2 and "class name 'a/b' cannot be a folder name" in r.stderr
    (tmp_path / "bad.csv").write_text("file,label\nclips/x0.wav,x\n")
    r = augment_cli("prepare", "--dataset", "csv", "--manifest", tmp_path / "bad.csv", "-w", tmp_path / "ws2")
    assert r.exit_code == 2 and "missing column(s) path" in r.stderr


def test_images_dataset_grayscale_resized(tmp_path, augment_cli):
    rng = np.random.default_rng(0)
    for cls in ("angry", "happy"):
        for k in range(5):
            arr = rng.integers(0, 256, (48, 48), dtype=np.uint8)
            (tmp_path / "faces" / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr, "L").save(tmp_path / "faces" / cls / f"{k}.png")
    (tmp_path / "faces" / "happy" / "readme.txt").write_text("hello")
    r = augment_cli("prepare", "--dataset", "images", "--image-dir", tmp_path / "faces", "--test-size", 1,
                    "--resolution", 32, "-w", tmp_path / "ws")
    assert r.exit_code == 0, r.output
    assert "happy/readme.txt: not an image file; skipped" in r.stderr
    ws = Workspace.load(tmp_path / "ws")
    assert ws.config["kind"] == "images" and ws.config["mel"] is None
    img = Image.open(ws.images("train", "angry")[0])
    assert img.size == (32, 32) and img.mode == "RGB"
    r = augment_cli("prepare", "--dataset", "images", "--image-dir", tmp_path / "faces", "--sr", 16000,
                    "-w", tmp_path / "ws3")
    assert r.exit_code == 2 and "audio datasets only" in r.stderr


def _grouped(counts: dict[str, int], per_group: int) -> tuple[dict[str, list[Source]], dict[Source, str]]:
    by_class = _sources(counts)
    groups = {s: f"{s.cls}{i // per_group}" for items in by_class.values() for i, s in enumerate(items)}
    return by_class, groups


def test_group_splits_keep_groups_whole_are_seeded_and_stratified():
    from augment.datasets.splits import assign_group_splits

    by_class, groups = _grouped({"a": 40, "b": 24}, per_group=2)
    plan = SplitPlan(test=0.25)
    out, excluded = assign_group_splits(by_class, plan, groups)
    assert excluded == []
    split_of: dict[str, set[str]] = {}
    for pairs in out.values():
        for s, split in pairs:
            split_of.setdefault(groups[s], set()).add(split)
    assert all(len(v) == 1 for v in split_of.values())
    counts = _split_counts(out)
    # pairs of clips: the test target (10 and 6 clips, ceil(0.25 n)) is met exactly; val ceil(0.2 * pool)
    assert counts["a"]["test"] == 10 and counts["b"]["test"] == 6
    assert counts["a"]["val"] == 6 and counts["b"]["val"] == 4
    # deterministic and independent of the input order
    shuffled = {c: items[::-1] for c, items in by_class.items()}
    assert assign_group_splits(shuffled, plan, groups)[0] == out
    assert assign_group_splits(by_class, SplitPlan(test=0.25, test_seed=1), groups)[0] != out


def test_group_splits_refuse_a_class_held_by_one_group():
    from augment.datasets.splits import assign_group_splits

    by_class, groups = _grouped({"a": 6, "b": 6}, per_group=6)
    with pytest.raises(UserError, match="groups are too large"):
        assign_group_splits(by_class, SplitPlan(test=0.25), groups)


def test_group_splits_draw_a_training_pool_of_whole_groups():
    from augment.datasets.splits import assign_group_splits

    by_class, groups = _grouped({"a": 30, "b": 30}, per_group=3)
    out, _ = assign_group_splits(by_class, SplitPlan(test=6, pool={"a": 9, "b": 12}), groups)
    counts = _split_counts(out)
    assert {c: counts[c]["test"] for c in "ab"} == {"a": 6, "b": 6}
    assert {c: counts[c]["train"] + counts[c]["val"] for c in "ab"} == {"a": 9, "b": 12}   # unused groups left out
    whole = {}
    for pairs in out.values():
        for s, split in pairs:
            whole.setdefault(groups[s], set()).add(split)
    assert all(len(v) == 1 for v in whole.values())
