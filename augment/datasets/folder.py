"""Labelled audio in class folders: ``--audio-dir DIR`` with ``DIR/<class>/**/*.<audio>``; generic splits."""
from __future__ import annotations

from typing import Any

from augment.datasets.base import DatasetSpec, class_folder_spec
from augment.datasets.kind import DatasetKind, DatasetOption

DEFAULT_TEST = 0.2


def build(opts: dict[str, Any]) -> DatasetSpec:
    return class_folder_spec(opts, key="audio_dir", kind="audio", name="folder", default_test=DEFAULT_TEST)


DATASET = DatasetKind(
    name="folder", summary="audio in <class>/ subfolders", input="audio", build=build, test_size=f"{DEFAULT_TEST:g}",
    options=(DatasetOption("--audio-dir", "audio in <class>/ subfolders", type="dir"),))
