"""Reader of TensorFlow's V2 checkpoint format (tensor bundle) without TensorFlow.

A checkpoint ``<prefix>`` is two files. ``<prefix>.index`` is an SSTable (LevelDB's table format): data blocks of
prefix-compressed key/value entries, an index block pointing at them, and a 48-byte footer ending in a magic number;
every block carries a compression byte and a masked CRC-32C. Key ``""`` holds a ``BundleHeaderProto`` (number of
shards, endianness), every other key is a tensor name whose value is a ``BundleEntryProto`` (dtype, shape, shard,
offset, size, masked CRC-32C of the bytes). ``<prefix>.data-00000-of-00001`` holds the raw little-endian tensors.

Everything a file says is checked before it is used: offsets and sizes lie inside the files, blocks are visited once
and in order, keys are strictly increasing, shapes agree with byte sizes, checksums match. Work and memory are
therefore bounded by the sizes of the two files, and a malformed or hostile file gives one
:class:`CheckpointError` line. Nothing in the files is executed.
"""
from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from stylegan_ada.musicnn.crc32c import masked_crc32c

__all__ = ["CheckpointError", "TensorEntry", "Checkpoint", "parse_index", "open_checkpoint",
           "open_checkpoint_dir", "open_checkpoint_in_zip", "MAX_INDEX_BYTES", "MAX_DATA_BYTES"]

MAX_INDEX_BYTES = 2 << 20       # the index of a checkpoint with thousands of tensors is a few hundred KB
MAX_KEY_BYTES = 4096            # tensor names are short; keys grow by prefix sharing, so bound them
MAX_TENSORS = 20000             # musicnn's checkpoints hold 86 and 150 (Adam slots included)
MAX_DATA_BYTES = 2 << 30        # refuse shards larger than this before reading them
MAX_RANK = 32
_FOOTER = 48
_MAGIC = 0xDB4775248B80FB57
_TRAILER = 5                    # compression type byte + masked crc32c
DTYPES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string", 9: "int64",
          10: "bool", 17: "uint16", 19: "float16", 22: "uint32", 23: "uint64"}


class CheckpointError(ValueError):
    """The checkpoint is malformed, truncated, unsupported or corrupt; the message is one line."""


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc32c: int | None          # masked, as stored; None when the writer left it out

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


class _Reader:
    """Cursor over bytes whose every read is bounds-checked; errors name ``what``."""

    def __init__(self, data: bytes | memoryview, what: str):
        self.data, self.pos, self.what = memoryview(data), 0, what

    def done(self) -> bool:
        return self.pos >= len(self.data)

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise CheckpointError(f"{self.what}: truncated (needs {n} bytes at {self.pos} of {len(self.data)})")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def varint(self, bits: int = 64) -> int:
        result = shift = 0
        while True:
            if shift >= bits + 7:
                raise CheckpointError(f"{self.what}: varint longer than {bits} bits")
            b = self.take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
        if result >> bits:
            raise CheckpointError(f"{self.what}: varint does not fit {bits} bits")
        return result


def _proto_fields(data: bytes | memoryview, what: str) -> list[tuple[int, int, object]]:
    """Decode one protobuf message level: (field number, wire type, int or bytes) in file order."""
    r = _Reader(data, what)
    fields = []
    while not r.done():
        key = r.varint()
        number, wire = key >> 3, key & 7
        if number == 0:
            raise CheckpointError(f"{what}: protobuf field number 0")
        if wire == 0:
            value: object = r.varint()
        elif wire == 1:
            value = struct.unpack("<Q", r.take(8))[0]
        elif wire == 2:
            value = bytes(r.take(r.varint()))
        elif wire == 5:
            value = struct.unpack("<I", r.take(4))[0]
        else:
            raise CheckpointError(f"{what}: unsupported protobuf wire type {wire}")
        fields.append((number, wire, value))
    return fields


