"""Atomic file writes, hashing and JSON helpers shared by every command."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from stylegan_ada.fileio import DIR_MODE, atomic_file, sha256_bytes, sha256_file

from augment.errors import UserError

__all__ = ["atomic_open", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "atomic_dir", "read_json",
           "sha256_file", "sha256_bytes", "check_writable_dir"]


def _explain_os_error(exc: OSError, target: Path) -> UserError:
    if exc.errno == errno.ENOSPC:
        return UserError(f"disk full while writing {target}; free some space and run again (nothing was overwritten)")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return UserError(f"cannot write {target}: permission denied; choose a writable location")
    return UserError(f"cannot write {target}: {exc.strerror or exc}")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temp file beside ``path``; on success fsync and rename it over ``path``
    (:func:`stylegan_ada.fileio.atomic_file`).

    On any error the temp file is removed and ``path`` is left as it was.
    OS errors (disk full, permissions) become a one-line :class:`UserError`.
    """
    target = Path(path)
    try:
        with atomic_file(target) as fd, os.fdopen(fd, mode, closefd=False) as f:
            yield f
            f.flush()
    except OSError as exc:
        raise _explain_os_error(exc, target) from exc


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def read_json(path: str | os.PathLike, *, max_bytes: int | None = None) -> Any:
    """Parse a JSON file. ValueError (never RecursionError) for invalid, absurdly nested or, with ``max_bytes``,
    oversized content; OSError when it cannot be read."""
    with open(path, "rb") as f:
        data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise ValueError(f"larger than {max_bytes} bytes")
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:
        raise ValueError("nested too deeply") from None


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike, *, archive_to: str | os.PathLike | None = None) -> Iterator[Path]:
    """Build a directory under a temp name beside ``final``; put it in place when the block succeeds.

    If ``final`` exists it is replaced only after the new content is complete, in one atomic switch
    (:mod:`augment.dir_swap`); the old content is deleted, or moved to ``archive_to``. On error or Ctrl-C the temp
    folder is removed and ``final`` is left as it was; leftovers of a killed earlier writer are cleaned first.
    """
    from augment.dir_swap import partial_prefix, recover_stale, swap_in

    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        recover_stale(final)
        tmp = Path(tempfile.mkdtemp(prefix=partial_prefix(final), suffix=".partial", dir=final.parent))
        os.chmod(tmp, DIR_MODE)
    except OSError as exc:
        raise _explain_os_error(exc, final) from exc
    try:
        yield tmp
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise _explain_os_error(exc, final) from exc
        raise
    try:
        swap_in(tmp, final, archive_to=Path(archive_to) if archive_to is not None else None)
    except OSError as exc:  # swap_in cleaned up (or left a journal for the next run): nothing is lost
        raise _explain_os_error(exc, final) from exc


def check_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and prove we can write into it, else raise a one-line UserError."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise UserError(f"directory {p} is not writable ({exc.strerror or exc}); choose another location") from exc
    return p


def read_csv_manifest(path: Path, fields: Any, *, make: str) -> list[dict[str, str]]:
    """Rows of a manifest CSV written by one of our commands; a one-line UserError naming ``make`` (the command that
    writes it) when the file is missing or lacks one of ``fields``."""
    import csv
    import io

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"no manifest at {path}; run `{make}` first") from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = set(fields) - set(reader.fieldnames or ())
    if missing:
        raise UserError(f"{path} is missing columns {sorted(missing)}; re-run `{make} --force`")
    return list(reader)

