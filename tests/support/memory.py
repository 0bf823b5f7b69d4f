"""glibc's own accounting of the allocator, to check `retain_freed_memory` by its effect rather than by a mock."""
from __future__ import annotations

from typing import Any

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4   # mallopt() parameter numbers


def glibc() -> Any:
    import ctypes
    import ctypes.util

    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def mmapped_bytes_holding(nbytes: int = 64 << 20) -> int:
    """Extra bytes glibc serves from separate mmaps (``mallinfo2().hblkhd``) while an ``nbytes`` array is held: about
    ``nbytes`` with glibc's defaults (blocks above 32 MiB are always mmapped), 0 once the heap serves everything."""
    import ctypes

    import numpy as np

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    mallinfo2 = glibc().mallinfo2
    mallinfo2.restype = Mallinfo2
    before = int(mallinfo2().hblkhd)  # older blocks mmapped before the settings changed stay counted
    held = np.ones(nbytes, dtype=np.uint8)
    try:
        return int(mallinfo2().hblkhd) - before
    finally:
        del held