def _signed(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


def _parse_shape(data: bytes, what: str) -> tuple[int, ...]:
    dims = []
    for number, wire, value in _proto_fields(data, what):
        if number == 2 and wire == 2:
            size = 0
            for n2, w2, v2 in _proto_fields(value, what):  # type: ignore[arg-type]
                if n2 == 1 and w2 == 0:
                    size = _signed(v2)  # type: ignore[arg-type]
            if size < 0:
                raise CheckpointError(f"{what}: unknown or negative dimension {size}")
            dims.append(size)
        elif number == 3 and wire == 0 and value:
            raise CheckpointError(f"{what}: shape of unknown rank")
        if len(dims) > MAX_RANK:
            raise CheckpointError(f"{what}: more than {MAX_RANK} dimensions")
    return tuple(dims)


def _parse_entry(name: str, value: bytes) -> TensorEntry:
    what = f"tensor {name!r}"
    dtype, shape, shard, offset, size, crc, sliced = 0, (), 0, 0, 0, None, False
    for number, wire, v in _proto_fields(value, what):
        if number == 1 and wire == 0:
            dtype = int(v)  # type: ignore[arg-type]
        elif number == 2 and wire == 2:
            shape = _parse_shape(v, what)  # type: ignore[arg-type]
        elif number == 3 and wire == 0:
            shard = _signed(int(v))  # type: ignore[arg-type]
        elif number == 4 and wire == 0:
            offset = _signed(int(v))  # type: ignore[arg-type]
        elif number == 5 and wire == 0:
            size = _signed(int(v))  # type: ignore[arg-type]
        elif number == 6 and wire == 5:
            crc = int(v)  # type: ignore[arg-type]
        elif number == 7:
            sliced = True
    if dtype not in DTYPES:
        raise CheckpointError(f"{what}: unsupported dtype code {dtype}")
    if sliced:
        raise CheckpointError(f"{what}: partitioned (sliced) variables are not supported")
    if shard < 0 or offset < 0 or size < 0:
        raise CheckpointError(f"{what}: negative shard, offset or size")
    entry = TensorEntry(name, DTYPES[dtype], shape, shard, offset, size, crc)
    if entry.dtype != "string" and entry.numel * np.dtype(entry.dtype).itemsize != size:
        raise CheckpointError(f"{what}: shape {list(shape)} of {entry.dtype} needs "
                              f"{entry.numel * np.dtype(entry.dtype).itemsize} bytes, the entry says {size}")
    return entry


def _block(data: memoryview, offset: int, size: int, what: str, limit: int) -> memoryview:
    """The contents of the block at (offset, size), its trailer verified; it must end at or before ``limit``."""
    if offset < 0 or size < 0 or offset + size + _TRAILER > limit:
        raise CheckpointError(f"{what}: block [{offset}, +{size}] lies outside the index file")
    contents = data[offset:offset + size]
    kind = data[offset + size]
    stored = struct.unpack("<I", data[offset + size + 1:offset + size + _TRAILER])[0]
    if masked_crc32c(bytes(data[offset:offset + size + 1])) != stored:
        raise CheckpointError(f"{what}: block checksum mismatch (the index file is corrupt)")
    if kind != 0:
        raise CheckpointError(f"{what}: compressed blocks (type {kind}) are not supported")
    return contents


def _block_entries(contents: memoryview, what: str, limit: int = MAX_TENSORS + 1) -> list[tuple[bytes, memoryview]]:
    """Key/value pairs of one block (keys are stored as a shared prefix length plus the rest)."""
    if len(contents) < 4:
        raise CheckpointError(f"{what}: block too short")
    n_restarts = struct.unpack("<I", contents[-4:])[0]
    end = len(contents) - 4 - 4 * n_restarts
    if n_restarts < 1 or end < 0:
        raise CheckpointError(f"{what}: bad restart count {n_restarts}")
    r = _Reader(contents[:end], what)
    out: list[tuple[bytes, memoryview]] = []
    key = b""
    while not r.done():
        shared, unshared, vlen = r.varint(32), r.varint(32), r.varint(32)
        if shared > len(key):
            raise CheckpointError(f"{what}: key shares {shared} bytes with a {len(key)}-byte key")
        if shared + unshared > MAX_KEY_BYTES:
            raise CheckpointError(f"{what}: a key longer than {MAX_KEY_BYTES} bytes")
        new_key = key[:shared] + bytes(r.take(unshared))
        if out and new_key <= key:
            raise CheckpointError(f"{what}: keys are not strictly increasing")
        key = new_key
        out.append((key, r.take(vlen)))
        if len(out) > limit:
            raise CheckpointError(f"{what}: more than {MAX_TENSORS} tensors")
    return out


def _block_handle(value: bytes | memoryview, what: str) -> tuple[int, int]:
    r = _Reader(value, what)
    return r.varint(), r.varint()


def parse_index(index: bytes, source: str = "index") -> tuple[dict[str, int], list[TensorEntry]]:
    """(header, tensor entries in key order) of a ``.index`` file's bytes; CheckpointError if malformed."""
    if len(index) > MAX_INDEX_BYTES:
        raise CheckpointError(f"{source}: {len(index)} bytes is larger than any plausible checkpoint index")
    data = memoryview(index)
    if len(data) < _FOOTER or struct.unpack("<Q", data[-8:])[0] != _MAGIC:
        raise CheckpointError(f"{source}: not a TensorFlow checkpoint index (no table magic number at the end)")
    footer = _Reader(data[-_FOOTER:-8], f"{source} footer")
    meta_off, meta_size = footer.varint(), footer.varint()
    index_off, index_size = footer.varint(), footer.varint()
    if any(data[len(data) - _FOOTER + footer.pos:-8]):
        raise CheckpointError(f"{source} footer: padding is not zero")
    limit = len(data) - _FOOTER
    _block(data, meta_off, meta_size, f"{source} metaindex block", limit)  # unused by bundles, but checked
    index_entries = _block_entries(_block(data, index_off, index_size, f"{source} index block", limit),
                                   f"{source} index block")
    header: dict[str, int] | None = None
    entries: list[TensorEntry] = []
    last_key: bytes | None = None
    next_free = 0
    for _sep, handle in index_entries:
        off, size = _block_handle(handle, f"{source} block handle")
        if off < next_free or off + size + _TRAILER > index_off:
            raise CheckpointError(f"{source}: data blocks overlap or run into the index block")
        next_free = off + size + _TRAILER
        block_entries = _block_entries(_block(data, off, size, f"{source} data block", limit), f"{source}",
                                       MAX_TENSORS + 1 - len(entries))
        for key, value in block_entries:
            if last_key is not None and key <= last_key:
                raise CheckpointError(f"{source}: keys are not strictly increasing across blocks")
            last_key = key
            if key == b"":
                header = _parse_header(bytes(value), source)
                continue
            try:
                name = key.decode("utf-8")
            except UnicodeDecodeError:
                raise CheckpointError(f"{source}: a tensor name is not UTF-8") from None
            entries.append(_parse_entry(name, bytes(value)))
    if header is None:
        raise CheckpointError(f"{source}: no bundle header (empty key) in the index")
    return header, entries


def _parse_header(value: bytes, source: str) -> dict[str, int]:
    header = {"num_shards": 0, "endianness": 0, "version": 0}
    for number, wire, v in _proto_fields(value, f"{source} header"):
        if number == 1 and wire == 0:
            header["num_shards"] = _signed(int(v))  # type: ignore[arg-type]
        elif number == 2 and wire == 0:
            header["endianness"] = int(v)  # type: ignore[arg-type]
        elif number == 3 and wire == 2:
            for n2, w2, v2 in _proto_fields(v, f"{source} header version"):  # type: ignore[arg-type]
                if n2 == 1 and w2 == 0:
                    header["version"] = int(v2)  # type: ignore[arg-type]
    if header["endianness"] != 0:
        raise CheckpointError(f"{source}: big-endian checkpoints are not supported")
    if header["num_shards"] < 1:
        raise CheckpointError(f"{source}: header says {header['num_shards']} shards")
    return header


class Checkpoint:
    """A parsed checkpoint: :attr:`entries` by name, :meth:`read` one tensor (checksum verified)."""

    def __init__(self, index: bytes, shards: list[bytes], source: str = "checkpoint"):
        self.source = source
        self.header, entries = parse_index(index, f"{source}.index")
        if self.header["num_shards"] != len(shards):
            raise CheckpointError(f"{source}: the index names {self.header['num_shards']} data shards, "
                                  f"{len(shards)} given")
        self.shards = [memoryview(s) for s in shards]
        ends = [0] * len(shards)
        for e in sorted(entries, key=lambda e: (e.shard, e.offset)):
            if e.shard >= len(shards) or e.offset + e.size > len(shards[e.shard]):
                raise CheckpointError(f"{source}: tensor {e.name!r} lies outside data shard {e.shard} "
                                      f"(truncated data file?)")
            if e.offset < ends[e.shard]:        # tensors never share bytes: reading all costs at most the shard
                raise CheckpointError(f"{source}: tensor {e.name!r} overlaps another tensor's bytes")
            ends[e.shard] = e.offset + e.size
        self.entries: dict[str, TensorEntry] = {e.name: e for e in entries}

    def read(self, name: str) -> np.ndarray:
        """The tensor ``name`` as a numpy array (a copy), its CRC-32C checked when the entry has one."""
        e = self.entries.get(name)
        if e is None:
            raise CheckpointError(f"{self.source}: no tensor named {name!r}")
        if e.dtype == "string":
            raise CheckpointError(f"{self.source}: tensor {name!r} holds strings; only numeric tensors are read")
        raw = self.shards[e.shard][e.offset:e.offset + e.size]
        if e.crc32c is not None and masked_crc32c(raw) != e.crc32c:
            raise CheckpointError(f"{self.source}: checksum mismatch for tensor {name!r} (the data file is corrupt)")
        return np.frombuffer(raw, dtype=np.dtype(e.dtype).newbyteorder("<")).reshape(e.shape).copy()

    def read_all(self, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Every tensor (or those named) by name."""
        return {n: self.read(n) for n in (self.entries if names is None else names)}


def _shard_names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}.data-{i:05d}-of-{n:05d}" for i in range(n)]


def open_checkpoint(index: bytes, read_file: Callable[[str, int], bytes], prefix: str, source: str) -> Checkpoint:
    """Parse ``index`` and read its shards through ``read_file(name, max_bytes) -> bytes``."""
    header, _ = parse_index(index, f"{source}.index")
    shards = [read_file(name, MAX_DATA_BYTES) for name in _shard_names(prefix, header["num_shards"])]
    return Checkpoint(index, shards, source)


def open_checkpoint_dir(prefix: str | Path) -> Checkpoint:
    """A checkpoint on disk, given its prefix (``dir/model`` for ``dir/model.index``; ``dir/`` for ``dir/.index``)."""
    prefix = str(prefix)

    def read_file(name: str, max_bytes: int) -> bytes:
        path = Path(name)
        if not path.is_file():
            raise CheckpointError(f"{name}: missing")
        if path.stat().st_size > max_bytes:
            raise CheckpointError(f"{name}: {path.stat().st_size} bytes exceeds the limit of {max_bytes}")
        return path.read_bytes()

    return open_checkpoint(read_file(prefix + ".index", MAX_INDEX_BYTES), read_file, prefix, prefix)


def open_checkpoint_in_zip(archive: str | Path | zipfile.ZipFile, prefix: str) -> Checkpoint:
    """A checkpoint stored inside a zip (e.g. a wheel), read without extracting it to disk."""
    zf = archive if isinstance(archive, zipfile.ZipFile) else zipfile.ZipFile(archive)
    source = f"{getattr(zf, 'filename', 'zip')}:{prefix}"

    def read_file(name: str, max_bytes: int) -> bytes:
        try:
            info = zf.getinfo(name)
        except KeyError:
            raise CheckpointError(f"{source}: {name} is not in the archive") from None
        if info.file_size > max_bytes:
            raise CheckpointError(f"{source}: {name} declares {info.file_size} bytes, over the limit of {max_bytes}")
        try:
            with zf.open(info) as fh:
                data = fh.read(max_bytes + 1)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
            raise CheckpointError(f"{source}: {name} cannot be read from the archive ({exc})") from None
        if len(data) != info.file_size:
            raise CheckpointError(f"{source}: {name} is truncated in the archive")
        return data

    try:
        return open_checkpoint(read_file(prefix + ".index", MAX_INDEX_BYTES), read_file, prefix, source)
    finally:
        if zf is not archive:
            zf.close()

