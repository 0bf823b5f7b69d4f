"""Helpers for the MusiCNN tests: where the wheel and the fixtures are, and a tiny writer of TF tensor bundles
(an independent encoder of the format, used to build valid and hostile checkpoints)."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from tests.support.paths import SHARED

MUSICNN_FIXTURES = SHARED / "fixtures" / "musicnn"
FIXTURE_NPZ = MUSICNN_FIXTURES / "musicnn_io.npz"
DTYPE_CODES = {"float32": 1, "int32": 3, "float16": 19}
MAGIC = 0xDB4775248B80FB57


def wheel_path() -> Path:
    """The musicnn wheel (`make test` fetches it with `classify weights fetch musicnn`)."""
    from stylegan_ada.musicnn.weights import find_wheel

    path = find_wheel()
    assert path is not None, "the musicnn wheel is missing: run `classify weights fetch musicnn` (make test does)"
    return path


def crc32c_reference(data: bytes) -> int:
    """Bitwise CRC-32C straight from the definition (slow; for short inputs)."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_varint(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value & ((1 << 64) - 1))


def field_bytes(number: int, value: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(value)) + value


def entry_proto(dtype: int, shape: list[int], offset: int, size: int, crc: int | None, shard: int = 0) -> bytes:
    dims = b"".join(field_bytes(2, field_varint(1, d)) for d in shape)
    out = field_varint(1, dtype) + field_bytes(2, dims) + (field_varint(3, shard) if shard else b"")
    out += field_varint(4, offset) + field_varint(5, size)
    if crc is not None:
        out += varint(6 << 3 | 5) + struct.pack("<I", crc)
    return out


def block(entries: list[tuple[bytes, bytes]], *, crc_ok: bool = True, kind: int = 0) -> bytes:
    """A table block (no prefix sharing, one restart point) plus its 5-byte trailer."""
    body = b"".join(varint(0) + varint(len(k)) + varint(len(v)) + k + v for k, v in entries)
    body += struct.pack("<I", 0) + struct.pack("<I", 1)
    crc = mask(crc32c_reference(body + bytes([kind])))
    return body + bytes([kind]) + struct.pack("<I", crc if crc_ok else crc ^ 1)


def handle(offset: int, size: int) -> bytes:
    return varint(offset) + varint(size)


def table(entries: list[tuple[bytes, bytes]]) -> bytes:
    """An SSTable with one data block, an empty metaindex and an index block."""
    data = block(entries)
    meta = block([])
    index = block([(entries[-1][0] + b"\x00", handle(0, len(data) - 5))])
    meta_off = len(data)
    index_off = meta_off + len(meta)
    footer = handle(meta_off, len(meta) - 5) + handle(index_off, len(index) - 5)
    footer += b"\x00" * (40 - len(footer)) + struct.pack("<Q", MAGIC)
    return data + meta + index + footer


def bundle(tensors: dict[str, np.ndarray]) -> tuple[bytes, bytes]:
    """(index bytes, data bytes) of a valid one-shard checkpoint holding ``tensors``."""
    header = field_varint(1, 1) + field_bytes(3, field_varint(1, 1))
    entries = [(b"", header)]
    data = b""
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name]).tobytes()
        entries.append((name.encode(), entry_proto(DTYPE_CODES[str(tensors[name].dtype)],
                                                   list(tensors[name].shape), len(data), len(raw),
                                                   mask(crc32c_reference(raw)))))
        data += raw
    return table(entries), data
