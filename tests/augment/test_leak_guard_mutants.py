"""The leak guard called directly, one branch per test, on a hand-built 16 px workspace: what is refused, with which
message naming which file, and what passes (the controls). The command-level tests (test_leak_guard.py) prove each
command calls the guard; these pin the guard itself, fast enough to run for every mutant of augment/leak_guard.py."""
from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from augment import fingerprints as fp
from augment import leak_guard as lg
from augment.errors import UserError
from augment.workspace import SplitRow, Workspace, write_workspace

RES = 16  # fingerprints.MIN_RESOLUTION: the smallest workspace whose near-copies are checked
GROUP_BY = "^(.+?)_"
# image, class, split, source (its group: the name before "_")
LAYOUT = [("data/train/a/tr0.png", "a", "train", "a/s1_0.wav"), ("data/train/a/tr1.png", "a", "train", "a/s2_0.wav"),
          ("data/train/b/tr0.png", "b", "train", "b/s3_0.wav"), ("data/val/a/va0.png", "a", "val", "a/s4_0.wav"),
          ("data/test/a/te0.png", "a", "test", "a/s5_0.wav"), ("data/test/b/te0.png", "b", "test", "b/s6_0.wav")]


def _noise(path: Path, seed: int, res: int = RES) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    g = np.random.default_rng(seed).integers(0, 256, (res, res), dtype=np.uint8)
    Image.fromarray(np.stack([g] * 3, -1), "RGB").save(path)


def _source_bytes(source: str) -> bytes:
    return f"audio of {source}".encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _row(root: Path, image: str, cls: str, split: str, source: str) -> SplitRow:
    return SplitRow(image, cls, split, source, _sha(_source_bytes(source)), _sha((root / image).read_bytes()))


def _write(root: Path, rows: list[SplitRow], groups: dict | None, res: int = RES) -> Workspace:
    return write_workspace(root, dataset="hand", options={}, kind="images", classes=["a", "b"],
                           image={"resolution": res, "channels": 3}, mel=None, rows=rows,
                           extra={"groups": groups} if groups is not None else None)


def _regex_groups(rows: list[SplitRow], by: str = GROUP_BY, kind: str = "regex") -> dict:
    return {"by": by, "kind": kind, "of": {r.source: r.source.split("/")[1].split("_")[0] for r in rows}}


def _build(root: Path, res: int = RES) -> Workspace:
    for seed, (image, *_) in enumerate(LAYOUT, start=1):
        _noise(root / image, seed, res)
    rows = [_row(root, *spec) for spec in LAYOUT]
    return _write(root, rows, _regex_groups(rows), res)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp("guard") / "ws").root


@pytest.fixture()
def ws(clean, tmp_path) -> Workspace:
    shutil.copytree(clean, tmp_path / "ws")
    return Workspace.load(tmp_path / "ws")


def _refused(ws: Workspace, paths, message: str, what: str = "training input") -> str:
    with pytest.raises(UserError) as info:
        lg.guard(ws, paths, what=what, workers=1)
    text = str(info.value)
    assert message in text, text
    return text


def _test_image(ws: Workspace, cls: str = "a") -> Path:
    return ws.root / f"data/test/{cls}/te0.png"


def _add_row(ws: Workspace, image: str, source: str, group: str | None = None, source_sha: str | None = None,
             seed: int = 50) -> Workspace:
    """A train row (a new noise image) appended to the manifest; its source hash and group as given."""
    _noise(ws.root / image, seed)
    row = _row(ws.root, image, "a", "train", source)
    if source_sha is not None:
        row = SplitRow(row.image, row.cls, row.split, row.source, source_sha, row.image_sha256)
    groups = ws.config["groups"]
    if group is not None:
        groups = {**groups, "of": {**groups["of"], source: group}}
    return _write(ws.root, ws.rows() + [row], groups)


# ------------------------------------------------------------------------------------------------ what passes
def test_clean_inputs_pass_with_the_sha256_of_the_bytes_read(ws, tmp_path):
    paths = ws.images(["train", "val"])
    _noise(tmp_path / "s1_new.png", 77)  # not in the manifest; its name's group (s1) is a training group
    paths.append(tmp_path / "s1_new.png")
    checked = lg.guard(ws, paths)  # the default: a few threads
    assert list(checked) == paths
    assert checked.sha256 == [_sha(p.read_bytes()) for p in paths]
    assert checked.digests() == {p: _sha(p.read_bytes()) for p in paths}
    empty = lg.guard(ws, [], workers=1)
    assert list(empty) == [] and empty.sha256 == []


