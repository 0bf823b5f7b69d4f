"""What a valid ``augment.json`` looks like, and whether ``data/`` is what it says.

Every command loads the workspace through :meth:`augment.workspace.Workspace.load`, which calls both checks, so an
edited or half-replaced workspace is refused with one line naming the field or folder instead of failing later.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from augment.errors import UserError

SPLIT_NAMES = ("train", "val", "test")
KINDS = ("audio", "images")
TASKS = ("classification", "regression")    # `task` (absent: classification); regression also names its `target`
MAX_RESOLUTION = 8192
MEL_NUMBERS = ("sr", "duration", "offset", "n_fft", "hop", "n_mels", "top_db")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FIX = "restore it or re-run `augment prepare --force`"


def _bad(path: Path, field: str, expected: str, value: Any) -> UserError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return UserError(f"{path}: field `{field}` must be {expected}, got {shown}; {_FIX}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _object(path: Path, cfg: dict[str, Any], field: str, *, optional: bool = False) -> dict[str, Any] | None:
    value = cfg.get(field)
    if value is None and optional:
        return None
    if field not in cfg:
        raise UserError(f"{path}: field `{field}` is missing; {_FIX}")
    if not isinstance(value, dict):
        raise _bad(path, field, "an object", value)
    return value


def validate_config(cfg: Any, path: Path) -> None:
    """Raise a one-line UserError naming the first field of ``augment.json`` that is missing or of the wrong type."""
    if not isinstance(cfg, dict):
        raise UserError(f"{path} is not a JSON object; {_FIX}")
    dataset = _object(path, cfg, "dataset")
    if not isinstance(dataset.get("name"), str):
        raise _bad(path, "dataset.name", "a string", dataset.get("name"))
    if not isinstance(dataset.get("options", {}), dict):
        raise _bad(path, "dataset.options", "an object", dataset.get("options"))
    if cfg.get("kind") not in KINDS:
        raise _bad(path, "kind", " or ".join(repr(k) for k in KINDS), cfg.get("kind"))
    classes = cfg.get("classes")
    if "classes" not in cfg:
        raise UserError(f"{path}: field `classes` is missing; {_FIX}")
    if (not isinstance(classes, list) or not classes or not all(isinstance(c, str) and c for c in classes)
            or len(set(classes)) != len(classes)):
        raise _bad(path, "classes", "a non-empty list of distinct class names", classes)
    bad = [c for c in classes if c != c.strip() or c.startswith((".", "_")) or any(ch in c for ch in "/\\:\0")]
    if bad:
        raise _bad(path, "classes", "folder names (no '/', '\\', ':', leading '.' or '_')", bad[0])
    image = _object(path, cfg, "image")
    res = image.get("resolution")
    if not _is_int(res) or not 4 <= res <= MAX_RESOLUTION:  # any size: GANs train at the next power of two
        raise _bad(path, "image.resolution", f"an integer from 4 to {MAX_RESOLUTION}", res)
    if "mapping" in image and not isinstance(image["mapping"], dict):
        raise _bad(path, "image.mapping", "an object", image["mapping"])
    mel = _object(path, cfg, "mel", optional=True)
    if cfg["kind"] == "audio" and mel is None:
        raise UserError(f"{path}: field `mel` is missing (an audio workspace needs its mel settings); {_FIX}")
    for key in MEL_NUMBERS if mel is not None else ():
        if key in mel and not _is_number(mel[key]):
            raise _bad(path, f"mel.{key}", "a number", mel[key])
    if not isinstance(cfg.get("prepare", {}), dict):
        raise _bad(path, "prepare", "an object", cfg.get("prepare"))
    if "segments" in cfg:  # `augment prepare --segments/--hop-seconds` (augment.segments)
        from augment.segments import check_segments_record

        if (why := check_segments_record(cfg["segments"])) is not None:
            raise _bad(path, "segments", why, cfg["segments"])
    if cfg.get("task", "classification") not in TASKS:
        raise _bad(path, "task", " or ".join(repr(t) for t in TASKS), cfg.get("task"))
    if cfg.get("task") == "regression" and not (isinstance(cfg.get("target"), str) and cfg["target"]):
        raise _bad(path, "target", "the continuous target's name (task regression)", cfg.get("target"))
    _validate_splits(path, _object(path, cfg, "splits"), classes)


def require_audio_settings(cfg: dict[str, Any], path: Path) -> None:
    """What turning images back into sound needs (`augment listen`, `generate --audio`): every mel number and the
    image mapping; a one-line UserError naming the first one missing."""
    if not cfg.get("mel"):
        raise UserError(f"workspace {path.parent} holds plain images (no mel settings); only mel-spectrogram images "
                        "can be turned into audio")
    for key in MEL_NUMBERS:
        if not _is_number(cfg["mel"].get(key)):
            raise _bad(path, f"mel.{key}", "a number", cfg["mel"].get(key))
    if not isinstance(cfg["image"].get("mapping"), dict):
        raise UserError(f"{path}: field `image.mapping` is missing (needed to turn images into audio); {_FIX}")


def _validate_splits(path: Path, splits: dict[str, Any], classes: list[str]) -> None:
    manifest = splits.get("manifest")
    if not isinstance(manifest, str) or not manifest or Path(manifest).name != manifest or manifest in (".", ".."):
        raise _bad(path, "splits.manifest", "a file name in the workspace (e.g. 'splits.csv')", manifest)
    for key in ("sha256", "test_sha256"):
        if key in splits and not isinstance(splits[key], str):
            raise _bad(path, f"splits.{key}", "a hex string", splits[key])
    counts = splits.get("counts")
    if not isinstance(counts, dict):
        raise _bad(path, "splits.counts", "an object of per-split class counts", counts)
    for split in SPLIT_NAMES:
        per_class = counts.get(split)
        if not isinstance(per_class, dict):
            raise _bad(path, f"splits.counts.{split}", "an object of class counts", per_class)
        if set(per_class) != set(classes):
            raise _bad(path, f"splits.counts.{split}", f"counts for exactly the classes {classes}", sorted(per_class))
        for cls, n in per_class.items():
            if not _is_int(n) or n < 0:
                raise _bad(path, f"splits.counts.{split}.{cls}", "a count (integer >= 0)", n)


def png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's header, None when it is not a PNG (reads 24 bytes)."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) < 24 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def check_data(root: Path, cfg: dict[str, Any]) -> None:
    """Refuse a workspace whose data/ does not match augment.json: class folders, PNG counts per split and class,
    and the resolution (the first PNG of every class folder)."""
    classes, res = cfg["classes"], cfg["image"]["resolution"]
    counts = cfg["splits"]["counts"]
    where = f"does not match {root / 'augment.json'}"
    for split in SPLIT_NAMES:
        folder = root / "data" / split
        want = {c: counts[split][c] for c in classes}
        if not folder.is_dir():
            if any(want.values()):
                raise UserError(f"workspace {root}: {folder} is missing; {_FIX}")
            continue
        extra = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in want)
        if extra:
            raise UserError(f"workspace {root}: {folder / extra[0]} is not a class of this workspace ({where}); "
                            f"{_FIX}")
        for cls, n in want.items():
            pngs = sorted(e.name for e in os.scandir(folder / cls) if e.name.endswith(".png")) \
                if (folder / cls).is_dir() else []
            if len(pngs) != n:
                raise UserError(f"workspace {root}: {folder / cls} holds {len(pngs)} PNG(s) but augment.json counts "
                                f"{n}; {_FIX}")
            size = png_size(folder / cls / pngs[0]) if pngs else (res, res)
            if size != (res, res):
                shown = f"{size[0]}x{size[1]}" if size else "not a PNG"
                raise UserError(f"workspace {root}: {folder / cls / pngs[0]} is {shown} but augment.json says "
                                f"{res}x{res} ({where}); {_FIX}")
