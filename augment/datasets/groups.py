"""`augment prepare --group-by`: which clips belong together (one song, recording or artist).

For ``--dataset csv`` the option names a column of the manifest; for the folder kinds (and panda4q, soundtracks360)
it is a regular expression searched in each file name: the first capture group (or the whole match) is the group.
Every clip of a group lands in one split (augment.datasets.splits), and the leak guard refuses training inputs of a
group that has test clips.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from augment.datasets.base import DatasetSpec, Source, read_csv_rows
from augment.errors import UserError


def group_of_name(pattern: re.Pattern[str], name: str) -> str | None:
    """The group a file name belongs to under ``pattern``; None if it does not match."""
    m = pattern.search(name)
    if m is None:
        return None
    return m.group(1) if m.re.groups else m.group(0)


def _compile(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise UserError(f"--group-by {text!r} is not a valid regular expression ({exc}); e.g. '^(.+?)_' groups "
                        "files by the text before the first '_'") from None


def _from_names(spec: DatasetSpec, text: str) -> dict[Source, str]:
    pattern = _compile(text)
    out: dict[Source, str] = {}
    for s in spec.sources:
        g = group_of_name(pattern, Path(s.name).name)
        if not g:
            raise UserError(f"--group-by {text!r} does not match the file name {Path(s.name).name!r} (or its group "
                            "is empty); use a regular expression that matches every file name")
        out[s] = g
    return out


def _from_column(spec: DatasetSpec, column: str) -> dict[Source, str]:
    manifest = Path(spec.options["manifest"])
    columns, rows = read_csv_rows(manifest, ("path",), "manifest")
    if column not in columns:
        raise UserError(f"--group-by {column!r}: the manifest {manifest} has no such column "
                        f"(found: {', '.join(columns)})")
    by_path = {(manifest.parent / r["path"]).resolve(): r[column] for r in rows}
    out: dict[Source, str] = {}
    for s in spec.sources:
        g = by_path.get(s.path.resolve(), "")
        if not g:
            raise UserError(f"--group-by {column}: the row of {s.name} in {manifest} has an empty {column}; "
                            "give every row a group")
        out[s] = g
    return out


def resolve_groups(spec: DatasetSpec, group_by: str | None) -> tuple[dict[Source, str], dict[str, Any] | None]:
    """(source → group, the record for augment.json) — empty and None without ``--group-by``."""
    if group_by is None:
        return {}, None
    if not group_by.strip():
        raise UserError("--group-by needs a column name (csv) or a regular expression (other kinds)")
    if "manifest" in spec.options:  # --dataset csv
        groups, kind = _from_column(spec, group_by), "column"
    else:
        groups, kind = _from_names(spec, group_by), "regex"
    return groups, {"by": group_by, "kind": kind}


def assign_with_groups(spec: DatasetSpec, by_class: dict[str, list[Source]], group_by: str | None
                       ) -> tuple[dict[str, list[tuple[Source, str]]], list[tuple[str, str]], dict[str, Any] | None]:
    """(class → [(source, split)], (source, why) per excluded source, augment.json ``groups`` record or None)."""
    from augment.datasets.splits import assign_group_splits, assign_splits

    groups, record = resolve_groups(spec, group_by)
    if record is None:
        return assign_splits(by_class, spec.plan), [], None
    usable = {s: groups[s] for items in by_class.values() for s in items}
    assigned, excluded = assign_group_splits(by_class, spec.plan, usable)
    record["of"] = {s.name: g for s, g in sorted(usable.items(), key=lambda t: t[0].name)}
    return assigned, [(s.name, why) for s, why in excluded], record
