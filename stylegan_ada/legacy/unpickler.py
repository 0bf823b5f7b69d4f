"""A pickle reader that can only build plain data: it never imports or calls anything the file names.

Every global a pickle asks for is looked up in a fixed table of stand-ins written here (records of the reference's
persistent objects and TF network states, tensors rebuilt from raw bytes, numpy arrays of plain dtypes). Anything
else -- ``os.system``, ``builtins.eval``, ``subprocess.*``, a class from the file's embedded source -- is refused with
:class:`UnsafePickleError` naming the global, before it is imported.
"""
from __future__ import annotations

import codecs
import collections
import io
import pickle
from typing import Any, Callable

import numpy as np
import torch

from stylegan_ada.checkpoint import NetworkLoadError


class UnsafePickleError(NetworkLoadError, pickle.UnpicklingError):
    """The pickle asks for something outside the allowed set (it could run code); nothing was executed."""


class PersistentRecord:
    """What ``torch_utils.persistence._reconstruct_persistent_obj`` would receive, kept as data (source dropped)."""

    def __init__(self, class_name: str, state: dict, version: int):
        self.class_name, self.state, self.version = class_name, state, version

    def __repr__(self) -> str:
        return f"PersistentRecord({self.class_name})"


class TFNetworkState:
    """The pickled state of a ``dnnlib.tflib.network.Network`` (no TensorFlow needed, nothing executed)."""

    def __setstate__(self, state: dict) -> None:
        if not isinstance(state, dict):
            raise UnsafePickleError("dnnlib.tflib.network.Network state is not a dict; refusing the file")
        self.state = state

    def __getattr__(self, name: str) -> Any:
        if name == "state":  # before __setstate__ ran
            raise AttributeError(name)
        try:
            return self.state[name]
        except KeyError:
            raise AttributeError(name) from None


class PlainDict(dict):
    """Stand-in for ``dnnlib.EasyDict``: just a dict."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.update(state)


# ------------------------------------------------------------------------------------------ safe stand-in functions

def _refuse(what: str) -> UnsafePickleError:
    return UnsafePickleError(f"refusing to load: {what} (the file may try to run code; nothing was executed)")


def _reconstruct_persistent_obj(meta: Any) -> PersistentRecord:
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
        raise _refuse("a torch_utils.persistence object that is not a plain class record")
    if not isinstance(meta.get("class_name"), str):
        raise _refuse("a torch_utils.persistence object without a class name")
    return PersistentRecord(meta["class_name"], meta["state"], int(meta.get("version", 0)))


def _plain_dtype(spec: Any, align: Any = False, _copy: Any = True) -> np.dtype:
    if not isinstance(spec, str):
        raise _refuse(f"numpy.dtype({spec!r:.40}) (only dtype names are allowed)")
    dtype = np.dtype(spec, bool(align), True)  # always a copy: BUILD must never alter numpy's shared dtypes
    if dtype.hasobject:
        raise _refuse(f"numpy dtype {spec!r} holds Python objects")
    return dtype


def _numpy_scalar(dtype: Any, data: Any = None) -> np.generic:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise _refuse("a numpy scalar that is not plain numeric data")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _numpy_reconstruct(subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise _refuse(f"numpy array of type {subtype!r}")
    return np.ndarray((0,), dtype=np.uint8)  # BUILD then fills in shape, (plain) dtype and bytes


def _codecs_encode(text: Any, encoding: str = "utf-8", *_: Any) -> bytes:
    if not isinstance(text, str) or codecs.lookup(encoding).name not in ("latin-1", "iso8859-1", "utf-8"):
        raise _refuse(f"_codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, encoding)


_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


class _StorageTag:
    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


class _FlatStorage:
    """A legacy torch storage decoded to a flat tensor."""

    def __init__(self, flat: torch.Tensor):
        self.flat = flat


def _load_from_bytes(data: Any) -> _FlatStorage:
    """Decode ``torch.save(storage, _use_new_zipfile_serialization=False)`` bytes without torch's unpickler."""
    if not isinstance(data, bytes):
        raise _refuse("torch.storage._load_from_bytes without bytes")
    f = io.BytesIO(data)

    def sub() -> Any:  # the format is several pickles in a row, then the raw bytes
        return _Restricted(f, _STORAGE_GLOBALS, persistent=_storage_id).load()

    magic, _protocol, sys_info = sub(), sub(), sub()
    if magic != 0x1950A86A20F9469CFC6C or not isinstance(sys_info, dict) or not sys_info.get("little_endian"):
        raise NetworkLoadError("embedded tensor data is not a little-endian torch legacy storage")
    record = sub()
    keys = sub()
    if not isinstance(record, tuple) or keys != [record[1]]:
        raise NetworkLoadError("embedded tensor data holds an unexpected storage layout")
    dtype, numel = record[0], record[2]
    stored_numel = int.from_bytes(f.read(8), "little")
    itemsize = torch.empty((), dtype=dtype).element_size()
    raw = f.read(stored_numel * itemsize)
    if stored_numel != numel or len(raw) != numel * itemsize:
        raise NetworkLoadError("embedded tensor data is truncated")
    return _FlatStorage(torch.frombuffer(bytearray(raw), dtype=dtype) if numel else torch.empty(0, dtype=dtype))


