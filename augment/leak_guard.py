"""The leak guard: no training or validation input may be, equal, or nearly equal a test file.

Every input is read once here; the checks run on those bytes and the guard returns their sha256, so the loaders
(:func:`read_verified`, and stylegan_ada's loader through ``Job.image_sha256``) consume exactly the bytes that were
checked — a file swapped afterwards is refused when it is loaded. Refused, with the file named:

1. a path inside ``data/test`` (symlinks resolved);
2. a manifest train/val row whose source audio has the same sha256 as a test clip's (every segment of a clip,
   ``augment prepare --segments``, carries its clip's source sha256: a clip's segments are one source);
3. a file of a group (``augment prepare --group-by``) that has clips in the test split;
4. bytes identical to a test image or a test source file;
5. a decoded image whose fingerprint, or its mirror's, is within the near-duplicate threshold of a test image's
   (augment.fingerprints: 64×64 grey thumbnail, mean abs difference ≤ 1 grey level or correlation ≥ 0.995;
   workspaces of at least 16 px, smaller images cannot tell clips apart).

The test fingerprints are cached in ``cache/leak_guard/``, keyed by the test images' recorded hashes.
"""
from __future__ import annotations

import io
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from augment import fingerprints as fp
from augment.errors import UserError
from augment.io_utils import atomic_write_bytes, sha256_bytes

if TYPE_CHECKING:
    from augment.workspace import SplitRow, Workspace

MAX_INPUT_BYTES = 256 * 2 ** 20     # no training image is this big; bounds the memory one file can cost
CACHE_VERSION = 1
GROUPS_KEY = "groups"               # augment.json: {"by": ..., "kind": "column"|"regex", "of": {source: group}}


class VerifiedPaths(list):
    """The checked paths (a list of Path), with ``sha256``: the digest of the bytes the guard read, same order."""

    def __init__(self, paths: Sequence[Path], sha256: Sequence[str]):
        super().__init__(paths)
        self.sha256: list[str] = list(sha256)

    def digests(self) -> dict[Path, str]:
        return dict(zip(self, self.sha256))