# ---------------------------------------------------------------------------------------- 1. inside data/test
def test_a_file_inside_data_test_is_refused_by_its_path(ws):
    stray = ws.root / "data" / "test" / "a" / "stray.png"  # in no manifest row, bytes and content unknown
    _noise(stray, 90)
    text = _refused(ws, [ws.images("train")[0], stray], "is in the test split", what="extra image")
    assert text == f"extra image {stray} is in the test split; the test split is never used for training"
    # through a symlink from data/train, and through a path that walks back into data/test
    link = ws.root / "data" / "train" / "a" / "link.png"
    link.symlink_to(stray)
    _refused(ws, [link], f"training input {link} is in the test split")
    dotted = ws.root / "data" / "train" / ".." / "test" / "a" / "stray.png"
    _refused(ws, [dotted], "is in the test split")


def test_a_folder_merely_named_like_the_test_split_is_not_refused(ws):
    other = ws.root / "data" / "test_extra" / "x.png"
    _noise(other, 91)
    assert list(lg.guard(ws, [other], workers=1)) == [other]


# ---------------------------------------------------------------------------------------- 2. same source audio
def test_a_train_row_from_the_audio_of_a_test_clip_is_refused(ws):
    test_sha = _sha(_source_bytes("a/s5_0.wav"))
    ws = _add_row(ws, "data/train/a/dup.png", "a/s9_0.wav", group="s9", source_sha=test_sha)
    text = _refused(ws, ws.images("train"), "comes from the same audio as a test file")
    assert f"training input {ws.root / 'data/train/a/dup.png'} comes from the same audio as a test file " \
           f"(sha256 {test_sha[:12]}); re-prepare" in text


# ----------------------------------------------------------------------------------------------- 3. the group
def test_a_train_row_of_a_test_group_is_refused(ws):
    ws = _add_row(ws, "data/train/a/same_song.png", "a/s5_9.wav", group="s5")
    text = _refused(ws, ws.images("train"), "belongs to group")
    assert f"{ws.root / 'data/train/a/same_song.png'} belongs to group 's5' (--group-by {GROUP_BY}), which has " \
           "clips in the test split" in text


def test_a_file_outside_the_manifest_is_grouped_by_the_regex_on_its_name(ws, tmp_path):
    _noise(tmp_path / "s6_extra.png", 92)  # group s6 has a test clip
    _refused(ws, [tmp_path / "s6_extra.png"], "belongs to group 's6'")


@pytest.mark.parametrize("groups", ["column", "bad-regex", "no-map", "none"])
def test_without_a_usable_regex_a_file_outside_the_manifest_is_not_grouped(ws, tmp_path, groups):
    rows = ws.rows()
    config = {"column": _regex_groups(rows, by="song", kind="column"), "bad-regex": _regex_groups(rows, by="(["),
              "no-map": {"by": GROUP_BY, "kind": "regex", "of": ["not", "a", "map"]}, "none": None}[groups]
    ws = _write(ws.root, rows, config)
    _noise(tmp_path / "s6_extra.png", 92)
    assert list(lg.guard(ws, [tmp_path / "s6_extra.png"], workers=1)) == [tmp_path / "s6_extra.png"]
    assert lg.group_info(ws) == ({} if groups in ("no-map", "none") else config)


# ----------------------------------------------------------------------------------------------- 4. the bytes
def test_a_copy_of_a_test_image_or_of_a_test_source_file_is_refused(ws, tmp_path):
    copy = tmp_path / "copy.png"
    shutil.copy(_test_image(ws, "b"), copy)
    digest = _sha(copy.read_bytes())
    with pytest.raises(UserError) as info:
        lg.guard(ws, [copy])  # the defaults: named a "training input", a few threads
    text = str(info.value)
    assert text == f"training input {copy} is identical to a test file (sha256 {digest[:12]}); remove it — the " \
                   "test split is never used for training"
    audio = tmp_path / "clip.wav"  # the test clip's source file itself: refused before any decoding
    audio.write_bytes(_source_bytes("b/s6_0.wav"))
    _refused(ws, [audio], "is identical to a test file")
    assert lg.test_hashes(ws) == {r.image_sha256 for r in ws.rows() if r.split == "test"} | {
        _sha(_source_bytes("a/s5_0.wav")), _sha(_source_bytes("b/s6_0.wav"))}


