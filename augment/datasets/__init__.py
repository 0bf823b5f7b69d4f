"""Dataset kinds for `augment prepare --dataset NAME`: one module each, all returning a DatasetSpec."""
from __future__ import annotations

import importlib
from typing import Any

from augment.datasets.base import DatasetSpec, Source

KINDS = {
    "soundtracks360": "augment.datasets.soundtracks360",
    "panda4q": "augment.datasets.panda4q",
    "folder": "augment.datasets.folder",
    "csv": "augment.datasets.csv_manifest",
    "images": "augment.datasets.images",
}


def build_dataset(kind: str, opts: dict[str, Any]) -> DatasetSpec:
    """Resolve a dataset from command-line options (reads only listings and label files, no audio)."""
    if kind not in KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}")
    return importlib.import_module(KINDS[kind]).build(opts)


__all__ = ["KINDS", "DatasetSpec", "Source", "build_dataset"]
