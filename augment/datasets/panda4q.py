"""Panda et al. (2018) 4-quadrant MER set with the 4Q-small / 4Q-full protocols of protocols.md.

Labels come from the annotations CSV (Song, Quadrant); audio is found by song id anywhere under --audio-dir
(the distributed layout is Q1..Q4/<Song>.mp3). Test: 40 per class, seed 0. Small: training pools of
Q1 25, Q2 11, Q3 35, Q4 36 drawn with seed 0 from the non-test clips; full: every non-test clip. Train/val 80/20.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from augment.datasets.base import DatasetSpec, Source, files_under, read_csv_rows, relative_name, require_dir, \
    require_file
from augment.datasets.kind import DatasetKind, DatasetOption
from augment.datasets.splits import plan_from_options
from augment.errors import UserError

CLASSES = ("Q1", "Q2", "Q3", "Q4")
PROTOCOLS = ("small", "full")
SMALL_POOLS = {"Q1": 25, "Q2": 11, "Q3": 35, "Q4": 36}
TEST_PER_CLASS = 40


def _index_audio(audio_dir: Path) -> dict[str, list[Path]]:
    from augment.audio.decode import AUDIO_EXTENSIONS

    index: dict[str, list[Path]] = {}
    for p in files_under(audio_dir):
        if p.suffix.lower() in AUDIO_EXTENSIONS or p.stat().st_size == 0:
            index.setdefault(p.stem, []).append(p)
    return index


def build(opts: dict[str, Any]) -> DatasetSpec:
    audio_dir = require_dir(opts.get("audio_dir"), "--audio-dir")
    annotations = require_file(opts.get("annotations"), "--annotations")
    protocol = opts.get("protocol") or "small"
    if protocol not in PROTOCOLS:
        raise UserError(f"unknown --protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    _, rows = read_csv_rows(annotations, ("Song", "Quadrant"), "annotations file")
    index = _index_audio(audio_dir)
    sources: list[Source] = []
    notes: list[tuple[str, str]] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        song, quadrant = row["Song"], row["Quadrant"]
        if quadrant not in CLASSES:
            notes.append((song or f"line {line}", f"{annotations.name} line {line}: quadrant {quadrant!r} is not "
                                                  f"one of {', '.join(CLASSES)}; skipped"))
            continue
        if song in seen:
            notes.append((song, f"listed twice in {annotations.name}; the first entry is used"))
            continue
        seen.add(song)
        candidates = index.get(song, [])
        if not candidates:
            notes.append((song, f"annotated in {annotations.name} but no audio file under {audio_dir}; skipped"))
            continue
        # prefer the copy inside its own quadrant's folder
        path = next((p for p in candidates if p.parent.name == quadrant), candidates[0])
        sources.append(Source(path, relative_name(path, audio_dir), quadrant))
    pools = SMALL_POOLS if protocol == "small" else None
    plan = plan_from_options(opts, TEST_PER_CLASS, pool=pools, protocol=f"4Q-{protocol}")
    options = {"audio_dir": str(audio_dir), "annotations": str(annotations), "protocol": protocol,
               "split": plan.to_dict()}
    return DatasetSpec(name="panda4q", kind="audio", classes=list(CLASSES), sources=sources, plan=plan,
                       options=options, path_options=("audio_dir", "annotations"), notes=notes)


DATASET = DatasetKind(
    name="panda4q", summary="4Q MER set", input="audio", build=build, test_size=str(TEST_PER_CLASS),
    options=(
        DatasetOption("--audio-dir", "Q1..Q4/<Song>.mp3 (songs found by id anywhere below)", type="dir"),
        DatasetOption("--annotations", "panda_dataset_taffc_annotations.csv (columns Song, Quadrant)", type="file"),
        DatasetOption("--protocol", "4Q-small (train pools Q1 25, Q2 11, Q3 35, Q4 36) or 4Q-full (all non-test "
                      "clips)", type="choice", choices=PROTOCOLS, default="small"),
    ))
