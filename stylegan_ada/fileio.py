"""Atomic file writes and hashing: the one implementation, shared by the GAN library and `augment.io_utils`.

The GAN library must not import `augment`; `augment.io_utils` builds on this module and adds its one-line
user-facing errors.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

_CHUNK = 1 << 20

# mkstemp/mkdtemp create 0600/0700 entries; final outputs get the usual umask-based modes instead
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
DIR_MODE = 0o777 & ~_UMASK


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes | memoryview) -> str:
    """Hex SHA-256 of a buffer."""
    return hashlib.sha256(data).hexdigest()


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename inside ``path`` durable (best effort: some file systems refuse directory fsync)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, check: Callable[[Path], None] | None = None) -> Iterator[int]:
    """Yield the descriptor of a temp file beside ``path``; when the block succeeds: fsync, close,
    ``check(temp_path)``, rename over ``path``, fsync the directory.

    On any failure the temp file is removed and an existing ``path`` is left untouched. The file gets the
    umask-based mode of a normally created file (not mkstemp's 0600).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    is_open = True
    try:
        os.fchmod(fd, FILE_MODE)
        yield fd
        os.fsync(fd)
        is_open = False
        os.close(fd)
        if check is not None:
            check(Path(tmp))
        os.replace(tmp, target)
    except BaseException:
        if is_open:
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data).cast("B")
    for start in range(0, len(view), _CHUNK):
        chunk = view[start:start + _CHUNK]
        while len(chunk):
            written = os.write(fd, chunk)
            chunk = chunk[written:]


def atomic_write_chunks(path: str | os.PathLike, chunks: Iterable[bytes | memoryview],
                        check: Callable[[Path], None] | None = None) -> Path:
    """Write ``chunks`` to ``path`` atomically (see :func:`atomic_file`); ``check`` vets the complete temp file.

    A full disk is reported as an ``OSError(ENOSPC)`` whose message says the previous file is intact.
    """
    target = Path(path)
    try:
        with atomic_file(target, check) as fd:
            for chunk in chunks:
                _write_all(fd, chunk)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, f"disk full while writing {target.name}; the previous file (if any) is "
                                        "intact, free some space and try again", str(target)) from exc
        raise
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


_RENAME_EXCHANGE = 2  # linux/fs.h


@functools.lru_cache(maxsize=1)
def _renameat2() -> Callable[..., int] | None:
    """libc's renameat2 (glibc >= 2.28), or None."""
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None


def exchange_paths(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Swap two existing paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where the platform or file system cannot (the caller then falls back to two renames); other
    failures raise OSError. After a crash either both names hold their old content or both the new one.
    """
    import ctypes

    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), os.fspath(a))