def read_bounded(path: Path) -> bytes:
    """The file's bytes; UserError if it is unreadable or larger than ``MAX_INPUT_BYTES``."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror or exc}); remove or re-create it") from None
    if len(data) > MAX_INPUT_BYTES:
        raise UserError(f"{path} is larger than {MAX_INPUT_BYTES // 2 ** 20} MiB; that is no training image")
    return data


def read_verified(path: Path, sha256: str) -> bytes:
    """The bytes of ``path`` if they are still the ones the guard checked; UserError otherwise."""
    data = read_bounded(path)
    if sha256_bytes(data) != sha256:
        raise UserError(f"{path} changed after the leak guard checked it (sha256 mismatch); it is not used — "
                        "run the command again")
    return data


# ------------------------------------------------------------------------------------------------- test split
@dataclass
class TestSplit:
    """What the guard compares against: hashes, sources, groups and fingerprints of the test split."""
    hashes: set[str]                  # image and source sha256 of every test row
    sources: set[str]                 # source sha256 of every test row
    groups: set[str]
    names: list[str]                  # test image per fingerprint row (each twice: as is, then mirrored)
    refs: np.ndarray                  # [2 n_test, GRID²]


def test_rows(ws: "Workspace") -> list["SplitRow"]:
    return [r for r in ws.rows() if r.split == "test"]


def test_hashes(ws: "Workspace") -> set[str]:
    """Image and source hashes of every test file."""
    return {h for r in test_rows(ws) for h in (r.image_sha256, r.source_sha256)}


def group_info(ws: "Workspace") -> dict[str, Any]:
    info = ws.config.get(GROUPS_KEY)
    return info if isinstance(info, dict) and isinstance(info.get("of"), dict) else {}


def test_cache_path(ws: "Workspace", rows: Sequence["SplitRow"]) -> Path:
    key = sha256_bytes("\n".join([f"v{CACHE_VERSION} grid{fp.GRID}"] + sorted(
        f"{r.image},{r.image_sha256}" for r in rows)).encode())
    return ws.root / "cache" / "leak_guard" / f"test-{key[:24]}.npy"


def _fingerprint_test_image(ws: "Workspace", row: "SplitRow") -> np.ndarray:
    path = ws.root / row.image
    data = read_bounded(path)
    if sha256_bytes(data) != row.image_sha256:
        raise UserError(f"test image {path} changed since `augment prepare` (sha256 mismatch); the test split "
                        "must stay as prepared: restore it or re-run `augment prepare --force`")
    try:
        return fp.fingerprint_bytes(data)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot decode test image {path} ({exc}); re-run `augment prepare --force`") from None


def test_fingerprints(ws: "Workspace", rows: Sequence["SplitRow"], workers: int) -> np.ndarray:
    """[n_test, 2, GRID²] fingerprints of the test images, from the cache when it matches."""
    path = test_cache_path(ws, rows)
    shape = (len(rows), 2, fp.GRID * fp.GRID)
    try:
        cached = np.load(path, allow_pickle=False)
        if cached.shape == shape and cached.dtype == np.float32:
            return cached
    except (OSError, ValueError):
        pass
    with ThreadPoolExecutor(max_workers=workers) as pool:
        fps = list(pool.map(lambda r: _fingerprint_test_image(ws, r), rows))
    out = np.stack(fps).astype(np.float32) if fps else np.zeros(shape, np.float32)
    try:
        buf = io.BytesIO()
        np.save(buf, out, allow_pickle=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buf.getvalue())
    except (OSError, UserError):
        pass  # a read-only workspace: no cache, same result
    return out


def load_test_split(ws: "Workspace", workers: int) -> TestSplit:
    rows = test_rows(ws)
    groups = group_info(ws).get("of", {})
    if ws.resolution >= fp.MIN_RESOLUTION:
        fps = test_fingerprints(ws, rows, workers)
    else:
        fps = np.zeros((0, 2, fp.GRID * fp.GRID), np.float32)
    return TestSplit(hashes={h for r in rows for h in (r.image_sha256, r.source_sha256)},
                     sources={r.source_sha256 for r in rows},
                     groups={groups[r.source] for r in rows if r.source in groups},
                     names=[r.image for r in rows][:len(fps)] * 2, refs=fp.with_mirrors(fps))


# ------------------------------------------------------------------------------------------------------ guard
def _regex_group(info: dict[str, Any], path: Path) -> str | None:
    """The group of a file that is not in the manifest: the --group-by regex on its name (folder kinds only)."""
    if info.get("kind") != "regex":
        return None
    from augment.datasets.groups import group_of_name

    try:
        return group_of_name(re.compile(info["by"]), path.name)
    except (re.error, KeyError, TypeError):
        return None


def _check_identity(ws: "Workspace", p: Any, rp: Path, row: "SplitRow | None", test: TestSplit, what: str) -> None:
    """Branches 1-3: the path, the source audio and the group (no bytes read yet)."""
    if (ws.root / "data" / "test").resolve() in rp.parents:
        raise UserError(f"{what} {p} is in the test split; the test split is never used for training")
    if row is not None and row.source_sha256 in test.sources:
        raise UserError(f"{what} {p} comes from the same audio as a test file (sha256 {row.source_sha256[:12]}); "
                        "re-prepare the workspace so duplicates land in one split")
    info = group_info(ws)
    group = info["of"].get(row.source) if row is not None and info else _regex_group(info, rp)
    if group is not None and group in test.groups:
        raise UserError(f"{what} {p} belongs to group {group!r} (--group-by {info.get('by')}), which has clips in "
                        "the test split; a group is never split across train and test")


def _read_and_fingerprint(path: Path) -> tuple[str, np.ndarray | None, str | None]:
    data = read_bounded(path)
    try:
        return sha256_bytes(data), fp.fingerprint_bytes(data), None
    except (OSError, ValueError, SyntaxError) as exc:  # PIL raises SyntaxError for some broken files
        return sha256_bytes(data), None, str(exc)


def guard(ws: "Workspace", paths: Iterable[str | os.PathLike], *, what: str = "training input",
          workers: int | None = None) -> VerifiedPaths:
    """Refuse (UserError naming the file) any input that leaks the test split; returns the verified paths."""
    workers = workers or min(4, os.cpu_count() or 1)
    given = [Path(p) for p in paths]
    test = load_test_split(ws, workers)
    rows = {str((ws.root / r.image).resolve()): r for r in ws.rows() if r.split != "test"}
    resolved = [p.resolve() for p in given]
    for p, rp in zip(given, resolved):
        _check_identity(ws, p, rp, rows.get(str(rp)), test, what)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        read = list(pool.map(_read_and_fingerprint, resolved))
    for p, (digest, _, problem) in zip(given, read):
        if digest in test.hashes:
            raise UserError(f"{what} {p} is identical to a test file (sha256 {digest[:12]}); "
                            "remove it — the test split is never used for training")
        if problem is not None:
            raise UserError(f"{what} {p} cannot be decoded as an image ({problem}); remove or re-create it")
    cand = np.stack([f[0] for _, f, _ in read]) if read else np.zeros((0, fp.GRID ** 2), np.float32)
    match = fp.first_matches(cand, test.refs) if ws.resolution >= fp.MIN_RESOLUTION else np.full(len(read), -1)
    hit = np.nonzero(match >= 0)[0]
    if hit.size:
        i, j = int(hit[0]), int(match[hit[0]])
        mirrored = " mirrored" if j >= len(test.refs) // 2 else ""
        raise UserError(f"{what} {given[i]} is a near-copy of test image {test.names[j]}{mirrored} (64x64 grey "
                        f"thumbnails: mean difference <= {fp.MAX_MEAN_ABS_DIFF:g} grey levels or correlation >= "
                        f"{fp.MIN_CORRELATION:g}); {hit.size} such input(s) — remove them, the test split is never "
                        "used for training")
    return VerifiedPaths(given, [d for d, _, _ in read])

