"""Labelled audio in class folders: ``--audio-dir DIR`` with ``DIR/<class>/**/*.<audio>``; generic splits."""
from __future__ import annotations

from typing import Any

from augment.datasets.base import DatasetSpec, class_folder_sources, require_dir
from augment.datasets.splits import plan_from_options

DEFAULT_TEST = 0.2


def build(opts: dict[str, Any]) -> DatasetSpec:
    audio_dir = require_dir(opts.get("audio_dir"), "--audio-dir")
    classes, sources, notes = class_folder_sources(audio_dir, "--audio-dir")
    plan = plan_from_options(opts, DEFAULT_TEST)
    options = {"audio_dir": str(audio_dir), "split": plan.to_dict()}
    return DatasetSpec(name=opts.get("name") or "folder", kind="audio", classes=classes, sources=sources,
                       plan=plan, options=options, path_options=("audio_dir",), notes=notes)