def test_an_undecodable_input_is_refused_naming_it(ws, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    text = _refused(ws, [ws.images("train")[0], broken], "cannot be decoded as an image")
    assert text.startswith(f"training input {broken} cannot be decoded as an image (cannot identify image file") \
        and text.endswith("); remove or re-create it")  # the decoder's own reason, in the parentheses


# ------------------------------------------------------------------------------------------- 5. near-copies
def _near_copy(src: Path, out: Path, mirror: bool) -> Path:
    with Image.open(src) as im:
        a = np.asarray(im.transpose(Image.FLIP_LEFT_RIGHT) if mirror else im).copy()
    a[3, 5] = (a[3, 5].astype(int) + 40) % 256
    Image.fromarray(a, "RGB").save(out)
    return out


def test_a_near_copy_is_refused_naming_the_test_image_and_the_count(ws, tmp_path):
    plain = _near_copy(_test_image(ws, "b"), tmp_path / "plain.png", mirror=False)
    text = _refused(ws, [ws.images("train")[0], plain], "is a near-copy of test image")
    assert text == f"training input {plain} is a near-copy of test image data/test/b/te0.png (64x64 grey " \
                   f"thumbnails: mean difference <= 1 grey levels or correlation >= 0.995); 1 such input(s) — " \
                   "remove them, the test split is never used for training"
    mirrored = _near_copy(_test_image(ws, "a"), tmp_path / "mirrored.png", mirror=True)
    text = _refused(ws, [mirrored, plain], "is a near-copy")
    assert f"{mirrored} is a near-copy of test image data/test/a/te0.png mirrored (" in text
    assert "; 2 such input(s)" in text
    second = _near_copy(_test_image(ws, "b"), tmp_path / "second.png", mirror=True)
    assert "test image data/test/b/te0.png mirrored (" in _refused(ws, [second], "near-copy")


def test_below_16_px_near_copies_are_not_checked_but_copies_are(tmp_path):
    ws = _build(tmp_path / "ws8", res=8)
    near = _near_copy(_test_image(ws, "a"), tmp_path / "near.png", mirror=False)
    assert list(lg.guard(ws, [near], workers=1)) == [near]
    shutil.copy(_test_image(ws, "a"), tmp_path / "copy.png")
    _refused(ws, [tmp_path / "copy.png"], "is identical to a test file")
    assert not (ws.root / "cache").exists()  # no test fingerprints computed at all


# ------------------------------------------------------------------------------------- the test fingerprints
def _expected_fingerprints(ws: Workspace) -> np.ndarray:
    return np.stack([fp.fingerprint_bytes(_test_image(ws, c).read_bytes()) for c in ("a", "b")])


def test_test_fingerprints_are_cached_under_cache_leak_guard(ws):
    lg.guard(ws, ws.images("train"), workers=1)
    files = list((ws.root / "cache" / "leak_guard").iterdir())
    assert len(files) == 1 and re.fullmatch(r"test-[0-9a-f]{24}\.npy", files[0].name), files
    cached = np.load(files[0])
    assert cached.dtype == np.float32 and cached.shape == (2, 2, fp.GRID ** 2)
    np.testing.assert_allclose(cached, _expected_fingerprints(ws), atol=1e-6)
    # A cache that matches is what the guard uses (no test image is read again) ...
    expected = _expected_fingerprints(ws)
    _test_image(ws, "a").write_bytes(b"unreadable now")
    np.testing.assert_allclose(lg.test_fingerprints(ws, lg.test_rows(ws), 1), expected, atol=1e-6)
    # ... and one that does not match the test rows lives under another name.
    rows = lg.test_rows(ws)
    changed = [SplitRow(r.image, r.cls, r.split, r.source, r.source_sha256, "0" * 64) for r in rows]
    assert lg.test_cache_path(ws, changed) != files[0] and lg.test_cache_path(ws, rows) == files[0]
    assert lg.test_cache_path(ws, rows[::-1]) == files[0]


@pytest.mark.parametrize("bad", ["garbage", "shape", "dtype"])
def test_a_damaged_cache_is_recomputed(ws, tmp_path, bad):
    path = lg.test_cache_path(ws, lg.test_rows(ws))
    path.parent.mkdir(parents=True)
    good = _expected_fingerprints(ws)
    if bad == "garbage":
        path.write_bytes(b"not numpy")
    else:
        np.save(path, np.zeros((1, 2, fp.GRID ** 2), np.float32) if bad == "shape" else good.astype(np.float64))
    out = lg.test_fingerprints(ws, lg.test_rows(ws), 1)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, good, atol=1e-6)
    np.testing.assert_allclose(np.load(path), good, atol=1e-6)  # and the repaired cache is written
    # the leak is still caught through the recomputed fingerprints
    _refused(ws, [_near_copy(_test_image(ws, "b"), tmp_path / "n.png", mirror=True)], "near-copy")


