"""The 360-set (Eerola & Vuoskoski 2011, Stimulus Set 1): labels from mean_ratings_set1.csv, protocols.md.

emotions: argmax of the mean discrete ratings (ties: first of anger, fear, happy, sad, tender) → 51/93/65/75/76;
valence / energy / tension: low if mean < LOW, high if mean >= HIGH, else medium (default 3 and 5; valence classes are
negative / neutral / positive) → valence 104/118/138. Test 40 per class (emotions) or 50 (dimensions), seed 0.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from augment.datasets.base import DatasetSpec, Source, read_csv_rows, require_dir, require_file
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


def label_ratings(path: Path, target: str, thresholds: tuple[float, float] = DEFAULT_THRESHOLDS
                  ) -> tuple[list[str], dict[int, str]]:
    """(classes, {excerpt number: class}) from the ratings CSV (UTF-8 with or without BOM)."""
    if target not in TARGETS:
        raise UserError(f"unknown --target {target!r}; choose one of {', '.join(TARGETS)}")
    low, high = thresholds
    if not low < high:
        raise UserError(f"--thresholds must be LOW,HIGH with LOW < HIGH, got {low:g},{high:g}")
    needed = ("number",) + (EMOTIONS if target == "emotions" else (target,))
    _, rows = read_csv_rows(path, needed, "ratings file")
    labels: dict[int, str] = {}
    for line, row in enumerate(rows, start=2):
        try:
            number = int(row["number"])
        except ValueError:
            raise UserError(f"ratings file {path} line {line}: number {row['number']!r} is not an integer") from None
        if number in labels:
            raise UserError(f"ratings file {path} line {line}: excerpt {number} appears twice")
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
    thresholds = tuple(opts.get("thresholds") or DEFAULT_THRESHOLDS)
    classes, labels = label_ratings(ratings, target, thresholds)  # type: ignore[arg-type]
    audio = _audio_by_number(audio_dir)
    sources, notes = [], []
    for number, cls in sorted(labels.items()):
        path = audio.get(number)
        if path is None:
            notes.append((f"{number:03d}.mp3", f"rated in {ratings.name} but no audio file in {audio_dir}; skipped"))
            continue
        sources.append(Source(path, path.name, cls))
    plan = plan_from_options(opts, TEST_PER_CLASS[target], protocol=f"360-set {target}")
    options = {"audio_dir": str(audio_dir), "ratings": str(ratings), "target": target,
               "thresholds": list(thresholds) if target != "emotions" else None, "split": plan.to_dict()}
    return DatasetSpec(name="soundtracks360", kind="audio", classes=classes, sources=sources, plan=plan,
                       options=options, path_options=("audio_dir", "ratings"), notes=notes)


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
