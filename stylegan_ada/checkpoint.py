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
    own = module.state_dict()
    missing = [k for k in own if k not in state and not k.endswith(keep)]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} (e.g. {', '.join(unexpected[:3])})")
        raise error(f"{what}: stored tensors do not match the network built from its kwargs: {'; '.join(parts)}")
    with torch.no_grad():
        for name, dst in own.items():
            if name not in state:
                continue
            src = torch.as_tensor(state[name])
            if tuple(src.shape) != tuple(dst.shape):
                raise error(f"{what}: tensor {name} has shape {tuple(src.shape)}, the network expects "
                            f"{tuple(dst.shape)}")
            dst.copy_(src)


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
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SnapshotError(f"snapshot header is not valid JSON ({exc.__class__.__name__}); the file is corrupt")
    if not isinstance(header, dict):
        raise SnapshotError("snapshot header is not a JSON object; the file is corrupt")
    return header, view[8 + n:]


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
        raise SnapshotError(f"not a {SNAPSHOT_FORMAT} file (format={meta.get('format')!r})")
    ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    expected = max(ends, default=0)
    if len(payload) != expected:
        raise SnapshotError(f"tensor payload is {len(payload)} bytes, the header says {expected} (truncated file?)")
    if _header_digest(header) != meta.get("header_sha256"):
        raise SnapshotError("header checksum does not match (the metadata or tensor table is corrupt)")
    if hashlib.sha256(payload).hexdigest() != meta.get("payload_sha256"):
        raise SnapshotError("tensor payload checksum does not match (the file is corrupt)")
    return meta


def _json_field(meta: Mapping[str, str], key: str) -> Any:
    try:
        return json.loads(meta.get(key, "null"))
    except json.JSONDecodeError:
        raise SnapshotError(f"metadata field {key!r} is not valid JSON (the file is corrupt)") from None


def _build(kind: str, kwargs: dict) -> torch.nn.Module:
    from stylegan_ada import networks

    cls = networks.Generator if kind.startswith("G") else networks.Discriminator
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, AssertionError) as exc:
        raise SnapshotError(f"cannot rebuild {kind} from its recorded kwargs: {exc}") from exc


def _build_augment_pipe(record: dict | None) -> torch.nn.Module | None:
    if record is None:
        return None
    from stylegan_ada.augment_pipe import AugmentPipe

    pipe = AugmentPipe(**record["kwargs"])
    with torch.no_grad():
        pipe.p.copy_(torch.as_tensor(float(record["p"])))
    return pipe


def load_snapshot_bytes(data: bytes | memoryview, device: str | torch.device = "cpu", *,
                        source: str = "snapshot") -> dict[str, Any]:
    """Like :func:`load_snapshot` for a snapshot already in memory."""
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    try:
        meta = _checked_metadata(data)
        tensors = st_load(bytes(data))
    except SnapshotError as exc:
        raise SnapshotError(f"{source}: {exc}") from None
    except SafetensorError as exc:
        raise SnapshotError(f"{source}: unreadable safetensors data ({exc})") from None
    kwargs = {"G": _json_field(meta, "G_kwargs"), "D": _json_field(meta, "D_kwargs")}
    kwargs["G_ema"] = kwargs["G"] if _json_field(meta, "has_G_ema") else None
    out: dict[str, Any] = {}
    for key in NETWORK_KEYS:
        if kwargs[key] is None:
            out[key] = None
            continue
        module = _build(key, kwargs[key])
        prefix = key + "."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        copy_state_into(module, state, what=f"{source}: {key}", error=SnapshotError)
        out[key] = finalize(module, device)
    out["augment_pipe"] = finalize(_build_augment_pipe(_json_field(meta, "augment_pipe")), device)
    out["training_set_kwargs"] = _json_field(meta, "training_set_kwargs")
    out["extra"] = _json_field(meta, "extra") or {}
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
