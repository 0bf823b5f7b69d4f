"""What a dataset module declares so that `augment prepare` can offer it: its name, input, options and builder.

Each dataset module defines ``DATASET = DatasetKind(...)``; the registry (``augment.datasets``) lists the modules and
the CLI derives ``--dataset``'s choices, every dataset-specific option, their help and the "does not apply to"
check from these declarations, so a new dataset kind is one module (and its line in the registry).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Sequence

from augment.datasets.base import DatasetSpec

OPTION_TYPES = ("dir", "file", "choice", "text")


@dataclass(frozen=True)
class DatasetOption:
    """One `augment prepare` option that only some dataset kinds take.

    Several kinds may declare the same flag (``--audio-dir``): they must agree on ``type`` and ``choices``; the help
    shown is each kind's ``help`` prefixed with its name."""

    flag: str                                   # "--audio-dir"
    help: str                                   # this kind's part of the help text
    type: str = "text"                          # one of OPTION_TYPES: dir/file are paths the builder checks
    choices: tuple[str, ...] = ()               # for type "choice"
    default: str | None = None                  # shown as [default: ...]; the builder applies it
    parse: Callable[[str], Any] | None = None   # text -> value handed to the builder (one UserError line if bad)

    def __post_init__(self) -> None:
        if not self.flag.startswith("--") or self.type not in OPTION_TYPES or bool(self.choices) != (
                self.type == "choice"):
            raise ValueError(f"bad dataset option declaration {self!r}")

    @property
    def dest(self) -> str:
        """The keyword name of the option (``--audio-dir`` → ``audio_dir``)."""
        return self.flag[2:].replace("-", "_")


@dataclass(frozen=True)
class DatasetKind:
    """A dataset kind: ``--dataset NAME``."""

    name: str
    summary: str                                # a few words for `--dataset`'s help
    input: str                                  # "audio" (mel options apply) or "images"
    options: tuple[DatasetOption, ...]
    test_size: str                              # its --test-size default, in words, for the help
    build: Callable[[dict[str, Any]], DatasetSpec]

    def parse_options(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` with this kind's given options turned into what ``build`` takes (``parse``)."""
        out = dict(values)
        for opt in self.options:
            if opt.parse is not None and out.get(opt.dest) is not None:
                out[opt.dest] = opt.parse(out[opt.dest])
        return out


def merged_options(kinds: Iterable[DatasetKind]) -> list[DatasetOption]:
    """Every dataset-specific flag once as the CLI offers it, in first-declared order; its help is each declaring
    kind's part (with its default) prefixed by the kind's name."""
    by_flag: dict[str, list[tuple[str, DatasetOption]]] = {}
    for kind in kinds:
        for opt in kind.options:
            by_flag.setdefault(opt.flag, []).append((kind.name, opt))
    merged = []
    for flag, decls in by_flag.items():
        first = decls[0][1]
        if any((o.type, o.choices) != (first.type, first.choices) for _, o in decls):
            raise ValueError(f"dataset kinds declare {flag} differently: {[name for name, _ in decls]}")
        parts = [f"{name}: {o.help}" + (f"  [default: {o.default}]" if o.default else "") for name, o in decls]
        merged.append(replace(first, help="; ".join(parts), default=None, parse=None))
    return merged


def options_not_applying(kind: DatasetKind, given: Sequence[str]) -> list[str]:
    """The flags among ``given`` (option dests) that ``kind`` does not take, sorted."""
    own = {o.dest for o in kind.options}
    return ["--" + d.replace("_", "-") for d in sorted(set(given) - own)]
