"""One entry point for every network file we accept: our snapshots, reference PyTorch pickles, TF-era pickles."""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, BinaryIO

import torch

from stylegan_ada.checkpoint import NetworkLoadError, finalize, is_snapshot_bytes, load_snapshot_bytes
from stylegan_ada.legacy.persistence import convert_reference_snapshot
from stylegan_ada.legacy.tf_convert import convert_tf_pickle, is_tf_pickle
from stylegan_ada.legacy.unpickler import restricted_load

RESULT_KEYS = ("G", "D", "G_ema", "augment_pipe", "training_set_kwargs")


def _read_all(path_or_file: str | os.PathLike | BinaryIO) -> tuple[bytes, str]:
    if isinstance(path_or_file, (str, os.PathLike)):
        path = Path(path_or_file)
        try:
            return path.read_bytes(), str(path)
        except FileNotFoundError:
            raise NetworkLoadError(f"network file {path} does not exist") from None
        except IsADirectoryError:
            raise NetworkLoadError(f"network file {path} is a directory") from None
    data = path_or_file.read()
    if not isinstance(data, bytes):
        raise TypeError("load_network_pkl needs a path or a file opened in binary mode")
    return data, str(getattr(path_or_file, "name", "<file>"))


def load_network_pkl(path_or_file: str | os.PathLike | BinaryIO) -> dict[str, Any]:
    """Load networks from our snapshot, a reference PyTorch snapshot pickle or a TF-era pickle -- never running code.

    Returns dict(G, D, G_ema, augment_pipe, training_set_kwargs) (plus ``extra`` for our snapshots); modules are in
    eval mode, on the CPU, with requires_grad False; absent entries are None. Raises
    :class:`~stylegan_ada.checkpoint.NetworkLoadError` (or its subclasses ``SnapshotError``, ``UnsafePickleError``)
    with a one-line reason.
    """
    data, source = _read_all(path_or_file)
    return load_network_bytes(data, source=source)


def load_network_bytes(data: bytes, device: str | torch.device = "cpu", *, source: str = "<bytes>") -> dict[str, Any]:
    """:func:`load_network_pkl` for a file already in memory, with its modules on ``device``.

    The one place that tells the formats apart, by content (never by file name): our safetensors snapshot, a zip
    (refused: ``torch.save`` output), a pickle (reference PyTorch or TF-era).
    """
    if is_snapshot_bytes(data[:16]):
        return load_snapshot_bytes(data, device, source=source)
    if data[:2] == b"PK":
        raise NetworkLoadError(f"{source} is a zip archive (torch.save / training state?), not a network file; "
                               "pass a network-snapshot .safetensors or a reference .pkl")
    if data[:1] != b"\x80":
        raise NetworkLoadError(f"{source} is neither one of our snapshots nor a network pickle")
    try:
        raw = restricted_load(io.BytesIO(data))
        # Memory is bounded by the file: no network may need more bytes than the file holds.
        result = convert_tf_pickle(raw, len(data)) if is_tf_pickle(raw) else convert_reference_snapshot(raw, len(data))
    except NetworkLoadError as exc:
        raise type(exc)(f"{source}: {exc}") from None
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError) as exc:
        # Structures the checks above did not foresee: still one line, still a load error.
        raise NetworkLoadError(f"{source}: malformed network pickle ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
    for key in ("G", "D", "G_ema", "augment_pipe"):
        result[key] = finalize(result[key], device)
    return {key: result.get(key) for key in RESULT_KEYS}
