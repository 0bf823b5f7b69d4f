"""`retain_freed_memory` checked by its effect on glibc's allocator (``mallinfo2``), not by a mock: large blocks
come from the heap instead of fresh mmaps, so a step that frees and reallocates its activations does not page-fault
them back in."""
from __future__ import annotations

from tests.support.memory import mmapped_bytes_holding


def test_large_blocks_come_from_the_heap_after_retain_freed_memory(glibc_default_malloc):  # noqa: F811
    from stylegan_ada.ops.cpu_memory import retain_freed_memory

    assert mmapped_bytes_holding() >= 64 << 20  # glibc's default: a 64 MiB block is its own mmap
    assert retain_freed_memory() is True
    assert mmapped_bytes_holding() == 0
    assert retain_freed_memory() is True and mmapped_bytes_holding() == 0  # idempotent
