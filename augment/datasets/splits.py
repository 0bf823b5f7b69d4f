"""Train/val/test assignment shared by every dataset kind (protocols.md).

Per class, on the clips sorted by source name (so the result depends only on which clips are usable):
1. test: ``numpy.random.default_rng(test_seed).permutation`` picks the test clips (a count or a fraction, rounded up);
2. pool (optional, e.g. 4Q-small): the same with ``pool_seed`` picks the training pool from the non-test clips;
3. train/val: ``sklearn.model_selection.train_test_split(pool, test_size=val_fraction, random_state=val_seed)``.
A user-given split (csv ``split`` column) is kept; without any ``val`` rows, step 3 carves val out of ``train``.
With ``--group-by`` the same three steps draw whole groups instead of clips (:func:`assign_group_splits`).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Sequence, TypeVar

import numpy as np

from augment.errors import UserError

if TYPE_CHECKING:
    from augment.datasets.base import Source

T = TypeVar("T")
VALID_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitPlan:
    test: float = 0.2                   # per class: an integer count (>= 1) or a fraction in (0, 1)
    val_fraction: float = 0.2
    pool: dict[str, int] | None = None  # per-class training pool drawn from the non-test clips; None: all of them
    test_seed: int = 0
    pool_seed: int = 0
    val_seed: int = 42
    protocol: str = ""                  # named in error messages, e.g. "4Q-small"

    def __post_init__(self) -> None:
        if not 0 < self.val_fraction < 1:
            raise UserError(f"--val-size must be a fraction in (0, 1), got {self.val_fraction:g}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def n_test(self, n: int) -> int:
        if float(self.test).is_integer() and self.test >= 1:
            return int(self.test)
        return math.ceil(float(self.test) * n)


def parse_test_size(text: str | None, default: float) -> float:
    """--test-size: a per-class count (e.g. 40) or a fraction (e.g. 0.2)."""
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (0 < value < 1 or (value >= 1 and value.is_integer())):
        raise UserError(f"--test-size must be a whole number of clips per class (e.g. 40) or a fraction in (0, 1) "
                        f"(e.g. 0.2), got {text!r}")
    return value


def plan_from_options(opts: dict[str, Any], default_test: float, **fixed: Any) -> SplitPlan:
    """The plan from --test-size / --val-size (None: the protocol's default) plus protocol-fixed fields."""
    val = opts.get("val_size")
    return SplitPlan(test=parse_test_size(opts.get("test_size"), default_test),
                     val_fraction=0.2 if val is None else float(val), **fixed)


def draw(items: Sequence[T], k: int, seed: int) -> tuple[list[T], list[T]]:
    """(chosen k items, the rest), both in input order; the choice depends only on len(items), k and seed."""
    chosen_idx = set(np.random.default_rng(seed).permutation(len(items))[:k].tolist())
    chosen = [x for i, x in enumerate(items) if i in chosen_idx]
    rest = [x for i, x in enumerate(items) if i not in chosen_idx]
    return chosen, rest


def train_val(items: Sequence[T], plan: SplitPlan, cls: str) -> tuple[list[T], list[T]]:
    from sklearn.model_selection import train_test_split

    if len(items) < 2:
        raise UserError(f"class {cls!r} has {len(items)} clip(s) left for train/val; at least 2 are needed — "
                        "add clips or lower --test-size")
    train, val = train_test_split(list(items), test_size=plan.val_fraction, random_state=plan.val_seed)
    return train, val


def _too_few(cls: str, n: int, needed: int, plan: SplitPlan, what: str) -> UserError:
    where = f"the {plan.protocol} protocol" if plan.protocol else "this split"
    return UserError(f"class {cls!r} has {n} usable clip(s) but {where} needs {needed} ({what}); "
                     "add clips, or lower --test-size")


def assign_splits(by_class: dict[str, list["Source"]], plan: SplitPlan) -> dict[str, list[tuple["Source", str]]]:
    """class → [(source, split)]; UserError when a class has too few clips for the plan."""
    fixed = any(s.split for items in by_class.values() for s in items)
    has_val = any(s.split == "val" for items in by_class.values() for s in items)
    out: dict[str, list[tuple[Source, str]]] = {}
    for cls, items in by_class.items():
        items = sorted(items, key=lambda s: s.name)
        if fixed:
            test = [s for s in items if s.split == "test"]
            pool = [s for s in items if s.split != "test"]
            if not test or not pool:
                raise UserError(f"class {cls!r} needs at least one test and one train row in the manifest's split "
                                f"column (has {len(test)} test, {len(pool)} train/val)")
        else:
            n_test = plan.n_test(len(items))
            n_pool = plan.pool.get(cls, 0) if plan.pool is not None else len(items) - n_test
            needed = n_test + max(n_pool, 2)
            if len(items) < needed:
                what = (f"{n_test} test + {n_pool} training pool" if plan.pool is not None
                        else f"{n_test} test + at least 2 for train/val")
                raise _too_few(cls, len(items), needed, plan, what)
            test, rest = draw(items, n_test, plan.test_seed)
            pool = draw(rest, n_pool, plan.pool_seed)[0] if plan.pool is not None else rest
        if fixed and has_val:
            train = [s for s in pool if s.split == "train"]
            val = [s for s in pool if s.split == "val"]
        else:
            train, val = train_val(pool, plan, cls)
        out[cls] = [(s, "test") for s in test] + [(s, "train") for s in train] + [(s, "val") for s in val]
    return out


# ------------------------------------------------------------------------------------------ group-aware splits
def _greedy(groups: list[str], comp: dict[str, Counter], target: dict[str, int], left: dict[str, int],
            min_left: int, seed: int) -> list[str]:
    """Groups taken, in a seeded order, while every class they hold still needs clips and keeps ``min_left``."""
    taken: list[str] = []
    have: Counter = Counter()
    for i in np.random.default_rng(seed).permutation(len(groups)).tolist():
        g = groups[i]
        if all(have[c] < target.get(c, 0) and left[c] - n >= min_left for c, n in comp[g].items()):
            taken.append(g)
            for c, n in comp[g].items():
                have[c] += n
                left[c] -= n
    return taken


def assign_group_splits(by_class: dict[str, list["Source"]], plan: SplitPlan, groups: dict["Source", str]
                        ) -> tuple[dict[str, list[tuple["Source", str]]], list[tuple["Source", str]]]:
    """Like :func:`assign_splits`, but every group lands in one split; also (source, why) for excluded sources.

    Per stage (test, pool, val) the groups are visited in ``default_rng(seed).permutation`` order of their sorted
    names and taken while each class they hold is below its target, so the split is class-stratified as far as the
    groups allow. With a user-given split column, a group's train/val clips are excluded when it has test clips.
    """
    members: dict[str, list[Source]] = {}
    for items in by_class.values():
        for s in sorted(items, key=lambda s: s.name):
            members.setdefault(groups[s], []).append(s)
    names = sorted(members)
    comp = {g: Counter(s.cls for s in members[g]) for g in names}
    split_of: dict[str, str] = {}
    if any(s.split for items in by_class.values() for s in items):
        return _fixed_with_groups(by_class, plan, members)
    sizes = {c: len(items) for c, items in by_class.items()}
    for c, n in sizes.items():
        if n < plan.n_test(n) + 2:
            raise _too_few(c, n, plan.n_test(n) + 2, plan, f"{plan.n_test(n)} test + at least 2 for train/val")
    left = dict(sizes)
    test = _greedy(names, comp, {c: plan.n_test(n) for c, n in sizes.items()}, left, 2, plan.test_seed)
    split_of.update({g: "test" for g in test})
    rest = [g for g in names if g not in split_of]
    if plan.pool is not None:
        pool = _greedy(rest, comp, dict(plan.pool), dict(left), 0, plan.pool_seed)
        rest = [g for g in rest if g in set(pool)]
    pool_size = Counter(c for g in rest for c in comp[g].elements())
    val = _greedy(rest, comp, {c: math.ceil(plan.val_fraction * n) for c, n in pool_size.items()},
                  dict(pool_size), 1, plan.val_seed)
    split_of.update({g: "val" for g in val})
    split_of.update({g: "train" for g in rest if g not in split_of})
    order = ("test", "train", "val")
    out: dict[str, list[tuple[Source, str]]] = {}
    for c in by_class:
        items = sorted(((s, split_of[g]) for g in names if g in split_of for s in members[g] if s.cls == c),
                       key=lambda t: (order.index(t[1]), t[0].name))
        if not {"test", "train"} <= {sp for _, sp in items}:
            raise UserError(f"class {c!r}: its groups are too large to give it both test and train clips "
                            "(--group-by); add clips, use smaller groups or lower --test-size")
        out[c] = items
    return out, []


def _fixed_with_groups(by_class: dict[str, list["Source"]], plan: SplitPlan, members: dict[str, list["Source"]]
                       ) -> tuple[dict[str, list[tuple["Source", str]]], list[tuple["Source", str]]]:
    """User-given splits: a group with test clips keeps only those (the test side wins)."""
    excluded: list[tuple[Source, str]] = []
    for g, items in members.items():
        tests = [s for s in items if s.split == "test"]
        if tests:
            excluded += [(s, f"group {g!r} has test clips (e.g. {tests[0].name}); excluded from {s.split} so the "
                             "group stays in one split") for s in items if s.split != "test"]
    drop = {s for s, _ in excluded}
    kept = {c: [s for s in items if s not in drop] for c, items in by_class.items()}
    return assign_splits(kept, plan), excluded