def test_an_unwritable_cache_changes_nothing(ws, tmp_path):
    (ws.root / "cache").write_text("a file where the cache folder would be")
    _refused(ws, [_near_copy(_test_image(ws, "a"), tmp_path / "n.png", mirror=False)], "near-copy")


def test_a_test_image_changed_since_prepare_is_refused(ws):
    _noise(_test_image(ws, "b"), 93)
    text = _refused(ws, ws.images("train"), "changed since `augment prepare`")
    assert text == f"test image {_test_image(ws, 'b')} changed since `augment prepare` (sha256 mismatch); the test " \
                   "split must stay as prepared: restore it or re-run `augment prepare --force`"


def test_an_undecodable_test_image_is_refused(ws):
    bad = _test_image(ws, "a")
    bad.write_bytes(b"\x89PNG\r\n\x1a\n cut")
    rows = [_row(ws.root, r.image, r.cls, r.split, r.source) for r in ws.rows()]  # the manifest agrees with it
    ws = _write(ws.root, rows, ws.config["groups"])
    text = _refused(ws, ws.images("train"), "cannot decode test image")
    assert text.startswith(f"cannot decode test image {bad} (") and text.endswith("re-run `augment prepare --force`")


# --------------------------------------------------------------------------------------------- bounded reads
def test_reads_are_bounded_and_verified(tmp_path, monkeypatch):
    monkeypatch.setattr(lg, "MAX_INPUT_BYTES", 2 * 2 ** 20)
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * (2 * 2 ** 20))
    assert len(lg.read_bounded(path)) == 2 * 2 ** 20  # exactly the limit: fine
    path.write_bytes(b"x" * (2 * 2 ** 20 + 1))
    with pytest.raises(UserError) as info:
        lg.read_bounded(path)
    assert str(info.value) == f"{path} is larger than 2 MiB; that is no training image"
    with pytest.raises(UserError, match=r"^cannot read .*missing\.png \(No such file or directory\); remove or"):
        lg.read_bounded(tmp_path / "missing.png")
    path.write_bytes(b"checked")
    assert lg.read_verified(path, _sha(b"checked")) == b"checked"
    with pytest.raises(UserError) as info:
        lg.read_verified(path, _sha(b"other"))
    assert str(info.value) == f"{path} changed after the leak guard checked it (sha256 mismatch); it is not " \
                              "used — run the command again"


def test_a_workspace_without_a_test_split_guards_nothing_away(tmp_path):
    root = tmp_path / "ws"
    for seed, (image, *_) in enumerate(LAYOUT[:4], start=1):
        _noise(root / image, seed)
    rows = [_row(root, *spec) for spec in LAYOUT[:4]]
    ws = _write(root, rows, _regex_groups(rows))
    fps = lg.test_fingerprints(ws, [], 1)
    assert fps.shape == (0, 2, fp.GRID ** 2) and fps.dtype == np.float32
    assert list(lg.guard(ws, ws.images(["train", "val"]), workers=1)) == ws.images(["train", "val"])


def test_a_file_that_never_ends_costs_one_byte_more_than_the_limit(tmp_path, monkeypatch):
    """The bound is on what is read, not on what the file says it holds (a FIFO, /dev/zero, a growing file)."""
    class Endless:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, n=-1):
            assert n is not None and n >= 0, "an unbounded read of an endless file"
            return b"\0" * n

    monkeypatch.setattr(lg, "MAX_INPUT_BYTES", 1000)
    monkeypatch.setattr(lg, "open", lambda path, mode: Endless(), raising=False)
    with pytest.raises(UserError, match="is larger than 0 MiB"):
        lg.read_bounded(tmp_path / "endless")
