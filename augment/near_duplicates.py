"""`augment prepare`: near-duplicate clips across splits (a copy with another gain, a little noise, a shift).

The prepared image of a clip is its normalised log-mel spectrogram (dB relative to the clip's peak), so a copy
with another gain has the same image and one with 1e-4 noise or a one-sample shift nearly the same. Clips whose
images are near-duplicates by :mod:`augment.fingerprints` (mirror included, exactly as the leak guard compares)
form a group; a group that spans splits keeps the members of one split — test first, then val — and the other
copies are excluded with a warning naming both files. The guard then never refuses a freshly prepared workspace.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from augment import fingerprints as fp
from augment.workspace import SplitRow

PRIORITY = ("test", "val", "train")     # the side a group keeps
T = TypeVar("T")


def fingerprint_file(path: Path) -> np.ndarray:
    """[2, GRID²] fingerprint (and mirror) of an image file (a prepare worker function)."""
    return fp.fingerprint_bytes(Path(path).read_bytes())


def components(n: int, pairs: Sequence[tuple[int, int]]) -> list[list[int]]:
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        parent[find(a)] = find(b)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def near_pairs(fps: np.ndarray, splits: Sequence[str]) -> list[tuple[int, int]]:
    """(i, j), i < j in different splits, whose images are near-duplicates (either orientation)."""
    refs = fp.with_mirrors(fps)
    n = fps.shape[0]
    out: set[tuple[int, int]] = set()
    for s, d, r in fp.pairwise_blocks(fps[:, 0], refs):  # the same measure as the guard
        for a, b in zip(*np.nonzero(fp.is_near(d, r))):
            i, j = s + int(a), int(b) % n
            if i != j and splits[i] != splits[j]:
                out.add((min(i, j), max(i, j)))
    return sorted(out)


def cross_split_groups(rows: Sequence[SplitRow], fps: np.ndarray) -> list[tuple[SplitRow, SplitRow]]:
    """(row to exclude, the kept row it duplicates) for every near-duplicate group that spans splits."""
    splits = [r.split for r in rows]
    out: list[tuple[SplitRow, SplitRow]] = []
    for members in components(len(rows), near_pairs(fps, splits)):
        keep_split = min((splits[i] for i in members), key=PRIORITY.index)
        kept = min((i for i in members if splits[i] == keep_split), key=lambda i: rows[i].source)
        out += [(rows[i], rows[kept]) for i in members if splits[i] != keep_split]
    return out


def exclude_near_duplicates(rows: list[SplitRow], image_path: Callable[[SplitRow], Path],
                            fingerprints: Callable[[list[Path]], list[np.ndarray]]
                            ) -> tuple[list[bool], list[tuple[str, str]], int]:
    """(keep flag per row, (source, reason) per excluded clip, number of groups that spanned splits).

    ``fingerprints`` maps image paths to their fingerprints (e.g. on the prepare worker pool); the images of
    excluded rows are deleted from the staging folder.
    """
    if len(rows) < 2:
        return [True] * len(rows), [], 0
    fps = np.stack(fingerprints([image_path(r) for r in rows])).astype(np.float32)
    pairs = cross_split_groups(rows, fps)
    drop = {id(r) for r, _ in pairs}
    skipped = [(r.source, f"near-duplicate of {k.source} ({k.split}; normalised log-mel images within "
                          f"{fp.MAX_MEAN_ABS_DIFF:g} grey levels or correlation >= {fp.MIN_CORRELATION:g}); "
                          f"excluded from {r.split} so one recording cannot sit in two splits") for r, k in pairs]
    for r, _ in pairs:
        image_path(r).unlink(missing_ok=True)
    return [id(r) not in drop for r in rows], skipped, len({id(k) for _, k in pairs})


def drop_near_duplicates(pool: Any, rows: list[SplitRow], converted: list[T], staging: Path, resolution: int
                         ) -> tuple[list[SplitRow], list[T], list[tuple[str, str]]]:
    """`augment prepare`'s step after converting: (rows, their conversion results, skipped) without the copies.

    ``pool`` is the prepare WorkerPool (fingerprints on every core); images live at ``staging / row.image``.
    Images smaller than ``fingerprints.MIN_RESOLUTION`` are not checked (they cannot tell clips apart).
    """
    if resolution < fp.MIN_RESOLUTION:
        return rows, converted, []
    keep, skipped, _ = exclude_near_duplicates(rows, lambda r: staging / r.image,
                                               lambda paths: pool.map(fingerprint_file, paths, "near-duplicates"))
    return ([r for r, k in zip(rows, keep) if k], [c for c, k in zip(converted, keep) if k], skipped)
