"""The train/val/test assignment against its written recipe (augment/datasets/splits.py, docs/protocols.md), with
numpy's and scikit-learn's own functions as the truth, and hand-checked numbers where a seed is documented:

per class, clips sorted by name; test = the first ``n_test`` of ``default_rng(test_seed).permutation``; an optional
pool the same with ``pool_seed`` from the rest; train/val = ``train_test_split(pool, test_size=val_fraction,
random_state=val_seed)``. A wrong seed, generator, rounding or order changes which clips a model is tested on.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from augment.datasets.base import Source
from augment.datasets.splits import SplitPlan, assign_splits, draw, parse_test_size
from augment.errors import UserError


def _sources(cls: str, n: int, splits: list[str] | None = None) -> list[Source]:
    order = [(7 * k) % n for k in range(n)]  # not in name order: the recipe sorts them first
    return [Source(Path(f"/x/{cls}/{k:02d}.wav"), f"{cls}/{k:02d}.wav", cls, splits[k] if splits else None)
            for k in order]


def _recipe(items: list[Source], n_test: int, plan: SplitPlan, pool: int | None = None) -> list[tuple[Source, str]]:
    items = sorted(items, key=lambda s: s.name)
    pick = set(np.random.default_rng(plan.test_seed).permutation(len(items))[:n_test].tolist())
    test = [s for i, s in enumerate(items) if i in pick]
    rest = [s for i, s in enumerate(items) if i not in pick]
    if pool is not None:
        keep = set(np.random.default_rng(plan.pool_seed).permutation(len(rest))[:pool].tolist())
        rest = [s for i, s in enumerate(rest) if i in keep]
    train, val = train_test_split(rest, test_size=plan.val_fraction, random_state=plan.val_seed)
    return [(s, "test") for s in test] + [(s, "train") for s in train] + [(s, "val") for s in val]


def test_documented_seeds_give_the_hand_checked_split():
    # default_rng(0).permutation(10) = [4, 6, 2, 7, 3, 5, 9, 0, 8, 1]; train_test_split(range(8), 0.2, 42) =
    # ([0, 7, 2, 4, 3, 6], [1, 5])
    chosen, rest = draw(list("abcdefghij"), 3, 0)
    assert chosen == ["c", "e", "g"] and rest == list("abdfhij")
    got = assign_splits({"q": _sources("q", 10)}, SplitPlan(test=2))["q"]
    names = [(s.name[-6:-4], split) for s, split in got]
    # test: sorted positions 4, 6; the 8 others (00 01 02 03 05 07 08 09) split as train [0,7,2,4,3,6], val [1,5]
    assert names == [("04", "test"), ("06", "test"), ("00", "train"), ("09", "train"), ("02", "train"),
                     ("05", "train"), ("03", "train"), ("08", "train"), ("01", "val"), ("07", "val")]


@pytest.mark.parametrize("test,n,n_test", [(0.3, 11, 4), (0.25, 12, 3), (5, 13, 5), (1.0, 9, 1)])
def test_split_is_the_recipe(test, n, n_test):
    plan = SplitPlan(test=test, val_fraction=0.25, test_seed=5, val_seed=9)
    assert math.ceil(test * n) == n_test or float(test).is_integer()
    by_class = {"b": _sources("b", n), "a": _sources("a", 8)}
    got = assign_splits(by_class, plan)
    assert list(got) == ["b", "a"]
    assert got["b"] == _recipe(by_class["b"], n_test, plan)
    alone = assign_splits({"b": by_class["b"]}, plan)  # another class never changes this one
    assert alone["b"] == got["b"]


def test_pool_is_drawn_from_the_non_test_clips_with_its_own_seed():
    plan = SplitPlan(test=4, pool={"a": 6}, pool_seed=11, val_seed=3)
    items = _sources("a", 15)
    got = assign_splits({"a": items}, plan)["a"]
    assert got == _recipe(items, 4, plan, pool=6)
    assert len(got) == 10  # the 5 clips outside test and pool are left out


def test_user_splits_are_kept_and_val_is_carved_from_train_only_without_val_rows():
    labels = ["test", "train", "train", "val", "train", "test", "train", "train", "val", "train"]
    items = _sources("a", 10, labels)
    got = assign_splits({"a": items}, SplitPlan())["a"]
    assert {(s.name, sp) for s, sp in got} == {(s.name, s.split) for s in items}
    no_val = _sources("a", 10, [x if x != "val" else "train" for x in labels])
    got = assign_splits({"a": no_val}, SplitPlan(val_fraction=0.3, val_seed=4))["a"]
    pool = sorted((s for s in no_val if s.split != "test"), key=lambda s: s.name)
    train, val = train_test_split(pool, test_size=0.3, random_state=4)
    test = sorted((s for s in no_val if s.split == "test"), key=lambda s: s.name)
    assert got == [(s, "test") for s in test] + [(s, "train") for s in train] + [(s, "val") for s in val]


def test_too_few_clips_is_refused_exactly_at_the_boundary():
    assign_splits({"a": _sources("a", 6)}, SplitPlan(test=4))  # 4 test + 2 train/val: enough
    with pytest.raises(UserError, match=r"class 'a' has 5 usable clip\(s\) but this split needs 6 \(4 test \+ at "
                                        r"least 2 for train/val\); add clips, or lower --test-size"):
        assign_splits({"a": _sources("a", 5)}, SplitPlan(test=4))
    with pytest.raises(UserError, match=r"class 'b' has 0 clip\(s\) left for train/val; at least 2 are needed — add "
                                        "clips or lower --test-size"):  # a class the pool does not list gets none
        assign_splits({"a": _sources("a", 7), "b": _sources("b", 7)}, SplitPlan(test=4, pool={"a": 3}))
    with pytest.raises(UserError, match=r"class 'a' has 1 clip\(s\) left for train/val"):  # user split, 1 train row
        assign_splits({"a": _sources("a", 3, ["test", "test", "train"])}, SplitPlan())
    assign_splits({"a": _sources("a", 7)}, SplitPlan(test=4, pool={"a": 3}))
    with pytest.raises(UserError, match=r"the 4Q-small protocol needs 7 \(4 test \+ 3 training pool\)"):
        assign_splits({"a": _sources("a", 6)}, SplitPlan(test=4, pool={"a": 3}, protocol="4Q-small"))
    with pytest.raises(UserError, match="at least one test and one train row"):
        assign_splits({"a": _sources("a", 3, ["train"] * 3)}, SplitPlan())


@pytest.mark.parametrize("text,value", [(None, 0.2), ("40", 40.0), ("0.25", 0.25), ("1", 1.0)])
def test_test_size_accepts_counts_and_fractions(text, value):
    assert parse_test_size(text, 0.2) == value


@pytest.mark.parametrize("text", ["0", "1.5", "-3", "abc", "1e400", "nan"])
def test_test_size_refuses_the_rest(text):
    with pytest.raises(UserError, match="--test-size must be a whole number"):
        parse_test_size(text, 0.2)


def test_val_fraction_must_be_a_fraction():
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(UserError, match="--val-size must be a fraction"):
            SplitPlan(val_fraction=bad)


# ------------------------------------------------------------------------------------------ --group-by splits
def _spec_greedy(names, comp, target, left, min_left, seed):
    """The docstring's rule: visit the groups in default_rng(seed).permutation order of their sorted names and take
    one while every class it holds is below its target and keeps at least ``min_left`` clips outside."""
    taken, have = [], {c: 0 for c in left}
    for i in np.random.default_rng(seed).permutation(len(names)):
        g = names[i]
        if all(have[c] < target.get(c, 0) and left[c] - n >= min_left for c, n in comp[g].items()):
            taken.append(g)
            for c, n in comp[g].items():
                have[c] += n
                left[c] -= n
    return taken


def _spec_group_splits(by_class, plan, groups):
    members = {}
    for items in by_class.values():
        for s in sorted(items, key=lambda s: s.name):
            members.setdefault(groups[s], []).append(s)
    names = sorted(members)
    comp = {g: {c: sum(s.cls == c for s in members[g]) for c in by_class if any(s.cls == c for s in members[g])}
            for g in names}
    sizes = {c: len(v) for c, v in by_class.items()}
    left = dict(sizes)
    test = _spec_greedy(names, comp, {c: plan.n_test(n) for c, n in sizes.items()}, left, 2, plan.test_seed)
    rest = [g for g in names if g not in test]
    if plan.pool is not None:
        pool = _spec_greedy(rest, comp, dict(plan.pool), dict(left), 0, plan.pool_seed)
        rest = [g for g in rest if g in pool]
    pool_size = {c: sum(comp[g].get(c, 0) for g in rest) for c in by_class}
    val = _spec_greedy(rest, comp, {c: math.ceil(plan.val_fraction * n) for c, n in pool_size.items()},
                       dict(pool_size), 1, plan.val_seed)
    split_of = {**{g: "test" for g in test}, **{g: "val" for g in val},
                **{g: "train" for g in rest if g not in val}}
    order = ("test", "train", "val")
    return {c: sorted(((s, split_of[groups[s]]) for s in by_class[c] if groups[s] in split_of),
                      key=lambda t: (order.index(t[1]), t[0].name)) for c in by_class}


def _songs(sizes: dict[str, list[int]], shared: int = 0):
    """Clips of songs (groups) of the given sizes per class; the first ``shared`` songs hold clips of every class."""
    by_class, groups = {}, {}
    for c, song_sizes in sizes.items():
        by_class[c] = []
        for j, n in enumerate(song_sizes):
            song = f"song{j:02d}" if j < shared else f"{c}-song{j:02d}"
            for k in range(n):
                s = Source(Path(f"/x/{c}/{song}-{k}.wav"), f"{c}/{song}-{k}.wav", c)
                by_class[c].append(s)
                groups[s] = song
    return by_class, groups


@pytest.mark.parametrize("plan", [SplitPlan(test=0.25, val_fraction=0.25, test_seed=3, val_seed=5),
                                  SplitPlan(test=3, test_seed=0, val_seed=42),
                                  SplitPlan(test=2, pool={"a": 4, "b": 5}, pool_seed=7, val_seed=1),
                                  SplitPlan(test=2, pool={"a": 13, "b": 10}, pool_seed=2)])  # pool: all that is left
def test_group_splits_follow_the_written_rule_and_keep_songs_whole(plan):
    from augment.datasets.splits import assign_group_splits

    by_class, groups = _songs({"a": [1, 2, 3, 1, 2, 2, 1, 3], "b": [2, 1, 1, 3, 2, 2, 1]}, shared=2)
    got, excluded = assign_group_splits(by_class, plan, groups)
    assert excluded == [] and got == _spec_group_splits(by_class, plan, groups)
    split_of = {}
    for pairs in got.values():
        for s, split in pairs:
            split_of.setdefault(groups[s], set()).add(split)
    assert all(len(v) == 1 for v in split_of.values())  # every song in one split
    for c, pairs in got.items():
        counts = {sp: sum(x == sp for _, x in pairs) for sp in ("test", "train", "val")}
        assert counts["test"] <= plan.n_test(len(by_class[c])) + 2 and counts["train"] >= 1, (c, counts)


def test_group_splits_hand_case():
    from augment.datasets.splits import assign_group_splits

    # 6 one-class songs of 2 clips; test = 4 clips; default_rng(0).permutation(6) = [3, 2, 5, 4, 0, 1]: songs 3 and 2
    # go to test (4 clips reached, the rest skipped); the 8 clips left give val = ceil(0.25 * 8) = 2 clips, visited
    # in default_rng(1).permutation(4) = [0, 1, 2, 3] order of [song0, song1, song4, song5] -> song0; others train.
    assert np.random.default_rng(0).permutation(6).tolist() == [3, 2, 5, 4, 0, 1]
    assert np.random.default_rng(1).permutation(4).tolist() == [0, 1, 2, 3]
    by_class, groups = _songs({"a": [2] * 6})
    got, _ = assign_group_splits(by_class, SplitPlan(test=4, val_fraction=0.25, test_seed=0, val_seed=1), groups)
    split_of = {groups[s]: split for s, split in got["a"]}
    assert split_of == {"a-song03": "test", "a-song02": "test", "a-song00": "val",
                        "a-song01": "train", "a-song04": "train", "a-song05": "train"}


def test_group_splits_refuse_classes_too_small_or_songs_too_big():
    from augment.datasets.splits import assign_group_splits

    by_class, groups = _songs({"a": [1, 1, 1], "b": [1, 1, 1, 1]})
    with pytest.raises(UserError, match=r"class 'a' has 3 usable clip\(s\) but this split needs 4 \(2 test \+ at "
                                        r"least 2 for train/val\); add clips, or lower --test-size"):
        assign_group_splits(by_class, SplitPlan(test=2), groups)
    by_class, groups = _songs({"a": [6, 1, 1]})  # the big song can only go to train; 1-clip songs fill test
    got, _ = assign_group_splits(by_class, SplitPlan(test=2), groups)
    assert {groups[s] for s, sp in got["a"] if sp == "test"} == {"a-song01", "a-song02"}
    by_class, groups = _songs({"a": [10]})  # one song: putting it in test would leave nothing to train on
    with pytest.raises(UserError, match=r"its groups are too large to give it both test and train clips "
                                        r"\(--group-by\); add clips, use smaller groups or lower --test-size"):
        assign_group_splits(by_class, SplitPlan(test=1), groups)
    by_class, groups = _songs({"a": [1, 1, 1, 1]})  # exactly test + 2: enough
    assert len(assign_group_splits(by_class, SplitPlan(test=2), groups)[0]["a"]) == 4
    by_class, groups = _songs({"a": [1, 1]})  # a fraction: ceil(0.25 * 2) = 1 test clip + 2
    with pytest.raises(UserError, match=r"class 'a' has 2 usable clip\(s\) but this split needs 3 \(1 test"):
        assign_group_splits(by_class, SplitPlan(test=0.25), groups)
    by_class, groups = _songs({"a": [2, 2, 2], "b": [2, 2, 2]})  # a pool that does not list b gives b nothing
    with pytest.raises(UserError, match="class 'b': its groups are too large"):
        assign_group_splits(by_class, SplitPlan(test=2, pool={"a": 2}), groups)
    # test may leave exactly 2 clips: default_rng(0).permutation(2) = [0, 1] visits the 3-clip song first
    by_class, groups = _songs({"a": [3, 2]})
    got, _ = assign_group_splits(by_class, SplitPlan(test=1, test_seed=0), groups)
    assert {groups[s] for s, sp in got["a"] if sp == "test"} == {"a-song00"}


def test_plan_from_options_reads_test_and_val_size_and_keeps_protocol_fields():
    from augment.datasets.splits import plan_from_options

    plan = plan_from_options({"test_size": "40", "val_size": 0.3}, 0.2, pool={"a": 5}, test_seed=7, protocol="p")
    assert plan == SplitPlan(test=40.0, val_fraction=0.3, pool={"a": 5}, test_seed=7, protocol="p")
    assert plan_from_options({}, 0.25) == SplitPlan(test=0.25, val_fraction=0.2)
    assert plan_from_options({"test_size": None, "val_size": None}, 12) == SplitPlan(test=12, val_fraction=0.2)
    with pytest.raises(UserError, match="--val-size must be a fraction"):
        plan_from_options({"val_size": 1.5}, 0.2)


def test_user_split_with_groups_keeps_the_test_side_of_a_straddling_group():
    from augment.datasets.splits import assign_group_splits

    by_class, groups = _songs({"a": [2, 2, 2, 2, 2]})
    items = sorted(by_class["a"], key=lambda s: s.name)
    labels = ["test", "train", "train", "train", "train", "val", "test", "test", "train", "val"]  # song0 straddles
    fixed = [Source(s.path, s.name, s.cls, sp) for s, sp in zip(items, labels)]
    groups = {f: groups[s] for f, s in zip(fixed, items)}
    got, excluded = assign_group_splits({"a": fixed}, SplitPlan(), groups)
    assert [(s.name, why) for s, why in excluded] == [
        ("a/a-song00-1.wav", "group 'a-song00' has test clips (e.g. a/a-song00-0.wav); excluded from train so the "
                             "group stays in one split")]
    assert {(s.name, sp) for s, sp in got["a"]} == {(s.name, s.split) for s in fixed[:1] + fixed[2:]}
    # without val rows, val is carved from the kept train rows by the plan's train_test_split
    no_val = [Source(s.path, s.name, s.cls, "train" if s.split == "val" else s.split) for s in fixed]
    groups = {f: groups[g] for f, g in zip(no_val, fixed)}
    got, _ = assign_group_splits({"a": no_val}, SplitPlan(val_fraction=0.4, val_seed=3), groups)
    kept = sorted((s for s in no_val[2:] if s.split == "train"), key=lambda s: s.name)
    train, val = train_test_split(kept, test_size=0.4, random_state=3)
    assert [s for s, sp in got["a"] if sp == "val"] == val and [s for s, sp in got["a"] if sp == "train"] == train
