"""Atomic file writes and hashing for the GAN library (which must not import `augment`)."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data).cast("B")
    for start in range(0, len(view), _CHUNK):
        chunk = view[start:start + _CHUNK]
        while len(chunk):
            written = os.write(fd, chunk)
            chunk = chunk[written:]


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_chunks(path: str | os.PathLike, chunks: Iterable[bytes | memoryview],
                        check: Callable[[Path], None] | None = None) -> Path:
    """Write ``chunks`` to a temp file beside ``path``, fsync, ``check(temp_path)``, then rename over ``path``.

    On any failure (disk full included) the temp file is removed and an existing ``path`` is left untouched;
    a full disk is reported as an ``OSError(ENOSPC)`` whose message says the previous file is intact.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        try:
            for chunk in chunks:
                _write_all(fd, chunk)
            os.fsync(fd)
        finally:
            os.close(fd)
        if check is not None:
            check(Path(tmp))
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, f"disk full while writing {target.name}; the previous file (if any) is "
                                        "intact, free some space and try again", str(target)) from exc
        raise
    _fsync_dir(target.parent)
    return target


def atomic_copy_stream(src: BinaryIO, path: str | os.PathLike, *, on_chunk: Callable[[bytes], None] | None = None,
                       check: Callable[[Path], None] | None = None) -> Path:
    """Copy a binary stream into ``path`` atomically; ``on_chunk`` sees every chunk (hash, progress), ``check``
    vets the complete temp file before it replaces ``path``."""
    def chunks():
        for block in iter(lambda: src.read(_CHUNK), b""):
            if on_chunk is not None:
                on_chunk(block)
            yield block
    return atomic_write_chunks(path, chunks(), check)
