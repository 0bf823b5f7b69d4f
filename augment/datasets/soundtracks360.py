"""The 360-set (Eerola & Vuoskoski 2011, Stimulus Set 1): labels from mean_ratings_set1.csv, protocols.md.

emotions: argmax of the mean discrete ratings (ties: first of anger, fear, happy, sad, tender) → 51/93/65/75/76;
valence / energy / tension: low if mean < LOW, high if mean >= HIGH, else medium (default 3 and 5; valence classes are
negative / neutral / positive) → valence 104/118/138. Test 40 per class (emotions) or 50 (dimensions), seed 0.
``--continuous``: the dimension's mean rating is the target (regression), split within its 5 quantile bins, test 30
per bin.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from augment.datasets.base import DatasetSpec, Source, binned_sources, read_csv_rows, require_dir, require_file
from augment.datasets.kind import DatasetKind, DatasetOption
from augment.datasets.splits import plan_from_options
from augment.errors import UserError

EMOTIONS = ("anger", "fear", "happy", "sad", "tender")
DIMENSIONS = ("valence", "energy", "tension")
TARGETS = ("emotions",) + DIMENSIONS
DIMENSION_CLASSES = {
    "valence": ("negative", "neutral", "positive"),
    "energy": ("low", "medium", "high"),
    "tension": ("low", "medium", "high"),
}
DEFAULT_THRESHOLDS = (3.0, 5.0)
TEST_PER_CLASS = {"emotions": 40, "valence": 50, "energy": 50, "tension": 50}
TEST_PER_BIN = 30   # --continuous: 5 quantile bins x 30 = the 150 test clips of the 3-class protocol


def parse_thresholds(text: str) -> tuple[float, float]:
    """``--thresholds LOW,HIGH`` → (low, high); one UserError line otherwise."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--thresholds must be LOW,HIGH (e.g. 3,5), got {text!r}") from None
    return low, high


def _number(row: dict[str, str], column: str, line: int, path: Path) -> float:
    try:
        return float(row[column])
    except ValueError:
        raise UserError(f"ratings file {path} line {line}: column {column!r} is {row[column]!r}, "
                        "not a number") from None


def _rated(path: Path, columns: tuple[str, ...]) -> list[tuple[int, int, dict[str, str]]]:
    """(line, excerpt number, row) of every rating row; one UserError line for a bad or repeated number."""
    _, rows = read_csv_rows(path, ("number",) + columns, "ratings file")
    out, seen = [], set()
    for line, row in enumerate(rows, start=2):
        try:
            number = int(row["number"])
        except ValueError:
            raise UserError(f"ratings file {path} line {line}: number {row['number']!r} is not an integer") from None
        if number in seen:
            raise UserError(f"ratings file {path} line {line}: excerpt {number} appears twice")
        seen.add(number)
        out.append((line, number, row))
    return out


def mean_ratings(path: Path, target: str) -> dict[int, float]:
    """{excerpt number: mean rating} of one dimension (``--continuous``)."""
    if target not in DIMENSIONS:
        raise UserError(f"--continuous needs a dimension --target ({', '.join(DIMENSIONS)}), got {target!r}; the "
                        "emotions target is categorical")
    values = {}
    for line, number, row in _rated(path, (target,)):
        values[number] = _number(row, target, line, path)
        if not math.isfinite(values[number]):
            raise UserError(f"ratings file {path} line {line}: column {target!r} is {row[target]!r}, not a finite "
                            "number")
    return values


