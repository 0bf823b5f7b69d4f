"""Our network snapshot: one safetensors file, JSON metadata, a sha256 of the tensor payload; never runs code.

Layout (see docs/architecture.md): tensors ``G.<name>``, ``D.<name>``, ``G_ema.<name>`` with the reference's state-dict
names; string metadata ``format``, ``G_kwargs``, ``D_kwargs``, ``augment_pipe``, ``training_set_kwargs``, ``extra``
(all JSON), ``payload_sha256`` (hex sha256 of every byte after the safetensors header) and ``header_sha256`` (of
the header itself in canonical JSON, without this field), so any changed byte is detected.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from stylegan_ada.fileio import atomic_write_chunks

SNAPSHOT_FORMAT = "stylegan_ada-snapshot-v1"
NETWORK_KEYS = ("G", "D", "G_ema")
_MAX_HEADER = 100 << 20


class NetworkLoadError(ValueError):
    """A network file cannot be loaded; the message is one line saying why."""


class SnapshotError(NetworkLoadError):
    """Our snapshot file is truncated, corrupt, or does not match the networks it describes."""


def copy_state_into(module: torch.nn.Module, state: Mapping[str, Any], *, what: str,
                    error: type[Exception] = NetworkLoadError, keep: tuple[str, ...] = ()) -> None:
    """Copy every parameter and buffer of ``module`` from ``state`` (tensors or arrays), checking names and shapes.

    Names ending in one of ``keep`` may be absent from ``state`` (they keep their constructed value).
    """
    from stylegan_ada.legacy.limits import check_state_shapes

    own = module.state_dict()
    check_state_shapes(own, state, what=what, error=error, keep=keep)
    with torch.no_grad():
        for name, dst in own.items():
            if name in state:
                dst.copy_(torch.as_tensor(state[name]))


def finalize(module: torch.nn.Module | None, device: str | torch.device = "cpu") -> torch.nn.Module | None:
    """Loaded networks are for inference unless a trainer says otherwise: eval mode, no grad, on ``device``."""
    if module is None:
        return None
    return module.to(device).eval().requires_grad_(False)


# ----------------------------------------------------------------------------------------------------------- saving

def _module_tensors(prefix: str, module: torch.nn.Module, seen: set[int]) -> dict[str, torch.Tensor]:
    """CPU tensors of ``module``'s state dict; one sharing memory with an earlier one (``seen``: storage addresses)
    is cloned, because safetensors stores each storage once (e.g. ``G_ema=G``, or tied weights)."""
    out = {}
    for k, v in module.state_dict().items():
        t = v.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen:
            t = t.clone()
            ptr = t.untyped_storage().data_ptr()
        if ptr:  # empty tensors have no storage
            seen.add(ptr)
        out[f"{prefix}.{k}"] = t
    return out


def _kwargs_json(module: torch.nn.Module | None, what: str) -> str:
    if module is None:
        return "null"
    kwargs = getattr(module, "init_kwargs", None)
    if not isinstance(kwargs, dict):
        raise TypeError(f"{what} has no init_kwargs dict; cannot record how to rebuild it")
    return json.dumps(kwargs)


def _augment_pipe_json(pipe: torch.nn.Module | None) -> str:
    if pipe is None:
        return "null"
    return json.dumps({"kwargs": pipe.init_kwargs, "p": float(pipe.p)})


def _split_safetensors(data: bytes | memoryview) -> tuple[dict, memoryview]:
    """(header dict, payload view) of a safetensors buffer; SnapshotError if the framing is broken."""
    view = memoryview(data)
    if len(view) < 8:
        raise SnapshotError(f"file is {len(view)} bytes long, too short to be a snapshot (truncated?)")
    n = int.from_bytes(view[:8], "little")
    if n <= 0 or n > _MAX_HEADER or 8 + n > len(view):
        raise SnapshotError("snapshot header is cut off or corrupt (truncated file?)")
    try:
        header = json.loads(bytes(view[8:8 + n]))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SnapshotError(f"snapshot header is not valid JSON ({exc.__class__.__name__}); the file is corrupt")
    _check_header(header)
    return header, view[8 + n:]


def _check_header(header: Any) -> None:
    """The safetensors header schema: ``{name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}``."""
    if not isinstance(header, dict):
        raise SnapshotError("snapshot header is not a JSON object; the file is corrupt")
    for name, spec in header.items():
        if name == "__metadata__":
            if not isinstance(spec, dict) or not all(isinstance(v, str) for v in spec.values()):
                raise SnapshotError("snapshot header field '__metadata__' is not a map of strings; the file is corrupt")
            continue
        ok = (isinstance(spec, dict) and isinstance(spec.get("dtype"), str) and isinstance(spec.get("shape"), list)
              and isinstance(spec.get("data_offsets"), list) and len(spec["data_offsets"]) == 2
              and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                      for v in [*spec["shape"], *spec["data_offsets"]]))
        if not ok:
            raise SnapshotError(f"snapshot header entry {name[:60]!r} is not a tensor spec (dtype, shape, "
                                "data_offsets); the file is corrupt")


def _header_digest(header: dict) -> str:
    """sha256 of the header (tensor specs + metadata) without the checksum fields, in a canonical JSON form."""
    meta = {k: v for k, v in (header.get("__metadata__") or {}).items() if k != "header_sha256"}
    canonical = json.dumps({**header, "__metadata__": meta}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def save_snapshot(path: str | os.PathLike, *, G: torch.nn.Module, D: torch.nn.Module | None = None,
                  G_ema: torch.nn.Module | None = None, augment_pipe: torch.nn.Module | None = None,
                  training_set_kwargs: dict | None = None, extra: dict | None = None) -> Path:
    """Write G/D/G_ema weights + metadata to ``path`` atomically (temp file, fsync, rename).

    G_ema is rebuilt from G's kwargs, so it must have been constructed with the same kwargs.
    """
    from safetensors.torch import save as st_save

    if G_ema is not None and getattr(G_ema, "init_kwargs", None) != getattr(G, "init_kwargs", None):
        raise ValueError("G_ema must be built with the same kwargs as G")
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, module in (("G", G), ("D", D), ("G_ema", G_ema)):
        if module is not None:
            tensors.update(_module_tensors(key, module, seen))
    metadata = {
        "format": SNAPSHOT_FORMAT,
        "G_kwargs": _kwargs_json(G, "G"),
        "D_kwargs": _kwargs_json(D, "D"),
        "has_G_ema": json.dumps(G_ema is not None),
        "augment_pipe": _augment_pipe_json(augment_pipe),
        "training_set_kwargs": json.dumps(training_set_kwargs),
        "extra": json.dumps(extra or {}),
    }
    header, payload = _split_safetensors(st_save(tensors, metadata=metadata))
    header["__metadata__"]["payload_sha256"] = hashlib.sha256(payload).hexdigest()
    header["__metadata__"]["header_sha256"] = _header_digest(header)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)  # keep the payload 8-byte aligned, as safetensors does
    return atomic_write_chunks(path, [len(header_bytes).to_bytes(8, "little"), header_bytes, payload])


# ---------------------------------------------------------------------------------------------------------- loading

def is_snapshot_bytes(head: bytes) -> bool:
    """True if ``head`` (the first bytes of a file) starts like a safetensors file."""
    return len(head) >= 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") <= _MAX_HEADER


def _checked_metadata(data: bytes | memoryview) -> dict[str, str]:
    header, payload = _split_safetensors(data)
    meta = header.get("__metadata__") or {}
    if meta.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotError(f"not a {SNAPSHOT_FORMAT} file (format={str(meta.get('format'))[:60]!r})")
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    expected = max(ends, default=0)
    if len(payload) != expected:
        raise SnapshotError(f"tensor payload is {len(payload)} bytes, the header says {expected} (truncated file?)")
    if _header_digest(header) != meta.get("header_sha256"):
        raise SnapshotError("header checksum does not match (the metadata or tensor table is corrupt)")
    if hashlib.sha256(payload).hexdigest() != meta.get("payload_sha256"):
        raise SnapshotError("tensor payload checksum does not match (the file is corrupt)")
    return meta


# What each metadata field may hold once decoded (the checksums only prove the file is as written, not by whom).
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "G_kwargs": (dict, type(None)), "D_kwargs": (dict, type(None)), "has_G_ema": (bool,),
    "augment_pipe": (dict, type(None)), "training_set_kwargs": (dict, type(None)), "extra": (dict, type(None)),
}


def _json_field(meta: Mapping[str, str], key: str) -> Any:
    """A decoded metadata field, checked against :data:`_FIELD_TYPES` and the size/nesting limits."""
    from stylegan_ada.legacy.limits import check_plain

    try:
        value = json.loads(meta.get(key, "null"))
    except (json.JSONDecodeError, RecursionError):
        raise SnapshotError(f"metadata field {key!r} is not valid JSON (the file is corrupt)") from None
    check_plain(value, f"metadata field {key!r}", SnapshotError)
    types = _FIELD_TYPES.get(key)
    if types is not None and not isinstance(value, types):
        if key == "has_G_ema" and value is None:
            return False
        want = " or ".join("null" if t is type(None) else {dict: "an object", bool: "true/false"}[t] for t in types)
        raise SnapshotError(f"metadata field {key!r} must be {want}, got {type(value).__name__}")
    return value


def _build(kind: str, kwargs: dict, state: Mapping[str, torch.Tensor], budget: int) -> torch.nn.Module:
    from stylegan_ada import networks
    from stylegan_ada.legacy.limits import build_bounded

    cls = networks.Generator if kind.startswith("G") else networks.Discriminator
    module, state = build_bounded(cls, kwargs, what=kind, budget=budget, error=SnapshotError, state=state)
    copy_state_into(module, state, what=kind, error=SnapshotError)
    return module


def _build_augment_pipe(record: dict | None) -> torch.nn.Module | None:
    if record is None:
        return None
    import math

    from stylegan_ada.augment_pipe import AugmentPipe
    from stylegan_ada.legacy.limits import BUILD_ERRORS

    kwargs, p = record.get("kwargs"), record.get("p")
    if set(record) != {"kwargs", "p"} or not isinstance(kwargs, dict) or isinstance(p, bool) \
            or not isinstance(p, (int, float)) or not math.isfinite(p) or p < 0:
        raise SnapshotError("metadata field 'augment_pipe' must be {\"kwargs\": {...}, \"p\": a number >= 0}")
    try:
        pipe = AugmentPipe(**kwargs)
    except BUILD_ERRORS as exc:
        raise SnapshotError(f"metadata field 'augment_pipe': cannot build the pipe from its kwargs "
                            f"({type(exc).__name__})") from None
    with torch.no_grad():
        pipe.p.copy_(torch.as_tensor(float(p)))
    return pipe


def load_snapshot_bytes(data: bytes | memoryview, device: str | torch.device = "cpu", *,
                        source: str = "snapshot") -> dict[str, Any]:
    """Like :func:`load_snapshot` for a snapshot already in memory."""
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    try:
        meta = _checked_metadata(data)
        fields = {key: _json_field(meta, key) for key in _FIELD_TYPES}
        tensors = st_load(bytes(data))
        kwargs = {"G": fields["G_kwargs"], "D": fields["D_kwargs"]}
        kwargs["G_ema"] = kwargs["G"] if fields["has_G_ema"] else None
        out: dict[str, Any] = {}
        for key in NETWORK_KEYS:
            prefix = key + "."
            state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            out[key] = None if kwargs[key] is None else finalize(_build(key, kwargs[key], state, len(data)), device)
        out["augment_pipe"] = finalize(_build_augment_pipe(fields["augment_pipe"]), device)
    except SnapshotError as exc:
        raise SnapshotError(f"{source}: {exc}") from None
    except SafetensorError as exc:
        raise SnapshotError(f"{source}: unreadable safetensors data ({exc})") from None
    out["training_set_kwargs"] = fields["training_set_kwargs"]
    out["extra"] = fields["extra"] or {}
    return out


def _read(path: str | os.PathLike) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise SnapshotError(f"snapshot {path} does not exist") from None
    except IsADirectoryError:
        raise SnapshotError(f"snapshot {path} is a directory, not a file") from None


def load_snapshot(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a snapshot written by :func:`save_snapshot`: dict(G, D, G_ema, augment_pipe, training_set_kwargs, extra).

    Networks are rebuilt from their recorded kwargs (no code is read from the file), put in eval mode with
    requires_grad False on ``device``. Raises :class:`SnapshotError` with a one-line reason on a bad file.
    """
    return load_snapshot_bytes(_read(path), device, source=str(path))


def verify_snapshot(path: str | os.PathLike) -> bool:
    """True if ``path`` is a complete, uncorrupted snapshot (framing, format and payload checksum)."""
    try:
        _checked_metadata(_read(path))
    except SnapshotError:
        return False
    return True


def read_snapshot_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The decoded JSON metadata of a verified snapshot (no tensors are built)."""
    meta = _checked_metadata(_read(path))
    return {k: (v if k in ("format", "payload_sha256", "header_sha256") else _json_field(meta, k))
            for k, v in meta.items()}
