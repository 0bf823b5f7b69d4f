"""Dataset kinds for `augment prepare --dataset NAME`: the registry. One module each, declaring ``DATASET``.

`augment prepare` takes its ``--dataset`` choices, every dataset-specific option and its help from the
``DatasetKind`` each module declares (``augment/datasets/kind.py``); a new kind is a module and its line here.
"""
from __future__ import annotations

import importlib
from typing import Any

from augment.datasets.base import DatasetSpec, Source
from augment.datasets.kind import DatasetKind

# --dataset NAME -> module; this order is the order of the choices and options in `augment prepare --help`
KINDS = {
    "soundtracks360": "augment.datasets.soundtracks360",
    "panda4q": "augment.datasets.panda4q",
    "folder": "augment.datasets.folder",
    "csv": "augment.datasets.csv_manifest",
    "images": "augment.datasets.images",
}


def dataset_kind(name: str) -> DatasetKind:
    """The declaration of ``--dataset name``; ValueError for a name not in the registry."""
    if name not in KINDS:
        raise ValueError(f"unknown dataset kind {name!r}")
    kind = importlib.import_module(KINDS[name]).DATASET
    if kind.name != name:
        raise ValueError(f"{KINDS[name]} declares dataset {kind.name!r}, registered as {name!r}")
    return kind


def dataset_kinds() -> list[DatasetKind]:
    """Every registered kind, in registry order."""
    return [dataset_kind(name) for name in KINDS]


def build_dataset(kind: str, opts: dict[str, Any]) -> DatasetSpec:
    """Resolve a dataset from command-line options (reads only listings and label files, no audio)."""
    return dataset_kind(kind).build(opts)


__all__ = ["KINDS", "DatasetKind", "DatasetSpec", "Source", "build_dataset", "dataset_kind", "dataset_kinds"]