def label_ratings(path: Path, target: str, thresholds: tuple[float, float] = DEFAULT_THRESHOLDS
                  ) -> tuple[list[str], dict[int, str]]:
    """(classes, {excerpt number: class}) from the ratings CSV (UTF-8 with or without BOM)."""
    if target not in TARGETS:
        raise UserError(f"unknown --target {target!r}; choose one of {', '.join(TARGETS)}")
    low, high = thresholds
    if not low < high:
        raise UserError(f"--thresholds must be LOW,HIGH with LOW < HIGH, got {low:g},{high:g}")
    labels: dict[int, str] = {}
    for line, number, row in _rated(path, EMOTIONS if target == "emotions" else (target,)):
        if target == "emotions":
            scores = [_number(row, e, line, path) for e in EMOTIONS]
            labels[number] = EMOTIONS[scores.index(max(scores))]  # index() takes the first maximum: ties → order
        else:
            value = _number(row, target, line, path)
            names = DIMENSION_CLASSES[target]
            labels[number] = names[0] if value < low else names[2] if value >= high else names[1]
    classes = list(EMOTIONS if target == "emotions" else DIMENSION_CLASSES[target])
    return classes, labels


def _audio_by_number(audio_dir: Path) -> dict[int, Path]:
    """NNN.<ext> (any audio extension; '1.mp3' and '001.mp3' both work) → excerpt number."""
    from augment.audio.decode import AUDIO_EXTENSIONS

    out: dict[int, Path] = {}
    for p in sorted(audio_dir.iterdir()):
        if p.is_file() and p.stem.isdigit() and p.suffix.lower() in AUDIO_EXTENSIONS:
            out.setdefault(int(p.stem), p)
    return out


def build(opts: dict[str, Any]) -> DatasetSpec:
    audio_dir = require_dir(opts.get("audio_dir"), "--audio-dir")
    ratings = require_file(opts.get("ratings"), "--ratings")
    target = opts.get("target") or "emotions"
    continuous = bool(opts.get("continuous"))
    if continuous and opts.get("thresholds") is not None:
        raise UserError("--thresholds does not apply with --continuous (the mean rating itself is the target)")
    thresholds = tuple(opts.get("thresholds") or DEFAULT_THRESHOLDS)
    values = mean_ratings(ratings, target) if continuous else {}
    classes, labels = ([], dict.fromkeys(values, "")) if continuous else \
        label_ratings(ratings, target, thresholds)  # type: ignore[arg-type]
    audio = _audio_by_number(audio_dir)
    sources, notes = [], []
    for number, cls in sorted(labels.items()):
        path = audio.get(number)
        if path is None:
            notes.append((f"{number:03d}.mp3", f"rated in {ratings.name} but no audio file in {audio_dir}; skipped"))
            continue
        sources.append(Source(path, path.name, cls, target=values.get(number)))
    if continuous:  # stratified by quantile bins of the mean rating
        classes, sources = binned_sources(sources)
    plan = plan_from_options(opts, TEST_PER_BIN if continuous else TEST_PER_CLASS[target],
                             protocol=f"360-set {target}" + (" (continuous)" if continuous else ""))
    options = {"audio_dir": str(audio_dir), "ratings": str(ratings), "target": target,
               "thresholds": list(thresholds) if target != "emotions" and not continuous else None,
               "split": plan.to_dict(), **({"continuous": True, "bins": len(classes)} if continuous else {})}
    return DatasetSpec(name="soundtracks360", kind="audio", classes=classes, sources=sources, plan=plan,
                       options=options, path_options=("audio_dir", "ratings"), notes=notes,
                       target=target if continuous else None)


DATASET = DatasetKind(
    name="soundtracks360", summary="360-set + ratings", input="audio", build=build,
    test_size="40 for emotions, 50 for a dimension",
    options=(
        DatasetOption("--audio-dir", "audio folder of NNN.mp3", type="dir"),
        DatasetOption("--ratings", "mean_ratings_set1.csv (UTF-8, BOM allowed)", type="file"),
        DatasetOption("--target", "labels: argmax of the 5 emotion ratings, or 3 classes of one dimension",
                      type="choice", choices=TARGETS, default="emotions"),
        DatasetOption("--thresholds", "valence/energy/tension: LOW,HIGH — low if mean < LOW, high if mean >= HIGH",
                      default="3,5", parse=parse_thresholds),
    ))