def _storage_id(pid: Any) -> tuple:
    # ('storage', <storage type>, key, location, numel[, view metadata])
    if (not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage" or not isinstance(pid[1], _StorageTag)
            or (len(pid) > 5 and pid[5] is not None)):
        raise _refuse(f"a torch storage reference of an unknown form {pid!r:.80}")
    return (pid[1].dtype, str(pid[2]), int(pid[4]))


def _rebuild_tensor_v2(storage: Any, offset: Any, size: Any, stride: Any, *_rest: Any) -> torch.Tensor:
    if not isinstance(storage, _FlatStorage):
        raise _refuse("a tensor whose storage is not raw data")
    try:
        return storage.flat.as_strided(tuple(size), tuple(stride), int(offset))
    except RuntimeError as exc:
        raise NetworkLoadError(f"embedded tensor does not fit its storage ({exc})") from None


def _rebuild_parameter(data: Any, *_rest: Any) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise _refuse("torch._utils._rebuild_parameter without a tensor")
    return data


class _TypeTag:
    def __init__(self, name: str):
        self.name = name


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any) -> torch.Tensor:
    if func not in (_rebuild_tensor_v2, _rebuild_parameter) or not isinstance(new_type, _TypeTag) or state:
        raise _refuse("torch._tensor._rebuild_from_type_v2 with anything but a plain tensor")
    return func(*args)


# ------------------------------------------------------------------------------------------------- allowed globals

def _both_numpy(name: str, fn: Callable) -> dict:
    return {(mod, name): fn for mod in ("numpy.core.multiarray", "numpy._core.multiarray")}


NETWORK_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.tflib.network", "Network"): TFNetworkState,
    ("dnnlib.util", "EasyDict"): PlainDict,
    ("dnnlib", "EasyDict"): PlainDict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Tensor"): _TypeTag("Tensor"),
    ("torch.nn.parameter", "Parameter"): _TypeTag("Parameter"),
    ("numpy", "dtype"): _plain_dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("_codecs", "encode"): _codecs_encode,
    **_both_numpy("scalar", _numpy_scalar),
    **_both_numpy("_reconstruct", _numpy_reconstruct),
}

_STORAGE_GLOBALS: dict[tuple[str, str], Any] = {("torch", k): _StorageTag(v) for k, v in _STORAGE_DTYPES.items()}


class _Restricted(pickle.Unpickler):
    def __init__(self, file: Any, allowed: dict[tuple[str, str], Any], persistent: Callable | None = None):
        super().__init__(file)
        self._allowed = allowed
        self._persistent = persistent

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except (KeyError, TypeError):
            raise _refuse(f"the pickle references the global {module}.{name}, which is not allowed") from None

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise _refuse("the pickle uses persistent ids, which this format does not")
        return self._persistent(pid)


def restricted_load(file: Any) -> Any:
    """Unpickle a reference network pickle (PyTorch snapshot or TF-era) from a binary file object, safely.

    Raises :class:`UnsafePickleError` for any global outside :data:`NETWORK_GLOBALS` and
    :class:`NetworkLoadError` for a file that is not a readable pickle.
    """
    try:
        return _Restricted(file, NETWORK_GLOBALS).load()
    except NetworkLoadError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            UnicodeDecodeError, OverflowError, MemoryError, RecursionError) as exc:
        raise NetworkLoadError(f"not a readable network pickle ({type(exc).__name__}: {exc})") from None
